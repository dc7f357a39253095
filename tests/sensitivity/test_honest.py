"""Rambachan & Roth bounds (evaltool.sensitivity.honest): HonestDiD's Medicaid example and bad input."""

import json
from pathlib import Path

import numpy as np
import pytest

from evaltool.errors import ConfigError, EstimationError
from evaltool.sensitivity.honest import HonestResult, honest_bounds

REF = json.loads((Path(__file__).parents[1] / "reference" / "honestdid_medicaid.json").read_text())
BETA = np.asarray(REF["inputs"]["betahat"])
SIGMA = np.asarray(REF["inputs"]["sigma"])
EXPECTED = REF["expected"]


@pytest.fixture(scope="module")
def sd_result() -> HonestResult:
    # createSensitivityResults(betahat, sigma, numPrePeriods = 5, numPostPeriods = 2, Mvec = seq(0, 0.05, by = 0.01))
    return honest_bounds(BETA, SIGMA, num_pre=5, num_post=2, restriction="smoothness", grid=EXPECTED["sd_e0"]["m"])


def test_smoothness_flci_matches_honestdid_readme(sd_result):
    exp = EXPECTED["sd_e0"]
    frame = sd_result.to_frame()
    assert sd_result.method == "FLCI" and sd_result.delta == "DeltaSD"
    np.testing.assert_allclose(frame["m"], exp["m"])
    for col in ("lb", "ub"):
        gap = np.abs(frame[col].to_numpy() - exp[col])
        # half a unit in the last printed digit, at least 1e-4 (the M = 0 lower end is 0.02599 here against a
        # printed 0.0259; Stata prints 0.026)
        printed = np.abs(np.asarray(exp[col]))
        tol = np.maximum(0.5 * 10.0 ** (np.floor(np.log10(printed)) - 2), 1e-4)
        assert np.all(gap <= tol), (col, frame[col].tolist(), exp[col])


def test_original_interval_matches_readme(sd_result):
    # constructOriginalCS(betahat, sigma, numPrePeriods = 5, numPostPeriods = 2): 0.029, 0.064 (Stata README)
    assert sd_result.original_lb == pytest.approx(EXPECTED["original_e0"]["lb"], abs=5e-4)
    assert sd_result.original_ub == pytest.approx(EXPECTED["original_e0"]["ub"], abs=5e-4)
    assert sd_result.estimate == pytest.approx(0.0464, abs=5e-5)


def test_smoothness_breakdown_is_refined_between_grid_values(sd_result):
    # README: "the breakdown value for a significant effect is M ≈ 0.03" (lb > 0 at 0.02, < 0 at 0.03)
    assert sd_result.breakdown_status == "within_grid" and sd_result.breakdown_refined
    assert 0.02 < sd_result.breakdown < 0.03
    step = 0.01 / 2**6
    above = honest_bounds(BETA, SIGMA, num_pre=5, num_post=2, restriction="smoothness",
                          grid=[sd_result.breakdown, sd_result.breakdown + step])
    assert above.intervals[0].excludes_zero and not above.intervals[1].excludes_zero


def test_to_dict_is_json(sd_result):
    out = json.loads(json.dumps(sd_result.to_dict()))
    assert out["parameter"] == "m" and len(out["intervals"]) == 6 and out["target"] == "e=0"
    assert out["original"]["lb"] < out["estimate"] < out["original"]["ub"]


@pytest.mark.slow
def test_relative_magnitudes_clf_matches_honestdid_readme():
    # createSensitivityResults_relativeMagnitudes(betahat, sigma, numPrePeriods = 5, numPostPeriods = 2,
    #                                             Mbarvec = seq(0.5, 2, by = 0.5))
    exp = EXPECTED["rm_e0"]
    res = honest_bounds(BETA, SIGMA, num_pre=5, num_post=2, grid=exp["mbar"])
    frame = res.to_frame()
    assert res.method == "C-LF" and res.delta == "DeltaRM"
    np.testing.assert_allclose(frame["lb"], exp["lb"], atol=1e-3, rtol=0)
    np.testing.assert_allclose(frame["ub"], exp["ub"], atol=1e-3, rtol=0)
    # README: breakdown M̄ = 2 (lb just below 0 at 2): significant up to 1.5 on this grid
    assert res.breakdown == 1.5 and res.breakdown_status == "within_grid" and not res.breakdown_refined


@pytest.mark.slow
def test_relative_magnitudes_average_target_matches_stata_readme():
    # honestdid, l_vec((0.5 \ 0.5)) pre(1/5) post(6/7) mvec(0(0.5)2) omit: ends of the table (M̄ = 0 and 2)
    exp = EXPECTED["rm_average"]
    res = honest_bounds(BETA, SIGMA, num_pre=5, num_post=2, grid=[0.0, 2.0], target="average")
    assert res.l_vec == (0.5, 0.5) and res.target == "average"
    assert res.original_lb == pytest.approx(exp["original_lb"], abs=5e-4 + 1e-5)
    assert res.original_ub == pytest.approx(exp["original_ub"], abs=5e-4 + 1e-5)
    np.testing.assert_allclose([iv.lb for iv in res.intervals], [exp["lb"][0], exp["lb"][-1]], atol=1e-3)
    np.testing.assert_allclose([iv.ub for iv in res.intervals], [exp["ub"][0], exp["ub"][-1]], atol=1e-3)


def test_not_significant_has_no_breakdown():
    beta = BETA.copy()
    beta[5] = 0.0  # e = 0 effect zero: the original interval covers 0
    res = honest_bounds(beta, SIGMA, num_pre=5, num_post=2, restriction="smoothness", grid=[0.0, 0.01])
    assert res.breakdown is None and res.breakdown_status == "not_significant"


def test_significant_on_whole_grid_is_a_lower_bound():
    res = honest_bounds(BETA, SIGMA, num_pre=5, num_post=2, restriction="smoothness", grid=[0.0, 0.005])
    assert res.breakdown == 0.005 and res.breakdown_status == "beyond_grid"


# ---- bad input: clear messages naming the option --------------------------------------------------------

def test_too_few_pre_periods_for_smoothness_says_why():
    with pytest.raises(EstimationError, match=r"sensitivity\.m\).*at least 2 pre-period.*has 1") as info:
        honest_bounds(BETA[4:], SIGMA[4:, 4:], num_pre=1, num_post=2, restriction="smoothness", grid=[0.0])
    assert info.value.user_error


def test_no_pre_period_for_relative_magnitudes():
    with pytest.raises(EstimationError, match=r"sensitivity\.mbar\).*at least 1 pre-period.*has 0"):
        honest_bounds(BETA[5:], SIGMA[5:, 5:], num_pre=0, num_post=2, grid=[1.0])


@pytest.mark.parametrize(
    ("grid", "message"),
    [([], r"sensitivity\.mbar is empty"), ([0.5, -1.0], r"sensitivity\.mbar must be non-negative.*-1\.0"),
     ([np.nan], r"sensitivity\.mbar must contain finite")],
)
def test_bad_mbar_grid(grid, message):
    with pytest.raises(ConfigError, match=message):
        honest_bounds(BETA, SIGMA, num_pre=5, num_post=2, grid=grid)


def test_bad_m_grid_names_sensitivity_m():
    with pytest.raises(ConfigError, match=r"sensitivity\.m must be non-negative"):
        honest_bounds(BETA, SIGMA, num_pre=5, num_post=2, restriction="smoothness", grid=[-0.01])


def test_singular_sigma():
    sigma = SIGMA.copy()
    sigma[6, :] = sigma[:, 6] = 0.0
    with pytest.raises(EstimationError, match=r"'sigma' .* is singular"):
        honest_bounds(BETA, sigma, num_pre=5, num_post=2, restriction="smoothness", grid=[0.0])


def test_non_psd_sigma():
    sigma = SIGMA.copy()
    sigma[0, 0] = -sigma[0, 0]
    with pytest.raises(EstimationError, match=r"not positive semi-definite"):
        honest_bounds(BETA, sigma, num_pre=5, num_post=2, grid=[0.0])


def test_mismatched_shapes():
    with pytest.raises(EstimationError, match=r"'betahat' must be a vector of num_pre \+ num_post = 7"):
        honest_bounds(BETA[:6], SIGMA, num_pre=5, num_post=2)
    with pytest.raises(EstimationError, match=r"'sigma' must be the 7 x 7 covariance"):
        honest_bounds(BETA, SIGMA[:6, :6], num_pre=5, num_post=2)


def test_bad_target_and_method():
    with pytest.raises(ConfigError, match=r"sensitivity\.target = 2 is not a post-period event time.*0 … 1"):
        honest_bounds(BETA, SIGMA, num_pre=5, num_post=2, target=2)
    with pytest.raises(ConfigError, match=r"sensitivity\.target as weights must be 2"):
        honest_bounds(BETA, SIGMA, num_pre=5, num_post=2, target=[1.0, 0.0, 0.0])
    with pytest.raises(ConfigError, match=r"sensitivity\.method .* 'C-LF', 'Conditional'; got 'FLCI'"):
        honest_bounds(BETA, SIGMA, num_pre=5, num_post=2, method="FLCI")


def test_caller_arrays_unchanged():
    beta, sigma = BETA.copy(), SIGMA.copy()
    honest_bounds(beta, sigma, num_pre=5, num_post=2, restriction="smoothness", grid=[0.0])
    np.testing.assert_array_equal(beta, BETA)
    np.testing.assert_array_equal(sigma, SIGMA)
