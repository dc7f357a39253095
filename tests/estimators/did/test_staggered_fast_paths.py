"""The fast paths of the staggered engine give exactly what the plain formulas give."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaltool.estimators.did.engine.bootstrap import multiplier_weights
from evaltool.estimators.did.method_staggered import DidStaggeredOptions, fit_did_staggered
from evaltool.results import EffectEstimate

REFERENCE = Path(__file__).resolve().parents[2] / "reference"
SQRT5 = np.sqrt(5.0)


@pytest.mark.parametrize("kind", ["mammen", "rademacher"])
@pytest.mark.parametrize("shape", [(64, 1000), (3, 5)])
def test_multiplier_weights_are_two_point_values_of_16_bit_draws(kind, shape):
    from evaltool.estimators.did.engine.bootstrap import two_point

    k, low, high = two_point(kind)
    size = int(np.prod(shape))
    bits = np.random.default_rng(11).bit_generator.random_raw(-(-size // 4)).view(np.uint16)[:size]
    expected = np.where(bits < k, low, high).reshape(shape)
    weights = multiplier_weights(np.random.default_rng(11), shape, kind)
    assert weights.dtype == np.float64
    np.testing.assert_array_equal(weights, expected)  # bit for bit: the same values, not approximately


def test_two_point_weights_have_exact_moments_and_mammens_values():
    from evaltool.estimators.did.engine.bootstrap import two_point

    k, low, high = two_point("mammen")
    q = k / 2**16
    assert abs(q - (1 + SQRT5) / (2 * SQRT5)) < 5e-6
    assert q * low + (1 - q) * high == pytest.approx(0, abs=1e-15)
    assert q * low**2 + (1 - q) * high**2 == pytest.approx(1, abs=1e-15)
    assert q * low**3 + (1 - q) * high**3 == pytest.approx(1, abs=3e-5)
    assert low == pytest.approx((1 - SQRT5) / 2, abs=2e-5) and high == pytest.approx((1 + SQRT5) / 2, abs=2e-5)
    assert two_point("rademacher") == (2**15, -1.0, 1.0)


def test_pipelined_draws_do_not_depend_on_threads(monkeypatch):
    from evaltool.estimators.did.engine import bootstrap

    def generate(stream, m):
        return (stream.normal(size=(m, 3)),)

    def combine(z):
        return z * 2

    threaded = bootstrap.pipelined_draws(101, 3, np.random.default_rng(5), 8, generate, combine)
    monkeypatch.setattr(bootstrap._helper_thread, "available", lambda: False)
    serial = bootstrap.pipelined_draws(101, 3, np.random.default_rng(5), 8, generate, combine)
    np.testing.assert_array_equal(threaded, serial)
    np.testing.assert_array_equal(serial, 2 * np.random.default_rng(5).normal(size=(101, 3)))  # in order, no gaps


def test_pipelined_draws_pass_on_the_helpers_error():
    from evaltool.estimators.did.engine import bootstrap

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
        fields = ("n_treated", "n_control", "n_obs", "inference", "cluster", "n_clusters", "se_correction", "se_method")
        extra = {key: getattr(est, key) for key in fields}
        plain = EffectEstimate.from_normal(
            term=est.term, estimand=est.estimand, estimate=est.estimate, std_error=est.std_error, ci_level=0.9, **extra
        )
        assert est == plain, est.term


@pytest.mark.parametrize("cluster", ["school", "state"])
@pytest.mark.parametrize("kind", ["mammen", "rademacher"])
def test_compiled_sums_equal_draws_with_the_generators_weights(kind, cluster):
    from evaltool.estimators.did.engine._multiplier import ChunkedSums, high_weights
    from evaltool.estimators.did.engine.att_gt import att_gt
    from evaltool.estimators.did.engine.bootstrap import _BlockPlan, two_point

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
    # ... give the same draws as the compiled loop, with or without the helper thread.
    for helper in (False, True):
        sums = ChunkedSums(plan.z, plan.ids, plan.block_of_group, plan.n_blocks, key=key, k=k, n_draws=n_draws,
                           helper=helper).result()[:, : plan.n_blocks]
        np.testing.assert_allclose(plan.draws_from_high_sums(sums, low, high), expected, rtol=1e-10, atol=1e-13)


def test_counter_weights_are_independent_two_point_draws():
    from evaltool.estimators.did.engine._multiplier import high_weights
    from evaltool.estimators.did.engine.bootstrap import two_point

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
    from evaltool.estimators.did.engine.att_gt import att_gt
    from evaltool.estimators.did.engine.bootstrap import group_time_bootstrap

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
    from evaltool.estimators.did.engine import panel_arrays as pa

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
    from evaltool.estimators.did.engine.panel_arrays import panel_arrays

    frame = _mpdta_frame().sort_values(["school", "year"]).reset_index(drop=True)
    frame.loc[3, "join_year"] = 2006.0  # one row of a never-joined county
    with pytest.raises(DataError, match=r"join_year differs between rows of the same school \(e.g. 8001\)"):
        panel_arrays(frame, "lemp")


def _mpdta_result(**options):
    from evaltool.estimators.did.engine.att_gt import att_gt

    frame = pd.read_csv(REFERENCE / "mpdta.csv").rename(columns={"countyreal": "school", "first.treat": "join_year"})
    frame["join_year"] = frame["join_year"].replace(0, np.nan)
    frame["state"] = (frame["school"] // 1000).astype(str)
    return att_gt(frame, "lemp", **options)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 9, 999, 1000])
def test_iqr_se_equals_numpys_type_1_quartiles(n):
    from evaltool.estimators.did.engine.bootstrap import _IQR_NORMAL, iqr_se

    draws = np.round(np.random.default_rng(n).normal(size=(n, 7)), 1)  # ties
    draws[:, 1] = 0.0  # degenerate: NaN
    draws[0, 2] = np.nan  # a NaN draw: NaN
    q75, q25 = np.quantile(draws, [0.75, 0.25], axis=0, method="inverted_cdf")
    expected = np.where(np.abs(draws).max(axis=0) > 0, (q75 - q25) / _IQR_NORMAL, np.nan)
    np.testing.assert_array_equal(iqr_se(draws), expected)


def test_chunks_cover_every_group_once_within_one_block():
    from evaltool.estimators.did.engine._multiplier import chunk_bounds

    block_of_group = np.repeat([0, 1, 3, 4], [700, 3, 1, 257])  # block 2 has no rows
    chunks = chunk_bounds(block_of_group, 5, max_groups=256)
    assert list(chunks[:5, 2]) == [0, 1, 2, 3, 4]  # each block's first chunk, in block order
    covered = np.concatenate([np.arange(lo, hi) for lo, hi, _ in chunks])
    np.testing.assert_array_equal(np.sort(covered), np.arange(len(block_of_group)))
    for lo, hi, b in chunks:
        assert hi - lo <= 256 and (block_of_group[lo:hi] == b).all()


@pytest.mark.parametrize("cluster", ["school", "state"])
def test_chunked_sums_do_not_depend_on_the_helper_thread(cluster):
    from evaltool.estimators.did.engine._multiplier import ChunkedSums
    from evaltool.estimators.did.engine.bootstrap import _BlockPlan, two_point

    plan = _BlockPlan(_mpdta_result(cluster=cluster))
    k = two_point("mammen")[0]
    runs = [
        ChunkedSums(plan.z, plan.ids, plan.block_of_group, plan.n_blocks, key=7, k=k, n_draws=53, helper=helper).result()
        for helper in (False, True, True)
    ]
    for other in runs[1:]:
        np.testing.assert_array_equal(other[:, : plan.n_blocks], runs[0][:, : plan.n_blocks])  # bit for bit


def test_cancelled_sums_refuse_to_give_a_result():
    from evaltool.estimators.did.engine._multiplier import ChunkedSums
    from evaltool.estimators.did.engine.bootstrap import _BlockPlan

    plan = _BlockPlan(_mpdta_result())
    sums = ChunkedSums(plan.z, plan.ids, plan.block_of_group, plan.n_blocks, key=7, k=3, n_draws=5, helper=False)
    sums.cancel()
    with pytest.raises(RuntimeError, match="cancelled"):
        sums.result()


def test_pending_draws_of_combinations_equal_the_basis_draws_times_the_combination():
    from evaltool.estimators.did.engine.bootstrap import start_group_time_draws

    result = _mpdta_result(control_group="not_yet_joined")
    combination = np.random.default_rng(2).normal(size=(result.n_basis, 4))
    basis = start_group_time_draws(result, n_draws=41, rng=np.random.default_rng(5)).draws()
    combined = start_group_time_draws(result, n_draws=41, rng=np.random.default_rng(5)).draws(combination)
    np.testing.assert_allclose(combined, basis @ combination, rtol=1e-12, atol=1e-14)


def test_run_both_passes_on_either_error_and_waits_for_the_helper():
    import threading

    from evaltool.estimators.did.engine import _helper_thread

    done = threading.Event()

    def slow_then_done():
        done.wait(0.05)
        done.set()
        return 1

    def fail():
        raise ValueError("on this thread")

    with pytest.raises(ValueError, match="on this thread"):
        _helper_thread.run_both(slow_then_done, fail)
    assert done.is_set()  # the helper's task had ended before the error reached the caller
    with pytest.raises(KeyError):
        _helper_thread.run_both(lambda: {}["missing"], lambda: 2)
    assert _helper_thread.run_both(lambda: 1, lambda: 2) == (1, 2)


def test_an_error_after_the_bootstrap_started_cancels_it(monkeypatch):
    import evaltool.estimators.did.method_staggered as module
    from evaltool.errors import EstimationError
    from evaltool.estimators.did.engine.bootstrap import PendingDraws

    cancelled = []
    monkeypatch.setattr(PendingDraws, "cancel", lambda self: cancelled.append(True))

    def broken(*args, **kwargs):
        raise EstimationError("aggregation failed", user_error=True)

    monkeypatch.setattr(module, "aggregate", broken)
    frame = pd.read_csv(REFERENCE / "mpdta.csv").rename(columns={"countyreal": "school", "first.treat": "join_year"})
    frame["join_year"] = frame["join_year"].replace(0, np.nan)
    options = DidStaggeredOptions(name="x", method="did_staggered", bootstrap_draws=99, placebo_shift=None)
    with pytest.raises(EstimationError, match="aggregation failed"):
        fit_did_staggered(frame, "lemp", options=options, rng=np.random.default_rng(0))
    assert cancelled == [True]


@pytest.mark.parametrize("rank", [0, 1, 4, 6])
def test_rank_and_pinv_from_one_decomposition_equal_numpys(rank):
    from evaltool.diagnostics.pretrends import _rank_and_pinv

    factor = np.random.default_rng(rank).normal(size=(6, rank))
    matrix = factor @ factor.T
    got_rank, inverse = _rank_and_pinv(matrix)
    assert got_rank == np.linalg.matrix_rank(matrix)
    np.testing.assert_allclose(inverse, np.linalg.pinv(matrix), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("cluster", ["school", "state"])
def test_stratum_groups_equal_the_sorted_strata(cluster):
    from evaltool.diagnostics.pretrends import _stratum_groups, cluster_strata

    result = _mpdta_result(cluster=cluster)
    keys, expected = np.unique(cluster_strata(result), return_inverse=True, equal_nan=True)
    group, n_groups = _stratum_groups(result)
    assert n_groups == len(keys)
    np.testing.assert_array_equal(group, expected)


def test_bands_of_ranges_equal_each_ranges_own_band():
    from evaltool.estimators.did.engine.bootstrap import BootstrapResult

    draws = np.random.default_rng(4).normal(size=(300, 12)) * np.arange(1, 13)
    draws[:, 3] = 0.0  # no variance: left out of every band
    draws[:, 8:10] = 0.0  # a range with no usable parameter: NaN
    result = BootstrapResult.from_draws(draws, weights="mammen", n_clusters=300, overall_band=False)
    assert np.isnan(result.crit)
    ranges = [(0, 5), (5, 8), (8, 10), (10, 12), (0, 12)]
    for (start, stop), crit in zip(ranges, result.bands(ranges, 0.1), strict=True):
        expected = result.band(slice(start, stop), 0.1)[1]
        assert crit == expected or (np.isnan(crit) and np.isnan(expected))


def test_fit_is_the_same_without_the_helper_thread(monkeypatch):
    from evaltool.estimators.did.engine import _helper_thread

    frame = pd.read_csv(REFERENCE / "mpdta.csv").rename(columns={"countyreal": "school", "first.treat": "join_year"})
    frame["join_year"] = frame["join_year"].replace(0, np.nan)
    options = DidStaggeredOptions(name="x", method="did_staggered", bootstrap_draws=199, placebo_shift=None)

    def fit():
        estimates, diagnostics, _, _ = fit_did_staggered(frame, "lemp", options=options, rng=np.random.default_rng(3))
        return estimates, diagnostics["group_time"]

    with_helper = fit()
    monkeypatch.setattr(_helper_thread, "available", lambda: False)
    alone = fit()
    assert with_helper[0] == alone[0]  # every field of every estimate, bit for bit
    pd.testing.assert_frame_equal(with_helper[1], alone[1], check_exact=True)
