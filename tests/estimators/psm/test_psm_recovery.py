"""Simulation recovery on evaltool's simulator: matched DiD covers the true ATT; the naive comparison does not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evaltool.data.simulate import SimulationSettings, simulate
from evaltool.estimators.psm.design import build_units
from evaltool.estimators.psm.method import fit_psm
from evaltool.results import SampleReport

COVARIATES = ["ks2_prior", "fsm_pct", "eal_pct", "sen_pct", "cohort_size"]
EVENT_TIMES = [0, 1, 2]


def canonical(panel: pd.DataFrame) -> pd.DataFrame:
    frame = panel.rename(columns={"urn": "school", "la_code": "local_authority", "trust_id": "trust"})
    frame["school"] = frame["school"].astype(str)
    frame["join_year"] = frame["join_year"].astype(float)
    return frame[~frame["year"].isin([2020, 2021])].reset_index(drop=True)


def true_att(data, frame: pd.DataFrame, matched_units: pd.DataFrame) -> float:
    """Mean over matched treated schools of the mean true effect in their observed post years."""
    eff = pd.DataFrame(data.truth["school_year_effects"]["data"], columns=data.truth["school_year_effects"]["columns"])
    eff["school"] = eff["urn"].astype(str)
    treated = matched_units.loc[matched_units["treated"], ["school", "cohort"]]
    years = treated.merge(pd.DataFrame({"e": EVENT_TIMES}), how="cross").assign(year=lambda d: d["cohort"] + d["e"])
    observed = frame.loc[frame["attainment8"].notna(), ["school", "year"]]
    years = years.merge(observed, on=["school", "year"]).merge(eff[["school", "year", "effect"]], on=["school", "year"], how="left")
    assert years["effect"].notna().all()  # every post year of a joiner has a true effect
    return float(years.groupby("school")["effect"].mean().mean())


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_matched_did_covers_truth_and_naive_is_biased(seed):
    data = simulate(SimulationSettings(seed=seed, n_schools=800))
    frame = canonical(data.panel)
    sample = SampleReport(n_rows_in=len(frame))
    units = build_units(
        frame, "attainment8", COVARIATES, event_times=EVENT_TIMES, comparison="never_joined", did=True,
        extra_columns=["local_authority", "trust"], sample=sample, stage="psm",
    )
    estimate, diagnostics, sample, _ = fit_psm(units, "y_change", COVARIATES, rng=np.random.default_rng(seed), sample=sample)
    truth = true_att(data, frame, diagnostics["matched_units"])
    assert abs(estimate.estimate - truth) < 4 * estimate.std_error
    # Naive comparison of post-joining levels, unmatched: joiners had lower attainment to start with.
    naive = units.loc[units["treated"], "y_post"].mean() - units.loc[~units["treated"], "y_post"].mean()
    assert naive < truth - 2.0
    # balance after matching: every covariate within WWC's adjustment band
    balance = diagnostics["balance"].set_index("covariate")
    assert (balance.loc[COVARIATES, "smd_after"].abs() < 0.25).all()
    assert (balance.loc[COVARIATES, "smd_before"].abs().max()) > 0.25


# Coverage over seeds: tests/estimators/psm/test_psm_coverage.py (200 replications, binomial band).
