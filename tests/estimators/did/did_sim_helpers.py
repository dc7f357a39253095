"""Helpers for the DiD tests: simulated panels with canonical columns and their exact truths."""

from __future__ import annotations

import numpy as np
import pandas as pd

from evaltool.data.simulate import SimulationSettings, simulate


def simulated_frame(seed: int, **settings) -> tuple[pd.DataFrame, dict]:
    """A simulated school × year panel renamed to evaltool's canonical columns, and the truth."""
    data = simulate(SimulationSettings(seed=seed, **settings))
    frame = data.panel.rename(columns={"urn": "school", "trust_id": "trust", "la_code": "local_authority"})
    frame["school"] = frame["school"].astype(str)
    frame["join_year"] = frame["join_year"].astype(float)
    return frame, data.truth


def school_year_effects(truth: dict) -> pd.DataFrame:
    effects = pd.DataFrame(truth["school_year_effects"]["data"], columns=truth["school_year_effects"]["columns"])
    return effects.assign(school=effects["urn"].astype(str))


def true_cells(truth: dict, schools: np.ndarray, cohort: np.ndarray) -> pd.DataFrame:
    """True ATT(g, t) of the analysed schools: mean school-year effect per cohort and year (t >= g)."""
    effects = school_year_effects(truth)
    used = pd.DataFrame({"school": schools, "cohort": cohort})
    used = used[np.isfinite(used["cohort"])]
    merged = effects.merge(used, on="school")
    merged = merged[merged["year"] >= merged["cohort"]]
    return merged.groupby(["cohort", "year"], as_index=False)["effect"].mean()


def true_aggregates(truth: dict, result) -> dict[str, float]:
    """Exact truths of the simple and cohort-weighted ATTs for the schools and cells the estimator used."""
    arrays = result.arrays
    cells = true_cells(truth, arrays.units, arrays.cohort)
    est = result.cells[result.cells["post"] & result.cells["att"].notna()][["cohort", "year"]]
    cells = est.merge(cells, on=["cohort", "year"], how="left")
    assert cells["effect"].notna().all()
    share = cells["cohort"].map(result.cohort_share)
    simple = float((cells["effect"] * share).sum() / share.sum())
    by_cohort = cells.groupby("cohort")["effect"].mean()
    weights = by_cohort.index.map(result.cohort_share).to_numpy()
    group = float((by_cohort.to_numpy() * weights).sum() / weights.sum())
    return {"simple": simple, "group": group}
