"""Roth (2022) pre-trend power (evaltool.sensitivity.pretrend_power): R pretrends' example, closed forms, errors."""

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from evaltool.errors import ConfigError, EstimationError
from evaltool.sensitivity.pretrend_power import pretest_power, pretrend_power

REF = json.loads((Path(__file__).parents[1] / "reference" / "pretrends_he_wang.json").read_text())
SIGMA = np.asarray(REF["inputs"]["sigma"])
TIMES = REF["inputs"]["t"]
EXP = REF["expected"]


def test_slope_for_power_matches_pretrends():
    # slope_for_power(sigma, targetPower = 0.5, tVec, referencePeriod = -1) = 0.06991527
    res = pretrend_power(SIGMA, TIMES, test="no_significant_coefficient")
    assert res.slope_50 == pytest.approx(EXP["slope_for_power_50"]["value"], rel=1e-3)
    assert res.power == pytest.approx(0.5, abs=1e-8)
    assert res.slope_50 < res.slope_80


def test_pretrends_at_slope50_matches_readme():
    # pretrends(betahat, sigma, tVec, referencePeriod = -1, deltatrue = slope50 * (tVec - referencePeriod))
    exp = EXP["pretrends_at_slope50"]
    res = pretrend_power(SIGMA, TIMES, test="no_significant_coefficient", slope=EXP["slope_for_power_50"]["value"])
    assert res.power == pytest.approx(exp["power"], abs=1e-3)
    assert res.bayes_factor == pytest.approx(exp["bayes_factor"], abs=1e-3)
    expected_means = [m for t, m in zip(exp["t"], exp["mean_after_pretesting"], strict=True) if t != -1]
    np.testing.assert_allclose(res.mean_after_pretest, expected_means, atol=2e-4)
    # unconditional bias of e = 0: deltatrue at t = 0; conditional: meanAfterPretesting at t = 0
    assert res.bias_unconditional == pytest.approx(exp["deltatrue"][4], rel=1e-6)
    assert res.bias_conditional == pytest.approx(exp["mean_after_pretesting"][4], abs=2e-4)


@pytest.mark.parametrize("slope", [0.0, 0.5, 1.3])
def test_one_pre_period_closed_form(slope):
    # one pre-period at t = -2 (relative time -1), sd 0.4: power = P(|Z + δ/σ| > 1.96), for both tests
    sd = 0.4
    shift = -slope / sd
    z = stats.norm.ppf(0.975)
    closed = stats.norm.sf(z - shift) + stats.norm.cdf(-z - shift)
    for test in ("wald", "no_significant_coefficient"):
        res = pretrend_power(np.array([[sd**2, 0.01], [0.01, 0.2]]), [-2, 0], slope=slope, test=test)
        assert res.power == pytest.approx(closed, abs=1e-10)


def test_wald_power_is_noncentral_chi2():
    delta = np.array([-0.3, -0.2, -0.1])
    sig = SIGMA[:3, :3]
    lam = delta @ np.linalg.solve(sig, delta)
    assert pretest_power(delta, sig) == pytest.approx(stats.ncx2.sf(stats.chi2.ppf(0.95, 3), 3, lam), rel=1e-12)
    # F reference: wald_test_f's F = W (ν − k + 1) / (ν k) with df_denominator = ν − k + 1
    f_power = pretest_power(delta, sig, reference="F", df_denominator=20.0)
    assert f_power == pytest.approx(stats.ncf.sf(stats.f.ppf(0.95, 3, 20.0), 3, 20.0, lam), rel=1e-12)
    assert f_power < pretest_power(delta, sig)


def test_wald_conditional_mean_matches_monte_carlo():
    # E[β̂ | W ≤ χ²_{3,0.95}] by seeded simulation against the one-dimensional integral
    res = pretrend_power(SIGMA, TIMES, slope=0.08)
    rng = np.random.default_rng(20240515)
    delta = 0.08 * (np.asarray(TIMES) + 1.0)
    draws = rng.multivariate_normal(delta, SIGMA, size=400_000)
    pre = draws[:, :3]
    passed = np.einsum("ij,jk,ik->i", pre, np.linalg.inv(SIGMA[:3, :3]), pre) <= stats.chi2.ppf(0.95, 3)
    assert passed.mean() == pytest.approx(res.pass_probability, abs=4 * np.sqrt(0.25 / 400_000))
    sim_mean = draws[passed].mean(axis=0)
    se = draws[passed].std(axis=0) / np.sqrt(passed.sum())
    assert np.all(np.abs(sim_mean - np.asarray(res.mean_after_pretest)) < 4 * se)


def test_average_target_and_to_dict():
    res = pretrend_power(SIGMA, TIMES, slope=0.05, target="average")
    assert res.bias_unconditional == pytest.approx(0.05 * np.mean([1, 2, 3, 4]))
    out = json.loads(json.dumps(res.to_dict()))
    assert out["target"] == "average" and len(out["mean_after_pretest"]) == 7


def test_errors_name_the_problem():
    with pytest.raises(EstimationError, match=r"No pre-period coefficient"):
        pretrend_power(SIGMA[3:, 3:], TIMES[3:])
    with pytest.raises(EstimationError, match=r"'sigma' must be the 7 x 7"):
        pretrend_power(SIGMA[:6, :6], TIMES)
    singular = SIGMA.copy()
    singular[0, :] = singular[:, 0] = 0.0
    with pytest.raises(EstimationError, match=r"singular"):
        pretrend_power(singular, TIMES)
    with pytest.raises(ConfigError, match=r"df_denominator > 0"):
        pretrend_power(SIGMA, TIMES, reference="F")
    with pytest.raises(ConfigError, match=r"sensitivity\.alpha"):
        pretrend_power(SIGMA, TIMES, alpha=1.5)
