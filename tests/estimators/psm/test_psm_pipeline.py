"""method psm / ipw through the config, the pipeline and the results writer."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evaltool.config import load_config
from evaltool.pipeline import execute, run_analyses
from tests.conftest import make_panel, write_config

CONFIG = """\
title: PSM test
seed: 3
data:
  panel: panel.csv
columns:
  school: urn
  year: year
  join_year: join_year
  trust: trust
  local_authority: la
  outcomes: [att8]
  covariates: [fsm]
analyses:
  - name: nn
    method: psm
    event_times: [0, 1]
    covariate_years: 2
  - name: nn_repl
    method: psm
    event_times: [0, 1]
    replace: true
    ratio: 2
    match_on_baseline_outcome: true
    did: false
  - name: maha
    method: psm
    event_times: [0, 1]
    distance: mahalanobis
    match_on_baseline_outcome: true
    regression_adjustment: true
  - name: trimmed
    method: psm
    event_times: [0, 1]
    caliper: null
    common_support: both
    cluster: trust
  - name: weights
    method: ipw
    event_times: [0, 1]
output:
  folder: out
"""


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    folder = tmp_path_factory.mktemp("psm")
    make_panel(seed=4, n_schools=400).to_csv(folder / "panel.csv", index=False)
    return load_config(write_config(folder, CONFIG))


@pytest.fixture(scope="module")
def run(config):
    return run_analyses(config)


def test_every_variant_runs_and_recovers_the_effect(run):
    for result in run.analyses:
        assert result.status == "ok", result.error
        estimate = result.estimates[0]
        # make_panel: +2 points from the join year on, parallel trends
        if result.analysis != "nn_repl":
            assert abs(estimate.estimate - 2.0) < 4 * estimate.std_error, result.analysis
        assert estimate.n_treated > 0 and estimate.n_control > 0
        assert "balance" in result.diagnostics
    assert run.analyses[1].estimates[0].inference.startswith("Abadie–Imbens")
    # The default (cluster: design) is the trust, each comparison school's cohorts in one cluster (#19).
    assert run.analyses[0].estimates[0].inference.startswith("cluster-robust by trust (each comparison school's")
    assert run.analyses[0].diagnostics["design"]["comparison_reuse"]["n_comparison_schools"] > 0
    assert "cluster-robust by trust" in run.analyses[3].estimates[0].inference


def test_matched_sets_never_mix_cohorts(run):
    """Staggered joiners are matched only to comparison schools measured in their own baseline year."""
    units = run.analyses[0].diagnostics["matched_units"]
    assert set(units["cohort"]) == {2016, 2018}
    assert (units.groupby("matched_set")["cohort"].nunique() == 1).all()
    assert (units.groupby("matched_set")["treated"].sum() == 1).all()


def test_same_seed_same_results(config, run):
    assert run_analyses(config).tidy().equals(run.tidy())


def test_results_folder_has_json_and_figures(config, tmp_path):
    _, out = execute(config, tmp_path / "results")
    data = json.loads((out / "results.json").read_text())
    nn = next(a for a in data["analyses"] if a["analysis"] == "nn")
    assert nn["status"] == "ok"
    assert "wwc_verdict" in nn["diagnostics"]["balance"]["columns"]
    assert any(e["changes_estimand"] for e in nn["sample"]["exclusions"])
    figures = {p.name for p in (out / "figures").iterdir()}
    assert {"nn_love_plot.png", "nn_overlap.svg", "weights_love_plot.png"} <= figures
    assert np.isfinite(nn["estimates"][0]["std_error"])
