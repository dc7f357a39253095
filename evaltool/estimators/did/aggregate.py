"""Aggregations of group-time ATTs: simple, group (cohort), dynamic (event time), calendar.

Each aggregation is a weighted average of ATT(g, t) with weights that depend
on the estimated cohort shares; its influence function adds the estimation
effect of those weights (Callaway & Sant'Anna 2021, Section 4 and Appendix;
R ``did::aggte``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from evaltool.errors import EstimationError
from evaltool.estimators.did.staggered import GroupTimeResult

Kind = Literal["simple", "group", "dynamic", "calendar"]
KINDS: tuple[str, ...] = ("simple", "group", "dynamic", "calendar")


@dataclass(frozen=True)
class Aggregate:
    """An aggregation of group-time ATTs.

    Every influence function here is a linear combination of the cells' influence functions and of the
    centred cohort indicators (the estimation effect of the cohort-share weights), so it is stored as
    coefficients on :attr:`GroupTimeResult.basis`; the bootstrap then perturbs the basis once for all
    aggregations.

    Attributes
    ----------
    kind
        ``simple``, ``group``, ``dynamic`` or ``calendar``.
    table
        One row per element (``cohort``, ``event_time`` or ``year``) with ``att`` and analytic
        ``std_error``; empty for ``simple``.
    overall_att, overall_se
        The overall summary parameter and its analytic standard error.
    coef
        Shape ``(n_basis, len(table) + 1)``: influence functions of the elements, then of the overall
        parameter, as combinations of the basis columns.
    result
        The group-time result aggregated.
    """

    kind: str
    table: pd.DataFrame
    overall_att: float
    overall_se: float
    coef: np.ndarray
    result: GroupTimeResult = field(repr=False)

    @property
    def influence(self) -> np.ndarray:
        """Influence functions of the elements, shape ``(n_units, len(table))``."""
        return self.result.basis @ self.coef[:, :-1]

    @property
    def overall_influence(self) -> np.ndarray:
        """Influence function of the overall parameter, shape ``(n_units,)``."""
        return self.result.basis @ self.coef[:, -1]


class _Combiner:
    r"""Builds basis coefficients of cohort-share-weighted means of cells.

    Notes
    -----
    For cells :math:`k\in S` with cohort shares :math:`\hat p_k`, :math:`T=\sum_S \hat p_k`, the weighted mean
    :math:`\sum_S \hat p_k\,ATT_k/T` has influence function
    :math:`\sum_S (\hat p_k/T)\psi_k + \sum_S ATT_k\,\psi^w_k` where the weight part (R ``did``'s ``wif``) is
    :math:`\psi^w_k = M_{c(k)}/T - \hat p_k \sum_{l\in S} M_{c(l)}/T^2` with :math:`M_c = 1\{G=c\} - \hat p_c`.
    """

    def __init__(self, result: GroupTimeResult) -> None:
        self.n_cells = len(result.cells)
        self.cohorts = list(result.cohort_share)
        self.index = {g: j for j, g in enumerate(self.cohorts)}
        self.cell_cohort = np.array([self.index[float(g)] for g in result.cells["cohort"]], dtype=int)
        self.share = np.array([result.cohort_share[g] for g in self.cohorts])
        self.att = result.cells["att"].to_numpy()
        self.size = self.n_cells + len(self.cohorts)

    def plain_mean(self, cells: np.ndarray) -> np.ndarray:
        coef = np.zeros(self.size)
        coef[cells] = 1 / len(cells)
        return coef

    def share_weighted(self, cells: np.ndarray) -> np.ndarray:
        """Coefficients of the cohort-share-weighted mean of ``cells``."""
        cohort_of = self.cell_cohort[cells]
        shares = self.share[cohort_of]
        total = shares.sum()
        coef = np.zeros(self.size)
        coef[cells] = shares / total
        coef[self.n_cells :] += self._weight_part(self.att[cells], shares, cohort_of, total)
        return coef

    def share_weighted_elements(self, element_coefs: np.ndarray, values: np.ndarray, cohort_of: np.ndarray) -> np.ndarray:
        """Share-weighted mean of elements (one per cohort) that are themselves combinations of the basis."""
        shares = self.share[cohort_of]
        total = shares.sum()
        coef = element_coefs @ (shares / total)
        coef[self.n_cells :] += self._weight_part(values, shares, cohort_of, total)
        return coef

    def _weight_part(self, values: np.ndarray, shares: np.ndarray, cohort_of: np.ndarray, total: float) -> np.ndarray:
        part = np.bincount(cohort_of, weights=values / total, minlength=len(self.cohorts))
        part -= np.bincount(cohort_of, minlength=len(self.cohorts)) * (shares @ values) / total**2
        return part


def aggregate(
    result: GroupTimeResult, kind: Kind = "group", *, min_e: float = -np.inf, max_e: float = np.inf
) -> Aggregate:
    """Aggregate group-time ATTs.

    Parameters
    ----------
    result
        Output of :func:`~evaltool.estimators.did.staggered.att_gt`.
    kind
        ``"simple"``: cohort-share-weighted mean of every post-joining ATT(g, t);
        ``"group"``: mean over post-joining years per cohort, then cohort-share weighted;
        ``"dynamic"``: cohort-share-weighted mean per event time ``e = t − g``, overall = mean over ``e ≥ 0``;
        ``"calendar"``: cohort-share-weighted mean of joined cohorts per year, overall = mean over years.
    min_e, max_e
        Event-time window: cells with ``t − g`` outside it are left out (as R ``aggte``).

    Returns
    -------
    Aggregate
    """
    if kind not in KINDS:
        raise EstimationError(f"aggregation must be one of {', '.join(KINDS)}; got {kind!r}.", user_error=True)
    cells = result.cells
    valid = np.isfinite(cells["att"].to_numpy())
    g = cells["cohort"].to_numpy()
    t = cells["year"].to_numpy()
    e = cells["event_time"].to_numpy()
    window = (e >= min_e) & (e <= max_e) & valid
    post = (g <= t) & window
    if not post.any():
        raise EstimationError("No post-joining group-time ATT is estimable, so nothing can be aggregated.", user_error=True)

    comb = _Combiner(result)
    att = comb.att
    labels: list[int] = []
    coefs: list[np.ndarray] = []
    if kind == "simple":
        overall = comb.share_weighted(np.flatnonzero(post))
    elif kind == "group":
        groups = sorted(set(g[post]))
        for gg in groups:
            labels.append(int(gg))
            coefs.append(comb.plain_mean(np.flatnonzero(post & (g == gg))))
        element = np.column_stack(coefs)
        values = np.array([att[np.flatnonzero(post & (g == gg))].mean() for gg in groups])
        overall = comb.share_weighted_elements(element, values, np.array([comb.index[float(gg)] for gg in groups]))
    else:
        label_of = e if kind == "dynamic" else t
        keep = window if kind == "dynamic" else post
        for value in sorted(set(label_of[keep])):
            labels.append(int(value))
            coefs.append(comb.share_weighted(np.flatnonzero(keep & (label_of == value))))
        chosen = np.array(labels) >= 0 if kind == "dynamic" else np.ones(len(labels), bool)
        overall = np.column_stack(coefs)[:, chosen].mean(axis=1)

    coef = np.column_stack([*coefs, overall])
    atts = result.combine(coef)
    se = result.std_errors(coef)
    label_name = {"simple": "label", "group": "cohort", "dynamic": "event_time", "calendar": "year"}[kind]
    table = pd.DataFrame({label_name: labels, "att": atts[:-1], "std_error": se[:-1]})
    return Aggregate(kind=kind, table=table, overall_att=float(atts[-1]), overall_se=float(se[-1]), coef=coef, result=result)
