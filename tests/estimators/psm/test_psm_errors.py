"""Bad input: each problem gives a clear, user-fixable error (exit 2) naming the option or covariate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evaltool.config import parse_config
from evaltool.errors import ConfigError, EstimationError
from evaltool.estimators.psm.design import build_units
from evaltool.estimators.psm.method import fit_psm
from evaltool.results import SampleReport


def units_frame(seed=0, n=300, shift=0.7):
    rng = np.random.default_rng(seed)
    treat = rng.random(n) < 0.3
    return pd.DataFrame(
        {
            "school": [f"S{i}" for i in range(n)],
            "cohort": 2016,
            "treated": treat,
            "x1": rng.normal(size=n) + shift * treat,
            "x2": rng.normal(size=n),
            "region": np.where(treat, "North", "South"),
            "y": rng.normal(size=n) + treat,
        }
    )


def fit(units, covariates=("x1", "x2"), **kwargs):
    return fit_psm(units, "y", list(covariates), rng=np.random.default_rng(0), **kwargs)


def assert_user_error(excinfo):
    assert excinfo.value.user_error and excinfo.value.exit_code == 2


def test_no_comparison_within_caliper():
    units = units_frame()
    units["x1"] = np.where(units["treated"], units["x1"] + 3.0, units["x1"])  # overlap only in the tails
    with pytest.raises(EstimationError, match=r"No treated school has a comparison school within the caliper.*Widen caliper") as exc:
        fit(units, caliper=1e-9)
    assert_user_error(exc)


def test_univariate_perfect_separation_names_the_covariate():
    units = units_frame()
    units["x2"] = np.where(units["treated"], 10.0, 0.0) + np.random.default_rng(1).random(len(units))
    with pytest.raises(EstimationError, match=r"Covariate 'x2' separates the groups perfectly.*Remove 'x2'") as exc:
        fit(units)
    assert_user_error(exc)


def test_multivariate_perfect_separation():
    units = units_frame()
    rng = np.random.default_rng(2)
    a = rng.normal(size=len(units))
    units["x1"], units["x2"] = a, np.where(units["treated"], 1.0 - a, -1.0 - a) + rng.uniform(-0.5, 0.5, len(units))
    with pytest.raises(EstimationError, match=r"Perfect separation in the propensity model.*\(x1, x2\)") as exc:
        fit(units)
    assert_user_error(exc)


def test_constant_covariate():
    units = units_frame().assign(x2=5.0)
    with pytest.raises(EstimationError, match=r"Covariate 'x2' \(option covariates\) is constant") as exc:
        fit(units)
    assert_user_error(exc)


def test_all_missing_covariate():
    frame = pd.DataFrame(
        {"school": ["a", "a", "b", "b"], "year": [2015, 2016] * 2, "join_year": [2016.0, 2016.0, np.nan, np.nan],
         "y": [1.0, 2.0, 1.0, 1.5], "x": [np.nan] * 4}
    )
    with pytest.raises(EstimationError, match=r"Covariate 'x' is missing in every row.*Remove it") as exc:
        build_units(frame, "y", ["x"], event_times=[0], comparison="never_joined", did=True, extra_columns=[],
                    sample=SampleReport(), stage="psm")
    assert_user_error(exc)


def test_fewer_comparison_units_than_ratio():
    units = units_frame(n=40)
    keep = units["treated"] | (units.index.isin(units.index[~units["treated"]][:2]))
    with pytest.raises(EstimationError, match=r"Only 2 comparison units for ratio: 3.*Lower ratio, set replace: true") as exc:
        fit(units[keep].reset_index(drop=True), ratio=3, caliper=None)
    assert_user_error(exc)


def test_too_few_comparisons_for_every_treated_is_reported_not_fatal():
    units = units_frame(n=200)
    *_, warnings = fit(units, ratio=5, caliper=None)
    assert any("fewer or no matches" in w for w in warnings)


def test_exact_column_without_shared_values():
    units = units_frame()
    with pytest.raises(EstimationError, match=r"Exact matching on 'region' \(option exact\) is impossible.*Remove 'region'") as exc:
        fit(units, exact=["region"])
    assert_user_error(exc)


def test_unmatched_treated_are_reported_as_estimand_changing_exclusions():
    units = units_frame(shift=2.0)
    estimate, diagnostics, sample, warnings = fit(units, caliper=0.05)
    reasons = {e.reason: e for e in sample.exclusions}
    caliper_loss = next(e for r, e in reasons.items() if r.startswith("treated school with no comparison school available"))
    assert caliper_loss.changes_estimand and caliper_loss.n_units > 0
    assert estimate.n_treated + caliper_loss.n_units == int(units["treated"].sum())
    assert any("ATT for the matched treated schools only" in w for w in warnings)


CONFIG = """\
data:
  panel: panel.csv
columns:
  outcomes: [att8]
  covariates: [fsm]
analyses:
  - name: m
    method: psm
{extra}
"""


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("    covariates: [ks2]", r"analyses\[0\]\.covariates.*\['ks2'\] are not in columns\.covariates"),
        ("    exact: [region]", r"analyses\[0\]\.exact\[0\].*'region' is neither local_authority nor in columns\.covariates"),
        ("    exact: [local_authority]", r"exact matching on local_authority needs columns\.local_authority"),
        ("    caliper: -1", r"analyses\[0\]\.caliper.*greater than 0"),
        ("    ratio: 0", r"analyses\[0\]\.ratio.*greater than or equal to 1"),
        ("    event_times: [-1, 0]", r"event_times are years since joining"),
        ("    distance: euclid", r"analyses\[0\]\.distance.*'logit', 'propensity' or 'mahalanobis'"),
    ],
)
def test_config_errors_name_the_key(extra, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(CONFIG.format(extra=extra))
