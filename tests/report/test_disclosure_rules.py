"""The disclosure rules of #20, each on its own, and a real multilevel run with a subgroup of 6 pupils (3 + 3)."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaltool.data.simulate import SimulationSettings, simulate, write_simulation
from evaltool.pipeline import execute
from evaltool.report.disclosure import SUPPRESSED, Disclosure, suppress_tidy, withhold_small_groups
from evaltool.results import AnalysisResult, EffectEstimate


def test_zero_counts_in_text_are_counts_too():
    text = Disclosure(10).text("only 0 joining and 3 never-joining schools with data")
    assert text == "only c joining and c never-joining schools with data"


def test_a_small_named_pupil_count_withholds_its_row_in_any_analysis():
    frame = pd.DataFrame(
        {"analysis": ["a", "a"], "estimate": [1.5, 2.5], "std_error": [0.5, 0.5], "n_treated": [40, 40],
         "n_control": [50, 50], "n_obs": [90, 90], "n_pupils_min": [3, 40]}
    )
    out = suppress_tidy(frame, 10)  # no pupil_rows: the row's own pupil count decides
    assert out.loc[0, "estimate"] == SUPPRESSED and out.loc[0, "std_error"] == SUPPRESSED
    assert out.loc[1, "estimate"] == 2.5


def test_secondary_suppression_of_the_total_when_a_group_count_is_hidden():
    frame = pd.DataFrame({"estimate": [1.0], "n_treated": [3], "n_control": [300], "n_obs": [303]})
    out = suppress_tidy(frame, 10, pupil_rows=pd.Series([False]))
    assert out.loc[0, "n_treated"] == SUPPRESSED and out.loc[0, "n_obs"] == SUPPRESSED  # 303 − 300 would give 3
    record = Disclosure(10)._record({"estimate": 1.0, "n_treated": 3, "n_control": 300, "n_obs": 303}, "estimate")
    assert record["n_obs"] == SUPPRESSED


def test_figures_never_draw_statistics_of_small_pupil_groups():
    table = pd.DataFrame(
        {"by": ["eal", "eal"], "subgroup": ["eal=0", "eal=1"], "kind": ["subgroup"] * 2, "estimate": [2.0, 9.0],
         "std_error": [0.5, 3.0], "ci_lower": [1.0, 3.0], "ci_upper": [3.0, 15.0], "n_obs": [900, 6],
         "n_treated": [450, 3], "n_control": [450, 3], "n_pupils_min": [450, 3], "status": ["ok", "ok"], "reason": ["", ""]}
    )
    small = EffectEstimate.from_normal(term="treated", estimand="x", estimate=9.0, std_error=3.0, n_treated=3,
                                       n_control=3, n_obs=6, n_pupils_min=3, subgroup="eal=1")
    big = EffectEstimate.from_normal(term="treated", estimand="x", estimate=2.0, std_error=0.5, n_treated=450,
                                     n_control=450, n_obs=900, n_pupils_min=450)
    result = AnalysisResult(analysis="m", method="multilevel", estimates=[big, small],
                            diagnostics={"subgroups": table, "count_unit": "pupils"})
    safe = withhold_small_groups(result, 10)
    assert np.isnan(safe.estimates[1].estimate) and safe.estimates[0].estimate == 2.0
    assert safe.diagnostics["subgroups"].loc[1, "status"] == "withheld"
    assert np.isnan(safe.diagnostics["subgroups"].loc[1, "estimate"])
    assert result.estimates[1].estimate == 9.0  # the caller's result is unchanged


# ------------------------------------------------------------------ a real run
@pytest.fixture(scope="module")
def six_pupil_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("six_pupils")
    data = simulate(SimulationSettings(seed=11, n_schools=120, pupils_per_school=40))
    pupils = data.pupils.copy()
    year = pupils["year"] == 2019
    joined = data.panel.drop_duplicates("urn").set_index("urn")["join_year"]
    in_trust = pupils["urn"].map(joined).le(2019).fillna(False).astype(bool)
    pupils["eal"] = 0
    pick = list(pupils.index[year & in_trust][:3]) + list(pupils.index[year & ~in_trust][:3])
    pupils.loc[pick, "eal"] = 1  # a subgroup of 6 pupils: 3 in trust schools, 3 in others
    data = dataclasses.replace(data, pupils=pupils)
    write_simulation(data, root / "data")
    config = """
title: six pupils
seed: 3
data:
  panel: data/school_panel.csv
  pupils: data/pupils.parquet
columns:
  school: urn
  year: year
  join_year: join_year
  trust: trust_id
  outcomes: [attainment8]
  covariates: [ks2_prior, fsm_pct]
analyses:
  - name: ml
    method: multilevel
    years: [2019]
    pupil_covariates: [ks2_score]
    heterogeneity:
      by: [eal]
      min_pupils: 1
      min_schools: 1
output:
  publication: true
"""
    (root / "config.yaml").write_text(config)
    from evaltool.config import load_config

    execute(load_config(root / "config.yaml"), root / "out")
    return root / "out"


def test_multilevel_records_that_it_counts_pupils(six_pupil_run):
    payload = json.loads((six_pupil_run / "results.json").read_text())
    assert payload["analyses"][0]["diagnostics"]["count_unit"] == "pupils"


def test_the_six_pupil_subgroup_estimate_is_withheld_everywhere(six_pupil_run):
    tidy = pd.read_csv(six_pupil_run / "results.csv", dtype=str)
    row = tidy[tidy["subgroup"] == "eal=1"]
    assert len(row) == 1, tidy[["term", "subgroup"]]
    for column in ("estimate", "std_error", "ci_lower", "ci_upper", "p_value"):
        assert row[column].iloc[0] == SUPPRESSED, column
    payload = json.loads((six_pupil_run / "results.json").read_text())
    record = next(e for e in payload["analyses"][0]["estimates"] if e["subgroup"] == "eal=1")
    assert record["estimate"] == SUPPRESSED and record["ci_lower"] == SUPPRESSED
    markdown = (six_pupil_run / "report.md").read_text()
    withheld = int(re.search(r"(\d+) statistics withheld", markdown).group(1))
    assert withheld > 0
    assert payload["disclosure"]["n_withheld"] > 0
