"""Pre-trend and placebo diagnostics for difference-in-differences.

* :func:`wald_test`: joint test that pre-period coefficients are zero.
* :func:`staggered_pretrend_test`: that test on the pre-joining ATT(g, t) of
  the Callaway–Sant'Anna estimator (R ``did``'s "pre-test of parallel trends").
* :func:`placebo_test`: pretend every cohort joined ``shift`` years earlier,
  keep only its truly pre-joining years, and estimate the (placebo) effect;
  under parallel trends it is zero.

A non-significant pre-test is not proof of parallel trends (low power; Roth
2022, *AER: Insights* 4(3)); the report should say so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

if TYPE_CHECKING:
    from evaltool.estimators.did.staggered import GroupTimeResult


def wald_test(theta: np.ndarray, vcov: np.ndarray, *, label: str = "") -> dict:
    r"""Wald test of :math:`H_0: \theta = 0`.

    Notes
    -----
    :math:`W = \hat\theta' \hat V^{+} \hat\theta \sim \chi^2_r` with :math:`r = \mathrm{rank}(\hat V)`
    (pseudo-inverse, so exactly collinear pre-period estimates do not break the test).
    """
    theta = np.asarray(theta, dtype=float)
    if theta.size == 0:
        return {"test": label, "statistic": None, "df": 0, "p_value": None, "note": "no pre-period estimates to test"}
    vcov = np.atleast_2d(np.asarray(vcov, dtype=float))
    rank = int(np.linalg.matrix_rank(vcov))
    if rank == 0:
        return {"test": label, "statistic": None, "df": 0, "p_value": None, "note": "pre-period estimates have no variance"}
    w = float(theta @ np.linalg.pinv(vcov) @ theta)
    return {"test": label, "statistic": w, "df": rank, "p_value": float(stats.chi2.sf(w, rank)), "note": ""}


def staggered_pretrend_test(result: GroupTimeResult) -> dict:
    """Joint Wald test that every pre-joining ATT(g, t) (``t < g − anticipation``) is zero."""
    cells = result.cells
    antic = result.options["anticipation"]
    pre = (cells["year"] < cells["cohort"] - antic).to_numpy() & np.isfinite(cells["att"].to_numpy())
    pre = pre & (cells["std_error"].fillna(0).to_numpy() > 0)
    theta = cells["att"].to_numpy()[pre]
    vcov = result.vcov(result.influence[:, pre]) if pre.any() else np.zeros((0, 0))
    return wald_test(theta, vcov, label="pre-joining ATT(g,t) jointly zero")


def placebo_frame(frame: pd.DataFrame, *, shift: int, anticipation: int = 0) -> tuple[pd.DataFrame, int]:
    """Data for a placebo test: joiners keep only years before ``join_year − anticipation``, and join ``shift`` years early.

    Returns
    -------
    The placebo frame, and the number of rows removed (post-joining years of joiners).
    """
    joined = frame["join_year"].notna()
    keep = ~joined | (frame["year"] < frame["join_year"] - anticipation)
    placebo = frame.loc[keep].copy()
    placebo["join_year"] = placebo["join_year"] - shift
    return placebo, int((~keep).sum())


def placebo_test(frame: pd.DataFrame, outcome: str, *, shift: int = 2, **options) -> dict:
    """Placebo staggered DiD with a fake joining year ``shift`` years before the real one.

    Parameters
    ----------
    frame
        School × year frame with canonical columns.
    outcome
        Outcome column.
    shift
        Years by which every joining year is moved earlier.
    **options
        Options of :func:`~evaltool.estimators.did.staggered.att_gt` (control group,
        anticipation, covariates …); ``unbalanced`` is forced to ``available_pairs``
        because the truncated joiners are observed in fewer years.

    Returns
    -------
    dict with the placebo simple ATT, its analytic SE, z-test p-value and the cohorts used.
    """
    from evaltool.errors import EstimationError
    from evaltool.estimators.did.aggregate import aggregate
    from evaltool.estimators.did.staggered import att_gt

    placebo, removed = placebo_frame(frame, shift=shift, anticipation=options.get("anticipation", 0))
    options = {**options, "unbalanced": "available_pairs"}
    try:
        result = att_gt(placebo, outcome, **options)
        simple = aggregate(result, "simple")
    except EstimationError as exc:
        return {"shift": shift, "estimate": None, "std_error": None, "p_value": None, "note": f"not estimable: {exc}"}
    se = simple.overall_se
    z = simple.overall_att / se if se > 0 else np.nan
    return {
        "shift": shift,
        "estimate": simple.overall_att,
        "std_error": se,
        "p_value": float(2 * stats.norm.sf(abs(z))) if np.isfinite(z) else None,
        "cohorts": sorted(int(g) for g in result.cohort_share),
        "rows_removed": removed,
        "note": f"joining years moved {shift} years earlier; only pre-joining years of joiners used",
    }
