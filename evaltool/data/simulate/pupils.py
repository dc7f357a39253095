"""Pupils: characteristics and attainment of every pupil, and their school and subgroup means."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from evaltool.data.simulate.constants import (
    _KS2_DISADVANTAGED,
    _KS2_PUPIL_SD,
    _KS2_RANGE,
    _OUTCOME_RANGE,
    _PUPIL_SD,
    _SUBGROUP_EXTRA,
    _Y_DISADVANTAGED,
    _Y_FEMALE,
    _Y_INTERCEPT,
    _Y_KS2_CENTRE,
    _Y_KS2_SLOPE,
    _Y_SEN,
    ETHNIC_GROUPS,
    SUBGROUPS,
)
from evaltool.data.simulate.effects import _Design
from evaltool.data.simulate.schools import _Schools
from evaltool.data.simulate.settings import SimulationSettings


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
