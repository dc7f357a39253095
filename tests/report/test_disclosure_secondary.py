"""Secondary suppression (a hidden count must not follow from a total minus the parts shown) and figures
drawn from the disclosure-controlled result (#20)."""

from __future__ import annotations

import pandas as pd

from evaltool.report.disclosure import SUPPRESSED, Disclosure, suppress_tidy, withhold_small_groups
from evaltool.results import AnalysisResult, EffectEstimate


def test_one_hidden_cohort_hides_the_smallest_other():
    # n_joined (60) is published: with one cohort hidden, 60 − 26 − 30 would give it back.
    panel = Disclosure(10).payload({"data": {"panel": {"n_joined": 60, "cohorts": {"2015": 4, "2016": 26, "2017": 30}}}})
    cohorts = panel["data"]["panel"]["cohorts"]
    assert cohorts == {"2015": SUPPRESSED, "2016": SUPPRESSED, "2017": 30}
    assert panel["data"]["panel"]["n_joined"] == 60


def test_a_hidden_group_of_schools_hides_the_total():
    panel = Disclosure(10).apply({"n_schools": 104, "n_joined": 4, "n_never_joined": 100}, "panel")
    assert panel == {"n_schools": SUPPRESSED, "n_joined": SUPPRESSED, "n_never_joined": 100}


def _levels() -> list[dict]:
    common = {"term": "treated", "estimate": 1.0}
    return [
        {**common, "subgroup": "all", "n_treated": 1003, "n_control": 1003, "n_obs": 2006},
        {**common, "subgroup": "eal=0", "n_treated": 1000, "n_control": 1000, "n_obs": 2000},
        {**common, "subgroup": "eal=1", "n_treated": 3, "n_control": 3, "n_obs": 6},
        {**common, "subgroup": "fsm=1", "n_treated": 500, "n_control": 500, "n_obs": 1000},
    ]


def test_the_other_level_of_a_subgroup_variable_is_hidden_too():
    # The levels of eal add up to the whole sample: 2006 − 2000 would give the hidden 6 pupils.
    out = Disclosure(10).payload({"analyses": [{"analysis": "m", "estimates": _levels()}]})["analyses"][0]["estimates"]
    by = {e["subgroup"]: e for e in out}
    for column in ("n_treated", "n_control", "n_obs"):
        assert by["eal=1"][column] == SUPPRESSED and by["eal=0"][column] == SUPPRESSED, column
        assert by["all"][column] != SUPPRESSED and by["fsm=1"][column] != SUPPRESSED  # other variables untouched


def test_results_csv_hides_the_other_level_too():
    frame = pd.DataFrame(_levels()).assign(analysis="m")
    out = suppress_tidy(frame, 10, pupil_rows=pd.Series(True, index=frame.index)).set_index("subgroup")
    assert (out.loc["eal=1", ["n_treated", "n_control", "n_obs"]] == SUPPRESSED).all()
    assert (out.loc["eal=0", ["n_treated", "n_control", "n_obs"]] == SUPPRESSED).all()
    assert out.loc["eal=1", "estimate"] == SUPPRESSED and out.loc["eal=0", "estimate"] == 1.0
    assert out.loc["fsm=1", "n_obs"] == 1000


def test_figures_are_drawn_without_counts_in_their_text():
    table = pd.DataFrame(
        {"by": ["disadvantaged"], "subgroup": ["disadvantaged"], "kind": ["subgroup"], "estimate": [float("nan")],
         "ci_lower": [float("nan")], "ci_upper": [float("nan")], "n_obs": [40], "n_treated": [4], "n_control": [2],
         "n_pupils_min": [300], "status": ["skipped"],
         "reason": ["only 4 joining and 2 never-joining schools with data (heterogeneity.min_schools is 5)"]}
    )
    estimate = EffectEstimate.from_normal(term="ATT", estimand="ATT", estimate=1.0, std_error=0.5, n_treated=40,
                                          n_control=60, n_obs=500)
    result = AnalysisResult(analysis="a", method="did_2x2", estimates=[estimate], diagnostics={"subgroups": table},
                            warnings=["dropped 3 schools without data"])
    drawn = withhold_small_groups(result, 10)
    assert drawn.diagnostics["subgroups"].loc[0, "reason"].startswith("only c joining and c never-joining schools")
    assert drawn.warnings == ["dropped c schools without data"]
    assert drawn.estimates[0].estimate == 1.0  # school counts are hidden, school-level estimates are not
    assert result.diagnostics["subgroups"].loc[0, "reason"].startswith("only 4")  # the caller's result is unchanged
