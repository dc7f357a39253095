"""ATT on a matched (or weighted) sample and its standard error.

* **Weighted difference in means** (the default): the coefficient on the
  treatment in a weighted least-squares regression of the outcome (or its
  change from baseline, for matched DiD) on a constant and the treatment, with
  the matching weights.  Equal to mean(Y | treated) − Σ w Y / Σ w over matched
  comparison units.
* **Regression adjustment**: the same regression plus the covariates and their
  interactions with the treatment, covariates centred at the matched treated
  mean, so the treatment coefficient is the ATT (MatchIt's "Estimating
  Effects" vignette, g-computation with a linear model).
* **Standard errors**: cluster-robust on the matched sample with the clusters
  chosen in :func:`evaltool.estimators.psm.method.psm_clusters` (by default the
  trust, every cohort of a comparison school in one cluster), or the
  Abadie–Imbens (2006) variance with replacement.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import statsmodels.api as sm


@dataclass(frozen=True)
class AttFit:
    """Point estimate, standard error and how it was obtained."""

    estimate: float
    std_error: float
    df: float | None
    inference: str
    n_clusters: int | None = None


def weighted_att(
    y: np.ndarray,
    treat: np.ndarray,
    weights: np.ndarray,
    *,
    covariates: np.ndarray | None = None,
    clusters: np.ndarray | None = None,
    cluster_label: str = "matched set",
    correction: str = "CR1",
) -> AttFit:
    """ATT by weighted least squares on the units with positive weight.

    Parameters
    ----------
    y, treat, weights
        Outcome, treatment indicator and matching/ATT weights, one per unit.
    covariates
        Optional (n, p) covariates for regression adjustment (treatment ×
        covariate interactions, covariates centred at the weighted treated mean).
    clusters
        Optional integer cluster ids for cluster-robust SEs; otherwise HC1 with a normal reference.
    correction
        ``"CR1"``: G/(G − 1)·(N − 1)/(N − K) and t(G − 1) intervals (statsmodels' default, as Stata);
        ``"none"``: no factor, normal intervals.
    """
    keep = weights > 0
    y, t, w = y[keep], treat[keep].astype(float), weights[keep]
    columns = [np.ones_like(y), t]
    if covariates is not None and covariates.shape[1]:
        x = covariates[keep]
        centre = np.average(x[t == 1], axis=0, weights=w[t == 1])
        xc = x - centre
        columns += [xc, xc * t[:, None]]
    exog = np.column_stack(columns)
    model = sm.WLS(y, exog, weights=w)
    if clusters is not None:
        groups = np.unique(clusters[keep], return_inverse=True)[1]
        n_clusters = int(groups.max()) + 1
        cr1 = correction == "CR1"
        fit = model.fit(cov_type="cluster", cov_kwds={"groups": groups, "use_correction": cr1}, use_t=cr1)
        return AttFit(
            float(fit.params[1]),
            float(fit.bse[1]),
            n_clusters - 1 if cr1 else None,
            f"cluster-robust by {cluster_label} ({n_clusters} clusters), t({n_clusters - 1})",
            n_clusters,
        )
    fit = model.fit(cov_type="HC1")
    return AttFit(float(fit.params[1]), float(fit.bse[1]), None, "HC1 robust, conditional on the matched sample")


def abadie_imbens(
    y: np.ndarray,
    treat: np.ndarray,
    score: np.ndarray,
    pair_treated: np.ndarray,
    pair_control: np.ndarray,
    *,
    n_neighbours: int = 2,
) -> AttFit:
    """Matching estimator of the ATT with the Abadie–Imbens (2006) variance.

    Notes
    -----
    With J(i) the comparison units matched to treated unit i (|J(i)| = Mᵢ) and
    N₁ matched treated units,

    τ̂ = (1/N₁) Σᵢ [Yᵢ − (1/Mᵢ) Σ_{j∈J(i)} Yⱼ] = (1/N₁)[Σ_treated Yᵢ − Σ_control Kⱼ Yⱼ],

    where Kⱼ = Σ_{i: j∈J(i)} 1/Mᵢ.  The variance of τ̂ for the population ATT
    (Abadie & Imbens 2006, *Econometrica* 74(1), Theorem 7 and §4.2, with
    Mᵢ allowed to vary) is estimated by

    V̂ = (1/N₁²) [Σ_treated (Yᵢ − Ŷᵢ(0) − τ̂)² + Σ_control (Kⱼ² − Qⱼ) σ̂²ⱼ],
    Qⱼ = Σ_{i: j∈J(i)} 1/Mᵢ²,

    which reduces to AI's Kⱼ(Kⱼ − 1)/M² term when every Mᵢ = M.  The
    conditional variance σ̂²ⱼ = J/(J+1) (Yⱼ − mean of its J nearest
    comparison neighbours on the score)² (AI 2006, eq. 14; J = 2 as the
    default of Stata's ``teffects nnmatch``).  The propensity score is treated
    as known (no Abadie–Imbens 2016 adjustment for its estimation).
    """
    treat = np.asarray(treat, dtype=bool)
    t_units, inverse = np.unique(pair_treated, return_inverse=True)
    m_i = np.bincount(inverse).astype(float)
    n1 = t_units.size
    y0_hat = np.bincount(inverse, weights=y[pair_control]) / m_i
    unit_effect = y[t_units] - y0_hat
    tau = float(unit_effect.mean())
    k = np.bincount(pair_control, weights=1.0 / m_i[inverse], minlength=y.size)
    q = np.bincount(pair_control, weights=1.0 / m_i[inverse] ** 2, minlength=y.size)
    used = np.flatnonzero(k > 0)
    sigma2 = _conditional_variance(y, score, ~treat, used, n_neighbours)
    variance = (np.sum((unit_effect - tau) ** 2) + np.sum((k[used] ** 2 - q[used]) * sigma2)) / n1**2
    return AttFit(tau, float(np.sqrt(variance)), None, f"Abadie–Imbens (2006), {n_neighbours} neighbours for σ²(x)")


def _conditional_variance(
    y: np.ndarray, score: np.ndarray, group: np.ndarray, units: np.ndarray, n_neighbours: int
) -> np.ndarray:
    """σ̂²(Xⱼ) from the J nearest same-group neighbours on the score (sorted-array window)."""
    members = np.flatnonzero(group)
    order = members[np.argsort(score[members], kind="stable")]
    rank = np.empty(y.size, dtype=np.int64)
    rank[order] = np.arange(order.size)
    j = min(n_neighbours, order.size - 1)
    if j < 1:
        return np.zeros(units.size)
    offsets = np.r_[np.arange(-j, 0), np.arange(1, j + 1)]
    cand = rank[units][:, None] + offsets[None, :]
    inside = (cand >= 0) & (cand < order.size)
    neighbour = order[np.clip(cand, 0, order.size - 1)]
    dist = np.where(inside, np.abs(score[neighbour] - score[units][:, None]), np.inf)
    pick = np.argsort(dist, axis=1, kind="stable")[:, :j]
    nearest = np.take_along_axis(neighbour, pick, axis=1)
    return j / (j + 1) * (y[units] - y[nearest].mean(axis=1)) ** 2
