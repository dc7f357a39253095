"""Units for staggered joiners: cohort-aware baseline years, pre-year covariate means, exclusions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evaltool.estimators.psm.design import build_units
from evaltool.results import SampleReport


@pytest.fixture
def frame():
    years = np.arange(2012, 2019)
    schools = {"A": 2015.0, "B": 2017.0, "C": np.nan, "D": np.nan, "E": 2012.0, "F": 2018.0}
    rows = []
    for k, (school, join) in enumerate(schools.items()):
        for year in years:
            rows.append({"school": school, "year": year, "join_year": join, "x": 10 * k + (year - 2012), "y": k + 0.1 * year})
    return pd.DataFrame(rows)


def build(frame, **kwargs):
    sample = SampleReport()
    options = dict(event_times=[0, 1], comparison="never_joined", did=True, extra_columns=[], sample=sample, stage="psm")
    options.update(kwargs)
    return build_units(frame, "y", ["x"], **options), sample


def test_comparison_units_per_cohort_measured_in_the_same_years(frame):
    units, _ = build(frame, covariate_years=2, did=False)
    cohorts = units.set_index(["school", "cohort"])
    # levels (did: false): joiner A (2015): x averaged over 2013-2014; comparison C for cohort 2015 the same years
    assert cohorts.loc[("A", 2015), "x"] == pytest.approx(np.mean([1, 2]))
    assert cohorts.loc[("C", 2015), "x"] == pytest.approx(20 + np.mean([1, 2]))
    assert cohorts.loc[("C", 2017), "x"] == pytest.approx(20 + np.mean([3, 4]))
    units, _ = build(frame, covariate_years=2)
    cohorts = units.set_index(["school", "cohort"])
    # DiD outcome: mean of years g+0, g+1 minus year g-1
    assert cohorts.loc[("B", 2017), "y_change"] == pytest.approx(1 + 0.1 * 2017.5 - (1 + 0.1 * 2016))
    assert set(units.loc[~units["treated"], "school"]) == {"C", "D"}
    assert sorted(units.loc[units["treated"], "cohort"]) == [2015, 2017]


def test_default_uses_every_pre_joining_year(frame):
    units, _ = build(frame, did=False)
    assert units.set_index(["school", "cohort"]).loc[("B", 2017), "x"] == pytest.approx(10 + np.mean(range(5)))


def test_did_covariates_end_before_the_baseline_year(frame):
    """With did: true the covariate window ends at g - 2: the baseline year's pupils are not matched on (#19)."""
    units, _ = build(frame, covariate_years=2)
    cohorts = units.set_index(["school", "cohort"])
    # joiner A (2015), baseline 2014: x over 2012-2013; comparison C for cohort 2015 over the same years
    assert cohorts.loc[("A", 2015), "x"] == pytest.approx(np.mean([0, 1]))
    assert cohorts.loc[("C", 2015), "x"] == pytest.approx(20 + np.mean([0, 1]))
    assert cohorts.loc[("B", 2017), "x"] == pytest.approx(10 + np.mean([2, 3]))
    units, _ = build(frame)  # every year before the baseline year: 2012-2015 for B
    assert units.set_index(["school", "cohort"]).loc[("B", 2017), "x"] == pytest.approx(10 + np.mean(range(4)))


def test_did_joiner_without_a_year_before_its_baseline_is_counted(frame):
    frame = frame.assign(join_year=frame["join_year"].where(frame["school"] != "A", 2013.0))
    units, sample = build(frame)
    reason = next(e for e in sample.exclusions if e.reason.startswith("joined in the second year of data"))
    assert reason.n_units == 1 and reason.changes_estimand and "A" not in set(units["school"])
    units, _ = build(frame, did=False)
    assert "A" in set(units["school"])


def test_exclusions_are_counted_with_reasons(frame):
    units, sample = build(frame)
    reasons = {e.reason: e for e in sample.exclusions}
    early = reasons["joined in or before the first year of data (no baseline year to match on)"]
    assert early.n_units == 1 and early.changes_estimand
    late = next(e for r, e in reasons.items() if r.startswith("joined too late for the post years"))
    assert late.n_units == 1  # F joins 2018, needs 2019
    assert "E" not in set(units["school"]) and "F" not in set(units["school"])


def test_not_yet_joined_comparisons(frame):
    units, _ = build(frame, comparison="not_yet_joined")
    comparison_2015 = set(units.loc[~units["treated"] & (units["cohort"] == 2015), "school"])
    assert comparison_2015 == {"B", "C", "D", "F"}  # B joins 2017 > 2015 + 1


def test_callers_frame_is_unchanged(frame):
    before = frame.copy()
    build(frame)
    pd.testing.assert_frame_equal(frame, before)
