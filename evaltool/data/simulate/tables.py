"""The output tables: school × year panel, subgroup panel, trusts (and their depth scores)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from evaltool.data.simulate.constants import (
    _DEPTH_COLUMNS,
    _GRADING,
    COLLABORATION_TYPES,
    DEPTH_ITEMS,
    REGIONS,
    SUBGROUPS,
)
from evaltool.data.simulate.pupils import _Aggregates
from evaltool.data.simulate.schools import _Schools
from evaltool.data.simulate.settings import SimulationSettings
from evaltool.data.simulate.trusts import _Trusts


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
