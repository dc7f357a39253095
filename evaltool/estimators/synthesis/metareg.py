"""Meta-regression on study (trust) moderators: design matrix, checks, fit.

Categorical moderators (collaboration type, federation form) enter as
treatment-coded dummies against a reference level; numeric ones (depth scores,
number of schools) as they are.  The model is fitted by :func:`fit_meta`
(REML τ² and, by default, Knapp–Hartung tests).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from evaltool.errors import EstimationError
from evaltool.estimators.synthesis.meta import MetaFit, fit_meta


@dataclass(frozen=True)
class Design:
    """A meta-regression design matrix and how it was built."""

    X: np.ndarray
    names: tuple[str, ...]
    moderators: tuple[str, ...]
    references: dict[str, str]
    dropped: dict[str, str] = field(default_factory=dict)
    """Moderators left out, with the reason (only when ``on_problem='skip'``)."""


def as_numeric(series: pd.Series) -> pd.Series | None:
    """The column as floats if every non-missing value is a number (also numbers read as text), else ``None``."""
    if pd.api.types.is_bool_dtype(series):
        return None
    if pd.api.types.is_numeric_dtype(series):
        return series.astype(float)
    values = pd.to_numeric(series, errors="coerce")
    return values.astype(float) if (values.notna() == series.notna()).all() and values.notna().any() else None


def is_categorical(series: pd.Series) -> bool:
    """Text, boolean or category columns are categorical; numbers (also numbers stored as text) are numeric."""
    return as_numeric(series) is None


def build_design(
    moderators: pd.DataFrame,
    columns: list[str],
    *,
    categorical: list[str] | None = None,
    references: dict[str, str] | None = None,
    on_problem: str = "fail",
) -> Design:
    """Intercept plus one block of columns per moderator.

    Parameters
    ----------
    moderators
        One row per study, no missing values in ``columns``.
    columns
        Moderators to include, in order.
    categorical
        Moderators to treat as categorical even if numeric.
    references
        Reference level per categorical moderator; default the most common
        level (ties: the first in sorted order).
    on_problem
        ``"fail"``: a moderator with a single level (or no variation) raises;
        ``"skip"``: it is dropped and named in :attr:`Design.dropped`.
    """
    categorical = set(categorical or [])
    references = dict(references or {})
    blocks = [np.ones((len(moderators), 1))]
    names = ["intercept"]
    used: list[str] = []
    chosen: dict[str, str] = {}
    dropped: dict[str, str] = {}
    for column in columns:
        values = moderators[column]
        if column in categorical or is_categorical(values):
            labels = values.astype(str)
            counts = labels.value_counts()
            if len(counts) < 2:
                problem = f"moderator '{column}' has a single level ('{counts.index[0]}') among the studies analysed"
            else:
                problem = None
            if problem is None:
                ref = references.get(column)
                if ref is None:
                    top = counts[counts == counts.max()].index
                    ref = sorted(top)[0]
                elif ref not in counts.index:
                    raise EstimationError(
                        f"Reference level '{ref}' of moderator '{column}' does not occur among the studies; "
                        f"levels are {sorted(counts.index)}.",
                        user_error=True,
                    )
                levels = [lev for lev in sorted(counts.index) if lev != ref]
                blocks.append((labels.to_numpy()[:, None] == np.asarray(levels)[None, :]).astype(float))
                names += [f"{column}={lev}" for lev in levels]
                chosen[column] = ref
        else:
            x = as_numeric(values).to_numpy()
            problem = None if np.ptp(x) > 0 else f"moderator '{column}' takes one value ({x[0]:g}) in every study"
            if problem is None:
                blocks.append(x[:, None])
                names.append(column)
        if problem is not None:
            if on_problem == "fail":
                raise EstimationError(
                    f"{problem}, so its effect cannot be estimated. Remove it from moderators "
                    "(or set on_problem: skip to drop it with a warning).",
                    user_error=True,
                )
            dropped[column] = problem
            continue
        used.append(column)
    return Design(
        X=np.hstack(blocks), names=tuple(names), moderators=tuple(used), references=chosen, dropped=dropped
    )


def fit_metareg(
    y: np.ndarray,
    se: np.ndarray,
    design: Design,
    *,
    tau2_method: str = "REML",
    knapp_hartung: bool = True,
    level: float = 0.95,
) -> tuple[MetaFit, dict]:
    """Fit the meta-regression and summarise it per moderator.

    Returns
    -------
    fit, summary
        ``summary`` has the coefficient table, the omnibus test of all
        moderators (QM), one test per moderator (its block of coefficients),
        the residual τ² and the share of τ² explained (``R²`` as in metafor:
        ``max(0, (τ²₀ − τ²)/τ²₀)`` with τ²₀ from the intercept-only model).
    """
    fit = fit_meta(y, se, design.X, names=design.names, tau2_method=tau2_method, knapp_hartung=knapp_hartung,
                   level=level)
    null = fit_meta(y, se, tau2_method=tau2_method, knapp_hartung=knapp_hartung, level=level)
    ci = fit.conf_int()
    table = pd.DataFrame({
        "term": fit.names,
        "estimate": fit.coef,
        "std_error": fit.se,
        "ci_lower": ci[:, 0],
        "ci_upper": ci[:, 1],
        "p_value": fit.p_values,
    })
    tests = []
    for moderator in design.moderators:
        idx = [j for j, n in enumerate(fit.names) if n == moderator or n.startswith(moderator + "=")]
        tests.append({"moderator": moderator, **block_test(fit, idx)})
    r2 = max(0.0, (null.tau2 - fit.tau2) / null.tau2) * 100 if null.tau2 > 0 else float("nan")
    summary = {
        "coefficients": table,
        "moderator_tests": pd.DataFrame(tests, columns=["moderator", "statistic", "df1", "df2", "p_value", "test"]),
        "omnibus": {"statistic": fit.QM, "df1": fit.QM_df, "df2": fit.df, "p_value": fit.QM_p,
                    "test": "F" if fit.df is not None else "chi2"},
        "tau2_residual": fit.tau2,
        "tau2_intercept_only": null.tau2,
        "R2_percent": r2,
        "I2_residual": fit.I2,
        "QE_residual": {"statistic": fit.QE, "df": fit.QE_df, "p_value": fit.QE_p},
        "references": dict(design.references),
        "dropped_moderators": dict(design.dropped),
    }
    return fit, summary


def block_test(fit: MetaFit, idx: list[int]) -> dict:
    """Wald test that the coefficients ``idx`` are all zero (F under Knapp–Hartung)."""
    from scipy import stats

    b = fit.coef[idx]
    V = fit.vcov[np.ix_(idx, idx)]
    stat = float(b @ np.linalg.solve(V, b))
    m = len(idx)
    if fit.df is not None:
        return {"statistic": stat / m, "df1": m, "df2": fit.df, "p_value": float(stats.f.sf(stat / m, m, fit.df)),
                "test": "F"}
    return {"statistic": stat, "df1": m, "df2": None, "p_value": float(stats.chi2.sf(stat, m)), "test": "chi2"}
