"""Compiled multiplier-bootstrap sums for influence functions in cohort-block form.

Each bootstrap draw needs, per cohort block, ``Σ_i v_i Z_i`` over the block's rows ``Z_i`` (schools' centred
changes and a one, or their sums within clusters) with i.i.d. two-point weights ``v_i``.  As a dense
product this means generating and storing a draws × schools matrix of weights (25 million numbers for the
benchmark) and multiplying it with BLAS; both are bound by memory traffic.  Here the weights are never
stored: rows are taken four at a time, the 16 possible sums of a group's rows are tabulated once, and each
draw adds the one entry its four weights select (a quarter of the additions of the dense product, and no
multiplications).  Written by hand with numba because no library fuses
weight generation with the product.

Weights come from a counter-based generator, so a weight depends only on the key, the draw and the
cluster, never on the order or the threads in which it is computed: the weight of cluster ``c`` in draw
``d`` is set by 16 bits of ``SplitMix64(key + ((c // 4)·D + d)·γ)`` (bits ``16·(c mod 4)`` onwards; ``D``
the number of draws, ``γ`` SplitMix64's increment; Steele, Lea & Flood 2014, the generator numpy's
``SeedSequence`` documentation recommends for seeding), compared with the threshold ``k`` of
:func:`~evaltool.estimators.did.bootstrap.two_point`.  :func:`high_weights` computes the same weights
with numpy, for tests and small cases.
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


@njit(inline="always")
def _group_masks(ids: np.ndarray, r0: int, key: np.uint64, k: np.uint64, nd: np.uint64, d0: int, m: int, out: np.ndarray) -> None:
    """4-bit masks (bit ``s``: row ``r0 + s`` has a high weight) for draws ``d0 … d0 + m − 1`` into ``out``."""
    i0 = ids[r0]
    if (i0 & 3) == 0 and ids[r0 + 1] == i0 + 1 and ids[r0 + 2] == i0 + 2 and ids[r0 + 3] == i0 + 3:
        # Four consecutive clusters: one generator output gives all four weights.
        base = key + (np.uint64(i0 >> 2) * nd + np.uint64(d0)) * GAMMA
        for dd in range(m):
            h = _mix(base + np.uint64(dd) * GAMMA)
            out[dd] = (
                np.int64((h & _MASK16) >= k)
                | (np.int64(((h >> np.uint64(16)) & _MASK16) >= k) << 1)
                | (np.int64(((h >> np.uint64(32)) & _MASK16) >= k) << 2)
                | (np.int64((h >> np.uint64(48)) >= k) << 3)
            )
        return
    for dd in range(m):
        mask = 0
        for s in range(4):
            c = ids[r0 + s]
            h = _mix(key + (np.uint64(c >> 2) * nd + np.uint64(d0 + dd)) * GAMMA)
            if ((h >> np.uint64(16 * (c & 3))) & _MASK16) >= k:
                mask |= 1 << s
        out[dd] = mask


@njit(nogil=True, cache=True)
def _high_sums(
    z: np.ndarray,
    ids: np.ndarray,
    block_of_group: np.ndarray,
    n_blocks: int,
    key: np.uint64,
    k: np.uint64,
    n_draws: int,
    first: int,
    last: int,
    tile: int,
    chunk: int,
) -> np.ndarray:
    """``Σ_{rows of block b with a high weight in draw d} z_row`` for draws ``first … last − 1``.

    ``z`` has a multiple of four rows, each group of four within one block (``block_of_group``, sorted).
    Draws are taken ``tile`` at a time and groups ``chunk`` at a time (one block's), so the chunk's tables of
    subset sums and masks stay in cache while every draw of the tile adds its entries.
    """
    n_rows, width = z.shape
    n_groups = n_rows // 4
    out = np.zeros((last - first, n_blocks, width))
    nd = np.uint64(n_draws)
    tables = np.zeros((chunk, 16, width))
    masks = np.zeros((chunk, tile), dtype=np.int64)
    total = np.zeros(width)
    for d0 in range(first, last, tile):
        m = min(tile, last - d0)
        g0 = 0
        while g0 < n_groups:
            b = block_of_group[g0]
            g1 = g0
            while g1 < n_groups and g1 - g0 < chunk and block_of_group[g1] == b:
                g1 += 1
            for gi in range(g1 - g0):
                r0 = 4 * (g0 + gi)
                for mask in range(1, 16):  # subset sums: each adds one row to a smaller subset
                    low = mask & (-mask)
                    row = r0 + (0 if low == 1 else (1 if low == 2 else (2 if low == 4 else 3)))
                    prev = mask ^ low
                    for j in range(width):
                        tables[gi, mask, j] = tables[gi, prev, j] + z[row, j]
                _group_masks(ids, r0, key, k, nd, d0, m, masks[gi])
            for dd in range(m):
                total[:] = 0.0
                for gi in range(g1 - g0):
                    mask = masks[gi, dd]
                    for j in range(width):
                        total[j] += tables[gi, mask, j]
                for j in range(width):
                    out[d0 - first + dd, b, j] += total[j]
            g0 = g1
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
    tile: int = 256,
    chunk: int = 32,
) -> np.ndarray:
    """Per draw and block, the sum of the rows whose cluster's weight is high: ``(n_draws, n_blocks, width)``.

    Parameters
    ----------
    z
        Rows (float64), four per group, each group within one block; padding rows are zeros.
    ids
        Cluster of each row (int64); rows of one cluster share its weight in every draw.
    block_of_group
        Block of each group of four rows, sorted.
    n_blocks
        Number of blocks.
    key, k, n_draws
        Generator key, threshold of the 16-bit comparison and number of draws (see the module notes).
    threads
        Python threads splitting the draws (the compiled loop releases the GIL); the result does not depend
        on them.
    tile, chunk
        Draws per pass over the rows, and groups of rows tabulated at a time (cache blocking; the result does
        not depend on them).
    """
    args = (np.ascontiguousarray(z, dtype=np.float64), np.asarray(ids, dtype=np.int64),
            np.asarray(block_of_group, dtype=np.int64), int(n_blocks), np.uint64(key), np.uint64(k), int(n_draws))
    bounds = [round(n_draws * j / threads) for j in range(threads + 1)]
    if threads <= 1:
        return _high_sums(*args, 0, n_draws, tile, chunk)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        parts = list(pool.map(lambda j: _high_sums(*args, bounds[j], bounds[j + 1], tile, chunk), range(threads)))
    return np.concatenate(parts, axis=0)
