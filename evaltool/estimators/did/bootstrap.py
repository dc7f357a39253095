"""Multiplier bootstrap of influence functions, with uniform (sup-t) bands.

Given influence functions ``ψ`` (schools × parameters), each draw perturbs the
cluster sums with i.i.d. Mammen (1993) weights ``v_c`` (mean 0, variance 1,
third moment 1), ``θ* − θ̂ = Σ_c v_c S_c / n``, as in Callaway & Sant'Anna
(2021, Algorithm 1) and R ``did``'s ``mboot``.  Standard errors are the
interquartile range of the draws over that of the standard normal; the
simultaneous critical value is the ``1 − α`` quantile of ``max_k |θ*_k − θ̂_k| / se_k``.

Draws are generated in chunks so memory stays bounded (chunk × clusters
floats at a time) and the whole bootstrap is matrix products.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

from evaltool.estimators.did.staggered import GroupTimeResult, cluster_sum, is_control

Weights = Literal["mammen", "rademacher"]
_SQRT5 = np.sqrt(5.0)
_IQR_NORMAL = float(stats.norm.ppf(0.75) - stats.norm.ppf(0.25))


@dataclass(frozen=True)
class BootstrapResult:
    """Bootstrap standard errors and the uniform-band critical value.

    Attributes
    ----------
    std_error
        Per-parameter bootstrap standard errors.
    crit
        Critical value of the simultaneous band over all parameters (``nan``
        if fewer than one parameter has positive variance).
    draws
        The centred draws ``θ* − θ̂``, shape ``(n_draws, k)``.
    n_draws, weights, n_clusters
        Settings, for the record.
    """

    std_error: np.ndarray
    crit: float
    draws: np.ndarray
    n_draws: int
    weights: str
    n_clusters: int

    def band(self, columns: np.ndarray | slice, alpha: float = 0.05) -> tuple[np.ndarray, float]:
        """Standard errors and sup-t critical value for a subset of parameters."""
        return self.std_error[columns], sup_t_crit(self.draws[:, columns], self.std_error[columns], alpha)

    def transform(self, coef: np.ndarray, alpha: float = 0.05) -> BootstrapResult:
        """The bootstrap of linear combinations ``coef`` (shape ``(k, m)``) of the parameters, same draws."""
        draws = self.draws @ coef
        se = iqr_se(draws)
        return BootstrapResult(
            std_error=se,
            crit=sup_t_crit(draws, se, alpha),
            draws=draws,
            n_draws=self.n_draws,
            weights=self.weights,
            n_clusters=self.n_clusters,
        )


def iqr_se(draws: np.ndarray) -> np.ndarray:
    """Robust bootstrap SE: interquartile range of the draws over that of N(0, 1) (R ``did``); NaN if degenerate."""
    q75, q25 = np.quantile(draws, [0.75, 0.25], axis=0, method="inverted_cdf")
    se = (q75 - q25) / _IQR_NORMAL
    return np.where(np.abs(draws).max(axis=0) > 0, se, np.nan)


def multiplier_weights(rng: np.random.Generator, shape: tuple[int, ...], kind: Weights = "mammen") -> np.ndarray:
    """Mammen two-point weights ((1 − √5)/2 w.p. (√5 + 1)/(2√5), else (1 + √5)/2) or Rademacher ±1."""
    low, value_low, value_high = multiplier_indicators(rng, shape, kind)
    # high + 1{low}·(low − high), in place: three times faster than np.where and exact for both pairs of values
    # ((1 − κ) − κ = −√5 and κ − √5 = 1 − κ in float64; -1 − 1 = −2).
    low *= value_low - value_high
    low += value_high
    return low


def multiplier_indicators(
    rng: np.random.Generator, shape: tuple[int, ...], kind: Weights = "mammen"
) -> tuple[np.ndarray, float, float]:
    """The weights of :func:`multiplier_weights` as ``high + (low − high)·L`` with ``L`` a 0/1 float matrix.

    Returns ``(L, low, high)``.  A product ``V·A`` is then ``high·1'A + (low − high)·L·A``: one pass over the
    draws instead of three (the bootstrap is bound by memory traffic over the draws × clusters matrix).
    The same uniform draws as :func:`multiplier_weights`, so the same weights.
    """
    kappa = (1 + _SQRT5) / 2
    threshold, value_low, value_high = (0.5, -1.0, 1.0) if kind == "rademacher" else (kappa / _SQRT5, 1 - kappa, kappa)
    return _below(rng, shape, np.float32(threshold)).astype(np.float64), value_low, value_high


def _below(rng: np.random.Generator, shape: tuple[int, ...], threshold: np.float32) -> np.ndarray:
    """``rng.random(shape, dtype=np.float32) < threshold``, twice as fast for the default bit generator.

    A threshold needs no more than 24 bits, so single-precision uniforms are used (half the generation time
    of doubles).  numpy forms each as ``(x >> 8)·2⁻²⁴`` from the next 32-bit output ``x``, which PCG64 takes
    as the low then the high half of each 64-bit output; comparing those halves with the threshold scaled
    to an integer gives the same booleans from the same stream and leaves the generator at the same point,
    without the float conversions.  Any other case (another bit generator, a buffered half, an odd count,
    a big-endian machine) draws the uniforms themselves.
    """
    size = int(np.prod(shape))
    bitgen = rng.bit_generator
    state = bitgen.state
    if not (
        state.get("bit_generator") in ("PCG64", "PCG64DXSM") and not state.get("has_uint32", 1)
        and size % 2 == 0 and sys.byteorder == "little"
    ):
        return rng.random(shape, dtype=np.float32) < threshold
    # u = k·2⁻²⁴ < t  ⇔  k < ⌈t·2²⁴⌉  ⇔  x < ⌈t·2²⁴⌉·2⁸  (k = x >> 8; t·2²⁴ is exact in float64).
    limit = np.uint32(int(np.ceil(float(threshold) * 2.0**24)) << 8)
    return (bitgen.random_raw(size // 2).view(np.uint32) < limit).reshape(shape)


def sup_t_crit(draws: np.ndarray, se: np.ndarray, alpha: float) -> float:
    """``1 − α`` quantile (inverse empirical CDF, R type 1) of the maximum |t| across parameters."""
    ok = np.isfinite(se) & (se > np.sqrt(np.finfo(float).eps) * 10)
    if not ok.any():
        return float("nan")
    t_max = np.max(np.abs(draws[:, ok] / se[ok]), axis=1)
    return float(np.quantile(t_max, 1 - alpha, method="inverted_cdf"))


def _sparsity_blocks(sums: np.ndarray, max_blocks: int = 64) -> list[tuple[slice, np.ndarray, np.ndarray]]:
    """Split the (cluster × parameter) matrix into row blocks with the same non-zero columns.

    A cohort's schools enter only their own cells and the cells they are comparisons for, so with
    never-joined comparisons most of the matrix is zero; multiplying only the non-zero blocks is exact and
    roughly halves the bootstrap's work.  Rows are sorted by pattern (the multiplier weights are i.i.d., so
    the order of clusters does not matter); with more than ``max_blocks`` patterns (clusters that mix
    cohorts) one dense block is used.

    Returns
    -------
    (row slice into the sorted matrix, its non-zero columns, the dense sub-block) per block
    """
    dense = [(slice(0, len(sums)), np.arange(sums.shape[1]), sums)]
    nonzero = sums != 0
    # Pattern id of each row: a multiplicative hash of its non-zero flags (wrap-around uint64 arithmetic),
    # verified below, so grouping costs one pass instead of a lexicographic sort of rows.
    multipliers = (np.arange(1, sums.shape[1] + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)) | np.uint64(1)
    keys = (nonzero * multipliers[None, :]).sum(axis=1, dtype=np.uint64)
    patterns, inverse = np.unique(keys, return_inverse=True)
    if len(patterns) > max_blocks:
        return dense
    order = np.argsort(inverse, kind="stable")
    ordered, flags = sums[order], nonzero[order]
    bounds = np.searchsorted(inverse[order], np.arange(len(patterns) + 1))
    blocks = []
    for p in range(len(patterns)):  # one block per pattern (about one per cohort), never one per row
        rows = slice(int(bounds[p]), int(bounds[p + 1]))
        if not (flags[rows] == flags[rows.start]).all():  # a hash collision: fall back to one dense block
            return dense
        cols = np.flatnonzero(flags[rows.start])
        if len(cols):
            blocks.append((rows, cols, np.ascontiguousarray(ordered[rows][:, cols])))
    return blocks


def multiplier_bootstrap(
    influence: np.ndarray,
    clusters: np.ndarray,
    n_clusters: int,
    *,
    n_draws: int,
    rng: np.random.Generator,
    weights: Weights = "mammen",
    alpha: float = 0.05,
    chunk: int = 128,
) -> BootstrapResult:
    """Bootstrap the parameters whose influence functions are the columns of ``influence``.

    Parameters
    ----------
    influence
        Shape ``(n_units, k)``, scaled as in :class:`~evaltool.estimators.did.staggered.GroupTimeResult`.
    clusters, n_clusters
        Cluster code of each unit; weights are drawn per cluster (clustered bootstrap).
    n_draws
        Number of bootstrap draws.
    rng
        The analysis's random generator (the only source of randomness).
    weights
        ``"mammen"`` (R ``did``) or ``"rademacher"``.
    alpha
        1 − confidence level of the uniform band.
    chunk
        Draws per matrix product (memory bound).
    """
    n = influence.shape[0]
    sums = cluster_sum(influence, clusters, n_clusters) / n
    blocks = _sparsity_blocks(sums)
    draws = np.zeros((n_draws, sums.shape[1]))
    for start in range(0, n_draws, chunk):
        stop = min(start + chunk, n_draws)
        v = multiplier_weights(rng, (stop - start, n_clusters), weights)
        for rows, cols, block in blocks:
            draws[start:stop, cols] += v[:, rows] @ block
    se = iqr_se(draws)
    return BootstrapResult(
        std_error=se,
        crit=sup_t_crit(draws, se, alpha),
        draws=draws,
        n_draws=n_draws,
        weights=weights,
        n_clusters=n_clusters,
    )


def group_time_bootstrap(
    result: GroupTimeResult,
    *,
    n_draws: int,
    rng: np.random.Generator,
    weights: Weights = "mammen",
    alpha: float = 0.05,
    chunk: int = 32,  # draws per pass: a smaller indicator matrix stays closer to cache (same draws for any chunk)
) -> BootstrapResult:
    """Multiplier bootstrap of ``result.basis`` (every ATT(g, t) and the cohort-share terms).

    Uses :func:`multiplier_bootstrap` in general.  For the unconditional estimator on fully observed
    schools (``result.cell_terms`` set) every influence function is ``s·(Y_t − Y_base − m)`` within a cohort
    block, so a draw needs only ``Σ_i v_i Y_i`` per cohort block (draws × years) instead of draws × cells:
    the same statistic with several times less arithmetic.
    """
    if result.cell_terms is None:
        arrays = result.arrays
        return multiplier_bootstrap(
            result.basis, arrays.clusters, arrays.n_clusters, n_draws=n_draws, rng=rng, weights=weights, alpha=alpha, chunk=chunk
        )
    draws = np.empty((n_draws, result.basis.shape[1]))
    plan = _BlockPlan(result)
    for start in range(0, n_draws, chunk):
        stop = min(start + chunk, n_draws)
        draws[start:stop] = plan.draws_two_point(*multiplier_indicators(rng, (stop - start, result.arrays.n_clusters), weights))
    se = iqr_se(draws)
    return BootstrapResult(
        std_error=se,
        crit=sup_t_crit(draws, se, alpha),
        draws=draws,
        n_draws=n_draws,
        weights=weights,
        n_clusters=result.arrays.n_clusters,
    )


class _BlockPlan:
    """Cohort blocks and per-cell coefficients for the structured bootstrap (see :func:`group_time_bootstrap`)."""

    def __init__(self, result: GroupTimeResult) -> None:
        arrays = result.arrays
        self.n = arrays.n_units
        order = np.argsort(arrays.cohort, kind="stable")
        self.unit_clusters = arrays.clusters[order]
        self.schools_are_clusters = arrays.n_clusters == self.n and np.array_equal(arrays.clusters, np.arange(self.n))
        # Outcomes with a column of ones (its products give Σ_i v_i per block), and the block totals of both.
        self.y_ones = np.column_stack([arrays.y[order], np.ones(self.n)])
        block_cohorts, starts = np.unique(arrays.cohort[order], return_index=True)
        self.bounds = np.append(starts, self.n)
        self.block_totals = np.add.reduceat(self.y_ones, starts, axis=0)  # blocks × (years + 1)
        self.block_cohorts = block_cohorts
        cells = result.cells
        period = {int(p): j for j, p in enumerate(arrays.periods)}
        self.jt = np.array([period[int(t)] for t in cells["year"]])
        self.jb = np.array([period[int(b)] for b in cells["base_year"]])
        g = cells["cohort"].to_numpy()
        self.treated_block = np.searchsorted(block_cohorts, g)
        opts = result.options
        self.control_blocks = is_control(
            block_cohorts[None, :], g[:, None], cells["year"].to_numpy()[:, None], cells["base_year"].to_numpy()[:, None],
            opts["control_group"], opts["anticipation"],
        ).astype(float)  # cells × blocks
        self.terms = result.cell_terms
        cohorts = np.array(list(result.cohort_share))
        self.cohort_blocks = np.searchsorted(block_cohorts, cohorts)
        self.shares = np.array(list(result.cohort_share.values()))

    def draws(self, v_clusters: np.ndarray) -> np.ndarray:
        """Bootstrap draws (chunk × basis columns) for one chunk of multiplier weights (chunk × clusters)."""
        return self._draws_from_sums(self._block_products(v_clusters))

    def draws_two_point(self, indicators: np.ndarray, value_low: float, value_high: float) -> np.ndarray:
        """:meth:`draws` for the weights ``high + (low − high)·indicators`` (see :func:`multiplier_indicators`).

        ``Σ_i v_i Y_i = high·Σ_i Y_i + (low − high)·Σ_i L_i Y_i`` per block, so the weights matrix is never formed.
        """
        return self._draws_from_sums(value_high * self.block_totals + (value_low - value_high) * self._block_products(indicators))

    def _block_products(self, per_cluster: np.ndarray) -> np.ndarray:
        """``Σ_i a_i Y_i`` and ``Σ_i a_i`` per cohort block for each row of ``per_cluster``: chunk × blocks × (years + 1)."""
        # Each school gets its cluster's value.  When schools are the clusters the weights are i.i.d., so
        # column k is simply the weight of the k-th school in cohort order (no gather needed).
        a = per_cluster if self.schools_are_clusters else per_cluster[:, self.unit_clusters]
        return np.stack(
            [a[:, lo:hi] @ self.y_ones[lo:hi] for lo, hi in zip(self.bounds[:-1], self.bounds[1:], strict=True)], axis=1
        )

    def _draws_from_sums(self, sums: np.ndarray) -> np.ndarray:
        sums_y, sums_1 = sums[:, :, :-1], sums[:, :, -1]
        diff = sums_y[:, :, self.jt] - sums_y[:, :, self.jb]  # chunk × blocks × cells
        s1, m1, s0, m0 = self.terms.T
        cells = np.arange(len(self.jt))
        treated = s1 * (diff[:, self.treated_block, cells] - m1 * sums_1[:, self.treated_block])
        control = s0 * (np.einsum("cbk,kb->ck", diff, self.control_blocks) - m0 * (sums_1 @ self.control_blocks.T))
        cohort_part = sums_1[:, self.cohort_blocks] - self.shares * sums_1.sum(axis=1, keepdims=True)
        return np.column_stack([treated + control, cohort_part]) / self.n
