"""Multiplier bootstrap of influence functions, with uniform (sup-t) bands.

Given influence functions ``ψ`` (schools × parameters), each draw perturbs the
cluster sums with i.i.d. Mammen (1993) weights ``v_c`` (mean 0, variance 1,
third moment 1), ``θ* − θ̂ = Σ_c v_c S_c / n``, as in Callaway & Sant'Anna
(2021, Algorithm 1) and R ``did``'s ``mboot``.  Standard errors are the
interquartile range of the draws over that of the standard normal; the
simultaneous critical value is the ``1 − α`` quantile of ``max_k |θ*_k − θ̂_k| / se_k``.

Two routes give the draws.  In general (covariates, or schools missing years)
the weights come from the analysis's generator in chunks, so memory stays
bounded (chunk × clusters values at a time), and each chunk is a matrix product
with the cluster sums; a helper thread generates the next chunks' weights while
the current one is multiplied (:func:`pipelined_draws`), with the same draws as
one thread.  Without covariates on a fully observed panel the influence
functions are in cohort-block form (:mod:`.blocks`) and a compiled loop
(:mod:`._multiplier`) sums the blocks' rows under counter-based weights, never
storing the draws × schools weights; it starts on a helper thread (:func:`start_group_time_draws`) so the
caller can compute the aggregations meanwhile, and the product with the coefficients and the sorting for the
quartiles are split between the two threads, always the same way (the draws do not depend on the cores).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import wait
from dataclasses import dataclass
from functools import cached_property, partial
from typing import Literal

import numpy as np
from scipy import stats

from evaltool.estimators.did.engine import _helper_thread
from evaltool.estimators.did.engine._multiplier import GROUP, ChunkedSums
from evaltool.estimators.did.engine.att_gt import GroupTimeResult
from evaltool.estimators.did.engine.sums import cluster_sum

Weights = Literal["mammen", "rademacher"]
_SQRT5 = np.sqrt(5.0)
_IQR_NORMAL = float(stats.norm.ppf(0.75) - stats.norm.ppf(0.25))
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

    def bands(self, ranges: list[tuple[int, int]], alpha: float = 0.05) -> list[float]:
        """The sup-t critical value of each contiguous range ``[start, stop)`` of parameters, as :meth:`band`'s.

        One pass over the draws for all ranges: ``|θ*_k − θ̂_k| / se_k`` of the usable parameters, then the
        maximum within each range per draw.
        """
        ok = _usable_se(self.std_error)
        used = np.flatnonzero(ok)
        t = np.abs(self.draws[:, used]) / self.std_error[used]
        crits = []
        for start, stop in ranges:  # one step per range (a handful)
            lo, hi = np.searchsorted(used, [start, stop])
            if hi == lo:
                crits.append(float("nan"))
                continue
            t_max = t[:, lo:hi].max(axis=1)
            crits.append(float(np.quantile(t_max, 1 - alpha, method="inverted_cdf")))
        return crits

    @classmethod
    def from_draws(
        cls, draws: np.ndarray, *, weights: str, n_clusters: int, alpha: float = 0.05, overall_band: bool = True
    ) -> BootstrapResult:
        """Standard errors and the sup-t critical value of centred draws ``θ* − θ̂`` (draws × parameters).

        ``overall_band=False`` leaves ``crit`` NaN (for callers that only want bands of subsets: :meth:`bands`).
        """
        se = iqr_se(draws)
        crit = sup_t_crit(draws, se, alpha) if overall_band else float("nan")
        return cls(std_error=se, crit=crit, draws=draws, n_draws=len(draws), weights=weights, n_clusters=n_clusters)


def iqr_se(draws: np.ndarray) -> np.ndarray:
    """Robust bootstrap SE: interquartile range of the draws over that of N(0, 1) (R ``did``); NaN if degenerate.

    The quartiles are R's type-1 (``inverted_cdf``) quantiles, which are order statistics: each parameter's
    draws are sorted as one contiguous row (numpy's vectorised sort, several times faster than
    ``np.quantile`` along the draws' axis) and the two order statistics read off.  A parameter with a NaN
    draw, or whose draws are all zero, gets NaN.
    """
    if draws.size == 0:
        return np.full(draws.shape[1], np.nan)
    ordered = np.empty(draws.shape[::-1])  # parameters × draws, each row sorted (NaN last)

    def sort(part: slice) -> None:
        ordered[part] = draws[:, part].T
        ordered[part].sort(axis=1)

    half = len(ordered) // 2
    _helper_thread.run_both(lambda: sort(slice(0, half)), lambda: sort(slice(half, None)))
    q25, q75 = (ordered[:, _order_statistic(len(draws), q)] for q in (0.25, 0.75))
    se = (q75 - q25) / _IQR_NORMAL
    usable = ~np.isnan(ordered[:, -1]) & ((ordered[:, -1] > 0) | (ordered[:, 0] < 0))
    return np.where(usable, se, np.nan)


def _order_statistic(n: int, q: float) -> int:
    """Index of the sorted sample that is its ``q`` quantile by ``np.quantile(..., method="inverted_cdf")``."""
    return int(np.quantile(np.arange(n), q, method="inverted_cdf"))


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


def pipelined_draws(
    n_draws: int,
    n_columns: int,
    rng: np.random.Generator,
    chunk: int,
    generate: Callable[[np.random.Generator, int], tuple],
    combine: Callable[..., np.ndarray],
) -> np.ndarray:
    """Draws ``(n_draws, n_columns)`` in chunks: ``combine(*generate(rng, m))`` gives ``m`` draws.

    With two or more cores the helper thread (:mod:`._helper_thread`) generates the next chunks' weights
    (random bits and elementwise numpy, which release the GIL) while this thread multiplies the current chunk
    (BLAS on one thread: OpenBLAS calls from two threads at once serialise).  Chunks are generated in order from ``rng`` by the
    one helper, so the draws are the same with or without it.
    """
    sizes = [min(chunk, n_draws - start) for start in range(0, n_draws, chunk)]
    starts = np.cumsum([0, *sizes])
    draws = np.empty((n_draws, n_columns))
    if not _helper_thread.available() or len(sizes) < 2:
        for j, m in enumerate(sizes):
            draws[starts[j] : starts[j + 1]] = combine(*generate(rng, m))
        return draws
    lookahead = 2
    pending = deque(_helper_thread.submit(partial(generate, rng, m)) for m in sizes[:lookahead])
    try:
        for j in range(len(sizes)):
            weights = pending.popleft().result()  # re-raises the helper's exception, if any
            if j + lookahead < len(sizes):
                pending.append(_helper_thread.submit(partial(generate, rng, sizes[j + lookahead])))
            draws[starts[j] : starts[j + 1]] = combine(*weights)
    finally:
        wait(pending)  # the helper never keeps drawing from ``rng`` after this returns
    return draws


def _usable_se(se: np.ndarray) -> np.ndarray:
    """Parameters with a positive bootstrap SE (those in a uniform band)."""
    return np.isfinite(se) & (se > np.sqrt(np.finfo(float).eps) * 10)


def sup_t_crit(draws: np.ndarray, se: np.ndarray, alpha: float) -> float:
    """``1 − α`` quantile (inverse empirical CDF, R type 1) of the maximum |t| across parameters."""
    ok = _usable_se(se)
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
        Shape ``(n_units, k)``, scaled as in :class:`~evaltool.estimators.did.engine.att_gt.GroupTimeResult`.
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

    def generate(stream: np.random.Generator, m: int) -> tuple[np.ndarray]:
        return (multiplier_weights(stream, (m, n_clusters), weights),)

    def combine(v: np.ndarray) -> np.ndarray:
        out = np.zeros((len(v), sums.shape[1]))
        for rows, cols, block in blocks:
            out[:, cols] += v[:, rows] @ block
        return out

    draws = pipelined_draws(n_draws, sums.shape[1], rng, chunk, generate, combine)
    return BootstrapResult.from_draws(draws, weights=weights, n_clusters=n_clusters, alpha=alpha)


def group_time_bootstrap(
    result: GroupTimeResult,
    *,
    n_draws: int,
    rng: np.random.Generator,
    weights: Weights = "mammen",
    alpha: float = 0.05,
    chunk: int = 64,
) -> BootstrapResult:
    """Multiplier bootstrap of ``result.basis`` (every ATT(g, t) and the cohort-share terms).

    See :func:`group_time_draws`; this adds the standard errors and the sup-t critical value.
    """
    draws = group_time_draws(result, n_draws=n_draws, rng=rng, weights=weights, chunk=chunk)
    return BootstrapResult.from_draws(draws, weights=weights, n_clusters=result.arrays.n_clusters, alpha=alpha)


def group_time_draws(
    result: GroupTimeResult,
    *,
    n_draws: int,
    rng: np.random.Generator,
    weights: Weights = "mammen",
    coef: np.ndarray | None = None,
    chunk: int = 64,  # draws per pass of the general path
) -> np.ndarray:
    """Centred bootstrap draws of ``result.basis``, shape ``(n_draws, n_basis)``, or of its combinations ``coef``.

    ``coef`` (basis columns × combinations) gives the draws of ``basis @ coef`` directly (one product less).
    :func:`start_group_time_draws` run to the end.
    """
    return start_group_time_draws(result, n_draws=n_draws, rng=rng, weights=weights, chunk=chunk).draws(coef)


def start_group_time_draws(
    result: GroupTimeResult,
    *,
    n_draws: int,
    rng: np.random.Generator,
    weights: Weights = "mammen",
    chunk: int = 64,
) -> PendingDraws:
    """Start the bootstrap of ``result.basis``; :meth:`PendingDraws.draws` gives the draws.

    In general the draws come from :func:`multiplier_bootstrap`'s product of weights and cluster sums,
    computed here at once.  When the influence functions are in cohort-block form (``result.blocks``:
    unconditional estimator, fully observed schools) a draw needs only ``Σ_i v_i [ΔỸ_i, 1]`` per block
    (years wide instead of cells wide), computed by the compiled loop of :mod:`._multiplier` without ever
    storing the weights; the weights there come from a counter-based generator keyed by one draw from
    ``rng``.  That loop starts on a helper thread and the caller's thread joins it in
    :meth:`PendingDraws.draws`, so the caller can do other work meanwhile (the draws are the same either way).
    """
    if result.blocks is None:
        arrays = result.arrays
        basis_draws = multiplier_bootstrap(
            result.basis, arrays.clusters, arrays.n_clusters, n_draws=n_draws, rng=rng, weights=weights, chunk=chunk
        ).draws
        return PendingDraws(basis_draws=basis_draws)
    plan = _BlockPlan(result)
    k, value_low, value_high = two_point(weights)
    key = int(rng.integers(2**64, dtype=np.uint64))
    sums = ChunkedSums(
        plan.z, plan.ids, plan.block_of_group, plan.n_blocks, key=key, k=k, n_draws=n_draws,
        helper=_helper_thread.available(),
    )
    return PendingDraws(plan=plan, sums=sums, values=(value_low, value_high))


class PendingDraws:
    """Bootstrap draws of a group-time basis, possibly still being computed (see :func:`start_group_time_draws`)."""

    def __init__(
        self,
        *,
        basis_draws: np.ndarray | None = None,
        plan: _BlockPlan | None = None,
        sums: ChunkedSums | None = None,
        values: tuple[float, float] = (0.0, 0.0),
    ) -> None:
        self._basis_draws = basis_draws
        self._plan = plan
        self._sums = sums
        self._values = values

    def draws(self, coef: np.ndarray | None = None) -> np.ndarray:
        """The centred draws of the basis (draws × basis columns), or of ``basis @ coef``."""
        if self._basis_draws is not None:
            return self._basis_draws if coef is None else self._basis_draws @ coef
        assert self._plan is not None and self._sums is not None
        sums = self._sums.result()  # (draws, chunks, width), the blocks' totals in the first n_blocks chunks
        rows = sums.reshape(len(sums), -1)[:, : self._plan.n_blocks * sums.shape[2]]
        return self._plan.draws_from_high_sums(rows, *self._values, coef)

    def cancel(self) -> None:
        """Stop the compiled loop's remaining work (the caller gave up, e.g. after an error)."""
        if self._sums is not None:
            self._sums.cancel()


def _padded(blocks, width: int) -> bool:
    """Whether ``blocks.storage`` is already the layout built by :class:`_BlockPlan` (``width`` columns, blocks at
    offsets that are multiples of :data:`GROUP` rows, zeros elsewhere), so it can be used without a copy."""
    if blocks.storage is None:
        return False
    expected = np.cumsum([0, *(len(d) + (-len(d)) % GROUP for d in blocks.design)])
    return blocks.storage.shape == (expected[-1], width) and np.array_equal(blocks.offsets, expected[:-1])


class _BlockPlan:
    """The rows of the cohort-block bootstrap (see :mod:`.blocks` and :mod:`._multiplier`).

    Attributes
    ----------
    z
        Rows ``[ΔỸ, 1]`` of every block (schools', or their sums within each cluster), each block padded with
        zero rows to a multiple of eight (:data:`~._multiplier.GROUP`) and with zero columns to a multiple of
        eight.
    ids
        Weight identity of each row: its cluster, or, when schools are the clusters, its position (i.i.d.
        weights, so any one-to-one assignment of weights to schools is the same bootstrap).
    block_of_group
        Block of each group of eight rows.
    position_clusters
        When schools are the clusters, the school (row of the panel arrays) at each position, ``-1`` for
        padding; ``None`` otherwise.
    n_ids
        Number of distinct weights per draw (columns of a weights matrix for :meth:`draws`).
    """

    def __init__(self, result: GroupTimeResult) -> None:
        blocks = result.blocks
        assert blocks is not None
        width = blocks.coef.shape[1]
        # Rows padded with zero columns to a multiple of eight: the compiled loop then adds whole vectors
        # (half the time of 15 columns, measured), and the padding's coefficients are zero.
        padded_width = -(-width // 8) * 8
        schools = result.schools_are_clusters
        parts = [(None, d) for d in blocks.design] if schools else blocks.cluster_parts(result.arrays.clusters)
        shared = schools and _padded(blocks, padded_width)  # the blocks' storage is this layout already
        rows, ids, groups, positions = [], [], [], []
        start = 0
        for b, (members, sums) in enumerate(parts):
            pad = (-len(sums)) % GROUP
            if not shared:
                rows.append(np.pad(sums, ((0, pad), (0, padded_width - width))))
            size = len(sums) + pad
            if members is None:
                ids.append(np.arange(start, start + size))
                positions += [blocks.rows[b], np.full(pad, -1)]
            else:
                ids.append(np.concatenate([members, np.zeros(pad, dtype=members.dtype)]))
            groups.append(np.full(size // GROUP, b))
            start += size
        self.z = blocks.storage if shared else np.vstack(rows)
        self.ids = np.concatenate(ids).astype(np.int64)
        self.block_of_group = np.concatenate(groups).astype(np.int64)
        self.n_blocks = len(parts)
        bounds = np.cumsum([0, *(GROUP * len(g) for g in groups)])
        self.block_slices = [slice(int(lo), int(hi)) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
        self.position_clusters = np.concatenate(positions).astype(np.int64) if schools else None
        self.n_ids = start if schools else result.arrays.n_clusters
        self._blocks = blocks
        self._width = padded_width
        self._n_units = result.n_units

    @cached_property
    def totals(self) -> np.ndarray:
        """``Σ_i Z_i`` of every block, blocks after blocks (length ``n_blocks × width``)."""
        return np.concatenate([self.z[rows].sum(axis=0) for rows in self.block_slices])

    @cached_property
    def coef(self) -> np.ndarray:
        """Coefficients of the basis on the blocks' sums, shape ``(n_blocks × width, n_basis)``, divided by ``n``."""
        blocks = self._blocks
        coef = np.zeros((self.n_blocks, self._width, blocks.n_columns))
        coef[:, : blocks.coef.shape[1]] = blocks.coef
        return coef.reshape(-1, blocks.n_columns) / self._n_units

    def _combined(self, combine: np.ndarray | None) -> np.ndarray:
        return self.coef if combine is None else self.coef @ combine

    def draws(self, v: np.ndarray, combine: np.ndarray | None = None) -> np.ndarray:
        """Bootstrap draws (draws × basis columns, or of ``basis @ combine``) for explicit weights ``v``
        (draws × :attr:`n_ids`)."""
        sums = np.stack([v[:, self.ids[rows]] @ self.z[rows] for rows in self.block_slices], axis=1)
        return sums.reshape(len(v), -1) @ self._combined(combine)

    def draws_from_high_sums(
        self, high: np.ndarray, value_low: float, value_high: float, combine: np.ndarray | None = None
    ) -> np.ndarray:
        """:meth:`draws` for two-point weights, from the sums over the rows whose weight is high.

        ``high`` has shape ``(draws, n_blocks, width)``, or ``(draws, n_blocks × width)`` (which may be a view
        of longer rows: it is not copied).  ``Σ_i v_i Z_i = low·Σ_i Z_i + (high − low)·Σ_{i: high} Z_i`` per block, so the draws are
        ``(high − low)·H C + low·(Σ Z) C`` with ``C`` the coefficients.
        """
        coef = self._combined(combine)
        rows = high.reshape(len(high), -1)
        shift = value_low * (self.totals @ coef)
        out = np.empty((len(rows), coef.shape[1]))

        def fill(part: slice) -> None:
            np.matmul(rows[part], coef, out=out[part])
            out[part] *= value_high - value_low
            out[part] += shift

        half = len(rows) // 2  # the same split with or without the helper thread: the same numbers
        _helper_thread.run_both(lambda: fill(slice(0, half)), lambda: fill(slice(half, None)))
        return out
