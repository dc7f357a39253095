"""Sensitivity of an event study to violations of parallel trends, for the DiD front ends.

Takes the event-time coefficients and their joint covariance that ``event_study`` and ``did_staggered``
(dynamic aggregation) estimate, checks that they can carry the bounds (reference period −1 excluded,
consecutive pre- and post-joining event times), and runs the analyses of the ``sensitivity:`` block:
Rambachan & Roth (2023) bounds (:mod:`evaltool.sensitivity.honest`) and the power of the pre-trend test
(Roth 2022, :mod:`evaltool.sensitivity.pretrend_power`).  A bound that cannot be computed is reported with
its reason; the estimate stands.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from evaltool.config.sensitivity import SensitivityOptions
from evaltool.errors import EstimationError
from evaltool.sensitivity.honest import honest_bounds
from evaltool.sensitivity.pretrend_power import pretrend_power

REFERENCE = -1
#: HonestDiD's default M grid is set from the pre-joining trend's curvature, which needs three pre-periods.
MIN_PRE_FOR_M_GRID = 3
#: Values of the data-driven M grid (HonestDiD uses 10; each FLCI value costs about 0.3 s at 10 pre- and 13
#: post-joining event times, so 5 keep the block within its 2-second budget).  The breakdown is the largest
#: significant grid value (no bisection), as HonestDiD reports it.
DEFAULT_M_GRID_SIZE = 5


def event_time_sensitivity(
    event_times: np.ndarray, beta: np.ndarray, sigma: np.ndarray, options: SensitivityOptions, *,
    reference: int = REFERENCE, pretest_reference: str = "chi2", pretest_df_denominator: float | None = None,
) -> dict[str, Any]:
    """The ``diagnostics.sensitivity`` entries of an event study.

    Parameters
    ----------
    event_times, beta, sigma
        Event time of each coefficient, the coefficients and their joint covariance (the reference period
        may be among them with a zero coefficient; it is dropped).
    options
        The analysis's ``sensitivity:`` block.
    reference
        The event time the coefficients are relative to (the bounds need −1).
    pretest_reference, pretest_df_denominator
        The reference distribution of the analysis's own pre-trend test (``"chi2"``, or ``"F"`` with its
        denominator degrees of freedom), so the power is that of the test reported.

    Returns
    -------
    dict
        ``honest`` (one entry per restriction) and ``pretrend_power``; each either the result's fields with
        ``available: True`` or ``available: False`` and the ``reason``.
    """
    times = np.asarray(event_times, dtype=float)
    beta, sigma = np.asarray(beta, dtype=float), np.asarray(sigma, dtype=float)
    problem = _problem(times, reference)
    out: dict[str, Any] = {"honest": {}, "target": options.target}
    if reference == REFERENCE and (times == -2).any():
        i = int(np.flatnonzero(times == -2)[0])  # β(−2) = E[y(−2) − y(−1)]: the year before joining's change is −β(−2)
        out["pre_joining_year"] = pre_joining_change(-beta[i], float(np.sqrt(max(sigma[i, i], 0.0))), options.alpha,
                                                     "minus the coefficient of event time −2 (reference −1)")
    keep = times != reference
    times, beta, sigma = times[keep], beta[keep], sigma[np.ix_(keep, keep)]
    num_pre, num_post = int((times < reference).sum()), int((times >= 0).sum())
    target: int | str = 0 if options.target == "first_post" else "average"
    for restriction in options.restrictions:
        if problem is not None:
            out["honest"][restriction] = {"available": False, "reason": problem}
            continue
        grid = options.mbar if restriction == "relative_magnitudes" else options.m
        if restriction == "smoothness" and grid is None and num_pre < MIN_PRE_FOR_M_GRID:
            out["honest"][restriction] = {"available": False, "reason": (
                f"HonestDiD's data-driven M grid needs at least {MIN_PRE_FOR_M_GRID} pre-joining event times before "
                f"−1 (this analysis has {num_pre}); give the grid as sensitivity.m, or widen the event window")}
            continue
        out["honest"][restriction] = _guarded(lambda r=restriction, g=grid: honest_bounds(
            beta, sigma, num_pre=num_pre, num_post=num_post, restriction=r, grid=g, target=target,
            alpha=options.alpha, refine_breakdown=False, default_grid_size=DEFAULT_M_GRID_SIZE).to_dict())
    if options.pretrend_power:
        if num_pre == 0:
            out["pretrend_power"] = {"available": False, "reason": "no pre-joining event time before the reference "
                                                                    "year −1, so there is no pre-trend test"}
        else:
            f = pretest_reference == "F" and pretest_df_denominator is not None
            out["pretrend_power"] = _guarded(lambda: pretrend_power(
                sigma, times, reference_period=reference, reference="F" if f else "chi2",
                df_denominator=pretest_df_denominator if f else None, alpha=options.alpha,
                target=target if problem is None else 0).to_dict())
    return out


def pre_joining_change(change: float, std_error: float, alpha: float, source: str) -> dict[str, Any]:
    """Did outcomes already move in the year before joining (from two years before to one year before)?

    English schools often improve in the year before converting to academies (EPI 2017); such a move is
    anticipation (or selection on a transitory gain), and the report says so when it is significant.
    """
    from scipy import stats

    if not (np.isfinite(change) and std_error > 0):
        return {"available": False, "reason": "the change into the year before joining has no standard error"}
    p_value = float(2 * stats.norm.sf(abs(change) / std_error))
    return {"available": True, "change": float(change), "std_error": float(std_error), "p_value": p_value,
            "moves": p_value < alpha, "source": source}


def placebo_power(test: dict, pre_years: list[int], post_years: list[int], alpha: float) -> dict[str, Any]:
    """Roth (2022) for did_2x2's placebo pre-trend test: its power against a linear differential trend.

    The placebo compares the last pre year with the mean of the earlier ones, so a trend δ_t = slope·t moves it
    by slope·(last − mean(earlier)); its t-test (t(G − 1) under CR1, else normal) then has non-centrality
    slope·span/SE.  The same trend biases the 2×2 estimate by slope·(mean(post) − mean(pre)).
    """
    from scipy import optimize, stats

    se, clusters = test.get("std_error"), test.get("n_clusters")
    if not (isinstance(se, float) and se > 0 and np.isfinite(se)):
        return {"available": False, "reason": "the placebo pre-trend test has no standard error"}
    span = pre_years[-1] - float(np.mean(pre_years[:-1]))
    t_reference = test.get("se_correction", "").startswith("CR1") and isinstance(clusters, int) and clusters > 1
    dist = stats.t(clusters - 1) if t_reference else stats.norm()
    critical = float(dist.ppf(1 - alpha / 2))

    def power(slope: float) -> float:
        ncp = slope * span / se
        normal = float(stats.norm.sf(critical - ncp) + stats.norm.cdf(-critical - ncp))
        if not t_reference:
            return normal
        value = float(stats.nct.sf(critical, clusters - 1, ncp) + stats.nct.cdf(-critical, clusters - 1, ncp))
        return value if np.isfinite(value) else normal  # scipy's non-central t fails far in the tail

    try:
        upper = se / abs(span)
        while power(upper) < 0.9:
            upper *= 2
        slope_50 = float(optimize.brentq(lambda v: power(v) - 0.5, 0.0, upper, xtol=1e-12))
        slope_80 = float(optimize.brentq(lambda v: power(v) - 0.8, 0.0, upper, xtol=1e-12))
    except (ValueError, ArithmeticError) as exc:
        return {"available": False, "reason": f"the power could not be computed ({type(exc).__name__}: {exc})"}
    bias_per_slope = float(np.mean(post_years) - np.mean(pre_years))
    return {"available": True, "test": "placebo t-test", "reference": f"t({clusters - 1})" if t_reference else "normal",
            "alpha": alpha, "slope": slope_50, "power": 0.5, "slope_50": slope_50, "slope_80": slope_80,
            "target": "2x2 estimate", "bias_unconditional": slope_50 * bias_per_slope, "bias_conditional": None,
            "note": "power of the placebo pre-trend test against δ_t = slope·t; the bias is the 2x2 estimate's"}


def regression_robustness(
    y: np.ndarray, X: np.ndarray, names: list[str], school: np.ndarray, treatment: str, covariates: list[str],
    options: SensitivityOptions,
) -> dict[str, Any]:
    """Cinelli & Hazlett (2020) for the treatment coefficient of a regression with school fixed effects.

    The classical (homoskedastic) t-statistics of the within-school regression give the treatment's partial R²
    and the robustness values, as sensemakr does whatever the reported standard errors; each covariate is a
    benchmark, its partial R² with the outcome from its t in the same regression and with the treatment from
    its t in the regression of the treatment on the other regressors (Cinelli & Hazlett 2020, Section 6).
    Residual degrees of freedom subtract the school effects.

    Parameters
    ----------
    y, X, names
        Outcome, regressors (without the school effects) and their names.
    school
        School of each row (the fixed effects partialled out).
    treatment, covariates
        Names of the treatment regressor and of the benchmark covariates among ``names``.
    options
        The ``sensitivity:`` block (``alpha``).
    """
    from evaltool.sensitivity.robustness import benchmark_sentence, partial_r2, robustness

    codes = np.unique(school, return_inverse=True)[1]
    n_schools = int(codes.max()) + 1

    def within(values: np.ndarray) -> np.ndarray:
        means = np.zeros((n_schools, values.shape[1]))
        np.add.at(means, codes, values)
        return values - (means / np.bincount(codes)[:, None])[codes]

    yx = within(np.column_stack([y, X]))
    y_dm, x_dm = yx[:, 0], yx[:, 1:]

    def classical_t(dep: np.ndarray, design: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        coef, *_ = np.linalg.lstsq(design, dep, rcond=None)
        dof = len(dep) - design.shape[1] - n_schools
        sigma2 = float(((dep - design @ coef) ** 2).sum()) / dof
        se = np.sqrt(sigma2 * np.diag(np.linalg.pinv(design.T @ design)))
        return coef, coef / se, dof

    try:
        coef, t, dof = classical_t(y_dm, x_dm)
        j = names.index(treatment)
        benchmarks = {}
        others = [i for i in range(len(names)) if i != j]
        if covariates:
            _, t_d, dof_d = classical_t(x_dm[:, j], x_dm[:, others])
            for c in covariates:
                i = names.index(c)
                benchmarks[c] = (partial_r2(t_d[others.index(i)], dof_d), partial_r2(t[i], dof))
        result = robustness(float(coef[j]), float(coef[j] / t[j]), float(dof), alpha=options.alpha,
                            benchmarks=benchmarks or None, k=(1.0, 2.0, 3.0))
    except (EstimationError, ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
        return {"available": False, "reason": f"the robustness values could not be computed ({exc})"}
    out = {"available": True, **result.to_dict(),
           "sentences": [benchmark_sentence(b) for b in result.bounds if b.kd == 1.0]}
    return out


def _problem(times: np.ndarray, reference: int) -> str | None:
    """Why the event times cannot carry Rambachan-Roth bounds (``None`` if they can)."""
    if reference != REFERENCE:
        return (f"the bounds need event time −1 as the reference (this analysis uses {reference}); set "
                "reference: -1")
    pre = np.sort(times[times < reference])
    post = np.sort(times[times >= 0])
    if len(post) == 0:
        return "no post-joining event time"
    if len(pre) == 0:
        return "no pre-joining event time before −1: the bounds extrapolate from pre-joining violations"
    if not (np.array_equal(pre, np.arange(pre[0], reference)) and np.array_equal(post, np.arange(0, post[-1] + 1))):
        return "the event times are not consecutive around −1 (the bounds compare consecutive years)"
    return None


def _guarded(compute) -> dict[str, Any]:
    """The computation's fields, or why it failed: the estimate stands whatever happens to its bounds."""
    try:
        return {"available": True, **compute()}
    except EstimationError as exc:
        return {"available": False, "reason": str(exc)}
    except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:  # raised inside moderndid / cvxpy
        return {"available": False, "reason": f"the bound could not be computed ({type(exc).__name__}: {exc})"}
