"""Bad input for the staggered DiD methods: clear messages naming the option, cohort or column."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
import pytest

from evaltool.config import load_config
from evaltool.errors import ConfigError, EstimationError
from evaltool.estimators.did.engine.att_gt import att_gt
from evaltool.estimators.did.method_event_study import EventStudyOptions, fit_event_study
from evaltool.estimators.did.method_staggered import DidStaggeredOptions, fit_did_staggered
from evaltool.estimators.did.method_twfe import fit_did_twfe
from evaltool.pipeline import run_analyses


def staggered_panel(seed: int = 0, n: int = 90, cohorts=(2015, 2017, None), first: int = 2012, last: int = 2019) -> pd.DataFrame:
    """Small panel: schools split evenly over ``cohorts`` (None = never joined), effect 1 from joining."""
    rng = np.random.default_rng(seed)
    years = np.arange(first, last + 1)
    join = np.array([cohorts[i % len(cohorts)] for i in range(n)], dtype=float)
    school = np.repeat(np.arange(n), len(years)).astype(str)
    year = np.tile(years, n)
    j = np.repeat(join, len(years))
    y = np.repeat(rng.normal(0, 1, n), len(years)) + 0.2 * (year - first) + 1.0 * (year >= j) + rng.normal(0, 0.5, len(year))
    return pd.DataFrame(
        {
            "school": school,
            "year": year,
            "join_year": j,
            "y": y,
            "x1": rng.normal(size=len(year)),
            "local_authority": np.repeat(np.arange(n) % 6, len(years)).astype(str),
        }
    )


def options(**kwargs) -> DidStaggeredOptions:
    return DidStaggeredOptions(name="cs", method="did_staggered", **{"bootstrap_draws": 0, "placebo_shift": None, **kwargs})


def test_no_never_joined_with_never_joined_comparison():
    frame = staggered_panel(cohorts=(2015, 2017))
    with pytest.raises(EstimationError, match=r"comparison: never_joined.*Set comparison: not_yet_joined") as err:
        att_gt(frame, "y", control_group="never_joined")
    assert err.value.user_error
    # The suggested fix works: the last cohort becomes the comparison group, with a warning.
    result = att_gt(frame, "y", control_group="not_yet_joined")
    assert set(result.cells["cohort"]) == {2015.0}
    assert any("last cohort (2017) serves only as the comparison" in w for w in result.warnings)


def test_everyone_joins_in_the_same_year():
    frame = staggered_panel(cohorts=(2016,))
    with pytest.raises(EstimationError, match=r"Every school joined in the same year \(2016\).*did_2x2"):
        att_gt(frame, "y", control_group="not_yet_joined")


def test_single_cohort_with_never_joined_warns_that_nothing_is_staggered():
    result = att_gt(staggered_panel(cohorts=(2016, None)), "y")
    assert any("All joining schools joined in 2016: there is no staggering" in w for w in result.warnings)


def test_cohort_without_pre_period_is_excluded_and_named():
    frame = staggered_panel(cohorts=(2012, 2015, None))
    result = att_gt(frame, "y")
    assert 2012.0 not in set(result.cells["cohort"])
    assert any("Cohorts 2012 have no year before joining" in w for w in result.warnings)
    reasons = result.sample.to_frame()
    row = reasons[reasons["reason"].str.contains("no pre-joining year")]
    assert row["n_units"].item() == 30 and row["n_rows"].item() == 30 * 8


def test_no_cohort_at_all():
    frame = staggered_panel(cohorts=(None,))
    with pytest.raises(EstimationError, match="No school joins during the data years"):
        att_gt(frame, "y")


def test_few_clusters_warn_with_consequence():
    frame = staggered_panel()
    result = att_gt(frame, "y", cluster="local_authority")
    assert any(w.startswith("Only 6 local authority clusters") and "too narrow" in w for w in result.warnings)
    _, _, _, warnings = fit_did_twfe(frame, "y", cluster="local_authority")
    assert any(w.startswith("Only 6 local authority clusters") for w in warnings)


def test_event_window_beyond_the_data():
    frame = staggered_panel()
    with pytest.raises(EstimationError, match=r"event_window \[-10, 3\] is beyond the data.*within \[-4, 4\]"):
        fit_did_staggered(frame, "y", options=options(event_window=(-10, 3)), rng=np.random.default_rng(0))
    es = EventStudyOptions(name="es", method="event_study", window=(-3, 9))
    with pytest.raises(EstimationError, match=r"window \[-3, 9\] is beyond the data.*from event time -5 to 4"):
        fit_event_study(frame, "y", options=es, rng=np.random.default_rng(0))


def test_collinear_covariates():
    frame = staggered_panel().assign(x2=lambda d: 2 * d["x1"] + 1)
    with pytest.raises(EstimationError, match=r"covariates \['x1', 'x2'\] are collinear"):
        att_gt(frame, "y", covariates=("x1", "x2"))
    with pytest.raises(EstimationError, match=r"regressors \['joined', 'x1', 'x2'\] are collinear"):
        fit_did_twfe(frame, "y", covariates=["x1", "x2"])
    with pytest.raises(EstimationError, match=r"\['joined', 'region'\] are collinear.*\(region absorbed by the school"):
        fit_did_twfe(frame.assign(region=frame["school"].astype(int) % 3), "y", covariates=["region"])
    with pytest.raises(EstimationError, match=r"covariates \['const'\] are collinear \(const constant\)"):
        att_gt(frame.assign(const=1.0), "y", covariates=("const",))


def test_options_validation_messages():
    with pytest.raises(ValueError, match=r"event_window must be \[min, max\]"):
        options(event_window=(3, -2))
    with pytest.raises(ValueError, match=r"window must be \[first lead, last lag\]"):
        EventStudyOptions(name="es", method="event_study", window=(1, 4))
    with pytest.raises(ValueError, match="reference must be a pre-joining event time"):
        EventStudyOptions(name="es", method="event_study", window=(-3, 3), reference=-5)


def test_unbalanced_panel_exclusions_reported():
    frame = staggered_panel()
    holes = frame.index[(frame["school"].isin(["0", "1", "2"])) & (frame["year"] == 2014)]
    frame.loc[holes, "y"] = np.nan
    balanced = att_gt(frame, "y")
    report = balanced.sample.to_frame()
    row = report[report["reason"].str.startswith("school not observed with the outcome in every year")]
    assert row["n_units"].item() == 3 and row["n_rows"].item() == 3 * 7 and row["changes_estimand"].item()
    assert balanced.n_units == 87
    pairs = att_gt(frame, "y", unbalanced="available_pairs")
    assert pairs.n_units == 90
    assert not pairs.sample.to_frame()["reason"].str.contains("every year").any()


def test_config_errors_name_the_key(tmp_path):
    staggered_panel().rename(columns={"school": "urn", "local_authority": "la"}).to_csv(tmp_path / "panel.csv", index=False)
    text = textwrap.dedent(
        """\
        data:
          panel: panel.csv
        columns:
          outcomes: [y]
          covariates: [x1]
        analyses:
          - name: cs
            method: did_staggered
            covariates: [x9]
            cluster: trust
        """
    )
    (tmp_path / "config.yaml").write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "config.yaml")
    message = str(err.value)
    assert "analyses[0].covariates" in message and "['x9'] are not in columns.covariates" in message
    assert "analyses[0].inference.cluster" in message and "needs columns.trust" in message


def test_pipeline_reports_user_error_with_exit_code_2(tmp_path):
    staggered_panel(cohorts=(2015, 2017)).rename(columns={"school": "urn"}).to_csv(tmp_path / "panel.csv", index=False)
    (tmp_path / "config.yaml").write_text(
        "data:\n  panel: panel.csv\ncolumns:\n  outcomes: [y]\nanalyses:\n  - name: cs\n    method: did_staggered\n"
    )
    run = run_analyses(load_config(tmp_path / "config.yaml"))
    failed = run.analyses[0]
    assert failed.status == "failed" and "not_yet_joined" in failed.error
    assert run.exit_code == 2
