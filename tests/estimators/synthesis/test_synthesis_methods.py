"""Methods trust_effects and meta_analysis through the config and the pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from evaltool.config import load_config
from evaltool.data.simulate import write_simulation
from evaltool.errors import ConfigError
from evaltool.estimators.synthesis.meta import fit_meta
from evaltool.pipeline import run_analyses

REFERENCE = Path(__file__).resolve().parents[2] / "reference"

BASE = {
    "seed": 7,
    "data": {"panel": "data/school_panel.csv", "trusts": "data/trusts.csv"},
    "columns": {"school": "urn", "year": "year", "join_year": "join_year", "trust": "trust_id",
                "outcomes": ["attainment8"]},
}


def _config(tmp: Path, analyses: list[dict], **top) -> Path:
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump({**BASE, **top, "analyses": analyses}, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory, sim_tools):
    folder = tmp_path_factory.mktemp("sim")
    data = sim_tools.simulated(seed=3, n_schools=1000)
    paths = write_simulation(data, folder / "data")
    (folder / "data" / "pupils.parquet").unlink()
    assert paths
    return folder, data


TRUST = {"name": "trusts", "method": "trust_effects", "n_permutations": 199}


def test_trust_effects_one_row_per_trust(sim_dir):
    folder, data = sim_dir
    result = run_analyses(load_config(_config(folder, [TRUST])))
    analysis = result.analyses[0]
    assert analysis.status == "ok", analysis.error
    tidy = analysis.tidy()
    assert tidy["term"].is_unique and tidy["term"].str.startswith("TR").all()
    assert tidy["inference"].str.contains("randomisation inference").all()
    skipped = analysis.diagnostics["skipped_trusts"]
    assert len(tidy) + len(skipped) == data.trusts.shape[0]


def test_meta_regression_recovers_collaboration_type(sim_dir):
    # truth: tau = base[type] + 0.5*hard + 1.5*(depth_organisation - 0.5) + ... (simulator parameters)
    folder, data = sim_dir
    meta = {"name": "synthesis", "method": "meta_analysis", "source": "trusts",
            "moderators": ["collaboration_type", "federation_form", "depth_organisation"],
            "reference_levels": {"collaboration_type": "expertise", "federation_form": "soft"}}
    result = run_analyses(load_config(_config(folder, [TRUST, meta])))
    analysis = result.analyses[1]
    assert analysis.status == "ok", analysis.error
    params = data.truth["parameters"]["effect"]
    base = params["base_by_type"]
    coefs = analysis.diagnostics["meta_regression"]["coefficients"].set_index("term")
    truth = {f"collaboration_type={t}": base[t] - base["expertise"] for t in base if t != "expertise"}
    truth["federation_form=hard"] = params["hard_federation"]
    truth["depth_organisation"] = params["depth_organisation"]
    for term, value in truth.items():
        row = coefs.loc[term]
        assert abs(row["estimate"] - value) < 4 * row["std_error"], (term, row["estimate"], value)
    tests = analysis.diagnostics["meta_regression"]["moderator_tests"].set_index("moderator")
    assert tests.loc["collaboration_type", "p_value"] < 0.05
    assert tests.loc["collaboration_type", "test"] == "F"
    # pooled mean effect recovers the average of the per-trust truths
    pooled = analysis.estimate("pooled")
    per_trust = analysis.diagnostics["studies"]
    assert pooled.n_obs == len(per_trust)
    by_level = analysis.diagnostics["by_level"]["collaboration_type"]
    assert set(by_level["level"]) == set(base)


def test_meta_analysis_of_source_reuses_identical_estimates(sim_dir):
    folder, _ = sim_dir
    meta = {"name": "synthesis", "method": "meta_analysis", "source": "trusts", "knapp_hartung": False}
    result = run_analyses(load_config(_config(folder, [TRUST, meta])))
    trusts, synthesis = result.analyses
    studies = synthesis.diagnostics["studies"]
    np.testing.assert_allclose(studies["estimate"], [e.estimate for e in trusts.estimates])
    direct = fit_meta(studies["estimate"], studies["std_error"])
    assert synthesis.estimate("pooled").estimate == pytest.approx(direct.coef[0])
    het = synthesis.diagnostics["heterogeneity"]
    assert het["tau2"] == pytest.approx(direct.tau2) and het["I2_percent"] == pytest.approx(direct.I2)
    pooled = synthesis.diagnostics["pooled"]
    assert pooled["prediction_lower"] < pooled["ci_lower"] <= pooled["ci_upper"] < pooled["prediction_upper"]


def _bcg_effects(tmp_path: Path) -> Path:
    d = pd.read_csv(REFERENCE / "dat_bcg.csv")
    yi = np.log(d.tpos / (d.tpos + d.tneg)) - np.log(d.cpos / (d.cpos + d.cneg))
    vi = 1 / d.tpos - 1 / (d.tpos + d.tneg) + 1 / d.cpos - 1 / (d.cpos + d.cneg)
    out = pd.DataFrame({"trial": d.author + " " + d.year.astype(str), "logrr": yi, "se": np.sqrt(vi),
                        "ablat": d.ablat, "alloc": d.alloc})
    path = tmp_path / "effects.csv"
    out.to_csv(path, index=False)
    return path


def test_meta_analysis_of_user_file(sim_dir, tmp_path):
    folder, _ = sim_dir
    effects = _bcg_effects(tmp_path)
    meta = {"name": "bcg", "method": "meta_analysis", "effects_file": str(effects), "study_column": "trial",
            "estimate_column": "logrr", "std_error_column": "se", "knapp_hartung": False, "moderators": ["ablat"]}
    analysis = run_analyses(load_config(_config(folder, [meta]))).analyses[0]
    assert analysis.status == "ok", analysis.error
    # metafor rma(yi, vi, data=dat): -0.7145 (Viechtbauer 2010); mods = ~ ablat: -0.0291
    assert analysis.estimate("pooled").estimate == pytest.approx(-0.7145, abs=6e-5)
    assert analysis.estimate("moderator:ablat").estimate == pytest.approx(-0.0291, abs=6e-5)


def test_missing_standard_errors_are_counted(sim_dir, tmp_path):
    folder, _ = sim_dir
    effects = _bcg_effects(tmp_path)
    table = pd.read_csv(effects)
    table.loc[[0, 1], "se"] = np.nan
    table.to_csv(effects, index=False)
    meta = {"name": "bcg", "method": "meta_analysis", "effects_file": str(effects), "study_column": "trial",
            "estimate_column": "logrr", "std_error_column": "se"}
    analysis = run_analyses(load_config(_config(folder, [meta]))).analyses[0]
    reasons = analysis.sample.to_frame().set_index("reason")
    assert reasons.loc["study without estimate or standard error", "n_rows"] == 2
    assert analysis.estimate("pooled").n_obs == 11


def test_fewer_than_three_studies_fails_with_message(sim_dir, tmp_path):
    folder, _ = sim_dir
    effects = _bcg_effects(tmp_path)
    pd.read_csv(effects).head(2).to_csv(effects, index=False)
    meta = {"name": "bcg", "method": "meta_analysis", "effects_file": str(effects), "study_column": "trial",
            "estimate_column": "logrr", "std_error_column": "se"}
    analysis = run_analyses(load_config(_config(folder, [meta]))).analyses[0]
    assert analysis.status == "failed"
    assert "Only 2 study(ies) to pool" in analysis.error and "at least 3" in analysis.error
    assert analysis.diagnostics["exit_code"] == 2


def test_single_level_moderator_skip_and_fail(sim_dir, tmp_path):
    folder, _ = sim_dir
    effects = _bcg_effects(tmp_path)
    pd.read_csv(effects).assign(design="trial").to_csv(effects, index=False)
    meta = {"name": "bcg", "method": "meta_analysis", "effects_file": str(effects), "study_column": "trial",
            "estimate_column": "logrr", "std_error_column": "se", "moderators": ["design", "ablat"]}
    analysis = run_analyses(load_config(_config(folder, [meta]))).analyses[0]
    assert analysis.status == "ok"
    assert any("Moderator 'design' left out" in w for w in analysis.warnings)
    failing = run_analyses(load_config(_config(folder, [{**meta, "on_problem": "fail"}]))).analyses[0]
    assert failing.status == "failed" and "moderator 'design' has a single level ('trial')" in failing.error


def test_trust_ids_only_in_one_source_are_warned(sim_dir, tmp_path):
    folder, _ = sim_dir
    trusts = pd.read_csv(folder / "data" / "trusts.csv")
    extra = trusts.iloc[[0]].assign(trust_id="TR9999")
    (tmp_path / "data").mkdir()
    pd.concat([trusts.iloc[1:], extra]).to_csv(tmp_path / "data" / "trusts.csv", index=False)
    (tmp_path / "data" / "school_panel.csv").symlink_to(folder / "data" / "school_panel.csv")
    analysis = run_analyses(load_config(_config(tmp_path, [TRUST]))).analyses[0]
    text = " ".join(analysis.warnings)
    assert "have no schools in the data" in text and "'TR9999'" in text
    assert "missing from data.trusts" in text and f"'{trusts.trust_id.iloc[0]}'" in text


def test_config_errors_name_the_key(sim_dir):
    folder, _ = sim_dir
    bad = [
        ([TRUST, {"name": "m", "method": "meta_analysis", "source": "nope"}], "no analysis named 'nope'"),
        ([{"name": "m", "method": "meta_analysis"}], "give exactly one of source"),
        ([{**TRUST, "pre_window": [-3, 0]}], "pre_window must end before joining"),
        ([{**TRUST, "post_window": [2, 1]}], "post_window must be \\[first, last\\]"),
        ([TRUST, {"name": "m", "method": "meta_analysis", "source": "trusts", "categorical": ["x"]}],
         "not in moderators"),
    ]
    for analyses, message in bad:
        with pytest.raises(ConfigError, match=message):
            load_config(_config(folder, analyses))
    no_trust = {**BASE, "columns": {k: v for k, v in BASE["columns"].items() if k != "trust"}}
    path = folder / "no_trust.yaml"
    path.write_text(yaml.safe_dump({**no_trust, "analyses": [TRUST]}))
    with pytest.raises(ConfigError, match="trust_effects needs columns.trust"):
        load_config(path)


def test_figures_are_greyscale(sim_dir):
    from matplotlib.colors import to_rgba

    from evaltool.estimators.registry import get_method

    folder, _ = sim_dir
    meta = {"name": "synthesis", "method": "meta_analysis", "source": "trusts", "moderators": ["collaboration_type"]}
    result = run_analyses(load_config(_config(folder, [TRUST, meta])))
    assert "by_collaboration_type" in get_method("meta_analysis").figures(result.analyses[1])
    for analysis in result.analyses:
        figures = get_method(analysis.method).figures(analysis)
        fig = figures["forest"]
        ax = fig.axes[0]
        labels = [t.get_text() for t in ax.get_yticklabels()]
        assert len(labels) >= len(analysis.diagnostics.get("studies", analysis.diagnostics.get("trusts")))
        colours = [c.get_color() for c in ax.get_lines()] + [p.get_facecolor() for p in ax.patches]
        for artist in ax.collections:
            colours += list(artist.get_edgecolor()) + list(artist.get_facecolor())
        for colour in colours:
            r, g, b, _ = to_rgba(colour)
            assert r == pytest.approx(g) and g == pytest.approx(b)
    pooled_labels = [t.get_text() for t in result_axes(result)]
    assert "Random-effects mean" in pooled_labels


def result_axes(result):
    from evaltool.estimators.registry import get_method

    return get_method("meta_analysis").figures(result.analyses[1])["forest"].axes[0].get_yticklabels()


@pytest.fixture(scope="module")
def gap_dir(tmp_path_factory, sim_tools):
    folder = tmp_path_factory.mktemp("gap")
    data = sim_tools.simulated(seed=4, n_schools=800)
    write_simulation(data, folder / "data")
    return folder, data


GAP_COLUMNS = {**BASE["columns"], "subgroup": "subgroup", "subgroup_type": "subgroup_type", "pupil_count": "n_pupils"}


def test_subgroup_gap_by_type(gap_dir):
    # the simulator adds +1.5 points for disadvantaged pupils in every type: the gap effect is positive and
    # does not depend on collaboration type
    folder, data = gap_dir
    gap = {**TRUST, "name": "gap", "subgroup_gap": ["disadvantaged", "not_disadvantaged"]}
    meta = {"name": "gap_by_type", "method": "meta_analysis", "source": "gap", "moderators": ["collaboration_type"]}
    path = _config(folder, [gap, meta], columns=GAP_COLUMNS,
                   data={**BASE["data"], "subgroups": "data/subgroup_panel.csv"})
    result = run_analyses(load_config(path))
    trusts, synthesis = result.analyses
    assert trusts.status == "ok", trusts.error
    assert synthesis.status == "ok", synthesis.error
    assert trusts.tidy()["subgroup"].eq("disadvantaged-not_disadvantaged").all()
    assert any("gap disadvantaged minus not_disadvantaged" in w for w in trusts.warnings)
    pooled = synthesis.estimate("pooled")
    truth = data.truth["subgroup_gaps"]["disadvantaged_minus_not_disadvantaged"]
    assert abs(pooled.estimate - truth) < 4 * pooled.std_error, (pooled.estimate, truth)
    test = synthesis.diagnostics["meta_regression"]["moderator_tests"].set_index("moderator")
    assert test.loc["collaboration_type", "p_value"] > 0.001


def test_subgroup_gap_needs_subgroups_file(sim_dir):
    folder, _ = sim_dir
    with pytest.raises(ConfigError, match="subgroup_gap needs data.subgroups"):
        load_config(_config(folder, [{**TRUST, "subgroup_gap": ["disadvantaged", "not_disadvantaged"]}]))


def test_subgroup_gap_unknown_subgroup_is_named(gap_dir):
    folder, _ = gap_dir
    gap = {**TRUST, "name": "gap", "subgroup_gap": ["poor", "not_disadvantaged"]}
    path = _config(folder, [gap], columns=GAP_COLUMNS, data={**BASE["data"], "subgroups": "data/subgroup_panel.csv"})
    analysis = run_analyses(load_config(path)).analyses[0]
    assert analysis.status == "failed" and "subgroup_gap names ['poor']" in analysis.error


def test_review_question_answers(sim_dir):
    folder, _ = sim_dir
    meta = {"name": "synthesis", "method": "meta_analysis", "source": "trusts",
            "moderators": ["collaboration_type", "depth_organisation", "n_schools"]}
    analysis = run_analyses(load_config(_config(folder, [TRUST, meta]))).analyses[1]
    answers = analysis.diagnostics["review_questions"]
    assert set(answers) == {"overall", "types", "characteristics"}
    pooled = analysis.estimate("pooled")
    assert f"by {pooled.estimate:.2f} points on average" in answers["overall"]
    assert "By collaboration type, effects differ" in answers["types"]
    assert "depth organisation:" in answers["characteristics"] and "n schools:" in answers["characteristics"]


def test_duplicate_study_ids_in_file(sim_dir, tmp_path):
    folder, _ = sim_dir
    effects = _bcg_effects(tmp_path)
    table = pd.read_csv(effects)
    table.loc[1, "trial"] = table.loc[0, "trial"]
    table.to_csv(effects, index=False)
    meta = {"name": "bcg", "method": "meta_analysis", "effects_file": str(effects), "study_column": "trial",
            "estimate_column": "logrr", "std_error_column": "se"}
    analysis = run_analyses(load_config(_config(folder, [meta]))).analyses[0]
    assert analysis.status == "failed" and "study ids in column 'trial' must be unique" in analysis.error


def test_failed_source_is_named(sim_dir):
    folder, _ = sim_dir
    broken = {**TRUST, "pre_window": [-20, -15]}
    meta = {"name": "synthesis", "method": "meta_analysis", "source": "trusts"}
    analyses = run_analyses(load_config(_config(folder, [broken, meta]))).analyses
    assert analyses[1].status == "failed"
    assert "The source analysis 'trusts' could not run" in analyses[1].error
    assert analyses[1].diagnostics["exit_code"] == 2
