"""Covariate balance and overlap diagnostics for the ATT.

For each covariate, before and after matching (or weighting):

* means by group;
* standardised mean difference, SMD = (x̄₁ʷ − x̄₀ʷ) / s₁, where s₁ is the
  treated group's standard deviation in the *unmatched* sample, as in MatchIt
  (``summary.matchit``) and cobalt for the ATT, so the denominator does not
  move with the matching.  For binary covariates s₁ = √(p₁(1 − p₁));
* variance ratio s²₁ʷ / s²₀ʷ (continuous covariates only);
* eCDF max, the largest difference between the groups' weighted empirical
  CDFs (Kolmogorov–Smirnov distance);
* the What Works Clearinghouse baseline-equivalence effect size and verdict
  (WWC Procedures Handbook v5.0): Hedges' g = ω (x̄₁ − x̄₀)/s_pooled with
  ω = 1 − 3/(4N − 9) for continuous covariates, and the Cox index
  ω·ln(OR)/1.65 for binary ones; |g| ≤ 0.05 satisfies, 0.05 < |g| ≤ 0.25
  satisfies only with statistical adjustment in the impact model, > 0.25 does not.

Weighted means and variances use the matching/IPW weights; the weighted
variance is Σw(x − x̄)² / (1 − Σw²) with w normalised to sum to 1 (cobalt's
unbiased form, equal to the usual n − 1 variance when all weights are equal).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

WWC_SATISFIES = 0.05
WWC_ADJUST = 0.25
VERDICTS = ("satisfies", "satisfies with adjustment", "does not satisfy")


def is_binary(x: np.ndarray) -> bool:
    """Whether a covariate takes only the values 0 and 1."""
    return bool(np.all((x == 0.0) | (x == 1.0) | np.isnan(x)))


def weighted_mean_var(x: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """Weighted mean and unbiased weighted variance (see module notes)."""
    w = w / w.sum()
    mean = float(np.sum(w * x))
    denom = 1.0 - float(np.sum(w**2))
    var = float(np.sum(w * (x - mean) ** 2) / denom) if denom > 0 else float("nan")
    return mean, var


def ecdf_max(x: np.ndarray, treat: np.ndarray, w: np.ndarray, order: np.ndarray | None = None) -> float:
    """Largest absolute difference between the groups' weighted eCDFs (``order``: argsort of ``x``, if known)."""
    order = np.argsort(x, kind="stable") if order is None else order
    xs, ts, ws = x[order], treat[order], w[order]
    w1 = np.where(ts, ws, 0.0)
    w0 = np.where(ts, 0.0, ws)
    c1 = np.cumsum(w1) / w1.sum()
    c0 = np.cumsum(w0) / w0.sum()
    last = np.r_[xs[1:] != xs[:-1], True]  # evaluate each CDF after the last tie of each value
    return float(np.max(np.abs(c1[last] - c0[last])))


def wwc_verdict(effect_size: float) -> str:
    """WWC baseline-equivalence verdict for an absolute effect size."""
    size = abs(effect_size)
    if not np.isfinite(size):
        return "not computable"
    if size <= WWC_SATISFIES:
        return VERDICTS[0]
    if size <= WWC_ADJUST:
        return VERDICTS[1]
    return VERDICTS[2]


def wwc_effect_size(x: np.ndarray, treat: np.ndarray, w: np.ndarray, binary: bool) -> float:
    """Hedges' g (continuous) or Cox index (binary) of the baseline difference, WWC Handbook v5.0."""
    t, c = treat & (w > 0), ~treat & (w > 0)
    n1, n0 = int(t.sum()), int(c.sum())
    if n1 < 2 or n0 < 2:
        return float("nan")
    omega = 1.0 - 3.0 / (4.0 * (n1 + n0) - 9.0)
    m1, v1 = weighted_mean_var(x[t], w[t])
    m0, v0 = weighted_mean_var(x[c], w[c])
    if binary:
        # Proportions of exactly 0 or 1 give an infinite odds ratio; keep them half a unit from the bounds.
        p1 = np.clip(m1, 0.5 / n1, 1 - 0.5 / n1)
        p0 = np.clip(m0, 0.5 / n0, 1 - 0.5 / n0)
        return float(omega * (np.log(p1 / (1 - p1)) - np.log(p0 / (1 - p0))) / 1.65)
    pooled = np.sqrt(((n1 - 1) * v1 + (n0 - 1) * v0) / (n1 + n0 - 2))
    return float(omega * (m1 - m0) / pooled) if pooled > 0 else float("nan")


def _stats(x: np.ndarray, treat: np.ndarray, w: np.ndarray, sd1: float, binary: bool, order: np.ndarray) -> dict[str, float]:
    m1, v1 = weighted_mean_var(x[treat], w[treat])
    m0, v0 = weighted_mean_var(x[~treat], w[~treat])
    return {
        "mean_treated": m1,
        "mean_control": m0,
        "smd": (m1 - m0) / sd1 if sd1 > 0 else float("nan"),
        "var_ratio": float("nan") if binary or v0 <= 0 else v1 / v0,
        # zero weights add nothing to either eCDF, so the full sort order serves every weighting
        "ecdf_max": ecdf_max(x, treat, w, order),
    }


def balance_table(X: pd.DataFrame, treat: np.ndarray, weights: np.ndarray | None = None) -> pd.DataFrame:
    """Balance of every column of ``X`` before and (if ``weights``) after matching/weighting.

    Parameters
    ----------
    X
        Numeric covariates (categorical ones already expanded to 0/1 columns,
        one per level), one row per unit of the *unmatched* sample.
    treat
        Boolean treatment indicator.
    weights
        Matching or ATT weights (0 = not in the matched sample); ``None`` for
        the before-matching table only.

    Returns
    -------
    One row per covariate: ``covariate, type, mean_treated_before,
    mean_control_before, smd_before, var_ratio_before, ecdf_max_before`` and,
    with weights, the same ``*_after`` plus ``wwc_effect_size`` and
    ``wwc_verdict`` (after matching).
    """
    treat = np.asarray(treat, dtype=bool)
    ones = np.ones(treat.size)
    rows = []
    for column in X.columns:  # one pass per covariate (columns, not units)
        x = X[column].to_numpy(dtype=float)
        binary = is_binary(x)
        xt = x[treat]
        sd1 = float(np.sqrt(xt.mean() * (1 - xt.mean()))) if binary else float(np.std(xt, ddof=1))
        order = np.argsort(x, kind="stable")
        row: dict[str, object] = {"covariate": str(column), "type": "binary" if binary else "continuous"}
        row.update({f"{k}_before": v for k, v in _stats(x, treat, ones, sd1, binary, order).items()})
        final = ones if weights is None else np.asarray(weights, dtype=float)
        if weights is not None:
            row.update({f"{k}_after": v for k, v in _stats(x, treat, final, sd1, binary, order).items()})
        size = wwc_effect_size(x, treat, final, binary)
        row["wwc_effect_size"] = size
        row["wwc_verdict"] = wwc_verdict(size)
        rows.append(row)
    return pd.DataFrame(rows)


def overlap_summary(score: np.ndarray, treat: np.ndarray) -> dict[str, float | int]:
    """Range of the propensity score by group and how many units lie outside the other group's range."""
    treat = np.asarray(treat, dtype=bool)
    t, c = score[treat], score[~treat]
    return {
        "treated_min": float(t.min()),
        "treated_max": float(t.max()),
        "control_min": float(c.min()),
        "control_max": float(c.max()),
        "n_treated_outside_control_range": int(((t < c.min()) | (t > c.max())).sum()),
        "n_control_outside_treated_range": int(((c < t.min()) | (c > t.max())).sum()),
    }
