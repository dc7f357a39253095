"""The example config runs end to end: all three methods, results files, figures, reproducibility."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from evaltool.config import load_config
from evaltool.pipeline import execute

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "configs" / "did_staggered_example.yaml"


@pytest.fixture(scope="module")
def example_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("did") / "out"
    run, folder = execute(load_config(EXAMPLE), out)
    return run, folder


def test_example_config_runs_every_method(example_run):
    run, folder = example_run
    assert [a.status for a in run.analyses] == ["ok"] * 4, [a.error for a in run.analyses]
    results = pd.read_csv(folder / "results.csv")
    first = results.groupby("analysis").head(1).set_index("analysis")
    assert first.loc["staggered", "term"] == "ATT (cohort-weighted)"
    assert first.loc["twfe", "term"] == "joined"
    assert first.loc["event_study", "term"] == "average post-joining coefficient"
    staggered = results[results["analysis"] == "staggered"]
    assert {"ATT(g)", "ATT(e)", "ATT(t)", "ATT(g,t)"} <= set(staggered["estimand"])
    assert staggered["inference"].iloc[0].startswith("multiplier bootstrap (999 mammen draws")
    # The sample data's truth (simulated): the headline effect is close to the realised ATT.
    truth = json.loads((ROOT / "sample_data" / "truth.json").read_text())["att_overall"]["school"]
    row = first.loc["staggered"]
    assert abs(row["estimate"] - truth) < 4 * row["std_error"]


def test_example_results_json_holds_diagnostics(example_run):
    _, folder = example_run
    analyses = {a["analysis"]: a for a in json.loads((folder / "results.json").read_text())["analyses"]}
    diag = analyses["staggered"]["diagnostics"]
    assert {"group_time", "aggregations", "pretrend_test", "placebo_test", "cohort_counts", "design"} <= set(diag)
    counts = pd.DataFrame(diag["cohort_counts"]["data"], columns=diag["cohort_counts"]["columns"])
    assert "never joined" in set(counts["cohort"])
    dynamic = pd.DataFrame(diag["aggregations"]["dynamic"]["data"], columns=diag["aggregations"]["dynamic"]["columns"])
    assert (dynamic["ci_upper_uniform"] - dynamic["ci_lower_uniform"] > 2 * 1.96 * dynamic["std_error"]).all()
    exclusions = analyses["staggered"]["sample"]["exclusions"]
    assert any("no pre-joining year" in e["reason"] for e in exclusions)
    assert analyses["twfe"]["diagnostics"]["negative_weights"]["n_treated_school_years"] > 0


def test_example_figures_written(example_run):
    _, folder = example_run
    names = {p.name for p in (folder / "figures").iterdir()}
    for stem in ("staggered_event_study", "staggered_group_time", "event_study_event_study", "twfe_weights"):
        assert {f"{stem}.png", f"{stem}.svg"} <= names


def test_same_seed_same_results(example_run, tmp_path):
    _, folder = example_run
    config = load_config(EXAMPLE)
    _, again = execute(config, tmp_path / "again")
    assert (folder / "results.csv").read_bytes() == (again / "results.csv").read_bytes()
