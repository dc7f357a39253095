"""Trusts: who joins and when, grouping into trusts, collaboration type, federation form and depth checklist."""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from evaltool.data.simulate.constants import (
    _DEPTH_COLUMNS,
    _HARD_PROBABILITY_BY_TYPE,
    _SELECTION_FSM,
    _SELECTION_KS2,
    _TRUST_SIZE_PROBABILITIES,
    _TRUST_SIZES,
    _TYPE_PROBABILITIES,
    COLLABORATION_TYPES,
    DEPTH_ITEMS,
    REGIONS,
)
from evaltool.data.simulate.schools import _logistic, _Schools
from evaltool.data.simulate.settings import SimulationSettings


@dataclass(frozen=True)
class _Trusts:
    """Trust-level arrays, and per school its trust (-1: never), join year (0: never) and early flag."""

    trust_id: np.ndarray
    start_year: np.ndarray
    type_index: np.ndarray
    hard: np.ndarray
    answers: np.ndarray
    n_schools: np.ndarray
    school_trust: np.ndarray
    join_year: np.ndarray
    joined_early: np.ndarray
    selection_intercept: float | None


def _split_sizes(n_members: int, rng: np.random.Generator) -> list[int]:
    """Split ``n_members`` schools into trust sizes of 2-9 (most 2-4); one school stays alone."""
    sizes: list[int] = []
    remaining = n_members
    while remaining > 0:
        size = int(rng.choice(_TRUST_SIZES, p=_TRUST_SIZE_PROBABILITIES))
        if size >= remaining:
            size = remaining
        elif remaining - size == 1:
            size = size + 1 if size < _TRUST_SIZES[-1] else size - 1
        sizes.append(size)
        remaining -= size
    return sizes


def _group_into_trusts(members: np.ndarray, region: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """Group schools into trusts of 2-9, within region where possible.

    Schools are grouped region by region; schools left alone in their region are
    pooled across regions, and a last single school joins the smallest trust (or
    pairs with a school taken from it when all have 9).  A school that is the only
    member in total cannot form a trust and is left out (it never joins).
    """
    trusts: list[np.ndarray] = []
    singles: list[int] = []
    for r in range(len(REGIONS)):
        in_region = rng.permutation(members[region[members] == r])
        if in_region.size == 1:
            singles.append(int(in_region[0]))
            continue
        bounds = np.cumsum([0, *_split_sizes(in_region.size, rng)])
        trusts.extend(in_region[a:b] for a, b in pairwise(bounds))
    pool = np.asarray(singles, dtype=np.int64)
    if pool.size == 1 and trusts:
        smallest = int(np.argmin([t.size for t in trusts]))
        if trusts[smallest].size < _TRUST_SIZES[-1]:
            trusts[smallest] = np.append(trusts[smallest], pool)
        else:
            trusts.append(np.append(trusts[smallest][-1:], pool))
            trusts[smallest] = trusts[smallest][:-1]
    elif pool.size > 1:
        bounds = np.cumsum([0, *_split_sizes(pool.size, rng)])
        trusts.extend(pool[a:b] for a, b in pairwise(bounds))
    return trusts


def _solve_intercept(linear: np.ndarray, target: float) -> float:
    """Intercept ``alpha`` with ``mean(logistic(alpha + linear)) = target`` (bisection)."""
    low, high = -30.0, 30.0
    for _ in range(100):
        middle = (low + high) / 2.0
        if _logistic(middle + linear).mean() < target:
            low = middle
        else:
            high = middle
    return (low + high) / 2.0


def _draw_trusts(settings: SimulationSettings, schools: _Schools, rng: np.random.Generator) -> _Trusts:
    """Select joiners on observables, group them into trusts and draw each trust's features.

    Notes
    -----
    ``P(join) = logistic(alpha - 0.7·z(ks2) + 0.7·z(fsm))`` on the schools' baseline
    (first-year) latent KS2 mean and FSM share, with ``alpha`` solved so that the
    expected number of cohort joiners is ``share_joining · n_schools``.  The
    already-joined schools are a simple random sample drawn first.  Each trust's
    start year is uniform over ``cohorts`` (already-joined trusts: uniform over
    ``first_year - 3 … first_year - 1``), so joiners' cohorts are close to uniform.
    Depth answers are ``Bernoulli(logistic(η_dimension + item offset))`` with a
    latent ``η`` per trust and dimension, higher for hard federations.
    """
    n = settings.n_schools
    ks2, fsm = schools.ks2_latent[:, 0], schools.fsm_pct[:, 0]
    linear = (_SELECTION_KS2 * (ks2 - ks2.mean()) / ks2.std() + _SELECTION_FSM * (fsm - fsm.mean()) / fsm.std())

    n_already = round(settings.share_already_joined * n)
    already = np.zeros(n, dtype=bool)
    already[rng.choice(n, size=n_already, replace=False)] = True
    rest = np.flatnonzero(~already)
    target = min(settings.share_joining * n / max(rest.size, 1), 1.0)
    alpha = _solve_intercept(linear[rest], target) if 0.0 < target < 1.0 else math.copysign(math.inf, target - 0.5)
    joins = np.zeros(n, dtype=bool)
    joins[rest] = rng.random(rest.size) < _logistic(alpha + linear[rest])

    early_groups = _group_into_trusts(np.flatnonzero(already), schools.region, rng)
    cohort_groups = _group_into_trusts(np.flatnonzero(joins), schools.region, rng)
    early_years = np.arange(settings.first_year - 3, settings.first_year)
    start = np.concatenate([
        rng.choice(early_years, size=len(early_groups)),
        rng.choice(np.asarray(settings.cohorts), size=len(cohort_groups)),
    ]).astype(np.int64)
    groups = early_groups + cohort_groups
    n_trusts = len(groups)
    first_urn = np.asarray([schools.urn[g].min() for g in groups], dtype=np.int64)
    order = np.lexsort((first_urn, start))
    groups = [groups[k] for k in order]
    start = start[order]

    type_index = rng.choice(len(COLLABORATION_TYPES), size=n_trusts, p=_TYPE_PROBABILITIES)
    hard = rng.random(n_trusts) < np.asarray(_HARD_PROBABILITY_BY_TYPE)[type_index]
    latent = rng.normal(0.0, 1.0, size=(n_trusts, len(DEPTH_ITEMS)))
    latent += np.where(hard, 1.2, -0.8)[:, None] * np.array([1.0, 0.0, 0.0])
    latent += np.where(hard, 0.5, 0.0)[:, None] * np.array([0.0, 0.0, 1.0])
    dimension = np.repeat(np.arange(len(DEPTH_ITEMS)), [len(items) for items in DEPTH_ITEMS.values()])
    item_offset = np.zeros((n_trusts, len(_DEPTH_COLUMNS)))
    item_offset[:, :2] = np.where(hard, 2.0, -1.0)[:, None]  # formal status and shared governance
    answers = rng.random((n_trusts, len(_DEPTH_COLUMNS))) < _logistic(latent[:, dimension] + item_offset)

    school_trust = np.full(n, -1, dtype=np.int64)
    for k, group in enumerate(groups):
        school_trust[group] = k
    joined = school_trust >= 0
    join_year = np.zeros(n, dtype=np.int64)
    join_year[joined] = start[school_trust[joined]]
    width = max(4, len(str(n_trusts)))
    return _Trusts(
        trust_id=np.asarray([f"TR{k + 1:0{width}d}" for k in range(n_trusts)], dtype=object),
        start_year=start,
        type_index=type_index,
        hard=hard,
        answers=answers,
        n_schools=np.asarray([g.size for g in groups], dtype=np.int64),
        school_trust=school_trust,
        join_year=join_year,
        joined_early=joined & (join_year < settings.first_year),
        selection_intercept=float(alpha) if math.isfinite(alpha) else None,
    )


def _depth_organisation(answers: np.ndarray) -> np.ndarray:
    return answers[:, : len(DEPTH_ITEMS["organisation"])].mean(axis=1)
