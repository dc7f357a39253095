"""Simulation checks of the sensitivity analyses: parallel trends broken by a known linear trend.

Panel DGP: n units per group, years with event times −4 … 2 (reference −1), y_it = α_i + λ_t
+ D_i · slope · (e_t + 1) + D_i · τ · 1[e_t ≥ 0] + ε_it, ε iid N(0, σ²).  The event-study coefficients are the
difference-in-differences of group means against the reference year, whose covariance is known:
Σ = σ² (1/n₁ + 1/n₀) (I + 11').
"""

import numpy as np
import pytest
from scipy import stats

from evaltool.diagnostics.pretrends import wald_test
from evaltool.sensitivity.honest import honest_bounds
from evaltool.sensitivity.pretrend_power import pretrend_power

EVENT = np.array([-4, -3, -2, -1, 0, 1, 2])
KEEP = EVENT != -1
TIMES = EVENT[KEEP]
N_PER_GROUP, NOISE, TAU = 40, 1.0, 0.5
SIGMA = NOISE**2 * (2.0 / N_PER_GROUP) * (np.eye(KEEP.sum()) + 1.0)


def _event_study(rng: np.random.Generator, slope: float, reps: int) -> np.ndarray:
    """``reps`` event-study vectors (reference excluded) from simulated panels."""
    n = N_PER_GROUP
    alpha = rng.normal(size=(reps, 2 * n, 1))
    lam = 0.3 * EVENT
    treated = np.r_[np.zeros(n), np.ones(n)][None, :, None]
    y = alpha + lam + treated * (slope * (EVENT + 1) + TAU * (EVENT >= 0)) + rng.normal(0, NOISE, (reps, 2 * n, 7))
    gap = y[:, n:, :].mean(axis=1) - y[:, :n, :].mean(axis=1)
    return (gap - gap[:, [3]])[:, KEEP]


def test_power_rises_with_slope_and_matches_monte_carlo():
    rng = np.random.default_rng(15)
    reps = 400
    powers = []
    for slope in (0.0, 0.05, 0.1, 0.2):
        analytic = pretrend_power(SIGMA, TIMES, slope=slope).power
        powers.append(analytic)
        betas = _event_study(rng, slope, reps)
        rejected = [wald_test(b[:3], SIGMA[:3, :3])["p_value"] < 0.05 for b in betas]
        rate = float(np.mean(rejected))
        binomial_se = np.sqrt(analytic * (1 - analytic) / reps)
        assert abs(rate - analytic) < 4 * binomial_se + 1e-3, (slope, rate, analytic)
    assert powers[0] == pytest.approx(0.05, abs=1e-12)
    assert np.all(np.diff(powers) > 0)


def test_conditional_bias_matches_simulated_selection():
    # Among simulated studies that pass the Wald pre-test, the e = 0 estimate is off by bias_conditional
    rng = np.random.default_rng(16)
    slope = 0.1
    res = pretrend_power(SIGMA, TIMES, slope=slope)
    betas = _event_study(rng, slope, 4000)
    passed = np.array([wald_test(b[:3], SIGMA[:3, :3])["p_value"] >= 0.05 for b in betas])
    errors = betas[passed, 3] - TAU
    assert abs(errors.mean() - res.bias_conditional) < 4 * errors.std() / np.sqrt(passed.sum())
    assert res.bias_unconditional == pytest.approx(slope * 1.0)


@pytest.mark.slow
def test_smoothness_m0_covers_truth_under_a_linear_trend():
    # Δ^SD(0) allows any linear trend: the FLCI at M = 0 covers τ in about 95% of replications
    rng = np.random.default_rng(17)
    reps = 150
    betas = _event_study(rng, 0.6, reps)
    covered = []
    for b in betas:
        res = honest_bounds(b, SIGMA, num_pre=3, num_post=3, restriction="smoothness", grid=[0.0],
                            refine_breakdown=False)
        iv = res.intervals[0]
        covered.append(iv.lb <= TAU <= iv.ub)
    rate = float(np.mean(covered))
    # one-sided binomial check at 95% nominal: not below 0.95 − 3 SE (≈ 0.895 with 150 replications)
    assert rate >= 0.95 - 3 * np.sqrt(0.95 * 0.05 / reps), rate
    # the original (parallel-trends) interval does not cover under this trend
    original = [(b[3] - 1.96 * np.sqrt(SIGMA[3, 3]) <= TAU <= b[3] + 1.96 * np.sqrt(SIGMA[3, 3])) for b in betas]
    assert np.mean(original) < 0.8
    assert stats.binomtest(int(np.sum(covered)), reps, 0.95).pvalue > 1e-3
