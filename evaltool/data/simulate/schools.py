"""Schools: region, local authority, intake and observed years (school × year arrays)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evaltool.data.simulate.constants import (
    _EAL_ETHNICITY_MULTIPLIER,
    _KS2_LATENT_MEAN,
    _LONDON,
    _REGION_DEPRIVATION,
    _REGION_ETHNICITY,
    _REGION_LA_WEIGHTS,
    _SCHOOL_FSM_SLOPE,
    _SCHOOL_KS2_SLOPE,
    _SCHOOL_SD,
    ETHNIC_GROUPS,
    REGIONS,
)
from evaltool.data.simulate.settings import SimulationSettings


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
