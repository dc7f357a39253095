"""The true effect of joining for every school-year (the design the outcomes are built on)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evaltool.data.simulate.constants import (
    _BASE_EFFECT,
    _COHORT_SLOPE,
    _DEPTH_CENTRE,
    _DEPTH_ORGANISATION_EFFECT,
    _EVENT_TIME_CAP,
    _EVENT_TIME_SLOPE,
    _GRADE_INFLATION,
    _HARD_FEDERATION_EFFECT,
    _SCHOOL_YEAR_SD,
    _YEAR_SHOCK_LEVEL,
    _YEAR_SHOCK_STEP_SD,
    COLLABORATION_TYPES,
)
from evaltool.data.simulate.schools import _Schools
from evaltool.data.simulate.settings import SimulationSettings
from evaltool.data.simulate.trusts import _depth_organisation, _Trusts


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
