"""Simulate English secondary schools, some of which join trusts or federations.

The simulator produces four coherent tables and the exact truth of every effect:

* ``panel`` (school x year), ``subgroups`` (school x year x pupil subgroup) and
  ``pupils`` (pupil level, only ``settings.pupil_years``) are all computed from
  one set of simulated pupils, so the school means are the means of the pupils;
* ``trusts`` (one row per trust) holds the collaboration type, the federation
  form and the depth checklist of Atkinson et al. (2007, Appendix 6);
* ``truth`` holds the structural parameters and the *realised* average effects
  (group-time, event time, cohort, type, form, trust, subgroup and every treated
  school-year), so a test can compute the truth of any estimand exactly.

Every random draw comes from one :class:`numpy.random.Generator` built from
``settings.seed`` and passed down explicitly, in a fixed order that does not
depend on ``effect_scale`` or ``pretrend_slope``: two simulations that differ only
in those settings share every pupil and every shock, so their difference is the
effect (or the pre-trend) alone.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from itertools import pairwise
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from evaltool.data.trusts import DEPTH_CHECKLIST
from evaltool.errors import ConfigError

__all__ = [
    "COLLABORATION_TYPES",
    "DEPTH_ITEMS",
    "ETHNIC_GROUPS",
    "REGIONS",
    "SUBGROUPS",
    "SimulatedData",
    "SimulationSettings",
    "depth_scores",
    "simulate",
    "write_simulation",
]

#: The nine English regions (ONS names).
REGIONS: Final[tuple[str, ...]] = (
    "North East",
    "North West",
    "Yorkshire and The Humber",
    "East Midlands",
    "West Midlands",
    "East of England",
    "London",
    "South East",
    "South West",
)
_LONDON: Final[int] = REGIONS.index("London")
#: Approximate number of local authorities per region (weights for assigning LAs).
_REGION_LA_WEIGHTS: Final[tuple[float, ...]] = (12, 23, 15, 9, 14, 11, 33, 19, 15)
#: Deprivation offset of each region (latent scale, sd of schools ≈ 1).
_REGION_DEPRIVATION: Final[tuple[float, ...]] = (0.35, 0.2, 0.15, 0.0, 0.2, -0.25, 0.3, -0.35, -0.2)

#: Major ethnic groups of the school census.
ETHNIC_GROUPS: Final[tuple[str, ...]] = ("White", "Asian", "Black", "Mixed", "Chinese", "Other")
#: Rough share of secondary pupils in each major group by region (rows follow ``REGIONS``).
_REGION_ETHNICITY: Final[tuple[tuple[float, ...], ...]] = (
    (0.89, 0.05, 0.015, 0.03, 0.005, 0.01),
    (0.80, 0.10, 0.02, 0.05, 0.005, 0.025),
    (0.77, 0.13, 0.02, 0.05, 0.005, 0.025),
    (0.79, 0.09, 0.03, 0.06, 0.005, 0.025),
    (0.68, 0.17, 0.05, 0.06, 0.005, 0.035),
    (0.80, 0.06, 0.04, 0.06, 0.005, 0.035),
    (0.37, 0.22, 0.18, 0.12, 0.01, 0.10),
    (0.80, 0.07, 0.03, 0.06, 0.005, 0.035),
    (0.88, 0.03, 0.015, 0.05, 0.005, 0.02),
)
#: Relative odds of each ethnic group among pupils with English as an additional language.
_EAL_ETHNICITY_MULTIPLIER: Final[tuple[float, ...]] = (0.35, 2.5, 1.5, 0.5, 2.5, 3.0)

#: Collaboration types by aim (Atkinson et al. 2007).
COLLABORATION_TYPES: Final[tuple[str, ...]] = ("expertise", "cultural", "geographic", "commonality", "innovation")
_TYPE_PROBABILITIES: Final[tuple[float, ...]] = (0.30, 0.15, 0.25, 0.15, 0.15)
_HARD_PROBABILITY_BY_TYPE: Final[tuple[float, ...]] = (0.60, 0.30, 0.50, 0.35, 0.35)

#: Depth checklist items per dimension (Atkinson et al. 2007, Appendix 6): the one definition, in data/trusts.py.
DEPTH_ITEMS: Final[Mapping[str, tuple[str, ...]]] = DEPTH_CHECKLIST
_DEPTH_COLUMNS: Final[tuple[str, ...]] = tuple(item for items in DEPTH_ITEMS.values() for item in items)

#: (subgroup_type, subgroup) of the subgroup panel, in output order.
SUBGROUPS: Final[tuple[tuple[str, str], ...]] = (
    ("disadvantage", "disadvantaged"),
    ("disadvantage", "not_disadvantaged"),
    ("gender", "girls"),
    ("gender", "boys"),
    ("eal", "eal"),
    ("eal", "not_eal"),
    ("sen", "sen"),
    ("sen", "not_sen"),
    ("prior_attainment", "low_prior"),
    ("prior_attainment", "middle_prior"),
    ("prior_attainment", "high_prior"),
)

_TRUST_SIZES: Final[tuple[int, ...]] = (2, 3, 4, 5, 6, 7, 8, 9)
_TRUST_SIZE_PROBABILITIES: Final[tuple[float, ...]] = (0.40, 0.22, 0.14, 0.08, 0.06, 0.04, 0.03, 0.03)

# Structural treatment-effect parameters (Attainment 8 points, before ``effect_scale``).
_BASE_EFFECT: Final[Mapping[str, float]] = MappingProxyType(
    {"expertise": 2.0, "cultural": 0.5, "geographic": 1.0, "commonality": 1.0, "innovation": 1.5}
)
_HARD_FEDERATION_EFFECT: Final[float] = 0.5
_DEPTH_ORGANISATION_EFFECT: Final[float] = 1.5
_DEPTH_CENTRE: Final[float] = 0.5
_EVENT_TIME_SLOPE: Final[float] = 0.4
_EVENT_TIME_CAP: Final[int] = 4
_COHORT_SLOPE: Final[float] = 0.1
_SUBGROUP_EXTRA: Final[Mapping[str, float]] = MappingProxyType({"disadvantaged": 1.5, "low_prior": 1.0, "eal": 0.5})

# Untreated outcome model (pupil level).
_Y_INTERCEPT: Final[float] = 46.0
_Y_KS2_SLOPE: Final[float] = 1.2
_Y_KS2_CENTRE: Final[float] = 105.0
_Y_DISADVANTAGED: Final[float] = -5.0
_Y_SEN: Final[float] = -4.0
_Y_FEMALE: Final[float] = 2.0
_PUPIL_SD: Final[float] = 12.0
_SCHOOL_YEAR_SD: Final[float] = 1.0
_SCHOOL_SD: Final[float] = 2.0
_SCHOOL_KS2_SLOPE: Final[float] = 0.6
_SCHOOL_FSM_SLOPE: Final[float] = -0.08
_YEAR_SHOCK_LEVEL: Final[float] = 2.0
_YEAR_SHOCK_STEP_SD: Final[float] = 0.3
#: Grade inflation of the years without normal exams (2022 graded midway back to 2019).
_GRADE_INFLATION: Final[Mapping[int, float]] = MappingProxyType({2020: 4.0, 2021: 3.5, 2022: 1.5})
_GRADING: Final[Mapping[int, str]] = MappingProxyType({2020: "centre_assessed", 2021: "teacher_assessed"})
_OUTCOME_RANGE: Final[tuple[float, float]] = (0.0, 90.0)

# School characteristics.
_KS2_LATENT_MEAN: Final[float] = 104.9  # pupils' mean ≈ 104.5 once the disadvantage shift applies
_KS2_PUPIL_SD: Final[float] = 5.0
_KS2_DISADVANTAGED: Final[float] = -1.5
_KS2_RANGE: Final[tuple[int, int]] = (80, 120)
_SELECTION_KS2: Final[float] = -0.7
_SELECTION_FSM: Final[float] = 0.7

_SUBGROUP_TYPES: Final[tuple[str, ...]] = ("disadvantage", "gender", "eal", "sen", "prior_attainment")
_PANEL_ROUNDING: Final[Mapping[str, int]] = MappingProxyType(
    {"attainment8": 1, "ks2_prior": 1, "fsm_pct": 1, "eal_pct": 1, "sen_pct": 1}
)


def _check(condition: bool, name: str, requirement: str, value: object) -> None:
    """Raise a :class:`ConfigError` naming the setting unless ``condition`` holds."""
    if not condition:
        raise ConfigError(f"The '{name}' parameter of SimulationSettings must be {requirement}. Got {value!r} instead.")


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


@dataclass(frozen=True)
class SimulationSettings:
    """Settings of :func:`simulate`; all have defaults.

    Parameters
    ----------
    seed
        Seed of the :class:`numpy.random.Generator`; the same settings always give
        identical data.
    n_schools
        Number of secondary schools (2-50,000; URNs are drawn from 100000-149999).
    n_local_authorities
        Number of local authorities (distinct 3-digit codes 201-938).
    first_year, last_year
        Academic years of the panel, named by the summer exam year.
    cohorts
        Years in which trusts start (the first treated academic year ``g``), all
        within ``first_year … last_year``.
    share_joining
        Approximate share of all schools that join a trust in one of ``cohorts``.
    share_already_joined
        Share of schools that joined before the panel starts (join years
        ``first_year - 3 … first_year - 1``); they are treated in every year.
    pupils_per_school
        Mean KS4 cohort size; school means vary (about 0.45-1.7 times this).
    pupil_years
        Years written to the pupil-level table.
    pretrend_slope
        Slope (points per year) of the joiners' untreated outcome before joining:
        ``pretrend_slope · (t - g)`` is added for ``t < g``.  0 means parallel
        trends hold; -0.8 makes joiners decline by 0.8 points a year before joining.
    effect_scale
        Multiplies every treatment effect; 0 gives no effect anywhere.
    missing_outcome_rate, missing_covariate_rate
        Share of school-panel outcome and covariate values set missing.
    share_unbalanced
        Share of schools missing some years (opened late, closed early or a gap).
    """

    seed: int = 2024
    n_schools: int = 400
    n_local_authorities: int = 50
    first_year: int = 2012
    last_year: int = 2023
    cohorts: tuple[int, ...] = (2014, 2015, 2016, 2017, 2018, 2019)
    share_joining: float = 0.45
    share_already_joined: float = 0.03
    pupils_per_school: int = 180
    pupil_years: tuple[int, ...] = (2018, 2019)
    pretrend_slope: float = 0.0
    effect_scale: float = 1.0
    missing_outcome_rate: float = 0.01
    missing_covariate_rate: float = 0.005
    share_unbalanced: float = 0.05

    def __post_init__(self) -> None:
        """Validate every setting and normalise the year tuples (sorted ints)."""
        _check(_is_int(self.seed) and self.seed >= 0, "seed", "a non-negative int", self.seed)
        _check(_is_int(self.n_schools) and 2 <= self.n_schools <= 50_000, "n_schools", "an int in [2, 50000]",
               self.n_schools)
        _check(_is_int(self.n_local_authorities) and 1 <= self.n_local_authorities <= 738, "n_local_authorities",
               "an int in [1, 738]", self.n_local_authorities)
        _check(_is_int(self.first_year), "first_year", "an int", self.first_year)
        _check(_is_int(self.last_year) and self.last_year > self.first_year, "last_year",
               f"an int greater than first_year ({self.first_year})", self.last_year)
        for name in ("cohorts", "pupil_years"):
            value = getattr(self, name)
            _check(isinstance(value, (tuple, list)) and all(_is_int(v) for v in value), name,
                   "a tuple of int years", value)
            _check(len(set(value)) == len(value), name, "a tuple of distinct years", value)
            _check(all(self.first_year <= v <= self.last_year for v in value), name,
                   f"years within first_year … last_year ({self.first_year}-{self.last_year})", value)
            object.__setattr__(self, name, tuple(sorted(int(v) for v in value)))
        _check(len(self.cohorts) > 0, "cohorts", "a non-empty tuple of years", self.cohorts)
        for name in ("share_joining", "share_already_joined", "share_unbalanced"):
            value = getattr(self, name)
            _check(_is_real(value) and 0.0 <= value <= 1.0, name, "a float in [0, 1]", value)
        _check(self.share_joining + self.share_already_joined <= 1.0, "share_already_joined",
               f"at most 1 - share_joining ({1.0 - self.share_joining:g})", self.share_already_joined)
        for name in ("missing_outcome_rate", "missing_covariate_rate"):
            value = getattr(self, name)
            _check(_is_real(value) and 0.0 <= value < 1.0, name, "a float in [0, 1)", value)
        _check(_is_int(self.pupils_per_school) and 10 <= self.pupils_per_school <= 2000, "pupils_per_school",
               "an int in [10, 2000]", self.pupils_per_school)
        for name in ("pretrend_slope", "effect_scale"):
            value = getattr(self, name)
            _check(_is_real(value) and math.isfinite(value), name, "a finite float", value)


@dataclass
class SimulatedData:
    """The simulated tables and their truth.

    Attributes
    ----------
    panel
        School x year: ``urn, la_code, region, year, grading, attainment8,
        ks2_prior, fsm_pct, eal_pct, sen_pct, cohort_size, join_year, in_trust,
        trust_id``.  Means of the pupils, unrounded; some values missing.
    subgroups
        School x year x subgroup (long): ``urn, year, subgroup_type, subgroup,
        n_pupils, attainment8``; cells without pupils are omitted.
    pupils
        Pupil level for ``settings.pupil_years``: ``pupil_id, urn, year,
        attainment8, ks2_score, prior_band, disadvantaged, female, eal, sen,
        ethnicity``.
    trusts
        One row per trust: ``trust_id, collaboration_type, federation_form,
        n_schools, start_year`` and the twelve depth checklist answers
        (``"yes"``/``"no"``, see :data:`DEPTH_ITEMS`).
    truth
        JSON-serialisable parameters and realised effects (see :func:`simulate`).
    settings
        The settings that produced the data.
    """

    panel: pd.DataFrame
    subgroups: pd.DataFrame
    pupils: pd.DataFrame
    trusts: pd.DataFrame
    truth: dict[str, Any]
    settings: SimulationSettings


@dataclass(frozen=True)
class _Schools:
    """School-level arrays; time-varying ones have shape (n_schools, n_years)."""

    years: np.ndarray
    urn: np.ndarray
    la_code: np.ndarray
    region: np.ndarray
    ks2_latent: np.ndarray
    fsm_pct: np.ndarray
    eal_pct: np.ndarray
    sen_pct: np.ndarray
    cohort_size: np.ndarray
    female_share: np.ndarray
    ethnicity_cumulative: np.ndarray
    school_effect: np.ndarray
    observed: np.ndarray


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


def _logistic(x: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))


def _normalise_rows(matrix: np.ndarray) -> np.ndarray:
    return matrix / matrix.sum(axis=1, keepdims=True)


def _random_walk(rng: np.random.Generator, shape: tuple[int, int], sd: float) -> np.ndarray:
    """Random walks along axis 1 that start at 0."""
    steps = rng.normal(0.0, sd, size=shape)
    steps[:, 0] = 0.0
    return np.cumsum(steps, axis=1)


def _draw_schools(settings: SimulationSettings, years: np.ndarray, rng: np.random.Generator) -> _Schools:
    """Draw local authorities, schools and their (slowly drifting) characteristics.

    Notes
    -----
    A latent deprivation ``dep = region offset + LA effect + school effect`` drives
    ``fsm_pct = 26 + 10·dep`` (clipped to 5-60) and, negatively, the school's
    latent KS2 mean (``104.9 - dep + N(0, 1.6²)``, between-school sd ≈ 2,
    correlation with FSM ≈ -0.5).  EAL rises with the share of ethnic minority
    pupils, which is highest in London.  Characteristics drift by national
    trends plus school random walks.
    """
    n, n_years = settings.n_schools, years.size
    n_la = settings.n_local_authorities

    # Local authorities: distinct codes, a region each (every region used when there are enough LAs).
    la_codes = np.sort(rng.choice(np.arange(201, 939), size=n_la, replace=False))
    region_weights = np.asarray(_REGION_LA_WEIGHTS, dtype=float)
    la_region = rng.choice(len(REGIONS), size=n_la, p=region_weights / region_weights.sum())
    if n_la >= len(REGIONS):
        la_region[rng.permutation(n_la)[: len(REGIONS)]] = np.arange(len(REGIONS))
    la_deprivation = np.asarray(_REGION_DEPRIVATION)[la_region] + rng.normal(0.0, 0.5, size=n_la)
    la_weight = rng.lognormal(0.0, 0.5, size=n_la) * np.where(la_region == _LONDON, 0.65, 1.0)
    region_ethnicity = _normalise_rows(np.asarray(_REGION_ETHNICITY))
    la_ethnicity = _normalise_rows(rng.gamma(40.0 * region_ethnicity[la_region]) + 1e-12)

    # Schools.
    urn = np.sort(rng.choice(50_000, size=n, replace=False) + 100_000).astype(np.int64)
    la = rng.choice(n_la, size=n, p=la_weight / la_weight.sum())
    region = la_region[la]
    deprivation = la_deprivation[la] + rng.normal(0.0, 0.8, size=n)
    fsm_base = np.clip(26.0 + 10.0 * deprivation, 5.0, 60.0)
    ks2_base = (_KS2_LATENT_MEAN - 1.0 * deprivation + 0.5 * (region == _LONDON) + rng.normal(0.0, 1.6, size=n))
    sen_base = np.clip(13.0 + 0.9 * deprivation + rng.normal(0.0, 2.0, size=n), 8.0, 20.0)
    ethnicity = _normalise_rows(rng.gamma(60.0 * la_ethnicity[la]) + 1e-12)
    eal_logit = -2.3 + 3.0 * (1.0 - ethnicity[:, 0] - 0.2) + rng.normal(0.0, 0.7, size=n)
    mean_size = np.clip(
        settings.pupils_per_school * rng.lognormal(-0.35**2 / 2, 0.35, size=n),
        0.45 * settings.pupils_per_school,
        1.7 * settings.pupils_per_school,
    )
    single_sex = rng.random(n)
    female_share = np.where(single_sex < 0.02, 1.0, np.where(single_sex < 0.04, 0.0, 0.49))

    # Time drifts: national trends plus school random walks.
    year = years.astype(float)
    national_fsm = -0.4 * (np.minimum(year, 2019) - 2015.5) + 0.6 * np.maximum(year - 2019, 0.0)
    ks2_latent = ks2_base[:, None] + 0.08 * (year - year.mean())[None, :] + _random_walk(rng, (n, n_years), 0.25)
    fsm_pct = np.clip(fsm_base[:, None] + national_fsm[None, :] + _random_walk(rng, (n, n_years), 0.8), 5.0, 60.0)
    eal_pct = np.clip(
        100.0 * _logistic(eal_logit[:, None] + 0.03 * (year - year[0])[None, :]
                          + _random_walk(rng, (n, n_years), 0.05)),
        0.0,
        70.0,
    )
    sen_pct = np.clip(sen_base[:, None] + 0.1 * (year - year[0])[None, :] + _random_walk(rng, (n, n_years), 0.4),
                      6.0, 22.0)
    growth = 1.0 + 0.02 * np.maximum(year - 2018, 0.0)
    expected_size = mean_size[:, None] * growth[None, :] * np.exp(_random_walk(rng, (n, n_years), 0.04))
    cohort_size = np.maximum(rng.poisson(expected_size), 5).astype(np.int64)

    # Cumulative ethnicity probabilities per (school, eal) on a flat, increasing grid (see _draw_categories).
    eal_ethnicity = _normalise_rows(ethnicity * np.asarray(_EAL_ETHNICITY_MULTIPLIER))
    cumulative = np.cumsum(np.stack([ethnicity, eal_ethnicity], axis=1), axis=2)
    cumulative[..., -1] = 1.0

    school_effect = (_SCHOOL_KS2_SLOPE * (ks2_base - _KS2_LATENT_MEAN) + _SCHOOL_FSM_SLOPE * (fsm_base - 26.0)
                     + rng.normal(0.0, _SCHOOL_SD, size=n))
    observed = _draw_observed(settings, n_years, rng)
    return _Schools(
        years=years,
        urn=urn,
        la_code=la_codes[la].astype(np.int64),
        region=region,
        ks2_latent=ks2_latent,
        fsm_pct=fsm_pct,
        eal_pct=eal_pct,
        sen_pct=sen_pct,
        cohort_size=cohort_size,
        female_share=female_share,
        ethnicity_cumulative=cumulative.reshape(2 * n, len(ETHNIC_GROUPS)),
        school_effect=school_effect,
        observed=observed,
    )


def _draw_observed(settings: SimulationSettings, n_years: int, rng: np.random.Generator) -> np.ndarray:
    """Which school-years exist: a share of schools open late, close early or miss one year."""
    n = settings.n_schools
    observed = np.ones((n, n_years), dtype=bool)
    n_unbalanced = round(settings.share_unbalanced * n)
    chosen = np.sort(rng.choice(n, size=n_unbalanced, replace=False))
    kind = rng.choice(3, size=n_unbalanced, p=[0.4, 0.3, 0.3])
    if n_years < 3:
        kind[:] = 0
    offset = rng.integers(1, min(5, n_years - 1) + 1, size=n_unbalanced)
    gap = rng.integers(1, max(n_years - 1, 2), size=n_unbalanced)
    column = np.arange(n_years)[None, :]
    pattern = np.where(
        (kind == 0)[:, None],
        column >= offset[:, None],
        np.where((kind == 1)[:, None], column <= n_years - 1 - offset[:, None], column != gap[:, None]),
    )
    observed[chosen] = pattern
    return observed


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


@dataclass(frozen=True)
class _Design:
    """Shocks, pre-trends and school-level effects, shape (n_schools, n_years) unless noted."""

    year_shock: np.ndarray  # (n_years,)
    school_year_shock: np.ndarray
    pretrend: np.ndarray
    treated: np.ndarray
    school_tau: np.ndarray


def _draw_design(
    settings: SimulationSettings, schools: _Schools, trusts: _Trusts, rng: np.random.Generator
) -> _Design:
    """Year and school-year shocks, the joiners' pre-trend and the school part of the effect.

    Notes
    -----
    ``d_t = 2 + random walk (steps N(0, 0.3²)) + grade inflation``; ``u_it ~ N(0, 1)``.
    The school part of the effect is ``effect_scale·(base[type] + 0.5·hard
    + 1.5·(depth_organisation - 0.5) + 0.4·min(t - g, 4) + 0.1·(max(cohorts) - g))``
    for ``t >= g`` and 0 otherwise; the pupil extras are added in
    :func:`_simulate_pupils`.
    """
    years = schools.years
    steps = rng.normal(0.0, _YEAR_SHOCK_STEP_SD, size=years.size)
    steps[0] = 0.0
    inflation = np.asarray([_GRADE_INFLATION.get(int(t), 0.0) for t in years])
    school_year_shock = rng.normal(0.0, _SCHOOL_YEAR_SD, size=schools.observed.shape)

    trust = trusts.school_trust
    joined = trust >= 0
    g = np.where(joined, trusts.join_year, years[-1] + 1)[:, None]
    t = years[None, :]
    treated = joined[:, None] & (t >= g)
    base_effect = np.asarray([_BASE_EFFECT[name] for name in COLLABORATION_TYPES])[trusts.type_index]
    trust_part = (base_effect + _HARD_FEDERATION_EFFECT * trusts.hard
                  + _DEPTH_ORGANISATION_EFFECT * (_depth_organisation(trusts.answers) - _DEPTH_CENTRE)
                  + _COHORT_SLOPE * (max(settings.cohorts) - trusts.start_year))
    school_part = np.zeros(trust.size)
    school_part[joined] = trust_part[trust[joined]]
    school_tau = settings.effect_scale * (school_part[:, None] + _EVENT_TIME_SLOPE * np.minimum(t - g, _EVENT_TIME_CAP))
    return _Design(
        year_shock=_YEAR_SHOCK_LEVEL + np.cumsum(steps) + inflation,
        school_year_shock=school_year_shock,
        pretrend=np.where(joined[:, None] & (t < g), settings.pretrend_slope * (t - g), 0.0),
        treated=treated,
        school_tau=np.where(treated, school_tau, 0.0),
    )


def _draw_categories(
    cumulative_flat: np.ndarray, key: np.ndarray, uniform: np.ndarray, n_categories: int
) -> np.ndarray:
    """Inverse-CDF draws with a different distribution per ``key``, without a pupils x categories array.

    Row ``k`` of the cumulative table is shifted by ``k`` so the flattened table is
    increasing; ``searchsorted(k + u)`` then lands inside row ``k``.
    """
    shifted = (cumulative_flat + np.arange(cumulative_flat.shape[0])[:, None]).ravel()
    position = np.searchsorted(shifted, key + uniform, side="right")
    return np.minimum(position - n_categories * key, n_categories - 1)


@dataclass
class _Aggregates:
    """Sums over pupils per school-year, shape (n_schools, n_years[, n_subgroups])."""

    count: np.ndarray
    sum_y: np.ndarray
    sum_ks2: np.ndarray
    sum_disadvantaged: np.ndarray
    sum_eal: np.ndarray
    sum_sen: np.ndarray
    sum_effect: np.ndarray
    sub_count: np.ndarray
    sub_sum_y: np.ndarray
    sub_sum_effect: np.ndarray


def _simulate_pupils(
    settings: SimulationSettings, schools: _Schools, design: _Design, rng: np.random.Generator
) -> tuple[_Aggregates, pd.DataFrame]:
    """Draw every pupil of every observed school-year, one year at a time.

    Notes
    -----
    ``Y0 = 46 + a_i + d_t + u_it + pretrend_it + 1.2·(ks2 - 105) - 5·disadvantaged
    - 4·sen + 2·female + e``, ``e ~ N(0, 12²)``.  Treated pupils get ``Y =
    clip(Y0 + τ_it + effect_scale·(1.5·disadvantaged + 1.0·low_prior + 0.5·eal))``
    and the realised effect is ``Y - clip(Y0)``.
    """
    n, n_years = schools.observed.shape
    n_sub = len(SUBGROUPS)
    agg = _Aggregates(
        *(np.zeros((n, n_years)) for _ in range(7)),
        *(np.zeros((n, n_years, n_sub)) for _ in range(3)),
    )
    low, high = _OUTCOME_RANGE
    n_total = int(schools.cohort_size[schools.observed].sum())
    width = max(7, len(str(n_total)))
    pupil_years = set(settings.pupil_years)
    next_id = 1
    frames: list[pd.DataFrame] = []
    for j, year in enumerate(schools.years):
        rows = np.flatnonzero(schools.observed[:, j])
        local = np.repeat(np.arange(rows.size), schools.cohort_size[rows, j])
        school = rows[local]
        size = local.size
        disadvantaged = rng.random(size) < schools.fsm_pct[school, j] / 100.0
        female = rng.random(size) < schools.female_share[school]
        eal = rng.random(size) < schools.eal_pct[school, j] / 100.0
        sen = rng.random(size) < schools.sen_pct[school, j] / 100.0
        ks2 = np.clip(
            np.rint(schools.ks2_latent[school, j] + _KS2_DISADVANTAGED * disadvantaged
                    + rng.normal(0.0, _KS2_PUPIL_SD, size=size)),
            *_KS2_RANGE,
        ).astype(np.int64)
        ethnicity = _draw_categories(schools.ethnicity_cumulative, 2 * school + eal, rng.random(size),
                                     len(ETHNIC_GROUPS))
        y0 = (_Y_INTERCEPT + schools.school_effect[school] + design.year_shock[j]
              + design.school_year_shock[school, j] + design.pretrend[school, j]
              + _Y_KS2_SLOPE * (ks2 - _Y_KS2_CENTRE) + _Y_DISADVANTAGED * disadvantaged + _Y_SEN * sen
              + _Y_FEMALE * female + rng.normal(0.0, _PUPIL_SD, size=size))
        band = np.where(ks2 < 100, 0, np.where(ks2 < 110, 1, 2))
        extra = settings.effect_scale * (_SUBGROUP_EXTRA["disadvantaged"] * disadvantaged
                                         + _SUBGROUP_EXTRA["low_prior"] * (band == 0)
                                         + _SUBGROUP_EXTRA["eal"] * eal)
        y_untreated = np.clip(y0, low, high)
        y = np.where(design.treated[school, j], np.clip(y0 + design.school_tau[school, j] + extra, low, high),
                     y_untreated)
        effect = y - y_untreated

        def total(weights: np.ndarray, index: np.ndarray = local, length: int = rows.size) -> np.ndarray:
            return np.bincount(index, weights=weights, minlength=length)

        agg.count[rows, j] = total(np.ones(size))
        agg.sum_y[rows, j] = total(y)
        agg.sum_ks2[rows, j] = total(ks2.astype(float))
        agg.sum_disadvantaged[rows, j] = total(disadvantaged.astype(float))
        agg.sum_eal[rows, j] = total(eal.astype(float))
        agg.sum_sen[rows, j] = total(sen.astype(float))
        agg.sum_effect[rows, j] = total(effect)
        masks = (disadvantaged, ~disadvantaged, female, ~female, eal, ~eal, sen, ~sen, band == 0, band == 1, band == 2)
        for k, mask in enumerate(masks):
            agg.sub_count[rows, j, k] = total(mask.astype(float))
            agg.sub_sum_y[rows, j, k] = total(np.where(mask, y, 0.0))
            agg.sub_sum_effect[rows, j, k] = total(np.where(mask, effect, 0.0))

        if int(year) in pupil_years:
            ids = np.strings.add("P", np.strings.zfill(np.arange(next_id, next_id + size).astype(np.str_), width))
            frames.append(pd.DataFrame({
                "pupil_id": pd.array(ids.astype(object), dtype="str"),
                "urn": schools.urn[school],
                "year": np.full(size, int(year), dtype=np.int64),
                "attainment8": y,
                "ks2_score": ks2,
                "prior_band": pd.array(np.asarray(["low", "middle", "high"], dtype=object)[band], dtype="str"),
                "disadvantaged": disadvantaged.astype(np.int64),
                "female": female.astype(np.int64),
                "eal": eal.astype(np.int64),
                "sen": sen.astype(np.int64),
                "ethnicity": pd.array(np.asarray(ETHNIC_GROUPS, dtype=object)[ethnicity], dtype="str"),
            }))
        next_id += size
    pupils = pd.concat(frames, ignore_index=True) if frames else _empty_pupils()
    return agg, pupils


def _empty_pupils() -> pd.DataFrame:
    columns = {"pupil_id": "str", "urn": "int64", "year": "int64", "attainment8": "float64", "ks2_score": "int64",
               "prior_band": "str", "disadvantaged": "int64", "female": "int64", "eal": "int64", "sen": "int64",
               "ethnicity": "str"}
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in columns.items()})


def _string_column(values: np.ndarray) -> pd.api.extensions.ExtensionArray:
    return pd.array(np.asarray(values, dtype=object), dtype="str")


def _build_panel(
    settings: SimulationSettings, schools: _Schools, trusts: _Trusts, agg: _Aggregates, rng: np.random.Generator
) -> pd.DataFrame:
    """School x year means of the pupils, then missing values."""
    years = schools.years
    i, j = np.nonzero(schools.observed)
    count = agg.count[i, j]
    trust = trusts.school_trust[i]
    joined = trust >= 0
    join_year = trusts.join_year[i]
    year = years[j].astype(np.int64)
    trust_id = np.full(i.size, None, dtype=object)
    trust_id[joined] = trusts.trust_id[trust[joined]]
    panel = pd.DataFrame({
        "urn": schools.urn[i],
        "la_code": schools.la_code[i],
        "region": _string_column(np.asarray(REGIONS, dtype=object)[schools.region[i]]),
        "year": year,
        "grading": _string_column(np.asarray([_GRADING.get(int(t), "exam") for t in years], dtype=object)[j]),
        "attainment8": agg.sum_y[i, j] / count,
        "ks2_prior": agg.sum_ks2[i, j] / count,
        "fsm_pct": 100.0 * agg.sum_disadvantaged[i, j] / count,
        "eal_pct": 100.0 * agg.sum_eal[i, j] / count,
        "sen_pct": 100.0 * agg.sum_sen[i, j] / count,
        "cohort_size": count.astype(np.int64),
        "join_year": pd.array(np.where(joined, join_year, None), dtype="Int64"),
        "in_trust": (joined & (year >= join_year)).astype(np.int64),
        "trust_id": _string_column(trust_id),
    })
    n_rows = len(panel)
    missing_outcome = rng.random(n_rows) < settings.missing_outcome_rate
    panel.loc[missing_outcome, "attainment8"] = np.nan
    covariates = ["ks2_prior", "fsm_pct", "eal_pct", "sen_pct"]
    missing_covariates = rng.random((n_rows, len(covariates))) < settings.missing_covariate_rate
    for k, column in enumerate(covariates):
        panel.loc[missing_covariates[:, k], column] = np.nan
    return panel


def _build_subgroups(schools: _Schools, agg: _Aggregates) -> pd.DataFrame:
    """Long school x year x subgroup table of pupil counts and mean outcomes; empty cells omitted."""
    years = schools.years
    i, j = np.nonzero(schools.observed)
    n_sub = len(SUBGROUPS)
    count = agg.sub_count[i, j].ravel()
    keep = count > 0
    sub_index = np.tile(np.arange(n_sub), i.size)[keep]
    return pd.DataFrame({
        "urn": np.repeat(schools.urn[i], n_sub)[keep],
        "year": np.repeat(years[j].astype(np.int64), n_sub)[keep],
        "subgroup_type": _string_column(np.asarray([t for t, _ in SUBGROUPS], dtype=object)[sub_index]),
        "subgroup": _string_column(np.asarray([s for _, s in SUBGROUPS], dtype=object)[sub_index]),
        "n_pupils": count[keep].astype(np.int64),
        "attainment8": agg.sub_sum_y[i, j].ravel()[keep] / count[keep],
    })


def _build_trust_table(trusts: _Trusts) -> pd.DataFrame:
    table = pd.DataFrame({
        "trust_id": _string_column(trusts.trust_id),
        "collaboration_type": _string_column(np.asarray(COLLABORATION_TYPES, dtype=object)[trusts.type_index]),
        "federation_form": _string_column(np.where(trusts.hard, "hard", "soft").astype(object)),
        "n_schools": trusts.n_schools,
        "start_year": trusts.start_year,
    })
    for k, column in enumerate(_DEPTH_COLUMNS):
        table[column] = _string_column(np.where(trusts.answers[:, k], "yes", "no").astype(object))
    return table


def depth_scores(trusts: pd.DataFrame) -> pd.DataFrame:
    """Depth score per dimension: the share of ``"yes"`` answers among its checklist items.

    Parameters
    ----------
    trusts
        A trust table with ``trust_id`` and the columns of :data:`DEPTH_ITEMS`.

    Returns
    -------
    pandas.DataFrame
        ``trust_id`` and one column ``depth_<dimension>`` (0-1) per dimension.
    """
    scores = pd.DataFrame({"trust_id": trusts["trust_id"].to_numpy()})
    for dimension, items in DEPTH_ITEMS.items():
        scores[f"depth_{dimension}"] = (trusts[list(items)] == "yes").to_numpy().mean(axis=1)
    return scores


def _mean_or_none(values: np.ndarray) -> float | None:
    return float(np.mean(values)) if values.size else None


def _ratio_or_none(numerator: float, denominator: float) -> float | None:
    return float(numerator / denominator) if denominator > 0 else None


def _build_truth(
    settings: SimulationSettings, schools: _Schools, trusts: _Trusts, design: _Design, agg: _Aggregates
) -> dict[str, Any]:
    """Realised effects (means of per-pupil ``clip(Y0 + τ) - clip(Y0)``) and the parameters."""
    years = schools.years
    i, j = np.nonzero(schools.observed)
    trust = trusts.school_trust[i]
    g = trusts.join_year[i]
    year = years[j].astype(np.int64)
    treated = (trust >= 0) & (year >= g)
    cohort = treated & ~trusts.joined_early[i]
    count = agg.count[i, j]
    school_effect = agg.sum_effect[i, j] / count

    rows = pd.DataFrame({
        "cohort": g[cohort],
        "year": year[cohort],
        "event_time": year[cohort] - g[cohort],
        "type": np.asarray(COLLABORATION_TYPES)[trusts.type_index[trust[cohort]]],
        "form": np.where(trusts.hard[trust[cohort]], "hard", "soft"),
        "trust": trust[cohort],
        "count": count[cohort],
        "sum_effect": agg.sum_effect[i, j][cohort],
        "effect": school_effect[cohort],
    })

    def by(column: str) -> dict[str, float]:
        means = rows.groupby(column, sort=True)["effect"].mean()
        return {str(key): float(value) for key, value in means.items()}

    att_gt = []
    for (cohort_year, t), cell in rows.groupby(["cohort", "year"], sort=True):
        att_gt.append({
            "cohort": int(cohort_year),
            "year": int(t),
            "att_school": float(cell["effect"].mean()),
            "att_pupil": float(cell["sum_effect"].sum() / cell["count"].sum()),
            "n_schools": len(cell),
            "n_pupils": int(cell["count"].sum()),
        })
    att_by_trust = []
    for k, cell in rows.groupby("trust", sort=True):
        att_by_trust.append({
            "trust_id": str(trusts.trust_id[k]),
            "att_school": float(cell["effect"].mean()),
            "n_schools": int(trusts.n_schools[k]),
            "collaboration_type": COLLABORATION_TYPES[trusts.type_index[k]],
            "start_year": int(trusts.start_year[k]),
        })

    sub_count = agg.sub_count[i, j][cohort]
    sub_effect = agg.sub_sum_effect[i, j][cohort]
    subgroups: dict[str, dict[str, Any]] = {}
    for k, (_, name) in enumerate(SUBGROUPS):
        present = sub_count[:, k] > 0
        subgroups[name] = {
            "att_school": _mean_or_none(sub_effect[present, k] / sub_count[present, k]),
            "att_pupil": _ratio_or_none(sub_effect[:, k].sum(), sub_count[:, k].sum()),
            "n_school_years": int(present.sum()),
        }
    gap_pairs = {
        "disadvantaged_minus_not_disadvantaged": ("disadvantaged", "not_disadvantaged"),
        "girls_minus_boys": ("girls", "boys"),
        "eal_minus_not_eal": ("eal", "not_eal"),
        "sen_minus_not_sen": ("sen", "not_sen"),
        "low_prior_minus_high_prior": ("low_prior", "high_prior"),
        "middle_prior_minus_high_prior": ("middle_prior", "high_prior"),
    }

    def gap(level: str, a: str, b: str) -> float | None:
        first, second = subgroups[a][level], subgroups[b][level]
        return None if first is None or second is None else first - second

    scale = settings.effect_scale
    return {
        "settings": asdict(settings),
        "parameters": {
            "effect": {
                "formula": (
                    "tau = effect_scale * (base[type] + hard_federation * [hard] + depth_organisation * "
                    "(depth_organisation_score - depth_centre) + event_time_slope * min(t - g, event_time_cap) + "
                    "cohort_slope * (cohort_reference - g) + subgroup_extras); Y = clip(Y0 + tau, 0, 90)"
                ),
                "effect_scale": float(scale),
                "base_by_type": dict(_BASE_EFFECT),
                "hard_federation": _HARD_FEDERATION_EFFECT,
                "depth_organisation": _DEPTH_ORGANISATION_EFFECT,
                "depth_centre": _DEPTH_CENTRE,
                "event_time_slope": _EVENT_TIME_SLOPE,
                "event_time_cap": _EVENT_TIME_CAP,
                "cohort_slope": _COHORT_SLOPE,
                "cohort_reference": int(max(settings.cohorts)),
                "subgroup_extras": dict(_SUBGROUP_EXTRA),
            },
            "outcome": {
                "formula": (
                    "Y0 = intercept + a_i + d_t + u_it + pretrend_slope * (t - g) [joiners, t < g] + "
                    "ks2_slope * (ks2_score - ks2_centre) + disadvantaged + sen + female + e"
                ),
                "intercept": _Y_INTERCEPT,
                "ks2_slope": _Y_KS2_SLOPE,
                "ks2_centre": _Y_KS2_CENTRE,
                "disadvantaged": _Y_DISADVANTAGED,
                "sen": _Y_SEN,
                "female": _Y_FEMALE,
                "pupil_sd": _PUPIL_SD,
                "school_year_sd": _SCHOOL_YEAR_SD,
                "school_sd_independent": _SCHOOL_SD,
                "school_ks2_slope": _SCHOOL_KS2_SLOPE,
                "school_fsm_slope": _SCHOOL_FSM_SLOPE,
                "pretrend_slope": float(settings.pretrend_slope),
                "year_shocks": {str(int(t)): float(d) for t, d in zip(years, design.year_shock, strict=True)},
                "grade_inflation": {str(t): v for t, v in _GRADE_INFLATION.items()},
                "range": list(_OUTCOME_RANGE),
            },
            "selection": {
                "formula": "P(join) = logistic(intercept + ks2_prior_z * z(ks2_prior) + fsm_pct_z * z(fsm_pct))",
                "intercept": trusts.selection_intercept,
                "ks2_prior_z": _SELECTION_KS2,
                "fsm_pct_z": _SELECTION_FSM,
            },
        },
        "n_schools": {
            "total": int(settings.n_schools),
            "cohort_joiners": int(np.sum((trusts.school_trust >= 0) & ~trusts.joined_early)),
            "already_joined": int(np.sum(trusts.joined_early)),
            "never_joined": int(np.sum(trusts.school_trust < 0)),
        },
        "att_overall": {
            "school": _mean_or_none(rows["effect"].to_numpy()),
            "pupil": _ratio_or_none(rows["sum_effect"].sum(), rows["count"].sum()),
            "n_school_years": len(rows),
        },
        "att_gt": att_gt,
        "att_by_event_time": by("event_time"),
        "att_by_cohort": by("cohort"),
        "att_by_type": by("type"),
        "att_by_federation_form": by("form"),
        "att_by_trust": att_by_trust,
        "subgroups": subgroups,
        "subgroup_gaps": {name: gap("att_school", a, b) for name, (a, b) in gap_pairs.items()},
        "subgroup_gaps_pupil": {name: gap("att_pupil", a, b) for name, (a, b) in gap_pairs.items()},
        "school_year_effects": {
            "columns": ["urn", "year", "effect"],
            "data": [[int(u), int(t), float(e)] for u, t, e in
                     zip(schools.urn[i][treated], year[treated], school_effect[treated], strict=True)],
        },
        "notes": [
            "All effects are realised sample averages of per-pupil effects clip(Y0 + tau) - clip(Y0), in "
            "Attainment 8 points, over observed school-years with t >= g (before rounding and missingness).",
            "att_* and subgroups cover trusts starting in settings.cohorts only; schools that joined before "
            "first_year (already treated in every panel year) appear only in school_year_effects.",
            "'school' averages weight school-years equally; 'pupil' averages weight pupils equally.",
            "subgroup_gaps are differences of subgroups' att_school; subgroup_gaps_pupil of att_pupil. They "
            "include composition (e.g. disadvantaged pupils are more often low prior), not only subgroup_extras.",
        ],
    }


def simulate(settings: SimulationSettings | None = None, **overrides: Any) -> SimulatedData:
    """Simulate schools, pupils, trusts and the true effects of joining a trust.

    Parameters
    ----------
    settings
        Simulation settings; defaults to ``SimulationSettings()``.
    **overrides
        Fields of :class:`SimulationSettings` to replace, e.g. ``n_schools=120``.

    Returns
    -------
    SimulatedData
        The panel, subgroup panel, pupils (``settings.pupil_years``), trusts and
        truth.  Values are unrounded; :func:`write_simulation` rounds a copy.

    Raises
    ------
    ConfigError
        If a setting is invalid or an override is not a setting.

    Notes
    -----
    Untreated Attainment 8 of pupil ``p`` in school ``i``, year ``t``::

        Y0 = 46 + a_i + d_t + u_it + 1.2·(ks2 - 105) - 5·disadvantaged - 4·sen + 2·female + e,

    ``a_i = 0.6·(ks2_i - 104.9) - 0.08·(fsm_i - 26) + N(0, 2²)``, ``u_it ~ N(0, 1)``,
    ``e ~ N(0, 12²)``, ``d_t`` a slow random walk plus grade inflation (+4 in 2020,
    +3.5 in 2021, +1.5 in 2022), clipped to 0-90.  Joiners (cohort ``g``) get
    ``pretrend_slope·(t - g)`` before ``g``.  From ``g`` on, treated pupils get
    ``τ = effect_scale·(base[type] + 0.5·hard + 1.5·(depth_organisation - 0.5)
    + 0.4·min(t - g, 4) + 0.1·(max(cohorts) - g) + 1.5·disadvantaged + 1.0·low_prior
    + 0.5·eal)`` with base = expertise 2.0, cultural 0.5, geographic 1.0,
    commonality 1.0, innovation 1.5.  The truth is the realised
    ``clip(Y0 + τ) - clip(Y0)`` averaged as described in ``truth["notes"]``.
    Typology and depth checklist: Atkinson et al. (2007), NFER.
    """
    base = settings if settings is not None else SimulationSettings()
    if overrides:
        known = {f.name for f in fields(SimulationSettings)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(
                f"Unknown simulation setting(s) {', '.join(map(repr, unknown))}; expecting one of "
                f"{', '.join(sorted(known))}."
            )
        base = replace(base, **overrides)
    settings = base
    rng = np.random.default_rng(settings.seed)
    years = np.arange(settings.first_year, settings.last_year + 1)

    schools = _draw_schools(settings, years, rng)
    trusts = _draw_trusts(settings, schools, rng)
    design = _draw_design(settings, schools, trusts, rng)
    agg, pupils = _simulate_pupils(settings, schools, design, rng)
    return SimulatedData(
        panel=_build_panel(settings, schools, trusts, agg, rng),
        subgroups=_build_subgroups(schools, agg),
        pupils=pupils,
        trusts=_build_trust_table(trusts),
        truth=_build_truth(settings, schools, trusts, design, agg),
        settings=settings,
    )


def _rounded(frame: pd.DataFrame, digits: Mapping[str, int]) -> pd.DataFrame:
    """Return a copy with the given columns rounded (the caller's frame is unchanged)."""
    copy = frame.copy()
    for column, n_digits in digits.items():
        if column in copy.columns:
            copy[column] = copy[column].round(n_digits)
    return copy


def write_simulation(data: SimulatedData, out_dir: Path) -> list[Path]:
    """Write the simulated tables and truth into ``out_dir`` (created if needed).

    Parameters
    ----------
    data
        The output of :func:`simulate`; not modified.
    out_dir
        Folder to write into; existing files of the same names are replaced.

    Returns
    -------
    list of pathlib.Path
        ``school_panel.csv``, ``subgroup_panel.csv``, ``pupils.parquet``,
        ``trusts.csv`` and ``truth.json``, in that order.

    Notes
    -----
    Outcomes, KS2 means and percentages are rounded to 1 dp, as DfE publishes
    them; the truth is written at full precision.  CSVs use Unix line ends
    and an empty cell for missing values (e.g. ``join_year`` of schools that
    never joined).  The same data always give byte-identical files.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / name for name in
             ("school_panel.csv", "subgroup_panel.csv", "pupils.parquet", "trusts.csv", "truth.json")]
    csv_options: dict[str, Any] = {"index": False, "lineterminator": "\n"}
    _rounded(data.panel, _PANEL_ROUNDING).to_csv(paths[0], **csv_options)
    _rounded(data.subgroups, {"attainment8": 1}).to_csv(paths[1], **csv_options)
    table = pa.Table.from_pandas(_rounded(data.pupils, {"attainment8": 1}), preserve_index=False)
    pq.write_table(table, paths[2], compression="zstd")
    data.trusts.to_csv(paths[3], **csv_options)
    paths[4].write_text(json.dumps(data.truth, indent=2, sort_keys=True, allow_nan=False) + "\n", encoding="utf-8")
    return paths
