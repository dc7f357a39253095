"""Rank, separation and convergence checks where the solves happen (#19), each with its own message."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from evaltool.errors import EstimationError
from evaltool.estimators.did.engine.att_gt import att_gt
from evaltool.estimators.psm import propensity
from evaltool.estimators.psm.ipw import ipw_att
from evaltool.estimators.psm.propensity import fit_propensity
from evaltool.estimators.rank import check_rank


def covariates(seed=0, n=400):
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({"fsm": rng.normal(20, 5, n), "ks2": rng.normal(100, 5, n), "girls": rng.uniform(0, 1, n)})
    treat = rng.random(n) < 1 / (1 + np.exp(-(x["fsm"] - 20) / 5))
    return x, treat


def test_check_rank_names_only_the_dependent_columns():
    x, _ = covariates()
    x["boys"] = 1 - x["girls"]  # girls + boys = intercept
    x["flat"] = 3.0
    check = check_rank(sm.add_constant(x.to_numpy(), has_constant="add"), ["(Intercept)", *x.columns])
    assert (check.rank, check.n_columns) == (4, 6)
    assert set(check.collinear) == {"(Intercept)", "girls", "boys", "flat"}
    assert check.describe() == "flat (constant); girls, boys (collinear)"
    assert check_rank(sm.add_constant(x[["fsm", "ks2"]].to_numpy()), ["(Intercept)", "fsm", "ks2"]).full


def test_collinear_propensity_covariates_are_named():
    x, treat = covariates()
    x["fsm_pct"] = x["fsm"] * 100
    with pytest.raises(EstimationError, match=r"rank 4 < 5 terms\): fsm, fsm_pct \(collinear\)\. Remove fsm or fsm_pct") as exc:
        fit_propensity(x, treat, rng=np.random.default_rng(0))
    assert "ks2" not in str(exc.value) and "girls" not in str(exc.value)


def test_quasi_separation_has_its_own_message_naming_the_covariate():
    x, treat = covariates()
    x["academy_sponsor"] = 0.0
    x.loc[~treat, "academy_sponsor"] = (np.arange((~treat).sum()) % 3 == 0).astype(float)  # only comparisons
    with pytest.raises(EstimationError, match=r"^Quasi-complete separation.*academy_sponsor") as exc:
        fit_propensity(x, treat, rng=np.random.default_rng(0))
    assert "Perfect separation" not in str(exc.value)


def test_complete_separation_names_the_covariate():
    x, treat = covariates()
    x["fsm"] = np.where(treat, 30.0, 10.0) + np.random.default_rng(1).uniform(0, 1, len(x))
    with pytest.raises(EstimationError, match=r"Perfect separation.*fsm on their own"):
        fit_propensity(x, treat, rng=np.random.default_rng(0))


def test_non_convergence_is_reported_with_the_iterations(monkeypatch):
    x, treat = covariates()
    monkeypatch.setattr(propensity, "MAX_ITER", 1)
    model = fit_propensity(x, treat, rng=np.random.default_rng(0))
    assert not model.converged
    assert "did not converge in 1 Newton iterations" in model.problem


def test_ipw_checks_convergence_of_its_propensity_model(monkeypatch):
    x, treat = covariates()
    y = np.random.default_rng(2).normal(size=len(x)) + treat
    X = sm.add_constant(x.to_numpy())
    monkeypatch.setattr(propensity, "MAX_ITER", 1)
    with pytest.raises(EstimationError, match=r"IPW cannot weight.*did not converge in 1 Newton iterations"):
        ipw_att(y, treat, X, np.arange(len(y)), ["(Intercept)", *x.columns])


def test_ipw_separation_names_the_covariate_not_a_type_error():
    x, treat = covariates()
    x["fsm"] = np.where(treat, 30.0, 10.0) + np.random.default_rng(1).uniform(0, 1, len(x))
    y = np.random.default_rng(2).normal(size=len(x))
    with pytest.raises(EstimationError, match=r"Perfect separation.*fsm"):
        ipw_att(y, treat, sm.add_constant(x.to_numpy()), np.arange(len(y)), ["(Intercept)", *x.columns])


def staggered_frame(seed=0, n=240):
    """Schools joining in 2016 or 2018 or never, 2012–2019; ``ks2`` constant among the never-joined."""
    rng = np.random.default_rng(seed)
    years = np.arange(2012, 2020)
    join = rng.choice([np.nan, 2016.0, 2018.0], n, p=[0.5, 0.25, 0.25])
    frame = pd.DataFrame({"school": np.repeat(np.arange(n), len(years)), "year": np.tile(years, n),
                          "join_year": np.repeat(join, len(years))})
    frame["y"] = rng.normal(size=len(frame)) + 0.5 * (frame["year"] >= frame["join_year"])
    frame["ks2"] = np.where(frame["join_year"].isna(), 100.0, rng.normal(100, 5, len(frame)))
    return frame


@pytest.mark.parametrize("est_method", ["reg", "dr"])
def test_staggered_cell_rank_check_names_cell_covariate_and_fix(est_method):
    with pytest.raises(EstimationError) as exc:
        att_gt(staggered_frame(), "y", covariates=["ks2"], est_method=est_method)
    message = str(exc.value)
    assert message.startswith("Group-time cell cohort 2016, year 2013 (base year 2012")
    assert "ks2 (constant)" in message and "Drop ks2 from covariates, or use est_method: ipw" in message
    assert exc.value.exit_code == 2


def test_staggered_ipw_runs_where_only_the_regression_is_singular():
    result = att_gt(staggered_frame(), "y", covariates=["ks2"], est_method="ipw")
    assert np.isfinite(result.cells["att"]).all()
