"""TWFE and event study: reference values on mpdta (statsmodels dummy-variable OLS) and behaviour."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from evaltool.estimators.did.method_event_study import EventStudyOptions, fit_event_study
from evaltool.estimators.did.method_twfe import fit_did_twfe, negative_weights

REFERENCE = Path(__file__).resolve().parents[2] / "reference"
STATSMODELS = json.loads((REFERENCE / "mpdta_twfe_statsmodels.json").read_text())


@pytest.fixture(scope="module")
def mpdta() -> pd.DataFrame:
    frame = pd.read_csv(REFERENCE / "mpdta.csv").rename(columns={"countyreal": "school", "first.treat": "join_year"})
    frame["join_year"] = frame["join_year"].replace(0, np.nan)
    frame["school"] = frame["school"].astype(str)
    return frame


def cr1_rescale(n_obs: int, k_dummies: int, k_cr1: int) -> float:
    """SE ratio of CR1 with K = k_cr1 to statsmodels' CR1 on the dummy-variable OLS (K = k_dummies).

    Both are G/(G−1)·(N−1)/(N−K) times the same sandwich (FWL), so only (N − K) differs: evaltool's K counts
    the regressors and year effects, not the county effects nested in the clusters (Stata xtreg, fe).
    """
    return float(np.sqrt((n_obs - k_dummies) / (n_obs - k_cr1)))


def test_twfe_matches_dummy_variable_ols(mpdta):
    # statsmodels 0.15.0: smf.ols("lemp ~ joined + C(countyreal) + C(year)").fit(cov_type="cluster", groups=county)
    estimate, diagnostics, sample, warnings = fit_did_twfe(mpdta, "lemp")
    assert estimate.estimate == pytest.approx(STATSMODELS["twfe"]["estimate"], abs=1e-10)
    # statsmodels' K: intercept + joined + 499 county + 4 year dummies = 505; evaltool's: joined + 4 years = 5.
    expected = STATSMODELS["twfe"]["std_error"] * cr1_rescale(2500, 505, 5)
    assert estimate.std_error == pytest.approx(expected, rel=1e-8)
    assert diagnostics["design"]["n_clusters"] == 500
    assert estimate.n_obs == 2500 and estimate.n_treated == 191 and estimate.n_control == 309
    assert any("staggered adoption" in w for w in warnings)


def test_event_study_matches_dummy_variable_ols(mpdta):
    options = EventStudyOptions(name="es", method="event_study", window=(-4, 3))
    estimates, diagnostics, _, _ = fit_event_study(mpdta, "lemp", options=options, rng=np.random.default_rng(0))
    table = diagnostics["event_study"]
    ref = STATSMODELS["event_study"]
    np.testing.assert_array_equal(table["event_time"], ref["event_time"])
    np.testing.assert_allclose(table["att"], ref["estimate"], atol=1e-10)
    # K: statsmodels 7 event dummies + intercept + 499 county + 4 year = 511; evaltool 7 + 4 = 11 (see cr1_rescale).
    np.testing.assert_allclose(table["std_error"], np.array(ref["std_error"]) * cr1_rescale(2500, 511, 11), rtol=1e-8)
    # Average post-joining coefficient: mean of event times 0..3.
    assert estimates[0].estimate == pytest.approx(np.mean(ref["estimate"][3:]), abs=1e-10)
    crit = table["critical_value"].iloc[0]
    assert 1.96 < crit < 3.2  # simultaneous band wider than pointwise


def test_binned_endpoints_change_the_design(mpdta):
    binned = EventStudyOptions(name="es", method="event_study", window=(-2, 2))
    dropped = EventStudyOptions(name="es", method="event_study", window=(-2, 2), bin_endpoints=False)
    _, diag_b, sample_b, _ = fit_event_study(mpdta, "lemp", options=binned, rng=np.random.default_rng(0))
    _, diag_d, sample_d, _ = fit_event_study(mpdta, "lemp", options=dropped, rng=np.random.default_rng(0))
    assert list(diag_b["event_study"]["event_time"]) == [-2, 0, 1, 2]
    assert sample_b.n_rows_used == 2500
    # Event times -4, -3 (cohort 2007: 2003, 2004; 2006: 2003) and 3 (2004: 2007) are dropped, and counted.
    excluded = sample_d.to_frame()
    row = excluded[excluded["reason"].str.contains("outside the event window")]
    assert row["n_rows"].item() == 131 * 2 + 40 + 20 == 2500 - sample_d.n_rows_used


def test_sup_t_band_is_seeded(mpdta):
    options = EventStudyOptions(name="es", method="event_study", window=(-4, 3), band_draws=2000)
    first = fit_event_study(mpdta, "lemp", options=options, rng=np.random.default_rng(5))[1]["event_study"]
    again = fit_event_study(mpdta, "lemp", options=options, rng=np.random.default_rng(5))[1]["event_study"]
    assert first["critical_value"].iloc[0] == again["critical_value"].iloc[0]


def test_negative_weights_sum_to_one_and_vanish_without_staggering():
    # One cohort (2016) and never-joined schools: all TWFE weights are positive (a 2x2-like design).
    rng = np.random.default_rng(0)
    years = np.arange(2012, 2020)
    n = 40
    frame = pd.DataFrame(
        {
            "school": np.repeat(np.arange(n).astype(str), len(years)),
            "year": np.tile(years, n),
            "join_year": np.repeat(np.where(np.arange(n) < 20, 2016.0, np.nan), len(years)),
        }
    )
    frame["y"] = rng.normal(size=len(frame))
    frame["treated_now"] = (frame["year"] >= frame["join_year"]).astype(float)
    weights = negative_weights(frame)
    assert weights["n_negative"] == 0
    assert weights["weights_by_event_time"]["total_weight"].sum() == pytest.approx(1.0)
    # Staggered with an early and a late cohort: long-joined school-years get negative weight.
    frame["join_year"] = np.repeat(np.where(np.arange(n) < 20, 2013.0, 2018.0), len(years))
    frame["treated_now"] = (frame["year"] >= frame["join_year"]).astype(float)
    weights = negative_weights(frame)
    assert weights["n_negative"] > 0 and weights["sum_negative"] < 0
    assert weights["weights_by_event_time"]["total_weight"].sum() == pytest.approx(1.0)


def test_two_way_clustering_reports_the_smaller_dimension(mpdta):
    options = EventStudyOptions(name="es", method="event_study", window=(-4, 3), cluster_by_year=True)
    estimates, diagnostics, _, warnings = fit_event_study(mpdta, "lemp", options=options, rng=np.random.default_rng(0))
    assert diagnostics["design"]["n_clusters"] == 5  # 5 years < 500 counties
    assert diagnostics["design"]["cluster"] == "school × year"
    assert any(w.startswith("Only 5 year clusters") for w in warnings)
    assert np.isfinite(diagnostics["event_study"]["critical_value"]).all()
    assert all((e.cluster, e.n_clusters, e.se_method) == ("school × year", 5, "cluster-robust") for e in estimates)
    # t(G − 1) with G the smaller dimension: t(4)
    first = estimates[0]
    assert first.ci_upper - first.estimate == pytest.approx(stats.t.ppf(0.975, 4) * first.std_error, rel=1e-12)
