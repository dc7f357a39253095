"""Multilevel (#19): the sandwich against a closed form, nesting, the ATT estimand, baseline covariates, years."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from ml_helpers import run_config

from evaltool.errors import EstimationError
from evaltool.estimators.multilevel.method import MultilevelOptions, att_interactions, baseline_covariates
from evaltool.estimators.multilevel.model import CLUSTER_COLUMN, TREATED, fit_mixed


def _balanced(seed: int, schools: int = 90, per_school: int = 20) -> pd.DataFrame:
    """Balanced pupils in schools in trusts of three, with a school-level treatment and covariate only."""
    rng = np.random.default_rng(seed)
    school = np.repeat(np.arange(schools), per_school)
    trust = np.arange(schools) // 3
    z = rng.normal(size=schools)
    treated = (rng.random(schools // 3) < 0.5)[trust].astype(float)
    y = (1 + 0.5 * treated + 0.3 * z + rng.normal(0, 0.6, schools) + rng.normal(0, 0.5, schools // 3)[trust])[school]
    y = y + rng.normal(size=school.size)
    return pd.DataFrame({"school": school, "y": y, TREATED: treated[school], "z": z[school],
                         CLUSTER_COLUMN: trust[school]})


def test_trust_sandwich_equals_the_closed_form_of_a_balanced_school_level_design():
    # Balanced schools and only school-level regressors: GLS is OLS on school means whatever the variance
    # components, and X_i'V_i⁻¹e_i = x_i·k·ē_i/(σ² + kτ²), so the sandwich is exactly OLS on the school means
    # with CR1 by trust *without* the (N−1)/(N−K) factor.  Reference: statsmodels 0.15 OLS(...).fit(cov_type=
    # "cluster", cov_kwds={"groups": trust}) (CR1 = G/(G−1)·(N−1)/(N−K)), divided by (N−1)/(N−K).
    frame = _balanced(3)
    fit = fit_mixed(frame, "y", frame[[TREATED, "z"]], random_slopes=[], reml=True, engine="fast")
    means = frame.groupby("school")[["y", TREATED, "z", CLUSTER_COLUMN]].mean()
    X = sm.add_constant(means[[TREATED, "z"]].to_numpy())
    ols = sm.OLS(means["y"].to_numpy(), X).fit(cov_type="cluster", cov_kwds={"groups": means[CLUSTER_COLUMN]})
    n, k = X.shape
    np.testing.assert_allclose(fit.params.to_numpy(), ols.params, rtol=1e-8)
    np.testing.assert_allclose(fit.cov_params.to_numpy(), ols.cov_params() * (n - k) / (n - 1), rtol=1e-7)
    assert fit.cluster_count == 30
    # t(G − 1) intervals
    ci = fit.conf_int(0.95)
    assert (ci["upper"] - fit.params)[TREATED] == pytest.approx(2.045229642132703 * fit.bse[TREATED], rel=1e-9)


def test_clusters_that_split_a_school_are_an_error():
    frame = _balanced(4)
    frame.loc[frame.index[:5], CLUSTER_COLUMN] = 99  # part of school 0 in another cluster
    with pytest.raises(EstimationError, match=r"clusters must nest the model's schools, but 1 school\(s\)"):
        fit_mixed(frame, "y", frame[[TREATED, "z"]], random_slopes=[], reml=True, engine="fast")


def _heterogeneous(seed: int) -> pd.DataFrame:
    """Effect 1 + 3·x (x a pupil covariate), treated schools have much higher x: ATT ≠ the plain coefficient."""
    rng = np.random.default_rng(seed)
    schools, per_school = 200, 40
    school = np.repeat(np.arange(schools), per_school)
    school_x = rng.normal(size=schools)
    treated = (rng.random(schools) < 1 / (1 + np.exp(-2.5 * school_x))).astype(float)
    x = school_x[school] + rng.normal(size=school.size)
    effect = (1 + 3 * x) * treated[school]
    y = 2 + x + effect + rng.normal(0, 0.5, schools)[school] + rng.normal(size=school.size)
    return pd.DataFrame({"school": school, "y": y, TREATED: treated[school], "x": x, "effect": effect})


@pytest.mark.parametrize("seed", [1, 2])
def test_att_estimand_gives_the_treated_pupils_average_effect(seed):
    frame = _heterogeneous(seed)
    att = frame.loc[frame[TREATED] > 0, "effect"].mean()
    results = {}
    for estimand in ("att", "conditional"):
        spec = MultilevelOptions(name="ml", method="multilevel", estimand=estimand)
        X = pd.concat([frame[[TREATED, "x"]], att_interactions(frame[TREATED], frame[["x"]], spec)], axis=1)
        results[estimand] = fit_mixed(frame, "y", X, random_slopes=[], reml=True, engine="fast")
    att_fit, plain = results["att"], results["conditional"]
    assert list(att_fit.params.index) == ["Intercept", TREATED, "x", f"{TREATED}:x"]
    assert abs(att_fit.params[TREATED] - att) < 3 * att_fit.bse[TREATED]
    # the plain coefficient is another weighted average of 1 + 3·x (about the effect at x = 0 here): far from the ATT
    assert abs(plain.params[TREATED] - att) > 6 * plain.bse[TREATED]


def test_baseline_covariates_are_school_means_before_the_first_join_year():
    panel = pd.DataFrame({
        "school": ["a", "a", "a", "b", "b", "b", "c", "c", "c"],
        "year": [2012, 2013, 2014] * 3,
        "join_year": [2014, 2014, 2014, np.nan, np.nan, np.nan, 2010, 2010, 2010],  # c joined before the panel
        "fsm_pct": [10.0, 20.0, 90.0, 30.0, 50.0, 70.0, 1.0, 3.0, 5.0],
    })
    spec = MultilevelOptions(name="ml", method="multilevel", school_covariates=["fsm_pct"])
    base = baseline_covariates(panel, spec)
    assert base["fsm_pct"].to_dict() == {"a": 15.0, "b": 40.0, "c": 2.0}  # 2012-2013: before a joined in 2014
    # a first-year joiner counts as joined before the panel: the baseline is still the years before 2014
    assert baseline_covariates(panel.assign(join_year=panel["join_year"].replace(2010, 2012)), spec).equals(base)


def test_years_default_to_the_latest_exam_year_and_pooling_warns(simulated):
    _, folder = simulated
    run = run_config(folder, """
  - name: ml_default
    method: multilevel
    pupil_covariates: [ks2_score]
  - name: ml_pooled
    method: multilevel
    years: [2018, 2019]
    pupil_covariates: [ks2_score]
""", name="years.yaml")
    default, pooled = run.analyses
    assert default.status == "ok" and pooled.status == "ok", (default.error, pooled.error)
    assert default.diagnostics["sample_years"]["years"] == [2019]
    assert default.diagnostics["sample_years"]["rule"].startswith("the latest exam year")
    assert "not the latest exam year (years: not set)" in str(default.sample.to_dict())
    assert not any("pools" in w for w in default.warnings), default.warnings
    assert pooled.diagnostics["sample_years"]["years"] == [2018, 2019]
    assert any("lists 2 exam years, so the model pools them" in w for w in pooled.warnings), pooled.warnings
    assert default.estimates[0].n_obs < pooled.estimates[0].n_obs
