r"""Cinelli & Hazlett (2020) omitted-variable-bias sensitivity for a regression coefficient.

"Making sense of sensitivity: extending omitted variable bias", *JRSS B* 82(1):39–67; R package
``sensemakr``.  From a coefficient's estimate, standard error and residual degrees of freedom:

* :func:`robustness` gives the partial R² of the treatment with the outcome, the robustness value
  :math:`RV_q` and :math:`RV_{q,\alpha}`, and (optionally) the bounds implied by unobserved confounders
  ``k`` times as strong as an observed covariate (``sensemakr::ovb_bounds``).
* :func:`benchmark_sentence` says in plain words whether such a confounder would explain the effect away.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from evaltool.errors import ConfigError, EstimationError


@dataclass(frozen=True)
class BenchmarkBound:
    """The estimate after adjusting for a confounder ``kd``/``ky`` times as strong as ``covariate``.

    Parameters
    ----------
    covariate
        Name of the observed benchmark covariate.
    kd, ky
        Multiples of the covariate's partial R² with the treatment and with the outcome.
    r2dz_x, r2yz_dx
        Implied partial R² of the confounder with the treatment and with the outcome.
    adjusted_estimate, adjusted_se, adjusted_t, adjusted_ci_lower, adjusted_ci_upper
        The coefficient, its standard error, t and confidence interval had the confounder been included
        (bias taken towards zero, ``reduce = TRUE`` in sensemakr).
    explains_away
        Whether the adjusted interval includes the null (or the estimate changes sign).
    """

    covariate: str
    kd: float
    ky: float
    r2dz_x: float
    r2yz_dx: float
    adjusted_estimate: float
    adjusted_se: float
    adjusted_t: float
    adjusted_ci_lower: float
    adjusted_ci_upper: float
    explains_away: bool


@dataclass(frozen=True)
class Robustness:
    """Sensitivity statistics of a regression coefficient (Cinelli & Hazlett 2020).

    Parameters
    ----------
    estimate, std_error, dof, t_statistic
        The coefficient, its (classical) standard error, residual degrees of freedom and t.
    partial_r2
        Partial R² of the treatment with the outcome, :math:`t^2/(t^2 + df)`.
    rv_q, rv_q_alpha
        Robustness values for reducing the estimate by ``q``·100% and for making it no longer significant
        at ``alpha`` after that reduction.
    q, alpha
        The parameters of the robustness values.
    bounds
        Benchmark bounds, one per (covariate, k).
    """

    estimate: float
    std_error: float
    dof: float
    t_statistic: float
    partial_r2: float
    rv_q: float
    rv_q_alpha: float
    q: float
    alpha: float
    bounds: tuple[BenchmarkBound, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python dictionary (``bounds`` a list of dictionaries) for results.json."""
        out = asdict(self)
        out["bounds"] = [asdict(b) for b in self.bounds]
        return out


def partial_r2(t_statistic: float, dof: float) -> float:
    """Partial R² of a regressor with the outcome from its t-statistic: :math:`t^2/(t^2+df)`."""
    return float(t_statistic**2 / (t_statistic**2 + dof))


def robustness_value(t_statistic: float, dof: float, q: float = 1.0, alpha: float | None = None) -> float:
    r"""Robustness value :math:`RV_q` (``alpha=None``) or :math:`RV_{q,\alpha}`.

    Notes
    -----
    Cinelli & Hazlett (2020), eqs. 18–19: with :math:`f_q = q\,|t|/\sqrt{df}` (and, for
    :math:`RV_{q,\alpha}`, :math:`f_q - t^*_{\alpha,df-1}/\sqrt{df-1}` in its place),
    :math:`RV = \tfrac12\left(\sqrt{f^4 + 4 f^2} - f^2\right)`, and 0 when that :math:`f < 0`.
    This is ``sensemakr::robustness_value`` (the form without the "extreme" XRV branch of later
    versions, which only differs when :math:`RV_{q,\alpha}` is below
    :math:`f^{*2}/(1+f^{*2})`, i.e. for estimates barely significant).
    """
    f = q * abs(t_statistic) / np.sqrt(dof)
    if alpha is not None:
        f -= abs(stats.t.ppf(alpha / 2.0, dof - 1)) / np.sqrt(dof - 1)
    if f < 0:
        return 0.0
    return float(0.5 * (np.sqrt(f**4 + 4.0 * f**2) - f**2))


def bias(std_error: float, dof: float, r2yz_dx: float, r2dz_x: float) -> float:
    r"""Omitted-variable bias bound :math:`se\sqrt{df}\sqrt{R^2_{Y\sim Z|D,X} R^2_{D\sim Z|X}/(1-R^2_{D\sim Z|X})}`."""
    return float(std_error * np.sqrt(dof) * np.sqrt(r2yz_dx * r2dz_x / (1.0 - r2dz_x)))


def adjusted_se(std_error: float, dof: float, r2yz_dx: float, r2dz_x: float) -> float:
    r"""Standard error after adjusting for the confounder: :math:`se\sqrt{(1-R^2_{Y})/(1-R^2_{D})}\sqrt{df/(df-1)}`."""
    return float(std_error * np.sqrt((1.0 - r2yz_dx) / (1.0 - r2dz_x)) * np.sqrt(dof / (dof - 1.0)))


def benchmark_partial_r2(
    r2dxj_x: float, r2yxj_dx: float, kd: float = 1.0, ky: float | None = None
) -> tuple[float, float]:
    r"""Partial R² of a confounder ``kd`` (``ky``) times as strong as covariate :math:`X_j` (``ovb_partial_r2_bound``).

    Parameters
    ----------
    r2dxj_x
        Partial R² of the covariate with the treatment (given the other covariates).
    r2yxj_dx
        Partial R² of the covariate with the outcome (given the treatment and the other covariates).
    kd, ky
        Strength multiples (``ky`` defaults to ``kd``).

    Returns
    -------
    (r2dz_x, r2yz_dx)

    Notes
    -----
    Cinelli & Hazlett (2020), §6.1 and footnote 10:
    :math:`R^2_{D\sim Z|X} = k_D\, R^2_{D\sim X_j|X_{-j}}/(1-R^2_{D\sim X_j|X_{-j}})`,
    :math:`\eta = k_D R^{4}_{D\sim X_j}/((1-k_D R^2_{D\sim X_j})(1-R^2_{D\sim X_j}))` and
    :math:`R^2_{Y\sim Z|D,X} = \left((\sqrt{k_Y}+\sqrt{\eta})/\sqrt{1-\eta}\right)^2 R^2_{Y\sim X_j|D,X_{-j}}/(1-R^2_{Y\sim X_j|D,X_{-j}})`,
    capped at 1 (as sensemakr).
    """
    ky = kd if ky is None else ky
    for name, value in (("r2dxj_x", r2dxj_x), ("r2yxj_dx", r2yxj_dx)):
        if not 0 <= value < 1:
            raise ConfigError(f"sensitivity.benchmark: {name} must be a partial R² in [0, 1); got {value}.")
    if kd < 0 or ky < 0:
        raise ConfigError(f"sensitivity.benchmark.k must be ≥ 0; got kd={kd}, ky={ky}.")
    r2dz = kd * r2dxj_x / (1.0 - r2dxj_x)
    if r2dz >= 1:
        raise ConfigError(
            f"sensitivity.benchmark.k = {kd} is impossible for this covariate: the confounder would explain "
            f"{r2dz:.0%} of the treatment's residual variance. Use a smaller k (below {(1 - r2dxj_x) / r2dxj_x:.3g})."
        )
    eta = kd * r2dxj_x**2 / ((1.0 - kd * r2dxj_x) * (1.0 - r2dxj_x))
    r2yz = ((np.sqrt(ky) + np.sqrt(eta)) / np.sqrt(1.0 - eta)) ** 2 * (r2yxj_dx / (1.0 - r2yxj_dx))
    return float(r2dz), float(min(r2yz, 1.0))


def robustness(
    estimate: float,
    std_error: float,
    dof: float,
    *,
    q: float = 1.0,
    alpha: float = 0.05,
    benchmarks: dict[str, tuple[float, float]] | None = None,
    k: tuple[float, ...] | list[float] = (1.0,),
) -> Robustness:
    r"""Partial R², robustness values and benchmark bounds of a regression coefficient.

    Parameters
    ----------
    estimate, std_error, dof
        The treatment coefficient, its classical (homoskedastic) standard error and the residual degrees of
        freedom of the outcome regression (sensemakr uses the classical SE even when inference is robust).
    q
        Share of the estimate an unobserved confounder must remove (1: all of it).
    alpha
        Significance level for :math:`RV_{q,\alpha}` and the adjusted intervals.
    benchmarks
        ``{covariate: (r2dxj_x, r2yxj_dx)}``: each benchmark covariate's partial R² with the treatment and
        with the outcome (see :func:`benchmark_partial_r2`; from t-statistics use :func:`partial_r2`).
    k
        Strength multiples (``kd = ky = k``) for the bounds.

    Returns
    -------
    Robustness

    Notes
    -----
    Adjusted estimate :math:`|\hat\tau| - \text{bias}` with the sign of :math:`\hat\tau`, adjusted standard
    error :func:`adjusted_se`, interval with :math:`t_{1-\alpha/2,\,df-1}` (sensemakr's ``ovb_bounds``).
    """
    if not np.isfinite(estimate) or not np.isfinite(std_error) or std_error <= 0:
        raise EstimationError(f"Robustness values need a finite estimate and a positive standard error; "
                              f"got estimate={estimate}, std_error={std_error}.")
    if not dof > 1:
        raise EstimationError(f"Robustness values need more than 1 residual degree of freedom; got {dof}.")
    if q <= 0:
        raise ConfigError(f"sensitivity.q must be > 0; got {q}.")
    if not 0 < alpha < 1:
        raise ConfigError(f"sensitivity.alpha must be in (0, 1); got {alpha}.")
    t = estimate / std_error
    t_crit = float(stats.t.ppf(1.0 - alpha / 2.0, dof - 1))
    bounds = []
    for name, (r2d, r2y) in (benchmarks or {}).items():
        for kk in k:
            r2dz, r2yz = benchmark_partial_r2(r2d, r2y, kd=kk)
            b = bias(std_error, dof, r2yz, r2dz)
            adj = np.sign(estimate) * (abs(estimate) - b)
            se = adjusted_se(std_error, dof, r2yz, r2dz)
            lo, hi = adj - t_crit * se, adj + t_crit * se
            bounds.append(BenchmarkBound(
                covariate=name, kd=float(kk), ky=float(kk), r2dz_x=r2dz, r2yz_dx=r2yz,
                adjusted_estimate=float(adj), adjusted_se=se, adjusted_t=float(adj / se),
                adjusted_ci_lower=float(lo), adjusted_ci_upper=float(hi),
                explains_away=bool(lo <= 0 <= hi or np.sign(adj) != np.sign(estimate)),
            ))
    return Robustness(
        estimate=float(estimate), std_error=float(std_error), dof=float(dof), t_statistic=float(t),
        partial_r2=partial_r2(t, dof), rv_q=robustness_value(t, dof, q), rv_q_alpha=robustness_value(t, dof, q, alpha),
        q=float(q), alpha=float(alpha), bounds=tuple(bounds),
    )


def benchmark_sentence(bound: BenchmarkBound, *, label: str | None = None) -> str:
    """Plain-language verdict of a benchmark bound.

    Examples
    --------
    "An unobserved confounder 2× as strong as prior attainment would not explain away the effect: the
    adjusted estimate would be 0.053 (95% CI 0.013 to 0.093)."
    """
    k = f"{bound.kd:g}"
    name = label or bound.covariate
    verdict = "would" if bound.explains_away else "would not"
    return (
        f"An unobserved confounder {k}× as strong as {name} {verdict} explain away the effect: the adjusted "
        f"estimate would be {bound.adjusted_estimate:.3g} (CI {bound.adjusted_ci_lower:.3g} to "
        f"{bound.adjusted_ci_upper:.3g})."
    )
