"""Run a simulation: draw schools, trusts, effects and pupils from one generator, and assemble the tables."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import pandas as pd

from evaltool.data.simulate.effects import _draw_design
from evaltool.data.simulate.pupils import _simulate_pupils
from evaltool.data.simulate.schools import _draw_schools
from evaltool.data.simulate.settings import SimulationSettings
from evaltool.data.simulate.tables import _build_panel, _build_subgroups, _build_trust_table
from evaltool.data.simulate.trusts import _draw_trusts
from evaltool.data.simulate.truth import _build_truth
from evaltool.errors import ConfigError


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
