"""What a simulation is asked for (:class:`SimulationSettings`), checked with messages naming the setting."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from evaltool.errors import ConfigError


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
