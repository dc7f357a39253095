"""One failing analysis never takes down a run (#19): it is recorded as failed, the others complete."""

from __future__ import annotations

import numpy as np
import pytest

from evaltool.config import load_config
from evaltool.estimators.did.engine import twoperiod
from evaltool.pipeline import run_analyses
from tests.conftest import make_panel, write_config

CONFIG = """\
title: Failure isolation
seed: 1
data:
  panel: panel.csv
columns:
  school: urn
  year: year
  join_year: join_year
  trust: trust
  local_authority: la
  outcomes: [att8]
  covariates: [fsm, fsm_x2, ks2]
analyses:
  - name: broken
{broken}
  - name: fine
    method: did_2x2
    pre_years: [2013, 2014]
    post_years: [2017, 2018]
"""

STAGGERED = """\
    method: did_staggered
    covariates: [{cov}]
    est_method: {est}
    bootstrap_draws: 0
    placebo_shift: null
"""
IPW = """\
    method: ipw
    event_times: [0, 1]
    covariates: [fsm, fsm_x2]
"""


def run(tmp_path, broken: str):
    panel = make_panel(seed=3, n_schools=200)
    panel["fsm_x2"] = 2 * panel["fsm"] + 1  # collinear with fsm
    panel["ks2"] = np.round(np.random.default_rng(0).normal(100, 5, len(panel)), 1)
    panel.loc[panel["join_year"].isna(), "ks2"] = 100.0  # constant among the never-joined comparison schools
    panel.to_csv(tmp_path / "panel.csv", index=False)
    return run_analyses(load_config(write_config(tmp_path, CONFIG.format(broken=broken))))


@pytest.mark.parametrize("est", ["reg", "dr"])
def test_singular_staggered_cell_is_a_failed_analysis_naming_cell_and_covariate(tmp_path, est):
    result = run(tmp_path, STAGGERED.format(cov="ks2", est=est))
    broken, fine = result.analyses
    assert (broken.status, fine.status) == ("failed", "ok")
    assert fine.estimates
    assert "Singular matrix" not in broken.error
    assert "cohort 2016" in broken.error and "comparison schools" in broken.error
    assert "ks2 (constant)" in broken.error and "Drop ks2 from covariates" in broken.error
    assert "est_method: ipw" in broken.error
    assert result.exit_code == 2  # a config change fixes it


def test_collinear_ipw_covariates_fail_that_analysis_only(tmp_path):
    result = run(tmp_path, IPW)
    broken, fine = result.analyses
    assert (broken.status, fine.status) == ("failed", "ok")
    assert "fsm, fsm_x2 (collinear)" in broken.error and "Remove fsm or fsm_x2 from covariates" in broken.error
    assert "ks2" not in broken.error


def test_unforeseen_numerical_failure_is_recorded_with_exit_code_1(tmp_path, monkeypatch):
    def singular(dy, d, x):
        raise np.linalg.LinAlgError("Singular matrix")

    monkeypatch.setitem(twoperiod.ESTIMATORS, "dr", singular)
    result = run(tmp_path, STAGGERED.format(cov="fsm", est="dr"))
    broken, fine = result.analyses
    assert (broken.status, fine.status) == ("failed", "ok")
    assert "numerical failure (LinAlgError: Singular matrix)" in broken.error
    assert result.exit_code == 1
    assert "LinAlgError" in broken.diagnostics["traceback"]


def test_programming_error_is_an_internal_error_with_traceback_not_swallowed(tmp_path, monkeypatch):
    def bug(dy, d, x):
        return {}["missing"]

    monkeypatch.setitem(twoperiod.ESTIMATORS, "dr", bug)
    result = run(tmp_path, STAGGERED.format(cov="fsm", est="dr"))
    broken, fine = result.analyses
    assert (broken.status, fine.status) == ("failed", "ok")
    assert broken.error.startswith("internal error (KeyError: 'missing')")
    assert broken.diagnostics["exception"] == "KeyError"
    assert "return {}[\"missing\"]" in broken.diagnostics["traceback"]
    assert result.exit_code == 1
