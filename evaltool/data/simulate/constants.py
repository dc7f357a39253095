"""The data-generating process's fixed parameters: regions, collaboration types, subgroups, effect sizes, outcome model."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from evaltool.data.trusts import DEPTH_CHECKLIST

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
