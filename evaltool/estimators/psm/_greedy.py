"""Compiled inner loops of greedy matching without replacement.

Greedy matching without replacement is sequential by definition: whether a
comparison unit is still available to the n-th treated unit depends on every
earlier choice.  The loop over treated units therefore cannot be vectorised; it
is compiled with numba (no Python loop over units) and each step costs
O(α(n)) thanks to "next available" union-find pointers over the sorted
comparison units (Tarjan 1975), so a full match is O(n log n) including the
sort.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _find(parent: np.ndarray, i: int) -> int:
    """Root of ``i`` with path halving."""
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


@njit(cache=True)
def greedy_1d(
    order: np.ndarray,
    position: np.ndarray,
    score_t: np.ndarray,
    group_t: np.ndarray,
    score_c: np.ndarray,
    group_c: np.ndarray,
    caliper: float,
    ratio: int,
    active: np.ndarray,
) -> np.ndarray:
    """Greedy nearest-neighbour matching on a 1-D score, without replacement.

    Parameters
    ----------
    order
        Treated units (indices into ``score_t``) in the order they choose.
    position
        For each treated unit, the number of comparison units sorted before it
        (its insertion point in ``score_c``).
    score_t, group_t
        Score and exact-match group of each treated unit.
    score_c, group_c
        Score and group of each comparison unit, sorted by (group, score).
    caliper
        Largest allowed |score difference| (``inf`` for none).
    ratio
        Controls per treated unit; matching runs ``ratio`` passes in ``order``.
    active
        Treated units allowed to match (False: trimmed before matching).

    Returns
    -------
    (n_treated, ratio) array of sorted-comparison positions, -1 where no match.
    """
    n_t = score_t.shape[0]
    n_c = score_c.shape[0]
    out = np.full((n_t, ratio), -1, dtype=np.int64)
    # Comparison positions are shifted by one; 0 and n_c + 1 are sentinels.
    right = np.arange(n_c + 2)
    left = np.arange(n_c + 2)
    still = active.copy()
    for r in range(ratio):
        for k in range(order.shape[0]):
            t = order[k]
            if not still[t]:
                continue
            p = position[t] + 1
            hi = _find(right, p)
            lo = _find(left, p - 1)
            best = -1
            best_d = np.inf
            if lo >= 1 and group_c[lo - 1] == group_t[t]:
                d = abs(score_t[t] - score_c[lo - 1])
                if d <= caliper:
                    best = lo
                    best_d = d
            if hi <= n_c and group_c[hi - 1] == group_t[t]:
                d = abs(score_c[hi - 1] - score_t[t])
                if d <= caliper and d < best_d:
                    best = hi
                    best_d = d
            if best < 0:
                still[t] = False  # no further matches in later passes either
                continue
            out[t, r] = best - 1
            right[best] = best + 1
            left[best] = best - 1
    return out


@njit(cache=True)
def greedy_candidates(
    order: np.ndarray,
    start: int,
    candidates: np.ndarray,
    valid: np.ndarray,
    taken: np.ndarray,
    complete: np.ndarray,
    out: np.ndarray,
    column: int,
    still: np.ndarray,
) -> int:
    """Greedy matching from precomputed nearest-candidate lists (Mahalanobis).

    Walks ``order`` from ``start``; each treated unit takes its first valid
    candidate that is not yet taken.  Stops and returns the step at which a unit
    has exhausted an *incomplete* candidate list (the caller queries more
    candidates for it and resumes there); returns ``len(order)`` when done.
    ``complete[t]`` says the list of ``t`` holds every comparison unit, so an
    exhausted list means no match.
    """
    for k in range(start, order.shape[0]):
        t = order[k]
        if not still[t]:
            continue
        chosen = -1
        for j in range(candidates.shape[1]):
            c = candidates[t, j]
            if c >= 0 and valid[t, j] and not taken[c]:
                chosen = c
                break
        if chosen < 0:
            if complete[t]:
                still[t] = False
                continue
            return k
        taken[chosen] = True
        out[t, column] = chosen
    return order.shape[0]
