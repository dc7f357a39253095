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
``k`` of :func:`~evaltool.estimators.did.bootstrap.two_point`.  :func:`high_weights` computes the same
weights with numpy, for tests and small cases.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit

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


@njit(nogil=True, cache=True)
def _high_sums(
    z: np.ndarray,
    ids: np.ndarray,
    block_of_group: np.ndarray,
    n_blocks: int,
    key: np.uint64,
    k: np.uint64,
    n_draws: int,
    first_group: int,
    last_group: int,
) -> np.ndarray:
    """``Σ_{rows of block b with a high weight in draw d} z_row`` over groups ``first_group … last_group − 1``.

    ``z`` has a multiple of eight rows, each group of eight within one block (``block_of_group``).  Per group:
    tabulate the sums of its 255 non-empty subsets of rows, compute every draw's 8-bit mask of high weights,
    and add the selected entry to the draw's sum for the block.  Returns shape ``(blocks, draws, width)``: a
    group's additions then run through contiguous memory.
    """
    width = z.shape[1]
    m = n_draws
    out = np.zeros((n_blocks, m, width))
    nd = np.uint64(n_draws)
    table = np.zeros((256, width))
    lowest = np.zeros(256, dtype=np.int64)  # index of the lowest set bit
    for mask in range(1, 256):
        lowest[mask] = lowest[mask >> 1] + 1 if (mask & 1) == 0 else 0
    masks = np.zeros(m, dtype=np.int64)
    for g in range(first_group, last_group):
        b = block_of_group[g]
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
                out[b, dd, j] += table[entry, j]
    return out


def high_sums(
    z: np.ndarray,
    ids: np.ndarray,
    block_of_group: np.ndarray,
    n_blocks: int,
    *,
    key: int,
    k: int,
    n_draws: int,
    threads: int = 1,
) -> np.ndarray:
    """Per draw and block, the sum of the rows whose cluster's weight is high: ``(n_draws, n_blocks, width)``.

    Parameters
    ----------
    z
        Rows (float64), eight per group, each group within one block; padding rows are zeros.  Widths that
        are multiples of eight add whole vectors (about twice as fast as 15 columns).
    ids
        Cluster of each row (int64); rows of one cluster share its weight in every draw.
    block_of_group
        Block of each group of eight rows.
    n_blocks
        Number of blocks.
    key, k, n_draws
        Generator key, threshold of the 16-bit comparison and number of draws (see the module notes).
    threads
        Python threads for the two fixed halves of the groups (the compiled loop releases the GIL).  The
        halves are always summed separately and then added, so the result does not depend on the threads.
    """
    args = (np.ascontiguousarray(z, dtype=np.float64), np.asarray(ids, dtype=np.int64),
            np.asarray(block_of_group, dtype=np.int64), int(n_blocks), np.uint64(key), np.uint64(k), int(n_draws))
    n_groups = len(block_of_group)
    halves = [(0, n_groups // 2), (n_groups // 2, n_groups)]
    if threads <= 1:
        parts = [_high_sums(*args, lo, hi) for lo, hi in halves]
    else:
        with ThreadPoolExecutor(max_workers=2) as pool:
            parts = list(pool.map(lambda half: _high_sums(*args, *half), halves))
    return np.ascontiguousarray((parts[0] + parts[1]).transpose(1, 0, 2))
