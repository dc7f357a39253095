"""Roth (2022) "Pretest with caution": how much can a passed pre-trend test be trusted?

:func:`pretrend_power` takes the event-study covariance and event times and answers, for a linear violation of
parallel trends δ_t = slope · (t − reference) (Roth's convention: zero at the reference period −1):

* the power of the pre-trend test against that violation: evaltool's joint Wald test (χ² or small-sample F
  reference, as :func:`evaltool.diagnostics.pretrends.wald_test` / ``wald_test_f``) or Roth's own test
  ("no pre-period coefficient individually significant", R ``pretrends``);
* the slopes the test detects with 50% and 80% power;
* the bias of the post-period target such a trend causes: unconditionally (slope × (t − reference)) and
  conditionally on the pre-test passing (Roth 2022, Proposition / eq. for E[β̂_post | pass]).

All quantities are analytic: non-central χ² / F for the Wald test, multivariate-normal rectangle probabilities
(Genz, seeded) and the Tallis (1961) truncated-normal mean for Roth's test, a one-dimensional integral for the
truncated mean inside the Wald test's ellipsoid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import integrate, optimize, stats

from evaltool.errors import ConfigError, EstimationError
from evaltool.sensitivity.honest import target_weights

PretestKind = Literal["wald", "no_significant_coefficient"]


@dataclass(frozen=True)
class PretrendPowerResult:
    """Power of a pre-trend test against a linear violation, and the bias such a violation causes.

    Attributes
    ----------
    test, reference, df, df_denominator, alpha
        The pre-test: ``"wald"`` (joint Wald; ``reference`` ``"chi2"`` or ``"F"`` with ``df`` and
        ``df_denominator``) or ``"no_significant_coefficient"`` (reject when any pre-period |t| > z_{1−α/2}).
    event_times, reference_period
        Event times of the coefficients (pre-periods then post-periods) and the omitted reference period.
    slope
        The slope the power and biases below are evaluated at (the given one, or ``slope_50``).
    power
        Probability that the pre-test rejects under δ_t = slope · (t − reference_period).
    slope_50, slope_80
        Slopes (magnitudes) against which the test has 50% and 80% power.
    pass_probability, pass_probability_null
        Probability of passing the pre-test under the trend and under parallel trends; ``bayes_factor`` is
        their ratio (R ``pretrends``' "Bayes factor").
    target, l_vec
        The post-period target θ = l'τ_post (``"e=0"``, ``"average"`` or ``"custom"``).
    bias_unconditional
        l'δ_post: the bias of the target's estimate caused by the trend.
    bias_conditional
        E[l'β̂_post | pre-test passes] − l'τ: the bias among studies that pass the pre-test.
    mean_after_pretest
        E[β̂ | pass] − τ for every coefficient (pre then post), R ``pretrends``' ``meanAfterPretesting``.
    """

    test: PretestKind
    reference: Literal["chi2", "F"] | None
    df: int | None
    df_denominator: float | None
    alpha: float
    event_times: tuple[float, ...]
    reference_period: float
    slope: float
    power: float
    slope_50: float
    slope_80: float
    pass_probability: float
    pass_probability_null: float
    bayes_factor: float
    target: str
    l_vec: tuple[float, ...]
    bias_unconditional: float | None
    bias_conditional: float | None
    mean_after_pretest: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain ``dict`` for JSON."""
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        for key in ("event_times", "l_vec", "mean_after_pretest"):
            out[key] = list(out[key])
        return out


def pretrend_power(
    sigma: np.ndarray,
    event_times: Sequence[float] | np.ndarray,
    *,
    reference_period: float = -1,
    slope: float | None = None,
    test: PretestKind = "wald",
    reference: Literal["chi2", "F"] = "chi2",
    df: int | None = None,
    df_denominator: float | None = None,
    alpha: float = 0.05,
    target: int | str | Sequence[float] = 0,
    seed: int = 0,
) -> PretrendPowerResult:
    r"""Power of the pre-trend test against linear violations of parallel trends and the resulting bias.

    Parameters
    ----------
    sigma
        Covariance of the event-study coefficients (pre-periods then post-periods, reference excluded).
    event_times
        Event time of each coefficient; those below ``reference_period`` are the pre-periods (at least one).
    reference_period
        The omitted period (normalised to 0), −1 by default.
    slope
        Slope at which to report ``power`` and the biases; default the slope with 50% power.
    test
        ``"wald"`` (evaltool's joint pre-trend test) or ``"no_significant_coefficient"`` (Roth's / R
        ``pretrends``' test).
    reference
        For the Wald test: ``"chi2"`` (asymptotic) or ``"F"`` (small-sample, needs ``df_denominator``).
    df
        Numerator degrees of freedom of the Wald test; default the number of pre-periods (the test's rank).
    df_denominator
        Denominator degrees of freedom of the F reference (``df_denominator`` of ``wald_test_f``).
    alpha
        Size of the pre-test (and 1 − confidence level).
    target
        Post-period target for the bias: event time e (default 0), ``"average"`` or weights.
    seed
        Seed of the quasi-Monte Carlo integration of multivariate-normal probabilities (Roth's test only).

    Returns
    -------
    PretrendPowerResult

    Notes
    -----
    With δ_pre the hypothesised pre-period trend and Σ_pre its covariance, the Wald statistic
    :math:`W = \hat\beta_{pre}'\Sigma_{pre}^{-1}\hat\beta_{pre}` is non-central χ²(k, λ) with
    :math:`\lambda = \delta_{pre}'\Sigma_{pre}^{-1}\delta_{pre}`, so the power is
    :math:`P(\chi^2_k(\lambda) > \chi^2_{k,1-\alpha})`; with the F reference,
    :math:`P(F_{k,\nu}(\lambda) > F_{k,\nu,1-\alpha})`.  Conditional on passing (an event A of β̂_pre only),
    :math:`E[\hat\beta_{post} | A] = \beta_{post} + \Sigma_{post,pre}\Sigma_{pre}^{-1}(E[\hat\beta_{pre}|A] -
    \beta_{pre})` (Roth 2022, *AER: Insights* 4(3), Section II).  Roth's test passes when every
    :math:`|\hat\beta_t| \le z_{1-\alpha/2}\sigma_t` (a rectangle); its truncated mean is Tallis's (1961)
    formula.  The Wald test passes inside an ellipsoid; after whitening the truncated mean lies along the
    whitened δ_pre and is one integral over that direction.
    """
    sig, times, pre, post = _check_inputs(sigma, event_times, reference_period)
    alpha = _check_alpha(alpha)
    if test not in ("wald", "no_significant_coefficient"):
        raise ConfigError(f"The pre-test must be 'wald' or 'no_significant_coefficient'; got {test!r}.")
    k = int(pre.sum())
    crit = None
    if test == "wald":
        df, df_denominator, crit = _wald_setup(reference, df, df_denominator, k, alpha)
    else:
        reference, df, df_denominator = None, None, None
    l_vec, target_name = _target_weights(target, int(post.sum()))

    sig_pre = sig[np.ix_(pre, pre)]
    rel_pre = times[pre] - reference_period
    rel_all = times - reference_period

    def power_at(s: float) -> float:
        return _power(s * rel_pre, sig_pre, test, reference, df, df_denominator, crit, alpha, seed)

    slope_50 = _slope_for_power(power_at, 0.5, sig_pre, rel_pre)
    slope_80 = _slope_for_power(power_at, 0.8, sig_pre, rel_pre)
    if slope is None:
        slope = slope_50
    elif not np.isfinite(slope):
        raise ConfigError(f"The slope of the hypothesised pre-trend must be a finite number; got {slope!r}.")
    slope = float(slope)

    delta = slope * rel_all
    mean_pre = _truncated_mean(delta[pre], sig_pre, test, crit, alpha, seed)
    shift_pre = mean_pre - delta[pre]
    mean_all = delta.copy()
    mean_all[pre] = mean_pre
    bias_unc = bias_cond = None
    if post.any():
        mean_all[post] = delta[post] + sig[np.ix_(post, pre)] @ np.linalg.solve(sig_pre, shift_pre)
        bias_unc = float(l_vec @ delta[post])
        bias_cond = float(l_vec @ mean_all[post])
    power = power_at(slope)
    pass_null = 1.0 - power_at(0.0)
    return PretrendPowerResult(
        test=test, reference=reference, df=df, df_denominator=df_denominator, alpha=alpha,
        event_times=tuple(float(t) for t in times), reference_period=float(reference_period), slope=slope,
        power=power, slope_50=slope_50, slope_80=slope_80, pass_probability=1.0 - power,
        pass_probability_null=pass_null, bayes_factor=(1.0 - power) / pass_null, target=target_name,
        l_vec=tuple(float(v) for v in l_vec), bias_unconditional=bias_unc, bias_conditional=bias_cond,
        mean_after_pretest=tuple(float(v) for v in mean_all),
    )


def pretest_power(
    delta_pre: np.ndarray,
    sigma_pre: np.ndarray,
    *,
    test: PretestKind = "wald",
    reference: Literal["chi2", "F"] = "chi2",
    df: int | None = None,
    df_denominator: float | None = None,
    alpha: float = 0.05,
    seed: int = 0,
) -> float:
    """Probability that the pre-test rejects when the pre-period coefficients have mean ``delta_pre``.

    Any hypothesised violation (not only linear); see :func:`pretrend_power` for the parameters.
    """
    delta_pre = np.atleast_1d(np.asarray(delta_pre, dtype=float))
    sig_pre = np.atleast_2d(np.asarray(sigma_pre, dtype=float))
    _check_covariance(sig_pre, delta_pre.size)
    alpha = _check_alpha(alpha)
    crit = None
    if test == "wald":
        df, df_denominator, crit = _wald_setup(reference, df, df_denominator, delta_pre.size, alpha)
    return _power(delta_pre, sig_pre, test, reference, df, df_denominator, crit, alpha, seed)


# ---- the two tests ------------------------------------------------------------------------------------

def _wald_setup(reference, df, df_denominator, k, alpha) -> tuple[int, float | None, float]:
    """Degrees of freedom and the critical value of the Wald statistic W (on the W scale)."""
    if df is None:
        df = k
    if isinstance(df, bool) or not isinstance(df, int | np.integer) or not 1 <= df <= k:
        raise ConfigError(f"The Wald pre-test's df must be an integer between 1 and the number of pre-periods "
                          f"({k}); got {df!r}.")
    df = int(df)
    if reference == "chi2":
        return df, None, float(stats.chi2.ppf(1 - alpha, df))
    if reference == "F":
        if df_denominator is None or not np.isfinite(df_denominator) or df_denominator <= 0:
            raise ConfigError("The F reference of the Wald pre-test needs df_denominator > 0 (the "
                              f"'df_denominator' of wald_test_f); got {df_denominator!r}.")
        df2 = float(df_denominator)
        nu = df2 + df - 1  # wald_test_f: F = W (ν − k + 1) / (ν k)
        return df, df2, float(stats.f.ppf(1 - alpha, df, df2) * nu * df / df2)
    raise ConfigError(f"The Wald pre-test's reference must be 'chi2' or 'F'; got {reference!r}.")


def _power(delta_pre, sig_pre, test, reference, df, df2, crit, alpha, seed) -> float:
    if test == "wald":
        lam = float(delta_pre @ np.linalg.solve(sig_pre, delta_pre))
        if reference == "chi2":
            return float(stats.ncx2.sf(crit, df, lam)) if lam > 0 else float(stats.chi2.sf(crit, df))
        f_crit = crit * df2 / ((df2 + df - 1) * df)
        return float(stats.ncf.sf(f_crit, df, df2, lam)) if lam > 0 else float(stats.f.sf(f_crit, df, df2))
    half = stats.norm.ppf(1 - alpha / 2) * np.sqrt(np.diag(sig_pre))
    return 1.0 - _box_probability(delta_pre, sig_pre, -half, half, seed)


def _box_probability(mean, cov, lower, upper, seed) -> float:
    """P(lower ≤ X ≤ upper) for X ~ N(mean, cov)."""
    if mean.size == 1:
        sd = np.sqrt(cov[0, 0])
        return float(stats.norm.cdf(upper[0], mean[0], sd) - stats.norm.cdf(lower[0], mean[0], sd))
    dist = stats.multivariate_normal(mean=mean, cov=cov, seed=seed, abseps=1e-10, releps=1e-8,
                                     maxpts=200_000 * mean.size)
    return float(dist.cdf(upper, lower_limit=lower))


def _slope_for_power(power_at, target: float, sig_pre, rel_pre) -> float:
    """The positive slope at which the pre-test's power is ``target`` (Brent's method; R ``uniroot``)."""
    if power_at(0.0) >= target:
        return 0.0
    upper = 8 * float(np.sqrt(np.max(np.diag(sig_pre)))) / max(float(np.max(np.abs(rel_pre))), 1.0)
    while power_at(upper) < target:
        upper *= 2
    return float(optimize.brentq(lambda s: power_at(s) - target, 0.0, upper, xtol=1e-12, rtol=1e-10))


def _truncated_mean(mean, cov, test, crit, alpha, seed) -> np.ndarray:
    """E[β̂_pre | the pre-test passes] for β̂_pre ~ N(mean, cov)."""
    if test == "wald":
        return _ellipsoid_mean(mean, cov, crit)
    half = stats.norm.ppf(1 - alpha / 2) * np.sqrt(np.diag(cov))
    return _tallis_mean(mean, cov, -half, half, seed)


def _ellipsoid_mean(mean, cov, crit) -> np.ndarray:
    """E[X | X'cov⁻¹X ≤ crit] for X ~ N(mean, cov): whitened, the answer lies along the whitened mean."""
    chol = np.linalg.cholesky(cov)
    nu = np.linalg.solve(chol, mean)
    size = float(np.linalg.norm(nu))
    if size == 0.0:
        return np.zeros_like(mean)
    d, root = mean.size, np.sqrt(crit)

    def rest(z):  # P(the other d − 1 whitened coordinates fit in what z leaves of the ball)
        return stats.chi2.cdf(crit - z * z, d - 1) if d > 1 else 1.0

    def weight(z):
        return stats.norm.pdf(z - size) * rest(z)

    mass = integrate.quad(weight, -root, root, epsabs=1e-13, epsrel=1e-11, limit=200)[0]
    first = integrate.quad(lambda z: z * weight(z), -root, root, epsabs=1e-13, epsrel=1e-11, limit=200)[0]
    return chol @ (nu / size * (first / mass))


def _tallis_mean(mean, cov, lower, upper, seed) -> np.ndarray:
    r"""E[X | lower ≤ X ≤ upper] for X ~ N(mean, cov) (Tallis 1961; Manjunath & Wilhelm 2021, eq. 9).

    :math:`E[X] = \mu + \Sigma (F(a) - F(b))`, with :math:`F_k(x)` the truncated density's k-th marginal at x.
    """
    d = mean.size
    total = _box_probability(mean, cov, lower, upper, seed)
    diff = np.zeros(d)
    for k in range(d):
        others = np.arange(d) != k
        sd_k = np.sqrt(cov[k, k])
        for bound, sign in ((lower[k], 1.0), (upper[k], -1.0)):
            dens = stats.norm.pdf(bound, mean[k], sd_k)
            if d > 1:
                slope = cov[others, k] / cov[k, k]
                cond_mean = mean[others] + slope * (bound - mean[k])
                cond_cov = cov[np.ix_(others, others)] - np.outer(slope, cov[k, others])
                dens *= _box_probability(cond_mean, cond_cov, lower[others], upper[others], seed)
            diff[k] += sign * dens / total
    return mean + cov @ diff


# ---- input checks -------------------------------------------------------------------------------------

def _check_inputs(sigma, event_times, reference_period):
    times = np.asarray(event_times, dtype=float).ravel()
    sig = np.atleast_2d(np.asarray(sigma, dtype=float))
    if sig.shape != (times.size, times.size):
        raise EstimationError(f"'sigma' must be the {times.size} x {times.size} covariance of the coefficients at "
                              f"event_times; got shape {sig.shape}.", user_error=True)
    if not np.all(np.isfinite(times)) or np.any(times == reference_period):
        raise EstimationError(f"event_times must be finite and exclude the reference period {reference_period} "
                              f"(normalised to 0); got {times.tolist()}.", user_error=True)
    pre = times < reference_period
    if not pre.any():
        raise EstimationError(f"No pre-period coefficient (event time < {reference_period}): the pre-trend power "
                              "analysis needs at least one estimated pre-joining year besides the reference.",
                              user_error=True)
    _check_covariance(sig[np.ix_(pre, pre)], int(pre.sum()))
    if not np.all(np.isfinite(sig)):
        raise EstimationError("'sigma' has non-finite entries.", user_error=True)
    return 0.5 * (sig + sig.T), times, pre, times > reference_period


def _check_covariance(sig_pre, k) -> None:
    if sig_pre.shape != (k, k) or not np.all(np.isfinite(sig_pre)):
        raise EstimationError(f"The pre-period covariance must be a finite {k} x {k} matrix; got shape "
                              f"{sig_pre.shape}.", user_error=True)
    eig = np.linalg.eigvalsh(0.5 * (sig_pre + sig_pre.T))
    if eig[-1] <= 0 or eig[0] <= 1e-12 * eig[-1]:
        raise EstimationError(
            f"The covariance of the pre-period coefficients is singular or not positive definite (eigenvalues "
            f"{eig[0]:.3g} … {eig[-1]:.3g}); the power of the pre-trend test is not defined. Drop pre-period "
            "event times without sampling variance.", user_error=True)


def _check_alpha(alpha) -> float:
    try:
        value = float(alpha)
    except (TypeError, ValueError):
        value = np.nan
    if not 0.0 < value < 1.0:
        raise ConfigError(f"sensitivity.alpha must be a number in (0, 1), e.g. 0.05; got {alpha!r}.")
    return value


def _target_weights(target, num_post: int) -> tuple[np.ndarray, str]:
    """As the bounds' target (:func:`evaltool.sensitivity.honest.target_weights`); none without post periods."""
    if num_post == 0:
        return np.zeros(0), "none"
    return target_weights(target, num_post)
