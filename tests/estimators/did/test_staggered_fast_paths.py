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


@pytest.mark.parametrize(
    ("kind", "threshold", "values"),
    [("mammen", (1 + SQRT5) / (2 * SQRT5), ((1 - SQRT5) / 2, (1 + SQRT5) / 2)), ("rademacher", 0.5, (-1.0, 1.0))],
)
def test_multiplier_weights_are_the_two_point_values_of_the_same_uniform_draws(kind, threshold, values):
    uniforms = np.random.default_rng(11).random((64, 1000), dtype=np.float32)
    expected = np.where(uniforms < np.float32(threshold), *values)
    weights = multiplier_weights(np.random.default_rng(11), (64, 1000), kind)
    assert weights.dtype == np.float64
    np.testing.assert_array_equal(weights, expected)  # bit for bit: the same values, not approximately


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
    # Same draws up to rounding (the two-point form sums high·ΣY and (low − high)·Σ_L Y separately).
    np.testing.assert_allclose(plan.draws_two_point(indicators, low, high), plan.draws(weights), rtol=1e-9, atol=1e-13)


@pytest.mark.parametrize("bit_generator", [np.random.PCG64, np.random.PCG64DXSM, np.random.Philox])
@pytest.mark.parametrize("shape", [(64, 1000), (3, 5)])
@pytest.mark.parametrize("buffered", [False, True])
def test_threshold_draws_equal_single_precision_uniforms(bit_generator, shape, buffered):
    from evaltool.estimators.did.bootstrap import _below

    plain, fast = np.random.Generator(bit_generator(7)), np.random.Generator(bit_generator(7))
    if buffered:  # leaves half of a 64-bit output pending: the fast route must not be used
        plain.random(1, dtype=np.float32), fast.random(1, dtype=np.float32)
    threshold = np.float32((1 + SQRT5) / (2 * SQRT5))
    np.testing.assert_array_equal(_below(fast, shape, threshold), plain.random(shape, dtype=np.float32) < threshold)
    assert fast.random() == plain.random()  # and the generator is left at the same point of its stream
