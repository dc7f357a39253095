"""The exact truth of every effect: structural parameters and realised average effects."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd

from evaltool.data.simulate.constants import (
    _BASE_EFFECT,
    _COHORT_SLOPE,
    _DEPTH_CENTRE,
    _DEPTH_ORGANISATION_EFFECT,
    _EVENT_TIME_CAP,
    _EVENT_TIME_SLOPE,
    _GRADE_INFLATION,
    _HARD_FEDERATION_EFFECT,
    _OUTCOME_RANGE,
    _PUPIL_SD,
    _SCHOOL_FSM_SLOPE,
    _SCHOOL_KS2_SLOPE,
    _SCHOOL_SD,
    _SCHOOL_YEAR_SD,
    _SELECTION_FSM,
    _SELECTION_KS2,
    _SUBGROUP_EXTRA,
    _Y_DISADVANTAGED,
    _Y_FEMALE,
    _Y_INTERCEPT,
    _Y_KS2_CENTRE,
    _Y_KS2_SLOPE,
    _Y_SEN,
    COLLABORATION_TYPES,
    SUBGROUPS,
)
from evaltool.data.simulate.effects import _Design
from evaltool.data.simulate.pupils import _Aggregates
from evaltool.data.simulate.schools import _Schools
from evaltool.data.simulate.settings import SimulationSettings
from evaltool.data.simulate.trusts import _Trusts


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
