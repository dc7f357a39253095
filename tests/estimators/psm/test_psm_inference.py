"""PSM inference (#19): design clustering by trust with a reused comparison school's cohorts in one cluster,
checked against an independent statsmodels computation on the sample data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from evaltool.config import load_config
from evaltool.data import load_study
from evaltool.estimators.context import AnalysisContext, analysis_rng
from evaltool.estimators.inference import school_cluster_labels
from evaltool.estimators.psm.method import fit_psm, prepare_units, psm_clusters

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def sample():
    config = load_config(ROOT / "configs" / "federation_impact.yaml")
    study = load_study(config)
    spec = next(a for a in config.analyses if a.name == "matched_did")
    context = AnalysisContext(study=study, spec=spec, outcome="attainment8", rng=analysis_rng(config.seed, spec.name),
                              config=config)
    units, covariates, outcome, _ = prepare_units(context, spec, list(spec.exact))
    return context, spec, units, covariates, outcome


def fit(sample, cluster):
    context, spec, units, covariates, outcome = sample
    labels = school_cluster_labels(context.panel.frame, "trust")
    return fit_psm(units, outcome, covariates, rng=analysis_rng(context.config.seed, spec.name), ratio=spec.ratio,
                   replace=spec.replace, caliper=spec.caliper, cluster=cluster, cluster_labels=labels)


def test_design_se_equals_statsmodels_wls_clustered_by_trust(sample):
    context, spec, units, covariates, outcome = sample
    estimate, diagnostics, _, _ = fit(sample, "design")
    matched = diagnostics["propensity_scores"]["weight"].to_numpy() > 0
    weights = diagnostics["propensity_scores"]["weight"].to_numpy()[matched]
    y = units[outcome].to_numpy(dtype=float)[matched]
    treat = units["treated"].to_numpy(dtype=float)[matched]
    # The reference clusters: the trust of each school over the whole panel (blanks from the school's other
    # years), schools without a trust their own cluster; every cohort of a school in the same cluster.
    trust = context.panel.frame.dropna(subset=["trust"]).groupby("school")["trust"].first()
    school = units["school"].astype(str).to_numpy()[matched]
    groups = pd.factorize(pd.Series(school).map(trust.astype(str)).fillna("own:" + pd.Series(school)))[0]
    # statsmodels WLS, cluster-robust with its default small-sample correction (CR1) and t(G-1).
    ref = sm.WLS(y, sm.add_constant(treat), weights=weights).fit(cov_type="cluster", cov_kwds={"groups": groups},
                                                                  use_t=True)
    assert estimate.estimate == pytest.approx(ref.params[1], abs=1e-10)
    assert estimate.std_error == pytest.approx(ref.bse[1], rel=1e-8)
    assert estimate.n_clusters == len(np.unique(groups))
    assert estimate.cluster.startswith("trust") and estimate.se_method == "cluster-robust"
    assert estimate.ci_upper - estimate.estimate == pytest.approx(ref.conf_int()[1, 1] - ref.params[1], rel=1e-8)


def test_reused_comparison_schools_are_counted_and_clustered_together(sample):
    estimate, diagnostics, _, _ = fit(sample, "matched_set")
    reuse = diagnostics["design"]["comparison_reuse"]
    assert reuse["n_reused"] > 0 and reuse["max_cohorts"] > 1  # the sample reuses comparison schools (#19: 44 of 87)
    n_sets = diagnostics["matched_units"]["matched_set"].nunique()
    assert estimate.n_clusters < n_sets  # sets sharing a comparison school are one cluster


def test_psm_clusters_link_a_schools_cohorts():
    units = pd.DataFrame({"school": ["a", "a", "b", "c"], "cohort": [2015, 2016, 2015, 2016]})

    class Result:  # a (comparison, cohorts 2015 and 2016) matched to b (2015) and c (2016)
        unit_subclass = np.array([0, 1, 0, 1])
        pair_treated = np.array([2, 3])
        pair_control = np.array([0, 1])

    codes, name = psm_clusters(units, Result(), "matched_set", None, replace=False, regression_adjustment=False)
    assert len(set(codes)) == 1 and "linked" in name  # set 0 and set 1 share comparison school a
    codes, _ = psm_clusters(units, Result(), "school", None, replace=False, regression_adjustment=False)
    assert codes[0] == codes[1] and len(set(codes)) == 3


def test_perfect_separation_names_the_separating_covariate():
    """#19: the propensity logit ignored every warning and labelled every failure 'perfect separation'."""
    from evaltool.errors import EstimationError
    from evaltool.estimators.psm.propensity import fit_propensity

    rng = np.random.default_rng(2)
    treat = np.r_[np.ones(40, bool), np.zeros(60, bool)]
    X = pd.DataFrame({"noise": rng.normal(size=100), "size": np.where(treat, 900.0, 300.0) + rng.normal(size=100)})
    with pytest.raises(EstimationError, match=r"the covariate\(s\) size on their own"):
        fit_propensity(X, treat, rng=rng)


def test_a_nearly_collinear_design_is_not_called_separation():
    from evaltool.errors import EstimationError
    from evaltool.estimators.psm.propensity import fit_propensity

    rng = np.random.default_rng(3)
    treat = rng.random(200) < 0.4
    a = rng.normal(size=200)
    X = pd.DataFrame({"a": a, "b": a * 1e8 + 1e-9 * rng.normal(size=200)})
    try:
        fit_propensity(X, treat, rng=rng)
    except EstimationError as exc:
        assert "separation" not in str(exc).lower(), str(exc)


def test_inference_record_reports_reused_comparison_schools_and_clusters(sample):
    estimate, diagnostics, _, _ = fit(sample, "design")
    reuse = diagnostics["design"]["comparison_reuse"]
    matched = diagnostics["matched_units"]
    per_school = matched.loc[~matched["treated"]].groupby("school")["cohort"].nunique()
    assert reuse["n_reused"] == int((per_school > 1).sum()) and reuse["max_cohorts"] == int(per_school.max())
    note = diagnostics["inference"]["notes"][0]  # shown in the report with the inference sentence
    assert f"{reuse['n_reused']} of {reuse['n_comparison_schools']} matched comparison schools" in note
    assert f"{estimate.n_clusters} clusters" in note
    assert estimate.se_correction.startswith("CR1") and estimate.n_clusters is not None


def test_correction_none_is_honoured(sample):
    from evaltool.config.inference import InferenceOptions

    context, spec, units, covariates, outcome = sample
    labels = school_cluster_labels(context.panel.frame, "trust")
    cr1, *_ = fit_psm(units, outcome, covariates, rng=analysis_rng(context.config.seed, spec.name), cluster="design",
                      cluster_labels=labels)
    none, *_ = fit_psm(units, outcome, covariates, rng=analysis_rng(context.config.seed, spec.name), cluster="design",
                       cluster_labels=labels, inference=InferenceOptions(correction="none"))
    g, n = cr1.n_clusters, cr1.n_obs
    # CR1 multiplies the variance by G/(G-1)·(N-1)/(N-K), K = 2 (constant, treatment)
    assert cr1.std_error == pytest.approx(none.std_error * np.sqrt(g / (g - 1) * (n - 1) / (n - 2)), rel=1e-10)
    assert none.se_correction.startswith("none")


def test_post_years_missing_from_the_data_are_stated(sample):
    from evaltool.estimators.psm.design import absent_event_times
    from evaltool.estimators.psm.method import post_window_notes

    context, spec, units, *_ = sample
    # federation_impact.yaml excludes 2020 and 2021
    assert absent_event_times(context.panel.frame["year"], [2017, 2018, 2019], [0, 1, 2]) == {2018: [2], 2019: [1, 2]}
    diagnostics = {"design": {}}
    warnings = post_window_notes(context, units, spec, diagnostics)
    assert diagnostics["design"]["event_times_by_cohort"]["2019"] == [0]
    assert len(warnings) == 1 and "cohort 2019: event times 1, 2 (years 2020, 2021)" in warnings[0]


def test_ipw_design_default_clusters_by_trust(sample):
    from evaltool.estimators.psm.ipw import fit_ipw

    context, spec, units, covariates, outcome = sample
    labels = school_cluster_labels(context.panel.frame, "trust")
    design, diagnostics, _, _ = fit_ipw(units, outcome, covariates, cluster="design", cluster_labels=labels)
    school, *_ = fit_ipw(units, outcome, covariates, cluster="school")
    assert design.cluster == "trust" and diagnostics["inference"]["reason"].startswith("joining is decided")
    assert design.n_clusters == labels.codes_for(units["school"])[1] < school.n_clusters == units["school"].nunique()
    assert design.std_error != school.std_error and design.se_method.startswith("sandwich")
