r"""Rosenbaum (2002) sensitivity bounds for matched designs.

For matched pairs, a hidden bias of at most :math:`\Gamma` means that within a pair the odds that one unit
rather than the other was treated are between :math:`1/\Gamma` and :math:`\Gamma`.  Under no treatment
effect, Wilcoxon's signed-rank statistic is then bounded (stochastically) by two sums of independent terms,
which give an upper and a lower bound on its one-sided p-value (Rosenbaum 2002, *Observational Studies*,
2nd ed., §4.3.3) and an interval of Hodges–Lehmann point estimates (Rosenbaum 1993, *JASA* 88:1250).

* :func:`rosenbaum_bounds`: p-value bounds and Hodges–Lehmann bounds over a Γ grid, and the breakdown Γ.
* :func:`matched_differences`: treated-minus-control differences from evaltool's matched pairs (1:1, k:1,
  with or without replacement), with the statement of which analysis the bound then applies to.

Conventions follow R ``rbounds`` 2.2 (``psens`` and ``hlsens``, L. Keele); differences are noted where
they are made on purpose (no rounding of p-values, exact rather than stepped Hodges–Lehmann search).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from scipy import optimize, special, stats

from evaltool.errors import ConfigError, EstimationError

MIN_PAIRS = 5

PAIRED = "paired"
MEAN_OF_CONTROLS = "treated_minus_mean_of_matched_controls"

_PAIRED_NOTE = "1:1 matched pairs without reuse of controls: the bounds are Rosenbaum's (2002, §4.3.3)."
_MEAN_NOTE = (
    "Approximation: each treated unit's outcome minus the mean of its {k} matched controls is treated as one "
    "matched-pair difference. Rosenbaum's pair bounds are exact only for 1:1 pairs; for k:1 sets the exact "
    "analysis is the m-statistic of Rosenbaum (2007, Biometrics 63:456; R sensitivitymv::senmv), which this "
    "is not.{reuse}"
)
_REUSE_NOTE = (
    " {n} controls are matched to more than one treated unit (matching with replacement), so the differences "
    "are not independent and the bounds are indicative only."
)


@dataclass(frozen=True)
class MatchedDifferences:
    """Treated-minus-control outcome differences of matched sets, one per treated unit.

    Parameters
    ----------
    differences
        ``y_treated - mean(y_matched_controls)``, one per matched treated unit (in the order of the
        sorted treated indices).
    method
        :data:`PAIRED` (every treated unit has one control and no control is reused) or
        :data:`MEAN_OF_CONTROLS` (k:1 sets or controls reused: an approximation, see ``note``).
    max_controls
        Largest number of controls in one matched set.
    n_reused_controls
        Controls matched to more than one treated unit.
    note
        Which analysis a bound computed from these differences applies to.
    """

    differences: np.ndarray
    method: str
    max_controls: int
    n_reused_controls: int
    note: str


@dataclass(frozen=True)
class RosenbaumBounds:
    r"""Rosenbaum bounds on the Wilcoxon signed-rank test and the Hodges–Lehmann estimate.

    Parameters
    ----------
    gamma
        The Γ grid (odds of differential assignment within a pair, ≥ 1).
    p_upper, p_lower
        Upper and lower bounds of the one-sided p-value at each Γ (``p_upper`` is the one that matters:
        the worst case for the finding).  Not rounded.
    hl_lower, hl_upper
        Smallest and largest Hodges–Lehmann point estimate of an additive effect consistent with a bias
        of at most Γ (equal at Γ = 1), on the scale of the differences (sign restored for ``"less"``).
    hodges_lehmann
        The Hodges–Lehmann estimate at Γ = 1 (median of the Walsh averages).
    statistic
        Wilcoxon's signed-rank statistic (sum of the ranks of the positive differences, after orienting
        them for the one-sided test).
    breakdown_gamma
        Smallest Γ at which ``p_upper`` exceeds ``alpha`` (found by root-finding on Γ, not only on the
        grid); ``1.0`` when the test is not significant even at Γ = 1.
    alpha
        Significance level of the breakdown Γ.
    alternative
        ``"greater"`` (treated outcomes higher) or ``"less"``; the direction the bounds test.
    n_pairs, n_nonzero
        Matched differences given, and those not zero (zeros are dropped from the test, as ``psens``).
    method, note
        Which analysis the bounds apply to (see :class:`MatchedDifferences`); for differences given
        directly, :data:`PAIRED`.
    """

    gamma: tuple[float, ...]
    p_upper: tuple[float, ...]
    p_lower: tuple[float, ...]
    hl_lower: tuple[float, ...]
    hl_upper: tuple[float, ...]
    hodges_lehmann: float
    statistic: float
    breakdown_gamma: float
    alpha: float
    alternative: str
    n_pairs: int
    n_nonzero: int
    method: str = PAIRED
    note: str = _PAIRED_NOTE

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python dictionary (lists for the grid columns) for results.json."""
        out = asdict(self)
        for key in ("gamma", "p_upper", "p_lower", "hl_lower", "hl_upper"):
            out[key] = list(out[key])
        return out

    def rows(self) -> list[dict[str, float]]:
        """One dictionary per Γ (``gamma``, ``p_lower``, ``p_upper``, ``hl_lower``, ``hl_upper``)."""
        return [
            {"gamma": g, "p_lower": pl, "p_upper": pu, "hl_lower": hl, "hl_upper": hu}
            for g, pl, pu, hl, hu in zip(self.gamma, self.p_lower, self.p_upper, self.hl_lower, self.hl_upper,
                                         strict=True)
        ]


def matched_differences(
    y: np.ndarray, pair_treated: np.ndarray, pair_control: np.ndarray
) -> MatchedDifferences:
    """Matched-set differences from evaltool's matched pairs (``MatchResult.pair_treated/pair_control``).

    Parameters
    ----------
    y
        Outcome of every unit (indexed by ``pair_treated`` and ``pair_control``).
    pair_treated, pair_control
        Index of the treated and of the control unit of each matched pair; a treated unit with k matches
        appears in k pairs; a control may appear under several treated units (replacement).

    Returns
    -------
    MatchedDifferences
        ``y_t - mean(y_c over t's matches)`` per treated unit, and whether this is an exact 1:1 pairing.

    Notes
    -----
    The mean of a treated unit's matched controls is the counterfactual that evaltool's matching ATT
    uses (Abadie & Imbens 2006), so the bounds are for the estimator that was reported.  For k:1 sets the
    differences are treated as pairs: an approximation (stated in ``note``), not Rosenbaum's exact
    m-test for matched sets.
    """
    y = np.asarray(y, dtype=float)
    pair_treated = np.asarray(pair_treated, dtype=np.int64)
    pair_control = np.asarray(pair_control, dtype=np.int64)
    if pair_treated.shape != pair_control.shape or pair_treated.ndim != 1:
        raise EstimationError(
            f"pair_treated and pair_control must be 1-D arrays of the same length; got shapes "
            f"{pair_treated.shape} and {pair_control.shape}."
        )
    if pair_treated.size == 0:
        raise EstimationError("No matched pairs: Rosenbaum bounds need at least one matched treated unit.",
                              user_error=True)
    units, inverse = np.unique(pair_treated, return_inverse=True)
    m = np.bincount(inverse).astype(float)
    control_mean = np.bincount(inverse, weights=y[pair_control]) / m
    differences = y[units] - control_mean
    uses = np.bincount(pair_control)
    n_reused = int((uses > 1).sum())
    k = int(m.max())
    if k == 1 and n_reused == 0:
        return MatchedDifferences(differences, PAIRED, 1, 0, _PAIRED_NOTE)
    reuse = _REUSE_NOTE.format(n=n_reused) if n_reused else ""
    k_text = f"up to {k}" if np.any(m != k) else f"{k}"
    return MatchedDifferences(differences, MEAN_OF_CONTROLS, k, n_reused, _MEAN_NOTE.format(k=k_text, reuse=reuse))


def rosenbaum_bounds(
    differences: np.ndarray | MatchedDifferences,
    gamma: np.ndarray | list[float] | tuple[float, ...] = (1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0),
    *,
    alpha: float = 0.05,
    alternative: Literal["greater", "less", "auto"] = "auto",
) -> RosenbaumBounds:
    r"""Rosenbaum bounds for the Wilcoxon signed-rank test and the Hodges–Lehmann estimate.

    Parameters
    ----------
    differences
        Treated-minus-control outcome differences of matched pairs, or a :class:`MatchedDifferences`
        (from :func:`matched_differences`, whose ``method`` and ``note`` the result carries).
    gamma
        Grid of Γ values (each ≥ 1; sorted, duplicates removed).  Config key ``sensitivity.gamma``.
    alpha
        Level for the breakdown Γ.
    alternative
        ``"greater"``: the effect is positive (as ``psens``); ``"less"``: negative (the differences are
        negated for the test, and the Hodges–Lehmann bounds negated back); ``"auto"``: the sign of the
        mean difference (as ``hlsens``).

    Returns
    -------
    RosenbaumBounds

    Raises
    ------
    ConfigError
        The Γ grid is empty, not finite, or has a value below 1 (names ``sensitivity.gamma``).
    EstimationError
        Fewer than :data:`MIN_PAIRS` matched differences, missing values, or all differences zero.

    Notes
    -----
    Drop zero differences, rank :math:`|d_i|` with average ranks for ties, and let
    :math:`T = \sum_i r_i \mathbf{1}[d_i > 0]`.  With :math:`p^{+} = \Gamma/(1+\Gamma)`,
    :math:`p^{-} = 1/(1+\Gamma)`, the bounding null distributions have means :math:`p^{\pm}\sum r_i` and
    variance :math:`p^{+}p^{-}\sum r_i^2`; the normal approximation without continuity correction gives

    .. math:: p_{\text{upper}} = 1 - \Phi\!\left(\frac{T - p^{+}\sum r_i}{\sqrt{p^{+}p^{-}\sum r_i^2}}\right),
              \qquad p_{\text{lower}} \text{ with } p^{-}.

    This is ``rbounds::psens`` (the variance with average ranks equals the tie-corrected Wilcoxon variance,
    so at Γ = 1 both bounds equal ``scipy.stats.wilcoxon(d, zero_method="wilcox", correction=False,
    method="approx")``).  ``psens`` rounds to 4 decimals; here nothing is rounded.

    Hodges–Lehmann bounds (Rosenbaum 1993): the point estimates consistent with bias Γ are the τ solving
    :math:`T(\tau) = \mu` for :math:`\mu \in [p^{-}N, p^{+}N]`, :math:`N = S(S+1)/2` over all :math:`S` pairs
    (as ``hlsens``).  Except at the Walsh averages :math:`W_{ij} = (d_i + d_j)/2,\ i \le j`,
    :math:`T(\tau) = \#\{W_{ij} > \tau\}`, so the bounds are order statistics of the Walsh averages:
    the upper bound leaves :math:`p^{-}N` of them above it, the lower bound :math:`p^{-}N` below it
    (mean of the two neighbouring order statistics when that count is an integer; at Γ = 1 this is the
    median of the Walsh averages, the usual estimate).  ``hlsens`` finds the same crossing points by
    stepping τ in increments of ``pr`` (0.1 by default) from R's ``wilcox.test`` estimate, so its values
    can differ from these by up to ``pr``.  The order statistics are found by bisection on counts
    (:math:`O(S \log S)` per step), never by forming all :math:`N` averages.

    The breakdown Γ solves :math:`p_{\text{upper}}(\Gamma) = \alpha` (``scipy.optimize.brentq`` on
    :math:`\log\Gamma`); :math:`p_{\text{upper}}` increases continuously in Γ.
    """
    method, note = PAIRED, _PAIRED_NOTE
    if isinstance(differences, MatchedDifferences):
        method, note = differences.method, differences.note
        differences = differences.differences
    grid = _check_gamma(gamma)
    if not 0 < alpha < 1:
        raise ConfigError(f"sensitivity.alpha must be in (0, 1); got {alpha}.")
    if alternative not in ("greater", "less", "auto"):
        raise ConfigError(f"sensitivity.alternative: expecting one of 'greater', 'less', 'auto'; got {alternative!r}.")
    d = np.asarray(differences, dtype=float).ravel()
    if d.size < MIN_PAIRS:
        raise EstimationError(
            f"Rosenbaum bounds need at least {MIN_PAIRS} matched pairs; got {d.size}. "
            "Widen the caliper or the comparison pool, or drop the sensitivity analysis for this estimate.",
            user_error=True,
        )
    if not np.all(np.isfinite(d)):
        raise EstimationError(
            f"{int((~np.isfinite(d)).sum())} matched differences are missing or infinite; "
            "Rosenbaum bounds need an outcome for every matched unit."
        )
    if not np.any(d != 0):
        raise EstimationError(
            f"All {d.size} matched differences are zero: the signed-rank test has no information "
            "(no effect to bound).",
            user_error=True,
        )
    if alternative == "auto":
        alternative = "less" if d.mean() < 0 else "greater"
    sign = -1.0 if alternative == "less" else 1.0
    d = sign * d

    nonzero = d[d != 0]
    ranks = stats.rankdata(np.abs(nonzero))
    t_stat = float(ranks[nonzero > 0].sum())
    sum_r, sum_r2 = float(ranks.sum()), float((ranks**2).sum())

    p_plus = grid / (1.0 + grid)
    p_minus = 1.0 / (1.0 + grid)
    sd = np.sqrt(sum_r2 * p_plus * p_minus)
    p_upper = special.ndtr(-(t_stat - p_plus * sum_r) / sd)
    p_lower = special.ndtr(-(t_stat - p_minus * sum_r) / sd)

    walsh = _WalshOrder(d)
    n_walsh = walsh.n
    hl_upper = np.array([walsh.crossing(n_walsh - pm * n_walsh) for pm in p_minus])
    hl_lower = np.array([walsh.crossing(pm * n_walsh) for pm in p_minus])
    hodges_lehmann = walsh.crossing(n_walsh / 2.0)
    if sign < 0:
        hl_lower, hl_upper = -hl_upper, -hl_lower
        hodges_lehmann = -hodges_lehmann

    breakdown = _breakdown_gamma(t_stat, sum_r, sum_r2, alpha)
    return RosenbaumBounds(
        gamma=tuple(float(g) for g in grid),
        p_upper=tuple(float(p) for p in p_upper),
        p_lower=tuple(float(p) for p in p_lower),
        hl_lower=tuple(float(v) for v in hl_lower),
        hl_upper=tuple(float(v) for v in hl_upper),
        hodges_lehmann=float(hodges_lehmann),
        statistic=t_stat,
        breakdown_gamma=breakdown,
        alpha=float(alpha),
        alternative=alternative,
        n_pairs=int(d.size),
        n_nonzero=int(nonzero.size),
        method=method,
        note=note,
    )


def _check_gamma(gamma: Any) -> np.ndarray:
    """The Γ grid as a sorted, de-duplicated float array, or a ConfigError naming ``sensitivity.gamma``."""
    try:
        grid = np.asarray(gamma, dtype=float).ravel()
    except (TypeError, ValueError):
        raise ConfigError(f"sensitivity.gamma must be a list of numbers ≥ 1; got {gamma!r}.") from None
    if grid.size == 0:
        raise ConfigError("sensitivity.gamma is empty; give at least one value ≥ 1, e.g. [1, 1.5, 2, 3].")
    if not np.all(np.isfinite(grid)):
        raise ConfigError(f"sensitivity.gamma must be finite numbers ≥ 1; got {grid.tolist()}.")
    if np.any(grid < 1):
        bad = grid[grid < 1].tolist()
        raise ConfigError(
            f"sensitivity.gamma values must be ≥ 1 (Γ is an odds ratio of treatment within a pair; Γ = 1 is "
            f"no hidden bias); got {bad}. Use values such as [1, 1.5, 2, 3]."
        )
    return np.unique(grid)


def _p_upper(log_gamma: float, t_stat: float, sum_r: float, sum_r2: float) -> float:
    g = np.exp(log_gamma)
    p_plus = g / (1.0 + g)
    return float(special.ndtr(-(t_stat - p_plus * sum_r) / np.sqrt(sum_r2 * p_plus * (1.0 - p_plus))))


def _breakdown_gamma(t_stat: float, sum_r: float, sum_r2: float, alpha: float) -> float:
    """Smallest Γ with ``p_upper(Γ) = alpha`` (1.0 when already above ``alpha`` at Γ = 1)."""
    if _p_upper(0.0, t_stat, sum_r, sum_r2) >= alpha:
        return 1.0
    hi = np.log(2.0)
    # p_upper -> Φ(-(1-p)Σr/…) -> 1/2 > alpha as Γ -> ∞ (even when every difference is positive), so a bracket exists.
    while _p_upper(hi, t_stat, sum_r, sum_r2) < alpha:
        hi *= 2.0
        if hi > np.log(1e12):
            return float("inf")
    root = optimize.brentq(lambda x: _p_upper(x, t_stat, sum_r, sum_r2) - alpha, 0.0, hi, xtol=1e-12, rtol=1e-12)
    return float(np.exp(root))


class _WalshOrder:
    """Order statistics of the Walsh averages ``(d_i + d_j)/2, i <= j`` without forming them."""

    def __init__(self, d: np.ndarray) -> None:
        self.d = np.sort(d)
        self.index = np.arange(self.d.size)
        self.n = self.d.size * (self.d.size + 1) / 2.0

    def _count_le(self, tau: float) -> int:
        # For each i, the j >= i with d_i + d_j <= 2 tau.
        upto = np.searchsorted(self.d, 2.0 * tau - self.d, side="right")
        return int(np.maximum(upto - self.index, 0).sum())

    def kth(self, k: int) -> float:
        """The k-th smallest Walsh average (1-indexed)."""
        k = int(min(max(k, 1), self.n))
        lo, hi = float(self.d[0]) - 1.0, float(self.d[-1])
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            if mid <= lo or mid >= hi:
                break
            if self._count_le(mid) >= k:
                hi = mid
            else:
                lo = mid
        # Snap to the exact average: the largest Walsh average <= hi.
        upto = np.searchsorted(self.d, 2.0 * hi - self.d, side="right") - 1
        ok = upto >= self.index
        return float(np.max((self.d[ok] + self.d[upto[ok]]) / 2.0))

    def crossing(self, c: float) -> float:
        """The τ where ``#{W <= τ}`` passes ``c``: ``W_(⌈c⌉)``, or the mean of ``W_(c)`` and ``W_(c+1)``."""
        nearest = round(c)
        if abs(c - nearest) < 1e-9 * max(1.0, self.n):
            if nearest <= 0:
                return self.kth(1)
            if nearest >= self.n:
                return self.kth(int(self.n))
            return 0.5 * (self.kth(nearest) + self.kth(nearest + 1))
        return self.kth(int(np.ceil(c)))
