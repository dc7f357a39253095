"""The fast paths of the staggered engine give exactly what the plain formulas give."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaltool.estimators.did.bootstrap import multiplier_weights
from evaltool.estimators.did.did_staggered import DidStaggeredOptions, fit_did_staggered
from evaltool.results import EffectEstimate

REFERENCE = Path(__file__).resolve().parents[2] / "reference"
SQRT5 = np.sqrt(5.0)


@pytest.mark.parametrize("kind", ["mammen", "rademacher"])
@pytest.mark.parametrize("shape", [(64, 1000), (3, 5)])
def test_multiplier_weights_are_two_point_values_of_16_bit_draws(kind, shape):
    from evaltool.estimators.did.bootstrap import two_point

    k, low, high = two_point(kind)
    size = int(np.prod(shape))
    bits = np.random.default_rng(11).bit_generator.random_raw(-(-size // 4)).view(np.uint16)[:size]
    expected = np.where(bits < k, low, high).reshape(shape)
    weights = multiplier_weights(np.random.default_rng(11), shape, kind)
    assert weights.dtype == np.float64
    np.testing.assert_array_equal(weights, expected)  # bit for bit: the same values, not approximately


def test_two_point_weights_have_exact_moments_and_mammens_values():
    from evaltool.estimators.did.bootstrap import two_point

    k, low, high = two_point("mammen")
    q = k / 2**16
    assert abs(q - (1 + SQRT5) / (2 * SQRT5)) < 5e-6
    assert q * low + (1 - q) * high == pytest.approx(0, abs=1e-15)
    assert q * low**2 + (1 - q) * high**2 == pytest.approx(1, abs=1e-15)
    assert q * low**3 + (1 - q) * high**3 == pytest.approx(1, abs=3e-5)
    assert low == pytest.approx((1 - SQRT5) / 2, abs=2e-5) and high == pytest.approx((1 + SQRT5) / 2, abs=2e-5)
    assert two_point("rademacher") == (2**15, -1.0, 1.0)


def test_split_draws_do_not_depend_on_threads(monkeypatch):
    from evaltool.estimators.did import bootstrap

    def fill(stream, m):
        return stream.normal(size=(m, 3))

    threaded = bootstrap.split_draws(101, 3, np.random.default_rng(5), 8, fill)
    monkeypatch.setattr(bootstrap.os, "cpu_count", lambda: 1)
    serial = bootstrap.split_draws(101, 3, np.random.default_rng(5), 8, fill)
    np.testing.assert_array_equal(threaded, serial)
    other = bootstrap.split_draws(101, 3, np.random.default_rng(6), 8, fill)
    assert not np.allclose(threaded, other)


def test_estimates_equal_from_normal_field_by_field():
    frame = pd.read_csv(REFERENCE / "mpdta.csv").rename(columns={"countyreal": "school", "first.treat": "join_year"})
    frame["join_year"] = frame["join_year"].replace(0, np.nan)
    options = DidStaggeredOptions(name="t", method="did_staggered", outcome="lemp", bootstrap_draws=99, ci_level=0.9)
    estimates, _, _, _ = fit_did_staggered(frame, "lemp", options=options, rng=np.random.default_rng(3))
    assert len(estimates) > 20
    for est in estimates:
        extra = {key: getattr(est, key) for key in ("n_treated", "n_control", "n_obs", "inference")}
        plain = EffectEstimate.from_normal(
            term=est.term, estimand=est.estimand, estimate=est.estimate, std_error=est.std_error, ci_level=0.9, **extra
        )
        assert est == plain, est.term


@pytest.mark.parametrize("cluster", ["school", "state"])
@pytest.mark.parametrize("kind", ["mammen", "rademacher"])
def test_two_point_draws_equal_draws_with_the_weights(kind, cluster):
    from evaltool.estimators.did.bootstrap import _BlockPlan, multiplier_indicators
    from evaltool.estimators.did.staggered import att_gt

    frame = pd.read_csv(REFERENCE / "mpdta.csv").rename(columns={"countyreal": "school", "first.treat": "join_year"})
    frame["join_year"] = frame["join_year"].replace(0, np.nan)
    frame["state"] = (frame["school"] // 1000).astype(str)
    result = att_gt(frame, "lemp", cluster=cluster)
    plan = _BlockPlan(result)
    indicators, low, high = multiplier_indicators(np.random.default_rng(4), (50, result.arrays.n_clusters), kind)
    weights = multiplier_weights(np.random.default_rng(4), (50, result.arrays.n_clusters), kind)
    plain = plan.draws(weights)
    # Same draws up to rounding (the two-point form sums high·ΣZ and (low − high)·Σ_L Z separately) ...
    np.testing.assert_allclose(plan.draws_two_point(indicators, low, high), plain, rtol=1e-9, atol=1e-13)
    # ... and in single precision, as the bootstrap runs them, within 10⁻⁶ of the largest draw.
    single, _, _ = multiplier_indicators(np.random.default_rng(4), (50, result.arrays.n_clusters), kind, dtype=np.float32)
    np.testing.assert_allclose(plan.draws_two_point(single, low, high), plain, rtol=0, atol=1e-6 * np.abs(plain).max())
