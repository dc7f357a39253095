"""Rambachan & Roth (2023) sensitivity of an event-study effect to violations of parallel trends.

:func:`honest_bounds` takes the event-study coefficients (pre-periods then post-periods, the reference period
−1 excluded) and their joint covariance, and returns robust confidence intervals for a target effect
θ = l'τ_post over a grid of restriction sizes, as R ``HonestDiD`` does:

* ``restriction="relative_magnitudes"`` (Δ^RM(M̄)): each post-period violation of parallel trends (change
  between consecutive periods) is at most M̄ times the largest pre-period one.  Conditional / hybrid
  ("C-LF") confidence sets of Andrews, Roth & Pakes, HonestDiD's default for Δ^RM.
* ``restriction="smoothness"`` (Δ^SD(M)): the slope of the differential trend changes by at most M between
  consecutive periods; M = 0 allows exactly linear trends.  Fixed-length confidence intervals ("FLCI"),
  HonestDiD's default for Δ^SD.

The computation is delegated to ``moderndid.didhonest`` (a Python port of R HonestDiD); this module checks
the input, names the option when something is wrong, and returns a frozen :class:`HonestResult`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from evaltool.errors import ConfigError, EstimationError

Restriction = Literal["relative_magnitudes", "smoothness"]

_METHODS: dict[str, tuple[str, ...]] = {
    "relative_magnitudes": ("C-LF", "Conditional"),
    "smoothness": ("FLCI", "C-F", "C-LF", "Conditional"),
}
_DEFAULT_METHOD = {"relative_magnitudes": "C-LF", "smoothness": "FLCI"}
_GRID_KEY = {"relative_magnitudes": "sensitivity.mbar", "smoothness": "sensitivity.m"}
_DELTA = {"relative_magnitudes": "DeltaRM", "smoothness": "DeltaSD"}
_MIN_PRE = {"relative_magnitudes": 1, "smoothness": 2}
#: Default M̄ grid for Δ^RM (HonestDiD README: 0.5, 1, 1.5, 2; 0 gives the parallel-trends interval).
DEFAULT_MBAR: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5, 2.0)
#: Bisection steps used to refine the breakdown value between two grid values (width ≤ step / 2**6).
_REFINE_STEPS = 6


@dataclass(frozen=True)
class HonestInterval:
    """The robust confidence set at one value of M̄ (or M).

    ``lb`` and ``ub`` are ``None`` when the set is empty: the data reject the restriction itself at that value
    (possible with the conditional methods, never with FLCI).
    """

    m: float
    lb: float | None
    ub: float | None

    @property
    def empty(self) -> bool:
        """Whether the confidence set is empty."""
        return self.lb is None

    @property
    def excludes_zero(self) -> bool:
        """Whether the interval is non-empty and excludes 0 (the effect is significant at this value)."""
        return not self.empty and (self.lb > 0 or self.ub < 0)

    def to_dict(self) -> dict[str, Any]:
        """Plain ``dict`` for JSON."""
        return {"m": self.m, "lb": self.lb, "ub": self.ub, "empty": self.empty, "excludes_zero": self.excludes_zero}


@dataclass(frozen=True)
class HonestResult:
    """Robust confidence intervals over a grid of M̄ (or M), the original interval and the breakdown value.

    Attributes
    ----------
    restriction
        ``"relative_magnitudes"`` (Δ^RM, parameter M̄) or ``"smoothness"`` (Δ^SD, parameter M).
    delta
        HonestDiD's name of the restriction set (``"DeltaRM"``, ``"DeltaSD"``).
    method
        Confidence-set method (``"C-LF"``, ``"Conditional"``, ``"FLCI"``, ``"C-F"``).
    target
        What θ = l'τ_post is: ``"e=0"`` (first post period), ``"average"`` or ``"custom"``.
    l_vec
        Weights of the post-period coefficients in θ.
    estimate, std_error
        l'β̂_post and its standard error.
    original_lb, original_ub
        The usual (parallel-trends) confidence interval for θ.
    intervals
        One :class:`HonestInterval` per grid value, in increasing order.
    breakdown
        Largest M̄ (M) at which the robust interval still excludes 0: ``None`` if it already includes 0 at the
        smallest grid value; the largest grid value if it never includes 0 on the grid (a lower bound).
    breakdown_status
        ``"within_grid"`` (the interval includes 0 at the next grid value; the breakdown lies between them),
        ``"beyond_grid"`` (significant at every grid value: the true breakdown is at least ``breakdown``) or
        ``"not_significant"`` (no breakdown: not significant at the smallest grid value).
    breakdown_refined
        Whether ``breakdown`` was refined by bisection between two grid values.
    notes
        Warnings raised by the numerical routines (e.g. a solver reporting an inaccurate solution).
    """

    restriction: Restriction
    delta: str
    method: str
    target: str
    l_vec: tuple[float, ...]
    alpha: float
    num_pre: int
    num_post: int
    estimate: float
    std_error: float
    original_lb: float
    original_ub: float
    intervals: tuple[HonestInterval, ...]
    breakdown: float | None
    breakdown_status: Literal["within_grid", "beyond_grid", "not_significant"]
    breakdown_refined: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def parameter(self) -> str:
        """Name of the grid parameter: ``"mbar"`` (Δ^RM) or ``"m"`` (Δ^SD)."""
        return "mbar" if self.restriction == "relative_magnitudes" else "m"

    @property
    def grid(self) -> tuple[float, ...]:
        """The grid values, increasing."""
        return tuple(iv.m for iv in self.intervals)

    def to_frame(self):
        """One row per grid value: ``m, lb, ub, empty, excludes_zero`` (a pandas ``DataFrame``)."""
        import pandas as pd

        return pd.DataFrame([iv.to_dict() for iv in self.intervals])

    def to_dict(self) -> dict[str, Any]:
        """Plain ``dict`` for JSON (no numpy types; empty sets as ``None``)."""
        return {
            "restriction": self.restriction, "delta": self.delta, "method": self.method, "parameter": self.parameter,
            "target": self.target, "l_vec": list(self.l_vec), "alpha": self.alpha, "num_pre": self.num_pre,
            "num_post": self.num_post, "estimate": self.estimate, "std_error": self.std_error,
            "original": {"lb": self.original_lb, "ub": self.original_ub},
            "intervals": [iv.to_dict() for iv in self.intervals],
            "breakdown": self.breakdown, "breakdown_status": self.breakdown_status,
            "breakdown_refined": self.breakdown_refined, "notes": list(self.notes),
        }


def honest_bounds(
    betahat: np.ndarray | Sequence[float],
    sigma: np.ndarray,
    *,
    num_pre: int,
    num_post: int,
    restriction: Restriction = "relative_magnitudes",
    grid: Sequence[float] | np.ndarray | None = None,
    target: int | str | Sequence[float] = 0,
    method: str | None = None,
    alpha: float = 0.05,
    refine_breakdown: bool | None = None,
    grid_points: int = 1000,
    default_grid_size: int = 10,
) -> HonestResult:
    r"""Rambachan–Roth robust confidence intervals for an event-study effect over a grid of M̄ or M.

    Parameters
    ----------
    betahat
        Event-study coefficients, the ``num_pre`` pre-periods (earliest first, up to e = −2) then the
        ``num_post`` post-periods (e = 0, 1, …); the reference period e = −1 is excluded (normalised to 0).
    sigma
        Their joint covariance, ``(num_pre + num_post)`` square, symmetric positive definite.
    num_pre, num_post
        Numbers of pre- and post-period coefficients.  Δ^RM needs ``num_pre >= 1``, Δ^SD ``num_pre >= 2``.
    restriction
        ``"relative_magnitudes"`` (config ``sensitivity.mbar`` grid) or ``"smoothness"`` (``sensitivity.m``).
    grid
        Values of M̄ (or M), non-negative.  Default: M̄ ∈ {0, 0.5, 1, 1.5, 2}; for M, HonestDiD's data-driven
        grid (10 values from 0 to an upper bound estimated from the pre-periods).
    target
        θ = l'τ_post: an integer e (the effect e periods after joining, default 0), ``"average"`` (mean of the
        post-period effects) or the weights ``l_vec`` themselves (length ``num_post``).
    method
        ``"C-LF"`` (default for Δ^RM) or ``"Conditional"``; for Δ^SD ``"FLCI"`` (default), ``"C-F"``, ``"C-LF"``
        or ``"Conditional"``.
    alpha
        1 − confidence level.
    refine_breakdown
        Refine the breakdown value by bisection between the last significant and the first non-significant
        grid values.  Default: only for FLCI (a fraction of a second per evaluation; C-LF takes seconds).
    grid_points
        Grid over θ for the conditional / hybrid tests (HonestDiD's ``gridPoints``).
    default_grid_size
        Number of values of the data-driven M grid when ``grid`` is ``None`` (HonestDiD: 10, from 0 to its
        upper bound ``DeltaSD_upperBound_Mpre``); each FLCI value costs a fraction of a second.

    Returns
    -------
    HonestResult

    Raises
    ------
    ConfigError
        A bad option: ``sensitivity.mbar`` / ``sensitivity.m`` (empty, negative, not finite),
        ``sensitivity.target``, ``sensitivity.method``, ``sensitivity.alpha``.
    EstimationError
        (``user_error=True``) Input that cannot support the bound: too few pre-periods, shapes that do not
        match, non-finite estimates, a covariance that is not symmetric positive definite.

    Notes
    -----
    With δ the differential trend and τ the effects, β = τ + δ (post) and β = δ (pre).  Δ^RM(M̄) is
    :math:`|\delta_{t+1} - \delta_t| \le \bar M \max_{s<0} |\delta_{s+1} - \delta_s|` for every post-period t;
    Δ^SD(M) is :math:`|(\delta_{t+1} - \delta_t) - (\delta_t - \delta_{t-1})| \le M` for every t.  The robust
    interval covers θ with probability ≥ 1 − α uniformly over δ in the restriction set (Rambachan & Roth
    2023, *Review of Economic Studies* 90(5), Sections 3–4; Andrews, Roth & Pakes 2023 for the conditional and
    hybrid tests; Armstrong & Kolesár 2018 for FLCI).  The breakdown value is the largest M̄ (M) at which
    the interval excludes 0 (Section 5 of the paper).
    """
    if restriction not in _METHODS:
        raise ConfigError(
            f"The 'restriction' of the sensitivity analysis must be one of 'relative_magnitudes', 'smoothness'; "
            f"got {restriction!r}."
        )
    beta, sig = _check_inputs(betahat, sigma, num_pre, num_post, restriction)
    method = _check_method(method, restriction)
    alpha = _check_alpha(alpha)
    l_vec, target_name = target_weights(target, num_post)
    grid_arr = _check_grid(grid, restriction)
    if grid_arr is None and restriction == "smoothness" and default_grid_size != 10:
        grid_arr = _data_driven_m_grid(beta, sig, num_pre, default_grid_size)
    if refine_breakdown is None:
        refine_breakdown = method == "FLCI"

    didhonest = _import_didhonest()
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        original = didhonest.construct_original_cs(beta, sig, num_pre, num_post, l_vec=l_vec, alpha=alpha)
        run = _runner(didhonest, beta, sig, num_pre, num_post, restriction, method, l_vec, alpha, grid_points)
        m_values, lbs, ubs = run(grid_arr)
        intervals = tuple(_interval(m, lo, hi) for m, lo, hi in zip(m_values, lbs, ubs, strict=True))
        breakdown, status, refined = _breakdown(intervals, run, refine_breakdown)
    notes.extend(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught))
    if any(iv.empty for iv in intervals):
        notes.append(
            "the robust confidence set is empty at "
            + ", ".join(f"{iv.m:g}" for iv in intervals if iv.empty)
            + ": the pre-period coefficients reject the restriction itself there; the breakdown value stops "
            "before the first empty set"
        )

    estimate = float(l_vec @ beta[num_pre:])
    std_error = float(np.sqrt(l_vec @ sig[num_pre:, num_pre:] @ l_vec))
    return HonestResult(
        restriction=restriction, delta=_DELTA[restriction], method=method, target=target_name,
        l_vec=tuple(float(v) for v in l_vec), alpha=alpha, num_pre=num_pre, num_post=num_post,
        estimate=estimate, std_error=std_error, original_lb=float(original.lb), original_ub=float(original.ub),
        intervals=intervals, breakdown=breakdown, breakdown_status=status, breakdown_refined=refined,
        notes=tuple(notes),
    )


def _data_driven_m_grid(beta: np.ndarray, sig: np.ndarray, num_pre: int, size: int) -> np.ndarray:
    """HonestDiD's default M grid with ``size`` values: 0 to the upper bound estimated from the pre-periods."""
    didhonest = _import_didhonest()
    if num_pre == 1:  # as HonestDiD: no second differences with one pre-period
        upper = float(np.sqrt(sig[0, 0]))
    else:
        upper = float(didhonest.compute_delta_sd_upperbound_m(betahat=beta, sigma=sig, num_pre_periods=num_pre,
                                                              alpha=0.05))
    return np.linspace(0.0, upper, max(int(size), 2))


def _import_didhonest():
    """``moderndid.didhonest``, or an error saying how to install it."""
    try:
        from moderndid import didhonest
    except ImportError as exc:  # pragma: no cover - moderndid is an install requirement
        raise EstimationError(
            "The parallel-trends sensitivity analysis (sensitivity.mbar / sensitivity.m) needs the package "
            "'moderndid' with its 'didhonest' extra, which could not be imported "
            f"({exc}). Install it with: pip install 'moderndid[didhonest]>=0.2,<0.3' (or reinstall evaltool).",
            user_error=True,
        ) from exc
    return didhonest


def _runner(didhonest, beta, sig, num_pre, num_post, restriction, method, l_vec, alpha, grid_points):
    """A function grid → (m values, lower bounds, upper bounds) for this problem (``None`` grid: the default)."""

    def run(values: np.ndarray | None) -> tuple[list[float], list[float], list[float]]:
        if restriction == "relative_magnitudes":
            frame = didhonest.create_sensitivity_results_rm(
                beta, sig, num_pre, num_post, method=method, m_bar_vec=values, l_vec=l_vec, alpha=alpha,
                grid_points=grid_points,
            )
            m_col = "Mbar"
        else:
            frame = didhonest.create_sensitivity_results_sm(
                beta, sig, num_pre, num_post, method=method, m_vec=values, l_vec=l_vec, alpha=alpha,
                grid_points=grid_points,
            )
            m_col = "m"
        return (
            [float(v) for v in frame[m_col].to_list()],
            [float(v) for v in frame["lb"].to_list()],
            [float(v) for v in frame["ub"].to_list()],
        )

    return run


def _interval(m: float, lo: float, hi: float) -> HonestInterval:
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return HonestInterval(m=float(m), lb=None, ub=None)
    return HonestInterval(m=float(m), lb=float(lo), ub=float(hi))


def _breakdown(intervals, run, refine: bool) -> tuple[float | None, str, bool]:
    """Largest grid value up to which every interval excludes 0, its status, and whether it was refined."""
    last = None
    for i, iv in enumerate(intervals):
        if not iv.excludes_zero:
            break
        last = i
    else:
        return intervals[-1].m, "beyond_grid", False
    if last is None:
        return None, "not_significant", False
    low, high = intervals[last].m, intervals[last + 1].m
    if not refine:
        return low, "within_grid", False
    for _ in range(_REFINE_STEPS):
        mid = 0.5 * (low + high)
        _, lbs, ubs = run(np.array([mid]))
        if _interval(mid, lbs[0], ubs[0]).excludes_zero:
            low = mid
        else:
            high = mid
    return low, "within_grid", True


def _check_inputs(betahat, sigma, num_pre, num_post, restriction) -> tuple[np.ndarray, np.ndarray]:
    beta = np.asarray(betahat, dtype=float)
    sig = np.asarray(sigma, dtype=float)
    for name, value in (("num_pre", num_pre), ("num_post", num_post)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise EstimationError(f"'{name}' must be an integer number of event-study periods; got {value!r}.",
                                  user_error=True)
    need = _MIN_PRE[restriction]
    if num_pre < need:
        why = (
            "relative magnitudes compare post-period violations with the largest pre-period one, so at least one "
            "pre-period coefficient (besides the reference e = -1) is needed"
            if restriction == "relative_magnitudes"
            else "the smoothness bound M limits the change in slope of the differential trend, and the pre-period "
            "coefficients inform that slope and its change only with at least two pre-periods (e = -2, -3) "
            "besides the reference e = -1"
        )
        raise EstimationError(
            f"The {restriction.replace('_', ' ')} bound ({_GRID_KEY[restriction]}) needs at least {need} "
            f"pre-period coefficient{'s' if need > 1 else ''}; the event study has {num_pre}: {why}. Estimate "
            f"more pre-joining years (a wider event window) or use "
            f"{'sensitivity.mbar' if restriction == 'smoothness' else 'another design check'} instead.",
            user_error=True,
        )
    if num_post < 1:
        raise EstimationError(f"The event study has no post-period coefficient (num_post = {num_post}); the "
                              "sensitivity analysis needs at least one (e = 0).", user_error=True)
    k = num_pre + num_post
    if beta.ndim != 1 or beta.size != k:
        raise EstimationError(
            f"'betahat' must be a vector of num_pre + num_post = {k} event-study coefficients (reference period "
            f"-1 excluded); got shape {beta.shape}.", user_error=True)
    if sig.shape != (k, k):
        raise EstimationError(
            f"'sigma' must be the {k} x {k} covariance of the event-study coefficients; got shape {sig.shape}.",
            user_error=True)
    if not np.all(np.isfinite(beta)):
        bad = np.flatnonzero(~np.isfinite(beta)).tolist()
        raise EstimationError(f"'betahat' has non-finite coefficients at positions {bad}; the sensitivity "
                              "analysis needs an estimate for every event time in the window.", user_error=True)
    if not np.all(np.isfinite(sig)):
        raise EstimationError("'sigma' (the event-study covariance) has non-finite entries; re-estimate the event "
                              "study with a covariance for every event time.", user_error=True)
    scale = float(np.max(np.abs(sig))) if sig.size else 0.0
    if scale == 0.0:
        raise EstimationError("'sigma' (the event-study covariance) is zero; the sensitivity analysis needs the "
                              "sampling covariance of the coefficients.", user_error=True)
    asym = float(np.max(np.abs(sig - sig.T)))
    if asym > 1e-8 * scale:
        raise EstimationError(f"'sigma' (the event-study covariance) is not symmetric (largest asymmetry "
                              f"{asym:.3g}); pass the covariance matrix itself.", user_error=True)
    sig = 0.5 * (sig + sig.T)
    eig = np.linalg.eigvalsh(sig)
    if eig[0] < -1e-10 * eig[-1]:
        raise EstimationError(
            f"'sigma' (the event-study covariance) is not positive semi-definite (smallest eigenvalue "
            f"{eig[0]:.3g}); it is not a covariance matrix. Recompute it (e.g. from the influence functions or "
            "bootstrap draws of all event times jointly).", user_error=True)
    if eig[0] <= 1e-12 * eig[-1]:
        raise EstimationError(
            f"'sigma' (the event-study covariance) is singular (smallest eigenvalue {eig[0]:.3g}, largest "
            f"{eig[-1]:.3g}): some event-time coefficient has no sampling variance or is an exact combination of "
            "the others, so the robust intervals are not defined. Drop that event time from the window, or use "
            "more bootstrap draws than event times.", user_error=True)
    return beta, sig


def _check_method(method: str | None, restriction: str) -> str:
    if method is None:
        return _DEFAULT_METHOD[restriction]
    allowed = _METHODS[restriction]
    if method not in allowed:
        raise ConfigError(
            f"sensitivity.method for the {restriction.replace('_', ' ')} bound must be one of "
            f"{', '.join(repr(m) for m in allowed)}; got {method!r}.")
    return method


def _check_alpha(alpha: float) -> float:
    try:
        value = float(alpha)
    except (TypeError, ValueError):
        value = np.nan
    if not 0.0 < value < 1.0:
        raise ConfigError(f"sensitivity.alpha must be a number in (0, 1), e.g. 0.05; got {alpha!r}.")
    return value


def _check_grid(grid, restriction: str) -> np.ndarray | None:
    key = _GRID_KEY[restriction]
    if grid is None:
        return np.asarray(DEFAULT_MBAR) if restriction == "relative_magnitudes" else None
    try:
        values = np.asarray(grid, dtype=float).ravel()
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{key} must be a list of non-negative numbers, e.g. [0, 0.5, 1, 1.5, 2]; got "
                          f"{grid!r}.") from exc
    if values.size == 0:
        raise ConfigError(f"{key} is empty; give at least one non-negative value, e.g. [0, 0.5, 1, 1.5, 2].")
    if not np.all(np.isfinite(values)):
        raise ConfigError(f"{key} must contain finite numbers; got {values.tolist()}.")
    if np.any(values < 0):
        raise ConfigError(f"{key} must be non-negative (0 means no violation beyond the restriction); got "
                          f"{values[values < 0].tolist()}.")
    return np.unique(values)


def target_weights(target, num_post: int) -> tuple[np.ndarray, str]:
    """The weights l of θ = l'τ_post and their name: an event time e ≥ 0, ``"average"`` or the weights given.

    Raises
    ------
    ConfigError
        Naming ``sensitivity.target``.
    """
    if isinstance(target, str):
        if target != "average":
            raise ConfigError(f"sensitivity.target must be a post-period event time (0 … {num_post - 1}), "
                              f"'average', or a list of {num_post} weights; got {target!r}.")
        return np.full(num_post, 1.0 / num_post), "average"
    if isinstance(target, int | np.integer) and not isinstance(target, bool):
        if not 0 <= target < num_post:
            raise ConfigError(f"sensitivity.target = {target} is not a post-period event time of this event "
                              f"study; choose one of 0 … {num_post - 1} or 'average'.")
        weights = np.zeros(num_post)
        weights[int(target)] = 1.0
        return weights, f"e={int(target)}"
    try:
        weights = np.asarray(target, dtype=float).ravel()
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"sensitivity.target must be an event time, 'average' or a list of {num_post} "
                          f"weights; got {target!r}.") from exc
    if weights.size != num_post or not np.all(np.isfinite(weights)) or not np.any(weights != 0):
        raise ConfigError(f"sensitivity.target as weights must be {num_post} finite numbers, not all zero (one "
                          f"per post period); got {weights.tolist()}.")
    return weights, "custom"
