"""Multiplier bootstrap of influence functions, with uniform (sup-t) bands.

Given influence functions ``ψ`` (schools × parameters), each draw perturbs the
cluster sums with i.i.d. Mammen (1993) weights ``v_c`` (mean 0, variance 1,
third moment 1), ``θ* − θ̂ = Σ_c v_c S_c / n``, as in Callaway & Sant'Anna
(2021, Algorithm 1) and R ``did``'s ``mboot``.  Standard errors are the
interquartile range of the draws over that of the standard normal; the
simultaneous critical value is the ``1 − α`` quantile of ``max_k |θ*_k − θ̂_k| / se_k``.

Draws are generated in chunks so memory stays bounded (chunk × clusters
values at a time) and the whole bootstrap is matrix products.  The draws come
from two independent child streams of the analysis's generator, each filling
a fixed half of the draws, so the two halves run on two cores at once while
the result depends only on the seed (not on the number of threads).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

from evaltool.estimators.did.staggered import GroupTimeResult, cluster_sum

Weights = Literal["mammen", "rademacher"]
_SQRT5 = np.sqrt(5.0)
_IQR_NORMAL = float(stats.norm.ppf(0.75) - stats.norm.ppf(0.25))
#: Independent random streams the draws are split between (fixed, so results do not depend on the machine).
STREAMS = 2
#: Resolution of the two-point weights' probability: 16 random bits per weight.
_LEVELS = 2**16


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


def two_point(kind: Weights = "mammen") -> tuple[int, float, float]:
    """The weights as ``(k, low, high)``: ``low`` with probability ``k / 2¹⁶``, else ``high``.

    Mammen's distribution puts probability ``q = (√5 + 1)/(2√5)`` on ``(1 − √5)/2`` and the rest on
    ``(1 + √5)/2``.  Here ``q`` is rounded to 16 bits (``k = 47422``, within 5·10⁻⁶) and the two values are
    those with mean exactly 0 and variance exactly 1 at that probability, ``−√((1 − q)/q)`` and ``√(q/(1 − q))``
    (within 2·10⁻⁵ of Mammen's; third moment ``(2q − 1)/√(q(1 − q))`` = 1 within 3·10⁻⁵).  Rademacher: ±1, each 1/2.
    """
    if kind == "rademacher":
        return _LEVELS // 2, -1.0, 1.0
    k = round((1 + _SQRT5) / (2 * _SQRT5) * _LEVELS)
    q = k / _LEVELS
    return k, -float(np.sqrt((1 - q) / q)), float(np.sqrt(q / (1 - q)))


def multiplier_weights(rng: np.random.Generator, shape: tuple[int, ...], kind: Weights = "mammen") -> np.ndarray:
    """i.i.d. two-point weights of :func:`two_point` (Mammen, or Rademacher ±1), float64."""
    _, value_low, value_high = two_point(kind)
    return np.where(_low_draws(rng, shape, kind), value_low, value_high)


def _low_draws(rng: np.random.Generator, shape: tuple[int, ...], kind: Weights) -> np.ndarray:
    """Whether each weight takes the low value: 16-bit pieces of the generator's raw 64-bit outputs below ``k``."""
    size = int(np.prod(shape))
    bits = rng.bit_generator.random_raw(-(-size // 4)).view(np.uint16)[:size]
    return (bits < np.uint16(two_point(kind)[0])).reshape(shape)


def multiplier_indicators(
    rng: np.random.Generator, shape: tuple[int, ...], kind: Weights = "mammen", dtype: type = np.float64
) -> tuple[np.ndarray, float, float]:
    """The weights of :func:`multiplier_weights` as ``high + (low − high)·L`` with ``L`` a 0/1 matrix.

    Returns ``(L, low, high)``.  A product ``V·A`` is then ``high·1'A + (low − high)·L·A``: one pass over the
    draws instead of three (the bootstrap is bound by memory traffic over the draws × clusters matrix).
    ``L`` compares 16-bit pieces of the generator's raw 64-bit outputs with ``k`` (:func:`two_point`): a
    quarter of the random bits, and none of the float conversions, of drawing uniforms.
    """
    _, value_low, value_high = two_point(kind)
    return _low_draws(rng, shape, kind).astype(dtype), value_low, value_high


def split_draws(
    n_draws: int, n_columns: int, rng: np.random.Generator, chunk: int,
    fill: Callable[[np.random.Generator, int], np.ndarray],
) -> np.ndarray:
    """Draws ``(n_draws, n_columns)`` from :data:`STREAMS` child streams of ``rng``, each a fixed share of rows.

    ``fill(stream, m)`` returns ``m`` draws from ``stream``.  The streams run in parallel threads when the
    machine has the cores (numpy's generators and BLAS release the GIL); the result is the same either way.
    """
    draws = np.empty((n_draws, n_columns))
    entropy = rng.integers(2**63, size=2, dtype=np.uint64)
    streams = [np.random.default_rng(seed) for seed in np.random.SeedSequence(entropy).spawn(STREAMS)]
    bounds = np.linspace(0, n_draws, STREAMS + 1).astype(int)

    def run(j: int) -> None:
        for start in range(bounds[j], bounds[j + 1], chunk):
            stop = min(start + chunk, bounds[j + 1])
            draws[start:stop] = fill(streams[j], stop - start)

    if min(STREAMS, os.cpu_count() or 1) > 1 and n_draws >= 2 * chunk:
        with ThreadPoolExecutor(max_workers=STREAMS) as pool:
            list(pool.map(run, range(STREAMS)))  # list(): re-raises a worker's exception here
    else:
        for j in range(STREAMS):
            run(j)
    return draws


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

    def fill(stream: np.random.Generator, m: int) -> np.ndarray:
        v = multiplier_weights(stream, (m, n_clusters), weights)
        out = np.zeros((m, sums.shape[1]))
        for rows, cols, block in blocks:
            out[:, cols] += v[:, rows] @ block
        return out

    draws = split_draws(n_draws, sums.shape[1], rng, chunk, fill)
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
    chunk: int = 32,  # draws per pass: a smaller indicator matrix stays closer to cache
) -> BootstrapResult:
    """Multiplier bootstrap of ``result.basis`` (every ATT(g, t) and the cohort-share terms).

    Uses :func:`multiplier_bootstrap` in general.  When the influence functions are in cohort-block form
    (``result.blocks``: unconditional estimator, fully observed schools) a draw needs only
    ``Σ_i v_i [Ỹ_i, 1]`` per block (draws × years) instead of draws × cells: the same statistic with
    several times less arithmetic (:class:`_BlockPlan`).
    """
    arrays = result.arrays
    if result.blocks is None:
        return multiplier_bootstrap(
            result.basis, arrays.clusters, arrays.n_clusters, n_draws=n_draws, rng=rng, weights=weights, alpha=alpha, chunk=chunk
        )
    plan = _BlockPlan(result)

    def fill(stream: np.random.Generator, m: int) -> np.ndarray:
        return plan.draws_two_point(*multiplier_indicators(stream, (m, arrays.n_clusters), weights, dtype=np.float32))

    draws = split_draws(n_draws, plan.coef.shape[1], rng, chunk, fill)
    se = iqr_se(draws)
    return BootstrapResult(
        std_error=se,
        crit=sup_t_crit(draws, se, alpha),
        draws=draws,
        n_draws=n_draws,
        weights=weights,
        n_clusters=arrays.n_clusters,
    )


class _BlockPlan:
    """Per-block sums for the bootstrap of influence functions in cohort-block form (see :mod:`.blocks`).

    Attributes
    ----------
    position_clusters
        When schools are the clusters, the cluster (school) whose weight sits in each column of a weights
        matrix: i.i.d. weights need no gather, so block ``b``'s schools simply take consecutive columns.
        ``None`` otherwise (columns are clusters).
    """

    def __init__(self, result: GroupTimeResult) -> None:
        blocks = result.blocks
        assert blocks is not None
        if result.schools_are_clusters:
            bounds = np.cumsum([0, *(len(rows) for rows in blocks.rows)])
            parts = [(slice(int(bounds[b]), int(bounds[b + 1])), d) for b, d in enumerate(blocks.design)]
            self.position_clusters: np.ndarray | None = np.concatenate(blocks.rows)
        else:
            parts = blocks.cluster_parts(result.arrays.clusters)
            self.position_clusters = None
        self.columns = [columns for columns, _ in parts]
        self.sums = [sums for _, sums in parts]
        # The weights' products in single precision: the block sums are centred changes (ΔỸ) or counts, so
        # rounding moves a draw by a few 10⁻⁶ of its size (2.6·10⁻⁶ at most on the benchmark panel), far below
        # the bootstrap's own Monte Carlo error (about 2% of an SE at 999 draws), at half the memory traffic
        # and twice the speed of double precision.
        self.sums32 = [sums.astype(np.float32) for sums in self.sums]
        self.totals = np.concatenate([sums.sum(axis=0) for sums in self.sums])
        self.coef = blocks.coef.reshape(-1, blocks.n_columns) / result.n_units

    def draws(self, v_clusters: np.ndarray) -> np.ndarray:
        """Bootstrap draws (chunk × basis columns) for one chunk of multiplier weights (chunk × clusters)."""
        return np.concatenate([v_clusters[:, c] @ s for c, s in zip(self.columns, self.sums, strict=True)], axis=1) @ self.coef

    def draws_two_point(self, indicators: np.ndarray, value_low: float, value_high: float) -> np.ndarray:
        """:meth:`draws` for the weights ``high + (low − high)·indicators`` (see :func:`multiplier_indicators`).

        ``Σ_i v_i Z_i = high·Σ_i Z_i + (low − high)·Σ_i L_i Z_i`` per block, so the weights matrix is never formed.
        """
        sums = self.sums32 if indicators.dtype == np.float32 else self.sums
        products = np.concatenate([indicators[:, c] @ s for c, s in zip(self.columns, sums, strict=True)], axis=1, dtype=np.float64)
        return (value_high * self.totals + (value_low - value_high) * products) @ self.coef
