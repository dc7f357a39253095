"""The Python API (#16): each method on data frames gives the rows the CLI writes; bad arguments are named.

One simulated data set (200 schools, fixed seed) is written as files and run through ``evaltool run`` once with
one analysis per method; each API call with the same options must give exactly those ``results.csv`` rows
(compared as CSV text, after the writer's own cell escaping), so the API and the config path cannot drift.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import evaltool
from evaltool.cli import main
from evaltool.results.writer import csv_safe

COVARIATES = ["ks2_prior", "fsm_pct"]

#: The options of each method's analysis, as config block and as API keywords (the same values).
OPTIONS: dict[str, dict] = {
    "did_2x2": {"pre_years": [2012, 2013], "post_years": [2022, 2023]},
    "did_twfe": {},
    "event_study": {"window": [-3, 3]},
    "did_staggered": {"bootstrap_draws": 99, "aggregations": ["simple", "dynamic"]},
    "psm": {"did": True, "event_times": [0, 1], "caliper": 0.2},
    "ipw": {},
    "multilevel": {"years": [2019], "pupil_covariates": ["ks2_score"]},
    "trust_effects": {"n_permutations": 99},
}


@pytest.fixture(scope="module")
def sim():
    return evaltool.simulate(n_schools=200, seed=11)


@pytest.fixture(scope="module")
def cli_rows(sim, tmp_path_factory):
    """``results.csv`` of one ``evaltool run`` with one analysis per method (and a meta-analysis of a file)."""
    folder = tmp_path_factory.mktemp("api_cli")
    sim.panel.to_parquet(folder / "panel.parquet")
    sim.pupils.to_parquet(folder / "pupils.parquet")
    effects(sim).to_csv(folder / "effects.csv", index=False)
    analyses = [{"name": name, "method": name, **options} for name, options in OPTIONS.items()]
    for analysis in analyses:
        if analysis["method"] in ("did_twfe", "event_study", "did_staggered", "psm", "ipw"):
            analysis["covariates"] = COVARIATES
        if analysis["method"] == "multilevel":
            analysis["school_covariates"] = COVARIATES
    analyses.append({"name": "meta_analysis", "method": "meta_analysis", "effects_file": "effects.csv"})
    config = {
        "data": {"panel": "panel.parquet", "pupils": "pupils.parquet"},
        "columns": {"school": "urn", "year": "year", "join_year": "join_year", "trust": "trust_id",
                    "outcomes": ["attainment8"], "covariates": COVARIATES},
        "analyses": analyses,
    }
    (folder / "config.yaml").write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
    result = CliRunner().invoke(main, ["run", str(folder / "config.yaml"), "--out", str(folder / "out")])
    assert result.exit_code == 0, result.output
    return pd.read_csv(folder / "out" / "results.csv", dtype=str, keep_default_na=False)


def effects(sim) -> pd.DataFrame:
    """Eight independent study estimates for the meta-analysis (from the simulated trusts' sizes)."""
    rng = np.random.default_rng(5)
    return pd.DataFrame({"study": [f"s{i}" for i in range(8)], "estimate": rng.normal(2, 1, 8),
                         "std_error": rng.uniform(0.5, 1.5, 8), "size": np.arange(8)})


def as_cli_text(tidy: pd.DataFrame) -> pd.DataFrame:
    """A tidy frame as ``results.csv`` holds it (the writer's escaping, then CSV text)."""
    buffer = io.StringIO()
    csv_safe(tidy).to_csv(buffer, index=False, lineterminator="\n")
    buffer.seek(0)
    return pd.read_csv(buffer, dtype=str, keep_default_na=False)


def api_call(name: str, sim) -> evaltool.AnalysisResult:
    common = {"outcome": "attainment8", "unit": "urn", "time": "year", "cohort": "join_year", "trust": "trust_id",
              "pupils": sim.pupils}  # as the config's data.pupils: effect sizes use the pupils' SD
    function = getattr(evaltool, name)
    if name in ("trust_effects", "did_2x2"):
        return function(sim.panel, **common, **OPTIONS[name])
    return function(sim.panel, covariates=COVARIATES, **common, **OPTIONS[name])


@pytest.mark.parametrize("name", list(OPTIONS))
def test_tidy_equals_the_rows_the_cli_writes(name, sim, cli_rows):
    result = api_call(name, sim)
    assert isinstance(result, evaltool.AnalysisResult) and result.status == "ok"
    expected = cli_rows[cli_rows["analysis"] == name].reset_index(drop=True)
    assert len(expected) > 0
    pd.testing.assert_frame_equal(as_cli_text(result.tidy()), expected)


def test_effect_sizes_follow_the_pupils_given(sim):
    """Without pupils the effect size is standardised by school means' SD (larger g), as a config without
    data.pupils; this is why the CLI comparison passes the pupils."""
    common = {"outcome": "attainment8", "trust": "trust_id", **OPTIONS["did_2x2"]}
    with_pupils = evaltool.did_2x2(sim.panel, pupils=sim.pupils, **common)
    without = evaltool.did_2x2(sim.panel, **common)
    assert with_pupils.estimates[0].estimate == without.estimates[0].estimate
    assert with_pupils.diagnostics["effect_size"]["level"] == "pupil"
    assert without.diagnostics["effect_size"]["level"] != "pupil"


def test_meta_analysis_of_a_frame_equals_the_cli_rows_of_the_file(sim, cli_rows):
    result = evaltool.meta_analysis(effects(sim))
    expected = cli_rows[cli_rows["analysis"] == "meta_analysis"].reset_index(drop=True)
    pd.testing.assert_frame_equal(as_cli_text(result.tidy()), expected)


def test_run_a_config_gives_the_cli_results(project, tmp_path):
    """``evaltool.run(path, out=…)`` is what ``evaltool run`` does: same rows, and the folder is written."""
    run = evaltool.run(project, out=tmp_path / "api")
    assert isinstance(run, evaltool.RunResult) and run.folder == tmp_path / "api"
    written = pd.read_csv(tmp_path / "api" / "results.csv", dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(as_cli_text(run.tidy()), written)
    in_memory = evaltool.run(project)  # no folder
    assert in_memory.folder is None
    pd.testing.assert_frame_equal(as_cli_text(in_memory.tidy()), written)
    first = run.analyses[0]
    assert run[first.analysis] is first and isinstance(first, evaltool.AnalysisResult)
    with pytest.raises(KeyError, match="No analysis named 'nope'"):
        run["nope"]


def test_control_takes_r_did_names(sim):
    common = {"outcome": "attainment8", "trust": "trust_id", "bootstrap_draws": 0, "aggregations": ["simple"]}
    ours = evaltool.did_staggered(sim.panel, comparison="not_yet_joined", **common)
    theirs = evaltool.did_staggered(sim.panel, control="notyettreated", **common)
    pd.testing.assert_frame_equal(ours.tidy(), theirs.tidy())
    never = evaltool.did_staggered(sim.panel, control="never_treated", **common)
    assert never.estimates[0].estimate != ours.estimates[0].estimate
    for function, options in ((evaltool.trust_effects, {"n_permutations": 99}), (evaltool.psm, {"covariates": COVARIATES})):
        a = function(sim.panel, outcome="attainment8", trust="trust_id", control="not_yet_treated", **options)
        b = function(sim.panel, outcome="attainment8", trust="trust_id", comparison="not_yet_joined", **options)
        pd.testing.assert_frame_equal(a.tidy(), b.tidy())


def test_the_callers_frames_are_not_changed(sim):
    panel = sim.panel.copy()
    before = panel.copy()
    evaltool.did_twfe(panel, outcome="attainment8", trust="trust_id")
    pd.testing.assert_frame_equal(panel, before)


# ------------------------------------------------------------------ result objects
@pytest.fixture(scope="module")
def staggered(sim):
    return evaltool.did_staggered(sim.panel, outcome="attainment8", trust="trust_id", bootstrap_draws=0)


def test_summary_states_estimates_inference_and_sample(staggered):
    text = staggered.summary()
    headline = staggered.estimates[0]
    assert headline.term in text and f"{headline.estimate:.3f}" in text
    assert f"clustered by trust, {headline.n_clusters} clusters" in text
    assert f"of {staggered.sample.n_rows_in:,} rows used" in text
    assert "more rows (all in .tidy())" in text  # group-time rows are counted, not printed
    assert str(staggered) == text


def test_a_meta_analysis_summary_says_it_is_not_clustered(sim):
    text = evaltool.meta_analysis(effects(sim)).summary()
    assert "Inference: not clustered" in text and "clustered by" not in text


def test_html_view_and_dict(staggered):
    page = staggered._repr_html_()
    assert "<table" in page and staggered.estimates[0].term in page and "clustered by trust" in page
    payload = json.loads(json.dumps(staggered.to_dict()))  # JSON-serialisable as results.json
    assert payload["analysis"] == "did_staggered" and len(payload["estimates"]) == len(staggered.estimates)


def test_plot_returns_the_report_figures(staggered):
    import matplotlib.figure
    import matplotlib.pyplot as plt

    names = sorted(staggered.figures())
    assert names == ["event_study", "group_time"]
    fig = staggered.plot("event_study")
    assert isinstance(fig, matplotlib.figure.Figure)
    plt.close(fig)
    with pytest.raises(ValueError, match=r"no figure 'nope'; figures are \['event_study', 'group_time'\]"):
        staggered.plot("nope")
    plt.close("all")


def test_run_result_views(project):
    run = evaltool.run(project)
    assert run.config.title in run.summary() and "<h3>" in run._repr_html_()
    assert all(a.analysis in run.summary() for a in run.analyses)


# ------------------------------------------------------------------ bad arguments
def test_unknown_option_is_named_with_a_suggestion(sim):
    with pytest.raises(evaltool.ConfigError, match=r"psm\(\) got unknown option\(s\) \['calipr'\] \(did you mean 'caliper'\?\)"):
        evaltool.psm(sim.panel, outcome="attainment8", covariates=COVARIATES, calipr=0.2)


def test_bad_option_value_names_the_argument(sim):
    with pytest.raises(evaltool.ConfigError, match=r"argument 'caliper'"):
        evaltool.psm(sim.panel, outcome="attainment8", covariates=COVARIATES, caliper=-1)
    with pytest.raises(evaltool.ConfigError, match=r"argument 'control'.*never_joined"):
        evaltool.did_staggered(sim.panel, outcome="attainment8", control="sometimes")


def test_missing_column_names_the_argument(sim):
    with pytest.raises(evaltool.DataError, match=r"school_id.*argument 'unit'|argument 'unit'.*school_id"):
        evaltool.did_twfe(sim.panel, outcome="attainment8", unit="school_id")
    with pytest.raises(evaltool.DataError, match=r"argument 'outcome'|'progress8'"):
        evaltool.did_twfe(sim.panel, outcome="progress8")


def test_wrong_types_are_clear_errors(sim):
    with pytest.raises(evaltool.DataError, match="data must be a pandas DataFrame.*got list"):
        evaltool.did_twfe([1, 2, 3], outcome="attainment8")
    with pytest.raises(evaltool.DataError, match="effects must be a pandas DataFrame"):
        evaltool.meta_analysis({"a": 1})
    with pytest.raises(evaltool.ConfigError, match="outcome must be one column name"):
        evaltool.did_twfe(sim.panel, outcome=["attainment8", "x"])
    with pytest.raises(evaltool.DataError, match="pupils must be a pandas DataFrame"):
        evaltool.multilevel(sim.panel, outcome="attainment8", pupils="pupils.parquet")


def test_multilevel_without_pupils_says_what_to_pass(sim):
    with pytest.raises(evaltool.ConfigError, match=r"needs pupils= .*or level='panel'"):
        evaltool.multilevel(sim.panel, outcome="attainment8")
    growth = evaltool.multilevel(sim.panel, outcome="attainment8", level="panel", trust="trust_id")
    assert growth.status == "ok" and growth.diagnostics  # the growth model of the panel


def test_config_terms_in_messages_become_argument_names(sim):
    """The shared checks speak of config keys; the API says which argument to pass instead."""
    with pytest.raises(evaltool.ConfigError, match=r"argument 'inference.cluster': clustering by trust needs trust="):
        evaltool.did_twfe(sim.panel, outcome="attainment8", inference={"cluster": "trust"})
    with pytest.raises(evaltool.DataError, match="The data frame has columns: .*Pass the names of its columns"):
        evaltool.did_twfe(sim.panel, outcome="attainment8", unit="school_id")


def test_estimation_failures_raise_estimation_error(sim):
    with pytest.raises(evaltool.EstimationError):
        evaltool.did_2x2(sim.panel, outcome="attainment8", pre_years=[2030], post_years=[2031])


def test_errors_are_value_errors_for_except_clauses():
    assert issubclass(evaltool.ConfigError, ValueError) and issubclass(evaltool.DataError, ValueError)
    assert issubclass(evaltool.EstimationError, evaltool.EvaltoolError)
