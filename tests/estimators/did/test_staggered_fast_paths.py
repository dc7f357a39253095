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


def test_pipelined_draws_do_not_depend_on_threads(monkeypatch):
    from evaltool.estimators.did import bootstrap

    def generate(stream, m):
        return (stream.normal(size=(m, 3)),)

    def combine(z):
        return z * 2

    threaded = bootstrap.pipelined_draws(101, 3, np.random.default_rng(5), 8, generate, combine)
    monkeypatch.setattr(bootstrap.os, "cpu_count", lambda: 1)
    serial = bootstrap.pipelined_draws(101, 3, np.random.default_rng(5), 8, generate, combine)
    np.testing.assert_array_equal(threaded, serial)
    np.testing.assert_array_equal(serial, 2 * np.random.default_rng(5).normal(size=(101, 3)))  # in order, no gaps


def test_pipelined_draws_pass_on_the_helpers_error():
    from evaltool.estimators.did import bootstrap

    def generate(stream, m):
        raise FloatingPointError("boom")

    with pytest.raises(FloatingPointError, match="boom"):
        bootstrap.pipelined_draws(64, 3, np.random.default_rng(5), 8, generate, lambda z: z)


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
def test_compiled_sums_equal_draws_with_the_generators_weights(kind, cluster):
    from evaltool.estimators.did._multiplier import high_sums, high_weights
    from evaltool.estimators.did.bootstrap import _BlockPlan, two_point
    from evaltool.estimators.did.staggered import att_gt

    frame = pd.read_csv(REFERENCE / "mpdta.csv").rename(columns={"countyreal": "school", "first.treat": "join_year"})
    frame["join_year"] = frame["join_year"].replace(0, np.nan)
    frame["state"] = (frame["school"] // 1000).astype(str)
    result = att_gt(frame, "lemp", cluster=cluster)
    plan = _BlockPlan(result)
    k, low, high = two_point(kind)
    key, n_draws = 2**63 + 12345, 37
    # The weights of the numpy reference generator, one per cluster (or position), as a plain matrix ...
    is_high = high_weights(key, np.arange(plan.n_ids), n_draws, k)
    expected = plan.draws(np.where(is_high, high, low))
    # ... give the same draws as the compiled loop, whatever the number of threads.
    for threads in (1, 2, 3):
        sums = high_sums(plan.z, plan.ids, plan.block_of_group, plan.n_blocks, key=key, k=k, n_draws=n_draws,
                         threads=threads)
        np.testing.assert_allclose(plan.draws_from_high_sums(sums, low, high), expected, rtol=1e-10, atol=1e-13)


def test_counter_weights_are_independent_two_point_draws():
    from evaltool.estimators.did._multiplier import high_weights
    from evaltool.estimators.did.bootstrap import two_point

    k, low, high = two_point("mammen")
    is_high = high_weights(99, np.arange(4000), 500, k)  # 2 million weights
    p = 1 - k / 2**16
    assert is_high.mean() == pytest.approx(p, abs=4 * np.sqrt(p * (1 - p) / is_high.size))
    v = np.where(is_high, high, low)
    # Neighbouring clusters (sharing one generator output) and neighbouring draws are uncorrelated.
    for a, b in [(v[:, 0::4], v[:, 1::4]), (v[:, 2::4], v[:, 3::4]), (v[:-1], v[1:])]:
        assert abs(np.mean(a * b)) < 4 / np.sqrt(a.size)
    assert not np.array_equal(high_weights(98, np.arange(40), 5, k), high_weights(99, np.arange(40), 5, k))


def test_block_bootstrap_se_agrees_with_analytic():
    from evaltool.estimators.did.bootstrap import group_time_bootstrap
    from evaltool.estimators.did.staggered import att_gt

    frame = pd.read_csv(REFERENCE / "mpdta.csv").rename(columns={"countyreal": "school", "first.treat": "join_year"})
    frame["join_year"] = frame["join_year"].replace(0, np.nan)
    result = att_gt(frame, "lemp")
    boot = group_time_bootstrap(result, n_draws=20_000, rng=np.random.default_rng(8), weights="rademacher")
    analytic = result.cells["std_error"].to_numpy()
    ok = analytic > 0
    # E v = 0, E v² = 1: the draws' spread is the analytic SE, up to Monte Carlo error (0.5% at 20,000 draws).
    np.testing.assert_allclose(boot.draws[:, : len(analytic)].std(axis=0)[ok], analytic[ok], rtol=0.03)


def _mpdta_frame() -> pd.DataFrame:
    frame = pd.read_csv(REFERENCE / "mpdta.csv").rename(columns={"countyreal": "school", "first.treat": "join_year"})
    frame["join_year"] = frame["join_year"].replace(0, np.nan)
    return frame


@pytest.mark.parametrize("ids", ["int", "str", "str_unsorted"])
def test_sorted_panel_layout_equals_the_general_route(ids):
    from evaltool.estimators.did import panel_arrays as pa

    frame = _mpdta_frame()
    if ids != "int":
        frame["school"] = ("S" + frame["school"].astype(str)).astype(object)
    frame = frame.sort_values(["school", "year"]).reset_index(drop=True)
    if ids == "str_unsorted":  # schools' runs in a scrambled order: the fast route must reorder them
        order = np.random.default_rng(0).permutation(frame["school"].unique())
        frame = frame.set_index("school").loc[order].reset_index()
    assert pa._sorted_layout(frame["school"], frame["year"].to_numpy()) is not None
    fast = pa.panel_arrays(frame, "lemp", covariates=("lpop",))
    shuffled = frame.sample(frac=1.0, random_state=1)  # rows out of order: the general route
    assert pa._sorted_layout(shuffled["school"], shuffled["year"].to_numpy()) is None
    general = pa.panel_arrays(shuffled, "lemp", covariates=("lpop",))
    for name in ("units", "periods", "y", "x", "cohort", "clusters"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(general, name), err_msg=name)
    assert list(fast.units) == sorted(fast.units)


def test_sorted_panel_layout_rejects_a_varying_join_year():
    from evaltool.errors import DataError
    from evaltool.estimators.did.panel_arrays import panel_arrays

    frame = _mpdta_frame().sort_values(["school", "year"]).reset_index(drop=True)
    frame.loc[3, "join_year"] = 2006.0  # one row of a never-joined county
    with pytest.raises(DataError, match=r"join_year differs between rows of the same school \(e.g. 8001\)"):
        panel_arrays(frame, "lemp")
