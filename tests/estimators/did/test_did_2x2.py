"""did_2x2: reference values, a second implementation, recovery and exclusions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from linearmodels.panel import FirstDifferenceOLS
from scipy import stats

from evaltool.errors import EstimationError
from evaltool.estimators.did.method_2x2 import assign_groups, fit_did_2x2
from tests.conftest import make_panel

REFERENCE = Path(__file__).resolve().parents[2] / "reference"


@pytest.fixture(scope="module")
def mpdta() -> pd.DataFrame:
    raw = pd.read_csv(REFERENCE / "mpdta.csv")
    return pd.DataFrame(
        {
            "school": raw["countyreal"].astype(str),
            "year": raw["year"].astype("int64"),
            "join_year": raw["first.treat"].replace(0, np.nan).astype(float),
            "lemp": raw["lemp"],
        }
    )


@pytest.mark.parametrize(("post", "key"), [(2004, "2004_2004"), (2005, "2004_2005")])
def test_matches_published_did_att_gt(mpdta, post, key):
    # R did::att_gt(yname="lemp", tname="year", idname="countyreal", gname="first.treat",
    #               xformla=~1, data=mpdta)  -> ATT(2004,2004) = -0.0105, ATT(2004,2005) = -0.0704
    # (did README; values in tests/reference/did_mpdta_2x2.json).  With base period 2003 and
    # never-treated controls, ATT(2004,t) is exactly this 2×2 DiD.
    ref = json.loads((REFERENCE / "did_mpdta_2x2.json").read_text())["att_gt"][key]
    estimate, diagnostics, sample, _ = fit_did_2x2(mpdta, "lemp", pre_years=[2003], post_years=[post])
    assert estimate.estimate == pytest.approx(ref["att"], abs=5e-5)
    assert estimate.n_treated == 20
    assert estimate.n_control == 309
    # did's printed SEs are multiplier-bootstrap draws (seed-dependent); the analytic clustered SE
    # must lie within 10% of their printed range.
    assert 0.9 * ref["se_printed_min"] <= estimate.std_error <= 1.1 * ref["se_printed_max"]


def test_agrees_with_linearmodels_panelols(mpdta):
    """A second implementation: first differences, clustered by unit (linearmodels FirstDifferenceOLS)."""
    estimate, *_ = fit_did_2x2(mpdta, "lemp", pre_years=[2003], post_years=[2004])
    data = mpdta[mpdta["year"].isin([2003, 2004]) & (mpdta["join_year"].isna() | (mpdta["join_year"] == 2004))]
    data = data.assign(
        d=((data["join_year"] == 2004) & (data["year"] == 2004)).astype(float),
        post=(data["year"] == 2004).astype(float),
    ).set_index(["school", "year"])
    fit = FirstDifferenceOLS(data["lemp"], data[["d", "post"]]).fit(cov_type="clustered", cluster_entity=True)
    assert estimate.estimate == pytest.approx(fit.params["d"], abs=1e-10)
    # Same cluster-robust variance; the packages differ only in the finite-sample factor
    # (statsmodels (N−1)/(N−K)·G/(G−1) on 2G school-period means; linearmodels on G differences).
    assert estimate.std_error == pytest.approx(fit.std_errors["d"], rel=0.005)


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_recovers_known_effect(seed):
    frame = make_panel(seed=seed, n_schools=300, effect=2.0).rename(columns={"urn": "school", "att8": "y"})
    frame = frame.assign(school=frame["school"].astype(str), join_year=frame["join_year"].astype(float))
    estimate, *_ = fit_did_2x2(frame, "y", pre_years=[2013, 2014], post_years=[2017, 2018])
    assert estimate.covers(2.0)
    assert abs(estimate.estimate - 2.0) < 4 * estimate.std_error


def test_exclusions_are_counted_by_reason():
    frame = make_panel(seed=3).rename(columns={"urn": "school", "att8": "y"})
    frame = frame.assign(school=frame["school"].astype(str), join_year=frame["join_year"].astype(float))
    never = frame["join_year"].isna() & frame["year"].isin([2013, 2017])
    frame.loc[frame.index[never][:5], "y"] = np.nan
    estimate, _, sample, _ = fit_did_2x2(frame, "y", pre_years=[2013, 2014], post_years=[2017, 2018])
    reasons = {e.reason: e for e in sample.exclusions}
    schools = frame.drop_duplicates("school").set_index("school")["join_year"]
    assert reasons["joined before or during the pre period"].n_units == int((schools == 2011).sum())
    assert reasons["joined during the post period"].n_units == int((schools == 2018).sum())
    assert reasons["missing outcome 'y'"].n_rows == 5
    # every input row is either used or excluded for a stated reason
    assert sample.n_rows_used + sample.n_rows_excluded == len(frame)


def test_not_yet_joined_comparison_adds_later_joiners():
    join = pd.Series([np.nan, 2016.0, 2020.0, 2012.0, 2018.0])
    never = assign_groups(join, 2014, 2016, 2018, "never_joined").tolist()
    later = assign_groups(join, 2014, 2016, 2018, "not_yet_joined").tolist()
    assert never[2] == "joined after the post period (comparison is never_joined)"
    assert later[2] == "comparison"
    assert never[:2] == ["comparison", "treated"] and never[3] == "joined before or during the pre period"
    assert never[4] == "joined during the post period"


def test_no_treated_schools_is_a_user_error(mpdta):
    with pytest.raises(EstimationError, match=r"No treated schools .*Choose pre_years/post_years") as info:
        fit_did_2x2(mpdta, "lemp", pre_years=[2004], post_years=[2005])
    assert info.value.exit_code == 2


def test_few_clusters_warning():
    frame = make_panel(seed=2).rename(columns={"urn": "school", "att8": "y", "la": "local_authority"})
    frame = frame.assign(school=frame["school"].astype(str), join_year=frame["join_year"].astype(float))
    frame["local_authority"] = (frame["local_authority"] % 5).astype(str)
    estimate, diagnostics, _, warnings = fit_did_2x2(
        frame, "y", pre_years=[2013], post_years=[2017], cluster="local_authority"
    )
    assert diagnostics["design"]["n_clusters"] == 5
    assert any("Only 5 local authority clusters" in w for w in warnings)
    assert (estimate.cluster, estimate.n_clusters, estimate.se_method) == ("local authority", 5, "cluster-robust")
    # CR1 intervals use t(G − 1) = t(4)
    half = stats.t.ppf(0.975, 4) * estimate.std_error
    assert estimate.ci_upper - estimate.estimate == pytest.approx(half, rel=1e-12)


def test_caller_frame_unchanged(mpdta):
    before = mpdta.copy()
    fit_did_2x2(mpdta, "lemp", pre_years=[2003], post_years=[2004])
    pd.testing.assert_frame_equal(before, mpdta)


def _frame(seed: int, pretrend: float = 0.0) -> pd.DataFrame:
    frame = make_panel(seed=seed, n_schools=300).rename(columns={"urn": "school", "att8": "y"})
    frame = frame.assign(school=frame["school"].astype(str), join_year=frame["join_year"].astype(float))
    joiners = frame["join_year"] == 2016
    # a trend for joiners before they join breaks parallel trends
    frame.loc[joiners & (frame["year"] < 2016), "y"] += pretrend * (frame["year"] - 2016)
    return frame


def test_placebo_pretrend_equals_difference_of_mean_changes():
    frame = _frame(seed=8)
    _, diagnostics, _, _ = fit_did_2x2(frame, "y", pre_years=[2012, 2013, 2014], post_years=[2017, 2018])
    test = diagnostics["pretrend_test"]
    wide = frame[frame["year"].isin([2012, 2013, 2014])].pivot(index="school", columns="year", values="y")
    change = wide[2014] - wide[[2012, 2013]].mean(axis=1)
    join = frame.drop_duplicates("school").set_index("school")["join_year"]
    treated, control = change[join.reindex(change.index) == 2016], change[join.reindex(change.index).isna()]
    assert test["estimate"] == pytest.approx(treated.mean() - control.mean(), abs=1e-10)
    assert test["n_treated"] == len(treated) and test["n_control"] == len(control)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_placebo_pretrend_quiet_under_parallel_trends_and_rejects_a_pre_trend(seed):
    _, quiet, _, _ = fit_did_2x2(_frame(seed), "y", pre_years=[2012, 2013, 2014], post_years=[2017, 2018])
    _, loud, _, _ = fit_did_2x2(_frame(seed, pretrend=1.0), "y", pre_years=[2012, 2013, 2014], post_years=[2017, 2018])
    assert quiet["pretrend_test"]["p_value"] > 0.01
    assert loud["pretrend_test"]["p_value"] < 1e-6


def test_no_pretrend_test_with_one_pre_year():
    _, diagnostics, _, _ = fit_did_2x2(_frame(4), "y", pre_years=[2014], post_years=[2017])
    assert "pretrend_test" not in diagnostics


def test_baseline_balance_table():
    frame = _frame(5)
    _, diagnostics, _, _ = fit_did_2x2(frame, "y", pre_years=[2013, 2014], post_years=[2017], covariates=["fsm"])
    balance = diagnostics["balance"].set_index("covariate")
    assert list(balance.index) == ["y (before joining)", "fsm"]
    # make_panel gives joiners a level 2 points lower: a large standardised difference on the outcome
    assert balance.loc["y (before joining)", "smd"] < -0.25
    assert balance.loc["y (before joining)", "wwc_verdict"] == "does not satisfy"
    assert abs(balance.loc["fsm", "smd"]) < 0.25
    assert balance["n_treated"].iloc[0] + balance["n_control"].iloc[0] > 100


def test_balance_skips_a_covariate_missing_before_joining():
    frame = _frame(6).assign(fsm=lambda d: d["fsm"].where(d["year"] > 2014))
    _, diagnostics, _, _ = fit_did_2x2(frame, "y", pre_years=[2013, 2014], post_years=[2017], covariates=["fsm"])
    balance = diagnostics["balance"]
    assert list(balance["covariate"]) == ["y (before joining)"]
    assert "fsm" in balance["note"].iloc[0]
    assert balance["smd"].notna().all()
