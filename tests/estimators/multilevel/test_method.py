"""`method: multilevel` end to end on simulated data: recovery, subgroups, growth model, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from ml_helpers import covers, pupil_truth, run_config

from evaltool.config import parse_config
from evaltool.errors import ConfigError
from evaltool.report.plots_subgroups import forest_figure
from evaltool.results.effect_size import hedges_correction

# One exam year: with two, schools joining in 2019 add within-school contrasts of first-year effects, which
# dominate the random-intercept estimate (effects grow with years since joining), so the coefficient is no
# longer the treated pupils' average effect (documented in docs/configuration.md).
PUPIL_MODEL = """
  - name: ml
    method: multilevel
    years: [2019]
    pupil_covariates: [ks2_score, disadvantaged, sen, female]
    school_covariates: [ks2_prior, fsm_pct]
    heterogeneity:
      by: [disadvantaged, prior_band]
      reference: {prior_band: high}
"""


@pytest.fixture(scope="module")
def pupil_run(simulated):
    data, folder = simulated
    return data, run_config(folder, PUPIL_MODEL, name="pupil.yaml")


def test_pupil_model_recovers_the_effect_and_reports_the_model(pupil_run):
    data, run = pupil_run
    result = run.analyses[0]
    assert result.status == "ok", result.error
    truth = pupil_truth(data, year=2019)
    overall = result.estimate("treated")
    assert covers(overall.estimate, overall.std_error, truth["true_effect"].mean())
    model = result.diagnostics["model"]
    assert model["engine"] == "fast" and model["estimation"] == "REML"
    assert 0 < model["icc_conditional"] < model["icc_null"] < 1
    assert model["aic"] == pytest.approx(model["deviance"] + 2 * (len(result.diagnostics["fixed_effects"]) + 2))
    assert set(result.diagnostics["variance_components"]["level"]) == {"school", "residual"}
    assert result.sample.n_rows_used == overall.n_obs


def test_subgroup_effects_cover_truth_and_interaction_detects_disadvantaged(pupil_run):
    data, run = pupil_run
    result = run.analyses[0]
    truth = pupil_truth(data, year=2019)
    table = result.diagnostics["subgroups"]
    assert (table["status"] == "ok").all()
    for row in table.itertuples():
        column, code = row.subgroup.split("=")
        values = truth[column].astype(str)
        assert covers(row.estimate, row.std_error, truth.loc[values == code, "true_effect"].mean()), row.subgroup
    dis = table.set_index("subgroup")
    # the simulated extra effect for disadvantaged pupils (+1.5 points) is detected
    assert dis.loc["disadvantaged=1", "estimate"] > dis.loc["disadvantaged=0", "estimate"]
    assert dis.loc["disadvantaged=1", "interaction_p_value"] < 1e-3
    assert dis.loc["disadvantaged=1", "interaction_p_holm"] < 0.01
    # binary column: the joint Wald test is the single interaction test (χ²(1) = z²)
    assert dis.loc["disadvantaged=1", "joint_interaction_p_value"] == pytest.approx(
        dis.loc["disadvantaged=1", "interaction_p_value"], rel=1e-6)
    assert dis.loc["prior_band=low", "joint_interaction_p_value"] < 0.05
    # low prior attainers gain more than high (the reference level set in the config)
    assert dis.loc["prior_band=high", "reason"] == "reference level"
    assert dis.loc["prior_band=low", "interaction_p_value"] < 0.05
    # adjusted p-values: Holm ≥ BH ≥ raw
    ok = table["interaction_p_value"].notna()
    assert (table.loc[ok, "interaction_p_holm"] >= table.loc[ok, "interaction_p_bh"] - 1e-15).all()
    assert (table.loc[ok, "interaction_p_bh"] >= table.loc[ok, "interaction_p_value"] - 1e-15).all()
    tidy = run.tidy()
    assert set(tidy["subgroup"]) == {"all", *table["subgroup"]}


def test_effect_sizes_use_the_null_model_total_sd(pupil_run):
    _, run = pupil_run
    result = run.analyses[0]
    standardiser = result.diagnostics["effect_size"]
    assert standardiser["level"] == "pupil"
    model = result.diagnostics["model"]
    # the standardiser comes from all pupils with an outcome (not only the analysis sample)
    assert standardiser["sd"] == pytest.approx(np.sqrt(model["null_school_variance"] + model["null_residual_variance"]),
                                               rel=0.02)
    e = result.estimate("treated")
    factor = hedges_correction(standardiser["n_total"]) / standardiser["sd"]
    assert e.effect_size == pytest.approx(e.estimate * factor)
    assert e.effect_size_ci_lower == pytest.approx(e.ci_lower * factor)
    assert run.tidy()["effect_size"].notna().all()


def test_forest_plot_has_one_row_per_subgroup(pupil_run):
    _, run = pupil_run
    result = run.analyses[0]
    fig = forest_figure(result)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == list(result.diagnostics["subgroups"]["subgroup"])


def test_triple_difference_recovers_the_true_gap(simulated):
    data, folder = simulated
    run = run_config(folder, """
  - name: did
    method: did_2x2
    pre_years: [2012, 2013]
    post_years: [2020, 2021, 2022, 2023]
    heterogeneity:
      by: [disadvantage, low_prior, high_prior]
      compare: [[disadvantaged, not_disadvantaged], [low_prior, high_prior]]
""", name="did.yaml")
    result = run.analyses[0]
    assert result.status == "ok", result.error
    table = result.diagnostics["subgroups"].set_index("subgroup")
    gaps = data.truth["subgroup_gaps"]
    for label, key in (("disadvantaged - not_disadvantaged", "disadvantaged_minus_not_disadvantaged"),
                       ("low_prior - high_prior", "low_prior_minus_high_prior")):
        row = table.loc[label]
        assert row["kind"] == "gap" and row["status"] == "ok"
        assert covers(row["estimate"], row["std_error"], gaps[key]), (label, row["estimate"], gaps[key])
        assert row["interaction_p_value"] < 0.05
    assert table.loc["disadvantaged", "interaction_p_value"] == table.loc["disadvantaged - not_disadvantaged",
                                                                          "interaction_p_value"]
    subgroups = {e.subgroup for e in result.estimates}
    assert {"disadvantaged", "not_disadvantaged", "low_prior", "high_prior"} <= subgroups
    truth = data.truth["subgroups"]
    for name in ("disadvantaged", "not_disadvantaged"):
        assert table.loc[name, "estimate"] == pytest.approx(truth[name]["att_school"], abs=4 * table.loc[name, "std_error"] + 1.0)


def test_growth_model_finds_no_effect_when_there_is_none(tmp_path):
    from evaltool.data.simulate import SimulationSettings, simulate, write_simulation

    data = simulate(SimulationSettings(seed=3, n_schools=200, effect_scale=0.0))
    write_simulation(data, tmp_path)
    run = run_config(tmp_path, """
  - name: growth
    method: multilevel
    data: panel
    random_slopes: [year]
    school_covariates: [ks2_prior, fsm_pct]
""")
    result = run.analyses[0]
    assert result.status == "ok", result.error
    e = result.estimate("treated")
    assert covers(e.estimate, e.std_error, 0.0)
    assert result.diagnostics["effect_size"]["level"] == "pupil"


def test_growth_model_recovers_a_constant_effect(tmp_path):
    rng = np.random.default_rng(12)
    n_schools, years = 250, np.arange(2012, 2024)
    join = np.where(rng.random(n_schools) < 0.5, rng.integers(2014, 2020, n_schools), 0)
    school = np.repeat(np.arange(n_schools), len(years))
    year = np.tile(years, n_schools)
    u0, u1 = rng.normal(0, 4, n_schools), rng.normal(0, 0.3, n_schools)
    treated = (join[school] > 0) & (year >= join[school])
    y = 46 + u0[school] + u1[school] * (year - 2017.5) + 0.5 * (year - 2012) + 2.0 * treated + rng.normal(0, 1.5, school.size)
    pd.DataFrame({"urn": 100000 + school, "year": year, "join_year": join[school], "attainment8": y,
                  "ks2_prior": 105.0, "fsm_pct": 20.0}).to_csv(tmp_path / "school_panel.csv", index=False)
    (tmp_path / "c.yaml").write_text("""
data: {panel: school_panel.csv}
columns: {outcomes: [attainment8]}
analyses:
  - {name: growth, method: multilevel, data: panel, random_slopes: [year]}
""")
    from evaltool.config import load_config
    from evaltool.pipeline import run_analyses

    result = run_analyses(load_config(tmp_path / "c.yaml")).analyses[0]
    assert result.status == "ok", result.error
    e = result.estimate("treated")
    assert covers(e.estimate, e.std_error, 2.0)
    assert e.ci_lower < 2.0 < e.ci_upper
    vc = result.diagnostics["variance_components"].set_index("term")["value"]
    assert vc["Intercept"] == pytest.approx(16, rel=0.3)
    assert vc["year_c"] == pytest.approx(0.09, rel=0.4)
    assert result.diagnostics["effect_size"]["level"] == "school"


def test_three_level_model_fast_engine_equals_mixedlm(simulated):
    _, folder = simulated
    run = run_config(folder, """
  - {name: fast3, method: multilevel, years: [2019], pupil_covariates: [ks2_score], trust_intercept: true}
  - {name: sm3, method: multilevel, years: [2019], pupil_covariates: [ks2_score], trust_intercept: true,
     engine: statsmodels}
""", name="three.yaml")
    fast, sm = run.analyses
    assert fast.status == sm.status == "ok", (fast.error, sm.error)
    assert fast.diagnostics["model"]["engine"] == "fast" and sm.diagnostics["model"]["engine"] == "statsmodels"
    assert list(fast.diagnostics["variance_components"]["level"]) == ["school", "trust", "residual"]
    assert any(e.reason == "year not in years" for e in fast.sample.exclusions)
    # statsmodels 0.15.0 MixedLM (groups = trust, school variance component) is the reference
    a, b = fast.estimate("treated"), sm.estimate("treated")
    assert a.estimate == pytest.approx(b.estimate, abs=1e-4)
    # SEs: σ²(XᵀV⁻¹X)⁻¹ (lme4) vs MixedLM's full observed information differ by ~0.1% for a school-level
    # regressor; the trust variance is weakly identified (flat likelihood), where MixedLM stops slightly
    # short (the fast engine's log-likelihood is higher): 2e-3 relative.
    assert a.std_error == pytest.approx(b.std_error, rel=2e-3)
    np.testing.assert_allclose(fast.diagnostics["variance_components"]["value"],
                               sm.diagnostics["variance_components"]["value"], rtol=2e-3)
    llf_fast, llf_sm = fast.diagnostics["model"]["log_likelihood"], sm.diagnostics["model"]["log_likelihood"]
    assert llf_fast >= llf_sm - 1e-8 and llf_fast == pytest.approx(llf_sm, abs=1e-4)


BASE = """
data: {panel: p.csv, pupils: pupils.csv}
columns: {outcomes: [attainment8], covariates: [fsm_pct]}
analyses:
"""


@pytest.mark.parametrize(
    ("analysis", "message"),
    [
        ("{name: a, method: multilevel, random_slopes: [ks2]}", r"random_slopes \['ks2'\] must be among pupil_covariates"),
        ("{name: a, method: multilevel, school_covariates: [ks2_prior]}", r"\['ks2_prior'\] are not in columns.covariates"),
        ("{name: a, method: multilevel, trust_intercept: true}", r"trust_intercept: true needs columns.trust"),
        ("{name: a, method: multilevel, data: panel, random_slopes: [ks2]}", r"must be among \['year'\] for data: panel"),
        ("{name: a, method: multilevel, heterogeneity: {by: []}}", r"heterogeneity.by"),
    ],
)
def test_config_errors_name_the_key(analysis, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(BASE + f"  - {analysis}\n")


def test_growth_model_reruns_on_subgroup_panels_and_output_folder(simulated, tmp_path):
    from evaltool.config import load_config
    from evaltool.pipeline import execute

    data, folder = simulated
    config = folder / "growth_het.yaml"
    run_config(folder, """
  - name: growth
    method: multilevel
    data: panel
    years: [2014, 2015, 2016, 2017, 2018, 2019]
    heterogeneity:
      by: [disadvantage]
      compare: [[disadvantaged, not_disadvantaged]]
""", name=config.name)
    run, out = execute(load_config(config), tmp_path / "out")
    result = run.analyses[0]
    assert result.status == "ok", result.error
    table = result.diagnostics["subgroups"].set_index("subgroup")
    assert list(table.index) == ["disadvantaged", "not_disadvantaged", "disadvantaged - not_disadvantaged"]
    assert (table["status"] == "ok").all()
    gap = table.loc["disadvantaged - not_disadvantaged"]
    assert gap["estimate"] > 0 and gap["interaction_p_value"] < 0.05
    csv = pd.read_csv(out / "results.csv")
    assert set(csv["subgroup"]) == {"all", *table.index}
    assert csv["effect_size"].notna().all()
    assert (out / "figures" / "growth_subgroups_forest.png").exists()
    assert (out / "figures" / "growth_subgroups_forest.svg").exists()


def test_fast_and_statsmodels_engines_agree_through_the_method(simulated):
    _, folder = simulated
    run = run_config(folder, """
  - {name: fast, method: multilevel, years: [2019], pupil_covariates: [ks2_score, disadvantaged], engine: fast}
  - {name: sm, method: multilevel, years: [2019], pupil_covariates: [ks2_score, disadvantaged], engine: statsmodels}
""", name="engines.yaml")
    fast, sm = run.analyses
    assert fast.status == sm.status == "ok", (fast.error, sm.error)
    assert fast.diagnostics["model"]["engine"] == "fast" and sm.diagnostics["model"]["engine"] == "statsmodels"
    a, b = fast.estimate("treated"), sm.estimate("treated")
    assert a.estimate == pytest.approx(b.estimate, abs=1e-4)
    assert a.std_error == pytest.approx(b.std_error, rel=1e-3)
    va = fast.diagnostics["variance_components"]["value"].to_numpy()
    vb = sm.diagnostics["variance_components"]["value"].to_numpy()
    # MixedLM stops slightly short of the optimum on this flat likelihood (school variance 8.25 on an
    # outcome with pupil variance 148): the fast engine's log-likelihood is higher, and the variance
    # components agree to 1e-3 relative (2e-4 observed).
    llf_fast, llf_sm = fast.diagnostics["model"]["log_likelihood"], sm.diagnostics["model"]["log_likelihood"]
    assert llf_fast >= llf_sm - 1e-8
    assert llf_fast == pytest.approx(llf_sm, abs=1e-4)
    np.testing.assert_allclose(va, vb, rtol=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [10, 11])
def test_pupil_recovery_holds_on_other_seeds(seed, tmp_path):
    from evaltool.data.simulate import SimulationSettings, simulate, write_simulation

    data = simulate(SimulationSettings(seed=seed, n_schools=300))
    write_simulation(data, tmp_path)
    result = run_config(tmp_path, PUPIL_MODEL).analyses[0]
    assert result.status == "ok", result.error
    truth = pupil_truth(data, year=2019)
    overall = result.estimate("treated")
    assert covers(overall.estimate, overall.std_error, truth["true_effect"].mean())
    for row in result.diagnostics["subgroups"].itertuples():
        column, code = row.subgroup.split("=")
        assert covers(row.estimate, row.std_error, truth.loc[truth[column].astype(str) == code, "true_effect"].mean())
