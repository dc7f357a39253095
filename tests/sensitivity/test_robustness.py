"""Cinelli & Hazlett robustness values: sensemakr's Darfur example (tests/reference/sensemakr_darfur.md),
brute-force checks of the closed forms, and the plain-language sentence."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import optimize, stats

from evaltool.errors import ConfigError
from evaltool.sensitivity.robustness import (
    adjusted_se,
    benchmark_partial_r2,
    benchmark_sentence,
    bias,
    robustness,
    robustness_value,
)

REFERENCE = Path(__file__).resolve().parents[1] / "reference"


@pytest.fixture(scope="module")
def darfur():
    return json.loads((REFERENCE / "sensemakr_darfur.json").read_text())


def _female_partial_r2(ref):
    """Invert the kd = 1 bound for the benchmark's own partial R² (see sensemakr_darfur.md)."""
    r2dz, r2yz = ref["r2dz_x"][0], ref["r2yz_dx"][0]
    r2d = r2dz / (1 + r2dz)
    eta = r2d**2 / ((1 - r2d) ** 2)
    ratio = r2yz / ((1 + np.sqrt(eta)) / np.sqrt(1 - eta)) ** 2
    return r2d, ratio / (1 + ratio)


def test_darfur_sensitivity_stats(darfur):
    # sensemakr(model, treatment = "directlyharmed", benchmark_covariates = "female", kd = 1:3)$sensitivity_stats
    out = robustness(darfur["estimate"], darfur["se"], darfur["dof"])
    assert out.partial_r2 == pytest.approx(darfur["r2yd_x"], abs=1e-5)
    assert out.rv_q == pytest.approx(darfur["rv_q"], abs=1e-5)
    assert out.rv_q_alpha == pytest.approx(darfur["rv_qa"], abs=1e-5)


def test_darfur_female_bounds(darfur):
    # ...$bounds (sensemakr test-13 "testing darfur sensemakr with formula")
    out = robustness(darfur["estimate"], darfur["se"], darfur["dof"],
                     benchmarks={"female": _female_partial_r2(darfur)}, k=darfur["kd"])
    got = {key: [getattr(b, key) for b in out.bounds] for key in
           ("r2dz_x", "r2yz_dx", "adjusted_estimate", "adjusted_se", "adjusted_t", "adjusted_ci_lower",
            "adjusted_ci_upper")}
    # estimate/se are given to 7 significant digits, so adjusted values agree to ~1e-6 relative
    np.testing.assert_allclose(got["r2dz_x"], darfur["r2dz_x"], rtol=1e-10)
    np.testing.assert_allclose(got["r2yz_dx"], darfur["r2yz_dx"], rtol=1e-10)
    np.testing.assert_allclose(got["adjusted_estimate"], darfur["adjusted_estimate"], rtol=1e-5)
    np.testing.assert_allclose(got["adjusted_se"], darfur["adjusted_se"], rtol=1e-5)
    np.testing.assert_allclose(got["adjusted_t"], darfur["adjusted_t"], rtol=1e-5)
    np.testing.assert_allclose(got["adjusted_ci_lower"], darfur["adjusted_lower_ci"], atol=1e-6)
    np.testing.assert_allclose(got["adjusted_ci_upper"], darfur["adjusted_upper_ci"], atol=1e-6)
    assert [b.explains_away for b in out.bounds] == [False, False, True]
    json.dumps(out.to_dict())


def test_sentence(darfur):
    out = robustness(darfur["estimate"], darfur["se"], darfur["dof"],
                     benchmarks={"female": _female_partial_r2(darfur)}, k=darfur["kd"])
    assert benchmark_sentence(out.bounds[0], label="being female").startswith(
        "An unobserved confounder 1× as strong as being female would not explain away the effect")
    assert " 3× as strong as female would explain away" in benchmark_sentence(out.bounds[2])


@pytest.mark.parametrize(("t", "dof", "q"), [(4.18, 783, 1.0), (2.5, 120, 0.5), (8.0, 40, 1.0), (3.0, 5000, 2.0)])
def test_rv_q_equals_brute_force(t, dof, q):
    se = 1.0
    estimate = t * se

    def remaining(r2):  # equal partial R²s: does the bias remove q·100% of the estimate?
        return bias(se, dof, r2, r2) - q * abs(estimate)

    brute = optimize.brentq(remaining, 1e-12, 1 - 1e-12, xtol=1e-14)
    assert robustness_value(t, dof, q) == pytest.approx(brute, rel=1e-9)


@pytest.mark.parametrize(("t", "dof"), [(4.18, 783), (3.5, 200)])
def test_rv_q_alpha_equals_brute_force(t, dof):
    se, alpha = 1.0, 0.05
    crit = stats.t.ppf(1 - alpha / 2, dof - 1)

    def adjusted_t(r2):
        return (t - bias(se, dof, r2, r2)) / adjusted_se(se, dof, r2, r2) - crit

    brute = optimize.brentq(adjusted_t, 1e-12, 0.999, xtol=1e-14)
    assert robustness_value(t, dof, 1.0, alpha) == pytest.approx(brute, rel=1e-9)


def test_impossible_k_names_the_key():
    with pytest.raises(ConfigError, match=r"sensitivity\.benchmark\.k"):
        benchmark_partial_r2(0.5, 0.1, kd=2)
