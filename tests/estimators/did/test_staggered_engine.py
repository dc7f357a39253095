"""Properties of the group-time engine, aggregations and bootstrap beyond the reference values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaltool.estimators.did.engine.aggregate import aggregate
from evaltool.estimators.did.engine.att_gt import att_gt
from evaltool.estimators.did.engine.bootstrap import multiplier_bootstrap, multiplier_weights
from evaltool.estimators.did.engine.sums import cluster_sum
from evaltool.estimators.did.method_staggered import DidStaggeredOptions, fit_did_staggered

REFERENCE = Path(__file__).resolve().parents[2] / "reference"


@pytest.fixture(scope="module")
def mpdta() -> pd.DataFrame:
    frame = pd.read_csv(REFERENCE / "mpdta.csv").rename(columns={"countyreal": "school", "first.treat": "join_year"})
    frame["join_year"] = frame["join_year"].replace(0, np.nan)
    frame["state"] = (frame["school"] // 1000).astype(str)  # FIPS state part of the county code
    return frame


def test_available_pairs_equals_balance_on_a_balanced_panel(mpdta):
    balanced = att_gt(mpdta, "lemp", covariates=("lpop",))
    pairs = att_gt(mpdta, "lemp", covariates=("lpop",), unbalanced="available_pairs")
    np.testing.assert_allclose(balanced.cells["att"], pairs.cells["att"], atol=1e-12)
    np.testing.assert_allclose(balanced.cells["std_error"], pairs.cells["std_error"], rtol=1e-10)


def test_universal_base_period(mpdta):
    result = att_gt(mpdta, "lemp", base_period="universal")
    cells = result.cells
    assert (cells["base_year"] == cells["cohort"] - 1).all()
    reference = cells[cells["year"] == cells["base_year"]]
    assert (reference["att"] == 0).all() and (reference["std_error"] == 0).all()
    # Post-joining cells are the same as with the varying base period.
    varying = att_gt(mpdta, "lemp").cells
    post = cells["post"].to_numpy()
    np.testing.assert_allclose(cells.loc[post, "att"], varying.loc[varying["post"], "att"], atol=1e-12)
    # Long differences: ATT(2007, 2004) (2004 vs 2006) = sum of the short differences 2004->2005->2006, negated.
    short = varying.set_index(["cohort", "year"])["att"]
    long_diff = cells.set_index(["cohort", "year"])["att"]
    assert long_diff[(2007.0, 2004)] == pytest.approx(-(short[(2007.0, 2005)] + short[(2007.0, 2006)]), abs=1e-12)


def test_event_window_restricts_dynamic_aggregation(mpdta):
    result = att_gt(mpdta, "lemp")
    dynamic = aggregate(result, "dynamic", min_e=-1, max_e=2)
    assert list(dynamic.table["event_time"]) == [-1, 0, 1, 2]
    assert dynamic.overall_att == pytest.approx(dynamic.table["att"].iloc[1:].mean())


def test_clustered_inference_is_coarser(mpdta):
    by_county = att_gt(mpdta, "lemp")
    by_state = att_gt(mpdta, "lemp", cluster="state")
    assert by_state.arrays.n_clusters == mpdta["state"].nunique()
    np.testing.assert_allclose(by_state.cells["att"], by_county.cells["att"])
    assert not np.allclose(by_state.cells["std_error"], by_county.cells["std_error"])
    # Analytic clustered variance equals the sum over clusters of squared influence sums.
    col = by_state.influence[:, 0]
    sums = pd.Series(col).groupby(by_state.arrays.clusters).sum().to_numpy()
    assert by_state.cells["std_error"].iloc[0] == pytest.approx(np.sqrt((sums**2).sum()) / by_state.n_units)


def test_cluster_sum_matches_groupby():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(50, 3))
    clusters = rng.integers(0, 7, 50)
    expected = pd.DataFrame(values).groupby(clusters).sum().to_numpy()
    np.testing.assert_allclose(cluster_sum(values, clusters, 7), expected)


def test_multiplier_weights_moments():
    v = multiplier_weights(np.random.default_rng(0), (400_000,), "mammen")
    assert v.mean() == pytest.approx(0, abs=0.01)
    assert (v**2).mean() == pytest.approx(1, abs=0.01)
    assert (v**3).mean() == pytest.approx(1, abs=0.02)
    r = multiplier_weights(np.random.default_rng(0), (100_000,), "rademacher")
    assert set(np.unique(r)) == {-1.0, 1.0}


def test_rademacher_bootstrap_agrees_with_analytic(mpdta):
    result = att_gt(mpdta, "lemp")
    boot = multiplier_bootstrap(
        result.influence, result.arrays.clusters, result.arrays.n_clusters,
        n_draws=10_000, rng=np.random.default_rng(2), weights="rademacher",
    )
    # The draws' variance is exactly the analytic variance in expectation (E v = 0, E v^2 = 1) ...
    np.testing.assert_allclose(boot.draws.std(axis=0), result.cells["std_error"], rtol=0.03)
    # ... the IQR-based SE (R did's choice) is close, though not equal with only 20 schools in cohort 2004.
    np.testing.assert_allclose(boot.std_error, result.cells["std_error"], rtol=0.1)


def test_fit_reports_counts_bands_and_analytic_mode(mpdta):
    options = DidStaggeredOptions(name="cs", method="did_staggered", bootstrap_draws=0, placebo_shift=1)
    estimates, diagnostics, sample, _ = fit_did_staggered(mpdta, "lemp", options=options, rng=np.random.default_rng(0))
    assert estimates[0].term == "ATT (cohort-weighted)"
    assert estimates[0].estimate == pytest.approx(-0.031, abs=5e-4)  # R did README, aggte(type="group")
    assert estimates[0].inference.startswith("analytic influence-function SEs")
    counts = diagnostics["cohort_counts"].set_index("cohort")["n_schools"]
    assert counts.to_dict() == {"2004": 20, "2006": 40, "2007": 131, "never joined": 309}
    assert np.isnan(diagnostics["group_time"]["critical_value"]).all()  # no uniform band without bootstrap
    assert diagnostics["placebo_test"]["cohorts"] == [2005, 2006]  # 2004 - 1 = 2003 has no pre-period
    assert sample.n_units_used == 500


def covariate_trend_panel(seed: int = 4, n: int = 3000) -> tuple[pd.DataFrame, float]:
    """Trends depend on a baseline covariate that also drives joining: only adjusted estimators are unbiased.

    Returns the frame and the true simple ATT (effect 1 + 0.5·(t − g), cohorts 2016–2018, years 2014–2019).
    """
    rng = np.random.default_rng(seed)
    years = np.arange(2014, 2020)
    x = rng.normal(size=n)
    joins = rng.random(n) < 1 / (1 + np.exp(-(x - 0.3)))
    cohort = np.where(joins, rng.choice([2016, 2017, 2018], n), np.nan)
    t = np.tile(years, n)
    g = np.repeat(cohort, len(years))
    xx = np.repeat(x, len(years))
    effect = np.where(t >= g, 1 + 0.5 * (t - g), 0.0)
    y = np.repeat(rng.normal(0, 1, n), len(years)) + 0.6 * xx * (t - 2014) + effect + rng.normal(0, 0.5, len(t))
    frame = pd.DataFrame({"school": np.repeat(np.arange(n), len(years)).astype(str), "year": t, "join_year": g, "y": y, "x": xx})
    post = t >= g
    truth = float(effect[post].mean())
    return frame, truth


@pytest.mark.parametrize("est_method", ["dr", "ipw", "reg"])
def test_covariate_adjustment_removes_covariate_driven_trends(est_method):
    frame, truth = covariate_trend_panel()
    adjusted = aggregate(att_gt(frame, "y", covariates=("x",), est_method=est_method), "simple")
    assert abs(adjusted.overall_att - truth) < 4 * adjusted.overall_se, (adjusted.overall_att, truth)
    naive = aggregate(att_gt(frame, "y"), "simple")
    assert (naive.overall_att - truth) / naive.overall_se > 4  # unconditional parallel trends fails here


def test_available_pairs_recovers_truth_on_an_unbalanced_panel():
    frame, _ = covariate_trend_panel(seed=5)
    rng = np.random.default_rng(1)
    unbalanced = frame[rng.random(len(frame)) > 0.15]  # 15% of school-years missing at random
    result = att_gt(unbalanced, "y", covariates=("x",), unbalanced="available_pairs")
    assert result.n_units == frame["school"].nunique()
    simple = aggregate(result, "simple")
    cells = result.cells[result.cells["post"]]
    shares = cells["cohort"].map(result.cohort_share)
    truth = float(((1 + 0.5 * cells["event_time"]) * shares).sum() / shares.sum())  # cell truths depend on t - g only
    assert abs(simple.overall_att - truth) < 4 * simple.overall_se
    balanced = att_gt(unbalanced, "y", covariates=("x",))
    assert balanced.n_units < 0.5 * result.n_units  # balancing would have dropped most schools (reported)


def test_vectorised_cells_equal_the_two_period_estimator(mpdta):
    from evaltool.estimators.did.engine import twoperiod

    result = att_gt(mpdta, "lemp")
    order = result.arrays.units.astype(int)  # the engine's unit order (sorted ids)
    wide = mpdta.pivot(index="school", columns="year", values="lemp").loc[order]
    cohort = mpdta.groupby("school")["join_year"].first().loc[order]
    d = (cohort == 2006).to_numpy()
    keep = d | cohort.isna().to_numpy()
    att, inf = twoperiod.unconditional((wide[2007] - wide[2005]).to_numpy()[keep], d[keep])
    row = result.cells[(result.cells["cohort"] == 2006) & (result.cells["year"] == 2007)].index[0]
    assert result.cells.loc[row, "att"] == pytest.approx(att, abs=1e-14)
    np.testing.assert_allclose(result.influence[keep, row], inf * 500 / keep.sum(), atol=1e-12)


@pytest.mark.parametrize("control_group", ["never_joined", "not_yet_joined"])
@pytest.mark.parametrize("cluster", ["school", "state"])
@pytest.mark.parametrize("base_period", ["varying", "universal"])
def test_structured_bootstrap_equals_generic(mpdta, control_group, cluster, base_period):
    from evaltool.estimators.did.engine.bootstrap import _BlockPlan

    result = att_gt(mpdta, "lemp", control_group=control_group, cluster=cluster, base_period=base_period, anticipation=1)
    assert result.blocks is not None
    v = np.random.default_rng(0).normal(size=(7, result.arrays.n_clusters))
    generic = v @ cluster_sum(result.basis, result.arrays.clusters, result.arrays.n_clusters) / result.n_units
    plan = _BlockPlan(result)
    # With schools as clusters the plan's weights are by position (cohort-block order, padded): map them.
    positions = plan.position_clusters
    given = v if positions is None else np.where(positions >= 0, v[:, np.maximum(positions, 0)], 0.0)
    np.testing.assert_allclose(plan.draws(given), generic, atol=1e-14)


def _dense_engine(result):
    """The same cells through the schools × cells engine (the covariate / missing-years path, no covariates)."""
    from evaltool.estimators.did.engine.att_gt import _dense_cells

    arrays = result.arrays
    period = {int(p): j for j, p in enumerate(arrays.periods)}
    specs = []
    for g, cells in result.cells.groupby("cohort", sort=False):
        years, bases = cells["year"].to_numpy(), cells["base_year"].to_numpy()
        specs.append((g, years, bases, np.array([period[t] for t in years]), np.array([period[b] for b in bases])))
    options = result.options
    return _dense_cells(arrays, ~np.isnan(arrays.y), specs, None, options["control_group"], options["anticipation"])


@pytest.mark.parametrize("control_group", ["never_joined", "not_yet_joined"])
@pytest.mark.parametrize("cluster", ["school", "state"])
@pytest.mark.parametrize(("base_period", "anticipation"), [("varying", 0), ("universal", 1)])
def test_block_form_equals_the_dense_engine(mpdta, control_group, cluster, base_period, anticipation):
    import dataclasses

    from evaltool.diagnostics.pretrends import staggered_pretrend_test

    result = att_gt(mpdta, "lemp", control_group=control_group, cluster=cluster, base_period=base_period,
                    anticipation=anticipation)
    assert result.blocks is not None and result.dense_influence is None
    influence, att, n1, n0, std_error = _dense_engine(result)
    np.testing.assert_allclose(result.cells["att"], att, rtol=0, atol=1e-13)
    np.testing.assert_array_equal(result.cells["n_treated"], n1)
    np.testing.assert_array_equal(result.cells["n_control"], n0)
    np.testing.assert_allclose(result.influence, influence, rtol=0, atol=1e-10)
    np.testing.assert_allclose(result.cells["std_error"], np.where(np.isnan(att), np.nan, std_error), rtol=1e-10)
    # The covariance of the whole basis, from block Gram matrices or cluster sums, is the plain formula's.
    sums = cluster_sum(result.basis, result.arrays.clusters, result.arrays.n_clusters)
    np.testing.assert_allclose(result.basis_cov, sums.T @ sums / result.n_units**2, rtol=1e-9, atol=1e-15)
    # So are the pre-trend tests (their per-cohort covariances and degrees of freedom included).
    dense = dataclasses.replace(result, blocks=None, dense_influence=influence)
    for reference in ("chi2", "f"):
        fast, plain = staggered_pretrend_test(result, reference=reference), staggered_pretrend_test(dense, reference=reference)
        assert fast.keys() == plain.keys()
        for key, value in plain.items():
            if isinstance(value, float):
                assert fast[key] == pytest.approx(value, rel=1e-9), key
            else:
                assert fast[key] == value, key


def test_structured_path_only_when_fully_observed(mpdta):
    assert att_gt(mpdta, "lemp", covariates=("lpop",)).blocks is None
    holes = mpdta.drop(index=[0, 7])
    assert att_gt(holes, "lemp", unbalanced="available_pairs").blocks is None
    assert att_gt(holes, "lemp").blocks is not None  # balanced by dropping the two schools
