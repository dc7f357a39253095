"""Compiled multiplier-bootstrap sums for influence functions in cohort-block form.

Each bootstrap draw needs, per cohort block, ``Σ_i v_i Z_i`` over the block's rows ``Z_i`` (schools' centred
changes and a one, or their sums within clusters) with i.i.d. two-point weights ``v_i``.  As a dense
product this means generating and storing a draws × schools matrix of weights (25 million numbers for the
benchmark) and multiplying it with BLAS; both are bound by memory traffic.  Here the weights are never
stored: rows are taken eight at a time, the 256 possible sums of a group's rows are tabulated once, and
each draw adds the one entry its eight weights select (an eighth of the additions of the dense product,
and no multiplications).  Written by hand with numba because no library fuses weight generation with the
product.

Weights come from a counter-based generator, so a weight depends only on the key, the draw and the
cluster, never on the order or the threads in which it is computed: the weight of cluster ``c`` in draw
``d`` is set by 16 bits of ``SplitMix64(key + ((c // 4)·D + d)·γ)`` (bits ``16·(c mod 4)`` onwards; ``D``
the number of draws, ``γ`` SplitMix64's increment; Steele, Lea & Flood 2014), compared with the threshold
``k`` of :func:`~evaltool.estimators.did.engine.bootstrap.two_point`.  :func:`high_weights` computes the same
weights with numpy, for tests and small cases.
"""

from __future__ import annotations

import threading

import numpy as np
from numba import njit

from evaltool.estimators.did.engine import _helper_thread

GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_MASK16 = np.uint64(0xFFFF)


@njit(inline="always")
def _mix(z: np.uint64) -> np.uint64:
    """SplitMix64's output function."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def high_weights(key: int, ids: np.ndarray, n_draws: int, k: int) -> np.ndarray:
    """Whether each cluster's weight takes the high value, shape ``(n_draws, len(ids))`` (numpy reference)."""
    ids = np.asarray(ids, dtype=np.uint64)
    d = np.arange(n_draws, dtype=np.uint64)[:, None]
    with np.errstate(over="ignore"):
        state = np.uint64(key) + ((ids[None, :] >> np.uint64(2)) * np.uint64(n_draws) + d) * GAMMA
        z = (state ^ (state >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        z = z ^ (z >> np.uint64(31))
    return ((z >> (np.uint64(16) * (ids[None, :] & np.uint64(3)))) & _MASK16) >= np.uint64(k)


#: Rows per group: a group's table has 2**GROUP entries.
GROUP = 8


@njit(inline="always")
def _four(h: np.uint64, k: np.uint64) -> np.int64:
    """4-bit mask of the four 16-bit pieces of ``h`` at or above ``k`` (high weights)."""
    return (
        np.int64((h & _MASK16) >= k)
        | (np.int64(((h >> np.uint64(16)) & _MASK16) >= k) << 1)
        | (np.int64(((h >> np.uint64(32)) & _MASK16) >= k) << 2)
        | (np.int64((h >> np.uint64(48)) >= k) << 3)
    )


#: Most groups of eight rows in one chunk of work (about half a millisecond of the loop).
CHUNK_GROUPS = 256


def chunk_bounds(block_of_group: np.ndarray, n_blocks: int, max_groups: int = CHUNK_GROUPS) -> np.ndarray:
    """Chunks of work: ``(first group, end group, block)`` rows, each chunk within one block.

    Every block's run of groups is cut into the fewest near-equal pieces of at most ``max_groups``.  The first
    chunk of each block comes first, in block order, and the further chunks of large blocks after them (see
    :class:`ChunkedSums`).
    """
    edges = np.searchsorted(block_of_group, np.arange(n_blocks + 1))
    first, extra = [], []
    for b in range(n_blocks):  # one step per block (a dozen)
        lo, hi = int(edges[b]), int(edges[b + 1])
        pieces = max(1, -(-(hi - lo) // max_groups))
        cuts = lo + (np.arange(pieces + 1) * (hi - lo)) // pieces
        rows = [(int(cuts[i]), int(cuts[i + 1]), b) for i in range(pieces)]
        first.append(rows[0])
        extra += rows[1:]
    return np.array(first + extra, dtype=np.int64).reshape(-1, 3)


@njit(nogil=True, cache=True)
def _chunk_sums(
    z: np.ndarray,
    ids: np.ndarray,
    key: np.uint64,
    k: np.uint64,
    first_group: int,
    end_group: int,
    out: np.ndarray,
    chunk: int,
) -> None:
    """``out[d, chunk] = Σ`` of the rows of groups ``first_group … end_group − 1`` whose weight is high in draw ``d``.

    ``z`` has a multiple of eight rows.  Per group: tabulate the sums of its 255 non-empty subsets of rows,
    compute every draw's 8-bit mask of high weights, and add the selected entry to the draw's sum (held in
    a contiguous array while the chunk runs, then written to ``out``).
    """
    width = z.shape[1]
    m = out.shape[0]
    acc = np.zeros((m, width))
    nd = np.uint64(m)
    table = np.zeros((256, width))
    lowest = np.zeros(256, dtype=np.int64)  # index of the lowest set bit
    for mask in range(1, 256):
        lowest[mask] = lowest[mask >> 1] + 1 if (mask & 1) == 0 else 0
    masks = np.zeros(m, dtype=np.int64)
    for g in range(first_group, end_group):
        r0 = GROUP * g
        for mask in range(1, 256):  # each subset sum adds one row to a smaller subset's
            prev = mask & (mask - 1)
            row = r0 + lowest[mask]
            for j in range(width):
                table[mask, j] = table[prev, j] + z[row, j]
        i0 = ids[r0]
        aligned = (i0 & 7) == 0
        for s in range(1, GROUP):
            aligned = aligned and ids[r0 + s] == i0 + s
        if aligned:  # eight consecutive clusters: two generator outputs give all eight weights
            base_low = key + np.uint64(i0 >> 2) * nd * GAMMA
            base_high = key + np.uint64((i0 >> 2) + 1) * nd * GAMMA
            for dd in range(m):
                step = np.uint64(dd) * GAMMA
                masks[dd] = _four(_mix(base_low + step), k) | (_four(_mix(base_high + step), k) << 4)
        else:
            for dd in range(m):
                mask = 0
                for s in range(GROUP):
                    c = ids[r0 + s]
                    h = _mix(key + (np.uint64(c >> 2) * nd + np.uint64(dd)) * GAMMA)
                    if ((h >> np.uint64(16 * (c & 3))) & _MASK16) >= k:
                        mask |= 1 << s
                masks[dd] = mask
        for dd in range(m):
            entry = masks[dd]
            for j in range(width):
                acc[dd, j] += table[entry, j]
    for dd in range(m):
        for j in range(width):
            out[dd, chunk, j] = acc[dd, j]


class ChunkedSums:
    """Per draw and block, the sum of the rows whose cluster's weight is high, computed in chunks.

    Starting it hands chunks to a helper thread (the compiled loop releases the GIL) while the caller goes
    on with other work; :meth:`result` has the calling thread take the chunks still left, then waits for
    the helper.  Every chunk is summed on its own and the chunks of one block are added in chunk order,
    so the result is the same whichever thread computed which chunk, and with no helper at all.

    Parameters
    ----------
    z
        Rows (float64), eight per group, each group within one block; padding rows are zeros.  Widths that
        are multiples of eight add whole vectors (about twice as fast as 15 columns).
    ids
        Cluster of each row (int64); rows of one cluster share its weight in every draw.
    block_of_group
        Block of each group of eight rows (non-decreasing).
    n_blocks
        Number of blocks (a block may have no rows).
    key, k, n_draws
        Generator key, threshold of the 16-bit comparison and number of draws (see the module notes).
    helper
        Whether to use the helper thread (:mod:`._helper_thread`; needs two cores to pay).
    """

    def __init__(
        self, z: np.ndarray, ids: np.ndarray, block_of_group: np.ndarray, n_blocks: int, *, key: int, k: int,
        n_draws: int, helper: bool = True,
    ) -> None:
        self._z = np.ascontiguousarray(z, dtype=np.float64)
        self._ids = np.ascontiguousarray(ids, dtype=np.int64)
        self._key, self._k = np.uint64(key), np.uint64(k)
        self.n_blocks = int(n_blocks)
        self.chunks = chunk_bounds(np.asarray(block_of_group, dtype=np.int64), self.n_blocks)
        self._out = np.empty((int(n_draws), len(self.chunks), self._z.shape[1]))
        self._lock = threading.Lock()
        self._next = 0
        self._stopped = False
        self._future = _helper_thread.submit(self._work) if helper and len(self.chunks) > 1 else None

    def _claim(self) -> int:
        with self._lock:
            c = self._next
            self._next += 1
        return -1 if self._stopped or c >= len(self.chunks) else c

    def _work(self) -> None:
        while (c := self._claim()) >= 0:
            lo, hi, _ = self.chunks[c]
            _chunk_sums(self._z, self._ids, self._key, self._k, int(lo), int(hi), self._out, c)

    def cancel(self) -> None:
        """Stop handing out chunks (after an error elsewhere); chunks already running finish."""
        self._stopped = True

    def result(self) -> np.ndarray:
        """Sums of shape ``(n_draws, n_chunks, width)`` whose first :attr:`n_blocks` chunks hold the blocks' totals.

        Use ``out[:, :n_blocks]``; the further chunks of large blocks have been added to their block's first.
        """
        if self._stopped:
            raise RuntimeError("the bootstrap sums were cancelled")
        self._work()
        if self._future is not None:
            self._future.result()  # re-raises the helper's exception, if any
        out = self._out
        for c in range(self.n_blocks, len(self.chunks)):  # the extra chunks, in order
            out[:, self.chunks[c, 2]] += out[:, c]
        return out
