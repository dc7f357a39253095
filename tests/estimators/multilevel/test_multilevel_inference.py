"""Multilevel inference (#19): trust-level cluster-robust SEs, the design default, rows that state it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evaltool.config import load_config
from evaltool.config.loader import parse_config
from evaltool.estimators.multilevel.fastlmm import fit_fast_lmm
from evaltool.estimators.multilevel.sandwich import lmm_cluster_covariance
from evaltool.pipeline import run_analyses

ROOT = Path(__file__).resolve().parents[3]


def simulated(seed: int = 1, schools: int = 60, per_school: int = 15):
    rng = np.random.default_rng(seed)
    n = schools * per_school
    school = np.repeat(np.arange(schools), per_school)
    trust = np.arange(schools) // 3
    x = rng.normal(size=n)
    treat = (trust % 2 == 0)[school].astype(float)
    y = (1 + 2 * treat + x + 2 * rng.normal(size=schools)[school] + 1.5 * rng.normal(size=schools // 3)[trust][school]
         + 0.5 * rng.normal(size=schools)[school] * x + rng.normal(size=n))
    X = np.column_stack([np.ones(n), treat, x])
    Z = np.column_stack([np.ones(n), x])
    return y, X, Z, school, trust


def test_sandwich_equals_a_dense_brute_force_computation():
    # Reference: the Liang–Zeger sandwich computed with explicit n_i × n_i matrices V_i = σ²I + Z_i D Z_i'
    # (the textbook formula, e.g. Fitzmaurice, Laird & Ware 2011, eq. 12.4), against the Woodbury form.
    y, X, Z, school, trust = simulated()
    fit = fit_fast_lmm(y, X, Z, school, fixed_names=["I", "t", "x"], random_names=["I", "x"], reml=True)
    beta, D, s2 = fit.params.to_numpy(), fit.re_cov.to_numpy(), fit.residual_variance
    cov, bread, G = lmm_cluster_covariance(y, X, Z, school, trust, beta, D, s2)
    B = np.zeros((3, 3))
    U = np.zeros((G, 3))
    for i in range(school.max() + 1):
        rows = school == i
        v_inv = np.linalg.inv(s2 * np.eye(rows.sum()) + Z[rows] @ D @ Z[rows].T)
        B += X[rows].T @ v_inv @ X[rows]
        U[trust[i]] += X[rows].T @ v_inv @ (y[rows] - X[rows] @ beta)
    reference = G / (G - 1) * np.linalg.inv(B) @ (U.T @ U) @ np.linalg.inv(B)
    np.testing.assert_allclose(cov, reference, rtol=1e-8, atol=1e-12)
    # The bread is the model-based covariance the engine reports (lme4's vcov).
    np.testing.assert_allclose(bread, fit.cov_params.to_numpy(), rtol=1e-8)


@pytest.fixture(scope="module")
def sample_run():
    config = load_config(ROOT / "configs" / "federation_impact.yaml")
    keep = [a for a in config.analyses if a.name == "pupils_multilevel"]
    text = (ROOT / "configs" / "federation_impact.yaml").read_text()
    return config, run_analyses(config.model_copy(update={"analyses": keep})), text


def test_default_is_trust_clustered_and_every_row_says_so(sample_run):
    _, run, _ = sample_run
    result = run.analyses[0]
    assert result.status == "ok", result.error
    for e in result.estimates:
        assert e.cluster == "trust" and e.n_clusters and e.n_clusters > 30, e
        assert e.se_method.startswith("cluster-robust sandwich")
    assert result.diagnostics["inference"]["reason"].startswith("joining is decided")


def test_trust_clustering_widens_the_school_clustered_interval(sample_run):
    config, run, text = sample_run
    model_based = parse_config(text.replace("    years: [2019]\n    pupil_covariates", "    years: [2019]\n    "
                                            "inference: {cluster: school}\n    pupil_covariates"),
                               source=ROOT / "configs" / "federation_impact.yaml")
    keep = [a for a in model_based.analyses if a.name == "pupils_multilevel"]
    by_school = run_analyses(model_based.model_copy(update={"analyses": keep})).analyses[0].estimates[0]
    by_trust = run.analyses[0].estimates[0]
    assert by_school.estimate == pytest.approx(by_trust.estimate)
    assert by_school.cluster == "school" and by_trust.std_error > by_school.std_error


def test_pooled_years_warn_that_they_are_not_the_treated_pupils_effect(sample_run):
    config, _, text = sample_run
    pooled = parse_config(text.replace("    years: [2019]\n    pupil_covariates", "    years: [2018, 2019]\n    pupil_covariates"),
                          source=ROOT / "configs" / "federation_impact.yaml")
    keep = [a for a in pooled.analyses if a.name == "pupils_multilevel"]
    result = run_analyses(pooled.model_copy(update={"analyses": keep})).analyses[0]
    assert any("pools" in w and "treated pupils' average effect" in w for w in result.warnings), result.warnings


def test_a_two_way_or_matched_set_request_is_a_config_error():
    text = (ROOT / "configs" / "multilevel_example.yaml").read_text()
    bad = text.replace("    years: [2019]\n    pupil_covariates: [ks2_score, disadvantaged]",
                       "    years: [2019]\n    inference: {cluster: matched_set}\n    pupil_covariates: [ks2_score, disadvantaged]")
    with pytest.raises(ValueError, match=r"inference\.cluster.*cannot cluster by 'matched_set'"):
        parse_config(bad, source=ROOT / "configs" / "multilevel_example.yaml")


def test_a_fit_is_accepted_only_from_an_optimiser_that_succeeded_at_the_optimum():
    """#19: a mixed-model fit was accepted if either optimiser reported success, keeping the other's point."""
    from scipy.optimize import OptimizeResult

    from evaltool.estimators.multilevel.fastlmm import accepted_optimum

    ok = OptimizeResult(x=np.array([1.0]), fun=100.0, success=True)
    failed_lower = OptimizeResult(x=np.array([2.0]), fun=99.0, success=False)
    failed_same = OptimizeResult(x=np.array([1.0 + 1e-9]), fun=100.0 - 1e-9, success=False)
    failed_higher = OptimizeResult(x=np.array([0.0]), fun=120.0, success=False)
    assert accepted_optimum(ok, failed_lower)[1] is False  # the successful one stopped short of the optimum
    best, converged = accepted_optimum(ok, failed_same)
    assert converged and best is ok
    best, converged = accepted_optimum(failed_higher, ok)
    assert converged and best is ok
    assert accepted_optimum(failed_higher, failed_lower)[1] is False


def test_subgroup_rows_carry_the_inference_and_t_intervals_of_the_headline(sample_run):
    from scipy import stats

    _, run, _ = sample_run
    result = run.analyses[0]
    headline, subgroups = result.estimates[0], result.estimates[1:]
    assert subgroups, "the sample config has a heterogeneity block"
    crit = stats.t.ppf(0.975, headline.n_clusters - 1)
    for e in [headline, *subgroups]:
        assert (e.cluster, e.n_clusters, e.se_correction) == ("trust", headline.n_clusters, "G/(G-1), t(G-1)")
        assert e.ci_upper - e.estimate == pytest.approx(crit * e.std_error, rel=1e-9), e.subgroup
        assert e.p_value == pytest.approx(2 * stats.t.sf(abs(e.estimate / e.std_error), headline.n_clusters - 1))
    table = result.diagnostics["subgroups"].set_index("subgroup")
    sub = table.loc["disadvantaged=1"]
    assert sub["ci_upper"] - sub["estimate"] == pytest.approx(crit * sub["std_error"], rel=1e-9)
    # the model's fixed-effects table uses the same reference distribution
    fixed = result.diagnostics["fixed_effects"].set_index("term")
    assert fixed.loc["treated", "ci_upper"] == pytest.approx(headline.ci_upper, rel=1e-12)
