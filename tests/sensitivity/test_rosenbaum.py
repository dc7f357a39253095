"""Rosenbaum bounds: reference (rbounds' lead example, tests/reference/rosenbaum_lead.md), properties, errors,
and a simulation of hidden bias of known Γ."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from evaltool.errors import ConfigError, EstimationError
from evaltool.sensitivity.rosenbaum import (
    MEAN_OF_CONTROLS,
    PAIRED,
    matched_differences,
    rosenbaum_bounds,
)

REFERENCE = Path(__file__).resolve().parents[1] / "reference"


@pytest.fixture(scope="module")
def lead():
    return json.loads((REFERENCE / "rosenbaum_lead.json").read_text())


def _psens(trt, ctrl, gamma):
    """rbounds 2.2 R/psens.R, transcribed line by line (including its round(..., digits = 4))."""
    diff = np.asarray(trt, float) - np.asarray(ctrl, float)
    diff = diff[diff != 0]
    ranks = stats.rankdata(np.abs(diff))
    psi = (diff > 0).astype(float)
    t = np.sum(psi * ranks)
    out = []
    for g in gamma:
        p_plus, p_minus = g / (1 + g), 1 / (1 + g)
        v = np.sum(ranks**2 * p_plus * (1 - p_plus))
        z_plus = (t - np.sum(ranks * p_plus)) / np.sqrt(v)
        z_minus = (t - np.sum(ranks * p_minus)) / np.sqrt(v)
        out.append((round(1 - stats.norm.cdf(z_minus), 4), round(1 - stats.norm.cdf(z_plus), 4)))
    return out


def _hlsens(trt, ctrl, gamma, pr, start):
    """rbounds 2.2 R/hlsens.R, transcribed (``start`` stands in for R's wilcox.test estimate)."""
    trt, ctrl = np.asarray(trt, float), np.asarray(ctrl, float)

    def ttau(tau):
        d2 = trt - tau - ctrl
        return np.sum((d2 > 0) * stats.rankdata(np.abs(d2)))

    s = trt.size
    tau_up = tau_l = start
    out = []
    for g in gamma:
        p_minus, p_plus = 1 / (1 + g), g / (g + 1)
        t_min, t_max = p_minus * s * (s + 1) / 2, p_plus * s * (s + 1) / 2
        lb, ub = t_min, t_max
        while abs(ub - lb) > 1e-8 and lb < ub:
            tau_up += pr
            ub = ttau(tau_up)
        ub, lb = t_max, t_min
        while abs(ub - lb) > 1e-8 and lb <= ub:
            tau_l -= pr
            lb = ttau(tau_l)
        out.append((tau_l, tau_up))
    return out


def test_lead_p_value_bounds_match_psens(lead):
    # psens(trt, ctrl)  # rbounds 2.2, Gamma = 6, GammaInc = 1
    d = np.subtract(lead["treated"], lead["control"])
    result = rosenbaum_bounds(d, lead["gamma"], alternative="greater")
    expected = _psens(lead["treated"], lead["control"], lead["gamma"])
    np.testing.assert_allclose(result.p_lower, [e[0] for e in expected], atol=5e-5)
    np.testing.assert_allclose(result.p_upper, [e[1] for e in expected], atol=5e-5)


def test_lead_hodges_lehmann_bounds_match_hlsens_within_its_step(lead):
    # hlsens(trt, ctrl)  # rbounds 2.2, pr = 0.1: a stepped search, so agreement is to within pr
    d = np.subtract(lead["treated"], lead["control"])
    result = rosenbaum_bounds(d, lead["gamma"])
    expected = _hlsens(lead["treated"], lead["control"], lead["gamma"], lead["hlsens_pr"], result.hodges_lehmann)
    pr = lead["hlsens_pr"]
    n = d.size * (d.size + 1) / 2
    for g, lo, hi, (r_lo, r_hi) in zip(result.gamma, result.hl_lower, result.hl_upper, expected, strict=True):
        # hlsens stops at the first step where T(τ) reaches the bound exactly; where T is flat at that value
        # (here for Γ = 2: T = 374 on (10, 10.5)) evaltool takes the midpoint, the Hodges–Lehmann convention.
        for ours, theirs, target in ((lo, r_lo, g / (1 + g) * n), (hi, r_hi, n / (1 + g))):
            assert abs(ours - theirs) <= pr + 1e-9 or _signed_rank(d - theirs) == pytest.approx(target)
    walsh = (d[:, None] + d[None, :])[np.triu_indices(d.size)] / 2
    assert result.hodges_lehmann == pytest.approx(np.median(walsh))
    assert result.hl_lower[0] == result.hl_upper[0] == result.hodges_lehmann


def _signed_rank(x):
    return float(np.sum((x > 0) * stats.rankdata(np.abs(x))))


def test_hodges_lehmann_bounds_are_walsh_quantiles():
    # Exact definition: the bound at Γ leaves p⁻·N Walsh averages beyond it (brute force over all N).
    rng = np.random.default_rng(3)
    d = rng.normal(0.4, 1, 41)
    walsh = np.sort((d[:, None] + d[None, :])[np.triu_indices(d.size)] / 2)
    result = rosenbaum_bounds(d, [1.7, 2.3])
    for g, lo, hi in zip(result.gamma, result.hl_lower, result.hl_upper, strict=True):
        c = walsh.size / (1 + g)
        assert np.sum(walsh > hi) <= c <= np.sum(walsh >= hi)
        assert np.sum(walsh < lo) <= c <= np.sum(walsh <= lo)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gamma_one_is_the_wilcoxon_test(seed):
    rng = np.random.default_rng(seed)
    d = np.round(rng.normal(0.3, 1, 60), 1)  # rounding makes ties and zeros
    d[:3] = 0.0
    result = rosenbaum_bounds(d, [1.0], alternative="greater")
    expected = stats.wilcoxon(d, zero_method="wilcox", correction=False, method="approx", alternative="greater")
    assert result.p_upper[0] == pytest.approx(expected.pvalue, rel=1e-12, abs=1e-15)
    assert result.p_lower[0] == result.p_upper[0]
    assert result.n_nonzero == int(np.sum(d != 0))


def test_upper_bound_increases_and_lower_decreases_with_gamma():
    rng = np.random.default_rng(7)
    d = rng.normal(0.5, 1, 80)
    result = rosenbaum_bounds(d, np.linspace(1, 5, 17))
    assert np.all(np.diff(result.p_upper) > 0)
    assert np.all(np.diff(result.p_lower) < 0)
    assert np.all(np.diff(result.hl_upper) >= 0) and np.all(np.diff(result.hl_lower) <= 0)


def test_breakdown_gamma_is_the_root_of_the_upper_bound(lead):
    d = np.subtract(lead["treated"], lead["control"])
    result = rosenbaum_bounds(d, [1, 2, 3])  # the root lies outside the grid
    at_root = rosenbaum_bounds(d, [result.breakdown_gamma])
    assert at_root.p_upper[0] == pytest.approx(0.05, abs=1e-9)
    assert 4 < result.breakdown_gamma < 5


def test_not_significant_at_gamma_one_breaks_down_at_one():
    rng = np.random.default_rng(5)
    result = rosenbaum_bounds(rng.normal(0, 1, 30), [1, 2], alternative="greater")
    if result.p_upper[0] >= 0.05:
        assert result.breakdown_gamma == 1.0


def test_negative_effect_is_tested_in_its_direction():
    rng = np.random.default_rng(11)
    d = rng.normal(-0.6, 1, 50)
    neg = rosenbaum_bounds(d, [1, 2])
    pos = rosenbaum_bounds(-d, [1, 2])
    assert neg.alternative == "less"
    np.testing.assert_allclose(neg.p_upper, pos.p_upper)
    np.testing.assert_allclose(neg.hl_lower, -np.array(pos.hl_upper))
    assert neg.hodges_lehmann == pytest.approx(-pos.hodges_lehmann)


def test_to_dict_is_plain():
    result = rosenbaum_bounds(np.arange(1.0, 11.0) - 3, [1, 2])
    out = result.to_dict()
    json.dumps(out)
    assert out["gamma"] == [1.0, 2.0] and out["method"] == PAIRED


# --- k:1 and replacement ----------------------------------------------------------------------------------


def test_matched_differences_one_to_one_is_paired():
    y = np.array([5.0, 6, 7, 1, 2, 3])
    md = matched_differences(y, np.array([0, 1, 2]), np.array([3, 4, 5]))
    assert md.method == PAIRED and md.max_controls == 1
    np.testing.assert_allclose(md.differences, [4, 4, 4])


def test_matched_differences_k_to_one_uses_mean_and_says_so():
    y = np.array([10.0, 20, 1, 3, 5, 7])
    # treated 0 matched to 2 and 3; treated 1 matched to 3 and 4 (control 3 reused)
    md = matched_differences(y, np.array([0, 0, 1, 1]), np.array([2, 3, 3, 4]))
    np.testing.assert_allclose(md.differences, [10 - 2, 20 - 4])
    assert md.method == MEAN_OF_CONTROLS and md.max_controls == 2 and md.n_reused_controls == 1
    assert "Approximation" in md.note and "replacement" in md.note
    rng = np.random.default_rng(0)
    y = rng.normal(size=60)
    md = matched_differences(y, np.repeat(np.arange(20), 2), np.arange(20, 60))
    result = rosenbaum_bounds(md, [1, 2])
    assert result.method == MEAN_OF_CONTROLS and "m-statistic" in result.note


# --- bad input ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gamma", [[], [0.5, 2], [-1], [1, float("nan")], "abc"])
def test_bad_gamma_grid_names_the_key(gamma):
    with pytest.raises(ConfigError, match=r"sensitivity\.gamma"):
        rosenbaum_bounds(np.arange(1.0, 11.0), gamma)


def test_too_few_pairs():
    with pytest.raises(EstimationError, match=r"at least 5 matched pairs; got 3"):
        rosenbaum_bounds([1.0, 2.0, 3.0], [1, 2])


def test_all_zero_differences():
    with pytest.raises(EstimationError, match="All 8 matched differences are zero"):
        rosenbaum_bounds(np.zeros(8), [1, 2])


def test_missing_differences():
    with pytest.raises(EstimationError, match="missing or infinite"):
        rosenbaum_bounds([1.0, 2, np.nan, 3, 4, 5], [1])


# --- simulation: hidden bias of known Γ ------------------------------------------------------------------


def _simulated_p_upper(rng, gamma_true, n_pairs, n_reps, shift=1.0):
    """Pairs with no treatment effect, where a binary unobserved u (one unit per pair has u = 1) raises the odds
    of being the treated unit by gamma_true, and u raises the outcome: the worst case Rosenbaum's bound guards
    against. Returns the upper-bound p-values at Γ = gamma_true and at Γ = 1."""
    p_u_treated = gamma_true / (1 + gamma_true)
    u_is_treated = rng.random((n_reps, n_pairs)) < p_u_treated
    y_u1 = shift + rng.normal(0, 1, (n_reps, n_pairs))  # outcome of the u = 1 unit (u shifts outcomes)
    y_u0 = rng.normal(0, 1, (n_reps, n_pairs))
    d = np.where(u_is_treated, y_u1 - y_u0, y_u0 - y_u1)
    at_true = np.array([rosenbaum_bounds(row, [gamma_true], alternative="greater").p_upper[0] for row in d])
    at_one = np.array([rosenbaum_bounds(row, [1.0], alternative="greater").p_upper[0] for row in d])
    return at_true, at_one


def test_bound_at_true_gamma_keeps_its_size():
    rng = np.random.default_rng(20240515)
    at_true, at_one = _simulated_p_upper(rng, gamma_true=2.0, n_pairs=100, n_reps=400)
    size_true = np.mean(at_true < 0.05)
    size_naive = np.mean(at_one < 0.05)
    # The bound is conservative (u is not the sign of the difference), so its size is at most 5% up to
    # Monte Carlo error (sd ≈ 1.1 points with 400 replications); the naive test rejects far too often.
    assert size_true <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 400)
    assert size_naive > 0.2


def test_bound_is_attained_when_u_decides_the_sign():
    # With a large outcome shift the u = 1 unit always has the higher outcome: the null distribution of T is
    # then exactly the bounding one, so the test at the true Γ has size ≈ 5% (not just ≤ 5%).
    rng = np.random.default_rng(8)
    at_true, _ = _simulated_p_upper(rng, gamma_true=2.0, n_pairs=100, n_reps=400, shift=10.0)
    size = np.mean(at_true < 0.05)
    assert abs(size - 0.05) <= 3 * np.sqrt(0.05 * 0.95 / 400)
