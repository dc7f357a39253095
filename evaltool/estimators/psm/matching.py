"""Nearest-neighbour matching on arrays: 1:k, with or without replacement.

The engine knows nothing about schools or configs: it takes a treatment
indicator, a 1-D score (the logit of the propensity score by default) and/or a
covariate matrix, and returns who is matched to whom.

Algorithms (all O(n log n))
---------------------------
* **Score distance, with replacement**: comparison units sorted by (exact-match
  group, score); each treated unit's insertion point comes from one merged
  sort, and its k nearest neighbours lie among the k units either side of it,
  so a (n_treated × 2k) candidate array gives the answer.
* **Score distance, without replacement**: greedy matching in a fixed order
  (MatchIt's default ``m.order = "largest"``: treated units with the largest
  score choose first; see the ``matchit()`` and ``method_nearest`` reference
  pages of MatchIt 4.x), each taking the nearest comparison unit still
  available, found with "next available" union-find pointers
  (:mod:`._greedy`).  With k > 1 there are k passes, as in MatchIt.
* **Mahalanobis distance**: covariates whitened with the Cholesky factor of the
  pooled within-group covariance, neighbours from ``scipy.spatial.cKDTree``;
  exact-match groups are kept apart by a large offset coordinate, and a
  propensity-score caliper (if any) is applied to the candidates.  Without
  replacement, candidate lists are extended (4× more neighbours) only for the
  units that exhaust them.

Ties are broken reproducibly: the order among treated units with equal scores,
and the order of comparison units with equal scores, come from a permutation
drawn from the ``rng`` passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.spatial import cKDTree

from evaltool.errors import EstimationError
from evaltool.estimators.psm._greedy import greedy_1d, greedy_candidates

Order = Literal["largest", "smallest", "random", "data"]
Discard = Literal["none", "treated", "control", "both"]

#: Reasons a treated unit is not matched (codes in :attr:`MatchResult.treated_status`).
STATUS_MATCHED = 0
STATUS_NO_SUPPORT = 1
STATUS_NO_CONTROL = 2


@dataclass(frozen=True)
class MatchResult:
    """Who is matched to whom.

    Attributes
    ----------
    pair_treated, pair_control
        Unit indices (into the arrays given to :func:`match`) of each matched
        pair; a treated unit with k matches appears in k pairs.
    subclass
        Matched-set id of each pair (one per matched treated unit).
    weights
        MatchIt-style matching weights per unit: 1 for matched treated units;
        for a comparison unit the sum over its matched treated units of
        1 / (number of controls of that treated unit), rescaled so comparison
        weights sum to the number of distinct matched comparison units; 0 for
        units not in the matched sample.
    unit_subclass
        Subclass of each unit (-1 if unmatched, or matched with replacement
        to several sets: then a unit has no single subclass).
    treated_status
        For each unit: 0 matched (or a comparison unit), 1 treated unit outside
        common support, 2 treated unit with no comparison unit available (caliper,
        exact-match group, or all used).
    n_matches
        Number of comparison units matched to each unit (0 for comparison units).
    """

    pair_treated: np.ndarray
    pair_control: np.ndarray
    subclass: np.ndarray
    weights: np.ndarray
    unit_subclass: np.ndarray
    treated_status: np.ndarray
    n_matches: np.ndarray
    replace: bool

    @property
    def n_pairs(self) -> int:
        return int(self.pair_treated.size)

    @property
    def matched(self) -> np.ndarray:
        """Boolean mask of units in the matched sample."""
        return self.weights > 0


def common_support(score: np.ndarray, treat: np.ndarray, discard: Discard) -> np.ndarray:
    """Mask of units kept by common-support trimming on ``score``.

    ``"treated"`` drops treated units outside the comparison group's score
    range, ``"control"`` drops comparison units outside the treated range,
    ``"both"`` does both, ``"none"`` keeps everyone (MatchIt's ``discard``).
    """
    keep = np.ones(score.shape[0], dtype=bool)
    if discard == "none":
        return keep
    t_lo, t_hi = score[treat].min(), score[treat].max()
    c_lo, c_hi = score[~treat].min(), score[~treat].max()
    if discard in ("treated", "both"):
        keep &= ~treat | ((score >= c_lo) & (score <= c_hi))
    if discard in ("control", "both"):
        keep &= treat | ((score >= t_lo) & (score <= t_hi))
    return keep


def treated_order(score: np.ndarray | None, n: int, order: Order, rng: np.random.Generator) -> np.ndarray:
    """Order in which treated units choose (positions 0..n-1), ties broken by ``rng``."""
    tiebreak = rng.permutation(n)
    if order == "data":
        return np.arange(n)
    if order == "random":
        return tiebreak
    if score is None:
        raise EstimationError(f"order '{order}' needs a propensity score; use order: data or random.", user_error=True)
    key = -score if order == "largest" else score
    return np.lexsort((tiebreak, key))


def _group_codes(exact: np.ndarray | None, n: int) -> np.ndarray:
    if exact is None:
        return np.zeros(n, dtype=np.int64)
    exact = np.asarray(exact)
    if exact.ndim == 1:
        return exact.astype(np.int64)
    return np.unique(exact, axis=0, return_inverse=True)[1].reshape(-1).astype(np.int64)


def match(
    treat: np.ndarray,
    *,
    score: np.ndarray | None = None,
    covariates: np.ndarray | None = None,
    distance: Literal["score", "mahalanobis"] = "score",
    ratio: int = 1,
    replace: bool = False,
    caliper: float | None = None,
    exact: np.ndarray | None = None,
    eligible: np.ndarray | None = None,
    order: Order = "largest",
    rng: np.random.Generator,
) -> MatchResult:
    """Nearest-neighbour matching for the ATT (each treated unit gets up to ``ratio`` controls).

    Parameters
    ----------
    treat
        Boolean treatment indicator, one per unit.
    score
        1-D distance score (e.g. the logit of the propensity score).  Needed for
        ``distance="score"``, for a caliper and for orders ``largest``/``smallest``.
    covariates
        (n, p) matrix for ``distance="mahalanobis"``.
    ratio
        Number of comparison units per treated unit (k of 1:k).
    replace
        Whether a comparison unit may be matched to several treated units.
    caliper
        Largest allowed |score difference| on the score's own scale (``None``:
        no caliper).
    exact
        Integer codes (n,) or (n, m) of categories that must match exactly.
    eligible
        Units allowed in the match (e.g. after common-support trimming);
        ineligible treated units get status 1.
    order
        Order of greedy matching without replacement.
    rng
        Generator for tie-breaking.

    Returns
    -------
    MatchResult
    """
    treat = np.asarray(treat, dtype=bool)
    n = treat.size
    eligible = np.ones(n, dtype=bool) if eligible is None else np.asarray(eligible, dtype=bool)
    groups = _group_codes(exact, n)
    t_idx = np.flatnonzero(treat)
    c_idx = np.flatnonzero(~treat & eligible)
    cal = np.inf if caliper is None else float(caliper)
    if distance == "score":
        if score is None:
            raise ValueError("distance='score' needs a score")
        matches = _match_score(score, groups, t_idx, c_idx, eligible[t_idx], cal, ratio, replace, order, rng)
    else:
        if covariates is None:
            raise ValueError("distance='mahalanobis' needs covariates")
        matches = _match_mahalanobis(
            covariates, treat, score, groups, t_idx, c_idx, eligible[t_idx], cal, ratio, replace, order, rng
        )
    return _assemble(matches, t_idx, c_idx, treat, eligible, replace)


# ---------------------------------------------------------------- 1-D score
def _match_score(
    score: np.ndarray,
    groups: np.ndarray,
    t_idx: np.ndarray,
    c_idx: np.ndarray,
    active: np.ndarray,
    caliper: float,
    ratio: int,
    replace: bool,
    order: Order,
    rng: np.random.Generator,
) -> np.ndarray:
    """(n_treated, ratio) matrix of comparison positions in ``c_idx`` (-1: none)."""
    score = np.asarray(score, dtype=np.float64)
    n_t, n_c = t_idx.size, c_idx.size
    tiebreak = rng.permutation(n_t + n_c)
    # One merged sort by (group, score, tie-break): a treated unit's insertion point
    # among comparison units is the number of comparison units sorted before it.
    all_units = np.concatenate([t_idx, c_idx])
    is_c = np.concatenate([np.zeros(n_t, dtype=bool), np.ones(n_c, dtype=bool)])
    merged = np.lexsort((tiebreak, score[all_units], groups[all_units]))
    before = np.cumsum(is_c[merged]) - is_c[merged]
    position = np.empty(n_t + n_c, dtype=np.int64)
    position[merged] = before
    c_sorted = merged[is_c[merged]] - n_t  # positions into c_idx, sorted
    score_c = score[c_idx][c_sorted]
    group_c = groups[c_idx][c_sorted]
    score_t = score[t_idx]
    group_t = groups[t_idx]
    pos_t = position[:n_t]
    if replace:
        sorted_pos = _knn_window(pos_t, score_t, group_t, score_c, group_c, caliper, ratio, active)
    else:
        chosen_order = treated_order(score_t, n_t, order, rng)
        sorted_pos = greedy_1d(chosen_order, pos_t, score_t, group_t, score_c, group_c, caliper, ratio, active)
    return np.where(sorted_pos >= 0, c_sorted[np.maximum(sorted_pos, 0)], -1)


def _knn_window(
    pos_t: np.ndarray,
    score_t: np.ndarray,
    group_t: np.ndarray,
    score_c: np.ndarray,
    group_c: np.ndarray,
    caliper: float,
    ratio: int,
    active: np.ndarray,
) -> np.ndarray:
    """k nearest sorted comparison units of each treated unit (with replacement)."""
    n_c = score_c.size
    offsets = np.arange(-ratio, ratio)
    cand = pos_t[:, None] + offsets[None, :]
    inside = (cand >= 0) & (cand < n_c)
    safe = np.clip(cand, 0, max(n_c - 1, 0))
    if n_c == 0:
        return np.full((pos_t.size, ratio), -1, dtype=np.int64)
    dist = np.abs(score_c[safe] - score_t[:, None])
    ok = inside & (group_c[safe] == group_t[:, None]) & (dist <= caliper) & active[:, None]
    dist = np.where(ok, dist, np.inf)
    pick = np.argsort(dist, axis=1, kind="stable")[:, :ratio]
    chosen = np.take_along_axis(cand, pick, axis=1)
    found = np.isfinite(np.take_along_axis(dist, pick, axis=1))
    return np.where(found, chosen, -1).astype(np.int64)


# ------------------------------------------------------------- Mahalanobis
def whiten(covariates: np.ndarray, treat: np.ndarray) -> np.ndarray:
    """Covariates rotated so Euclidean distance is the Mahalanobis distance.

    Uses the pooled within-group covariance S = ((n₁−1)S₁ + (n₀−1)S₀)/(n−2)
    and its Cholesky factor L (S = LLᵀ): z = L⁻¹(x − x̄), so
    ‖z_i − z_j‖² = (x_i − x_j)ᵀ S⁻¹ (x_i − x_j).
    """
    x = np.asarray(covariates, dtype=np.float64)
    centred = np.empty_like(x)
    for g in (True, False):  # two groups, not a loop over units
        centred[treat == g] = x[treat == g] - x[treat == g].mean(axis=0)
    cov = centred.T @ centred / max(x.shape[0] - 2, 1)
    try:
        chol = np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        raise EstimationError(
            "Mahalanobis matching: the covariates are collinear (their within-group covariance matrix is singular). "
            "Drop a covariate that is a combination of others, or use distance: logit.",
            user_error=True,
        ) from None
    from scipy.linalg import solve_triangular

    return solve_triangular(chol, (x - x.mean(axis=0)).T, lower=True).T


def _match_mahalanobis(
    covariates: np.ndarray,
    treat: np.ndarray,
    score: np.ndarray | None,
    groups: np.ndarray,
    t_idx: np.ndarray,
    c_idx: np.ndarray,
    active: np.ndarray,
    caliper: float,
    ratio: int,
    replace: bool,
    order: Order,
    rng: np.random.Generator,
) -> np.ndarray:
    z = whiten(covariates, treat)
    n_t, n_c = t_idx.size, c_idx.size
    out = np.full((n_t, ratio), -1, dtype=np.int64)
    if n_c == 0:
        return out
    span = float(np.ptp(z, axis=0).max()) + 1.0
    # Exact-match groups far apart: a neighbour from another group is never nearer than one from the same group.
    offset = groups.astype(np.float64) * span * 1e3
    tree = cKDTree(np.column_stack([z[c_idx], offset[c_idx]]))
    query_points = np.column_stack([z[t_idx], offset[t_idx]])
    sc = None if score is None else np.asarray(score, dtype=np.float64)

    def candidates(rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, n_c)
        _, ind = tree.query(query_points[rows], k=k)
        ind = ind.reshape(rows.size, k)
        valid = groups[c_idx][ind] == groups[t_idx][rows][:, None]
        if sc is not None and np.isfinite(caliper):
            valid &= np.abs(sc[c_idx][ind] - sc[t_idx][rows][:, None]) <= caliper
        return ind, valid

    if replace:
        pending = np.flatnonzero(active)
        width = ratio
        while pending.size:
            ind, valid = candidates(pending, width)
            done = (valid.sum(axis=1) >= ratio) | (ind.shape[1] >= n_c)
            rank = np.cumsum(valid, axis=1)
            for r in range(ratio):  # ratio is small (k of 1:k), not a loop over units
                hit = valid & (rank == r + 1)
                has = hit.any(axis=1) & done
                out[pending[has], r] = ind[has, hit[has].argmax(axis=1)]
            pending = pending[~done]
            width = min(n_c, width * 4)
        return out

    chosen_order = treated_order(sc[t_idx] if sc is not None else None, n_t, order, rng)
    k0 = min(n_c, 8 * ratio + 8)
    all_rows = np.arange(n_t)
    ind, valid = candidates(all_rows, k0)
    width = np.full(n_t, ind.shape[1])
    taken = np.zeros(n_c, dtype=bool)
    for r in range(ratio):  # k passes, as MatchIt
        still = active & ((out[:, r - 1] >= 0) if r > 0 else True)
        step = 0
        while step < n_t:
            complete = width >= n_c
            step = greedy_candidates(chosen_order, step, ind, valid, taken, complete, out, r, still)
            if step < n_t:
                block = chosen_order[step : step + 1024]
                grow = block[~complete[block]]
                new_k = int(min(n_c, width[grow].max() * 4))
                more_ind, more_valid = candidates(grow, new_k)
                if more_ind.shape[1] > ind.shape[1]:
                    pad = more_ind.shape[1] - ind.shape[1]
                    ind = np.pad(ind, ((0, 0), (0, pad)), constant_values=-1)
                    valid = np.pad(valid, ((0, 0), (0, pad)), constant_values=False)
                ind[grow, : more_ind.shape[1]] = more_ind
                valid[grow, : more_ind.shape[1]] = more_valid
                width[grow] = more_ind.shape[1]
    return out


# ------------------------------------------------------------------ output
def _assemble(
    matches: np.ndarray, t_idx: np.ndarray, c_idx: np.ndarray, treat: np.ndarray, eligible: np.ndarray, replace: bool
) -> MatchResult:
    n = treat.size
    n_t = t_idx.size
    n_found = (matches >= 0).sum(axis=1)
    rows, cols = np.nonzero(matches >= 0)
    pair_treated = t_idx[rows]
    pair_control = c_idx[matches[rows, cols]]
    subclass_of_treated = np.full(n_t, -1, dtype=np.int64)
    has = n_found > 0
    subclass_of_treated[has] = np.arange(int(has.sum()))
    subclass = subclass_of_treated[rows]

    weights = np.zeros(n, dtype=np.float64)
    weights[t_idx[has]] = 1.0
    np.add.at(weights, pair_control, 1.0 / n_found[rows])
    controls = ~treat & (weights > 0)
    if controls.any():
        weights[controls] *= controls.sum() / weights[controls].sum()

    unit_subclass = np.full(n, -1, dtype=np.int64)
    unit_subclass[t_idx[has]] = subclass_of_treated[has]
    if not replace:
        unit_subclass[pair_control] = subclass
    status = np.zeros(n, dtype=np.int8)
    status[t_idx[~eligible[t_idx]]] = STATUS_NO_SUPPORT
    status[t_idx[eligible[t_idx] & ~has]] = STATUS_NO_CONTROL
    n_matches = np.zeros(n, dtype=np.int64)
    n_matches[t_idx] = n_found
    return MatchResult(
        pair_treated=pair_treated,
        pair_control=pair_control,
        subclass=subclass,
        weights=weights,
        unit_subclass=unit_subclass,
        treated_status=status,
        n_matches=n_matches,
        replace=replace,
    )
