"""Callaway–Sant'Anna engine against published R ``did`` output and moderndid on ``mpdta``.

Sources (see tests/reference/mpdta_did.md):
* R did README (devel 2.5.0): att_gt(yname="lemp", gname="first.treat", idname="countyreal",
  tname="year", xformla=~1, data=mpdta, est_method="reg"), aggte(type="dynamic"/"group"); 4 decimals.
* moderndid 0.2.0 (Python port of R did/DRDID), att_gt/aggte with boot=False; full precision.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaltool.diagnostics.pretrends import staggered_pretrend_test
from evaltool.estimators.did.engine.aggregate import aggregate
from evaltool.estimators.did.engine.att_gt import att_gt
from evaltool.estimators.did.engine.bootstrap import multiplier_bootstrap

REFERENCE = Path(__file__).resolve().parents[2] / "reference"
README = json.loads((REFERENCE / "did_readme_mpdta.json").read_text())
MODERNDID = json.loads((REFERENCE / "mpdta_moderndid.json").read_text())
CONTROL = {"nevertreated": "never_joined", "notyettreated": "not_yet_joined"}


@pytest.fixture(scope="module")
def mpdta() -> pd.DataFrame:
    frame = pd.read_csv(REFERENCE / "mpdta.csv").rename(columns={"countyreal": "school", "first.treat": "join_year"})
    frame["join_year"] = frame["join_year"].replace(0, np.nan)
    return frame


def _readme(block: str) -> pd.DataFrame:
    return pd.DataFrame(README[block]["data"], columns=README[block]["columns"])


def test_att_gt_matches_r_did_readme(mpdta):
    # R did README: att_gt(..., xformla=~1, est_method="reg"); printed to 4 decimals -> tolerance half a unit.
    result = att_gt(mpdta, "lemp", est_method="reg")
    published = _readme("att_gt")
    np.testing.assert_allclose(result.cells["cohort"], published["group"])
    np.testing.assert_allclose(result.cells["year"], published["time"])
    np.testing.assert_allclose(result.cells["att"], published["att"], atol=5e-5)
    # "P-value for pre-test of parallel trends assumption: 0.16812"
    assert staggered_pretrend_test(result)["p_value"] == pytest.approx(README["pretest_p_value"], abs=5e-6)


def test_aggregations_match_r_did_readme(mpdta):
    result = att_gt(mpdta, "lemp", est_method="reg")
    dynamic = aggregate(result, "dynamic")
    published = _readme("dynamic")
    np.testing.assert_array_equal(dynamic.table["event_time"], published["event_time"])
    np.testing.assert_allclose(dynamic.table["att"], published["att"], atol=5e-5)
    assert dynamic.overall_att == pytest.approx(README["dynamic"]["overall_att"], abs=5e-5)
    group = aggregate(result, "group")
    np.testing.assert_allclose(group.table["att"], _readme("group")["att"], atol=5e-5)
    assert group.overall_att == pytest.approx(README["group"]["overall_att"], abs=5e-4)  # printed as -0.031


def test_bootstrap_se_close_to_r_did_readme(mpdta):
    # README SEs are unseeded 1000-draw multiplier-bootstrap SEs: agreement within 20% (Monte Carlo noise).
    result = att_gt(mpdta, "lemp", est_method="reg")
    boot = multiplier_bootstrap(
        result.influence, result.arrays.clusters, result.arrays.n_clusters, n_draws=999, rng=np.random.default_rng(7)
    )
    np.testing.assert_allclose(boot.std_error, _readme("att_gt")["se_boot"], rtol=0.2)
    dynamic = aggregate(result, "dynamic")
    boot = multiplier_bootstrap(
        np.column_stack([dynamic.influence, dynamic.overall_influence]),
        result.arrays.clusters,
        result.arrays.n_clusters,
        n_draws=999,
        rng=np.random.default_rng(7),
    )
    np.testing.assert_allclose(boot.std_error[:-1], _readme("dynamic")["se_boot"], rtol=0.2)
    assert boot.std_error[-1] == pytest.approx(README["dynamic"]["overall_se_boot"], rel=0.2)


def test_bootstrap_converges_to_analytic_se(mpdta):
    result = att_gt(mpdta, "lemp")
    boot = multiplier_bootstrap(
        result.influence, result.arrays.clusters, result.arrays.n_clusters, n_draws=20_000, rng=np.random.default_rng(3)
    )
    np.testing.assert_allclose(boot.std_error, result.cells["std_error"], rtol=0.05)
    assert 2.0 < boot.crit < 3.5  # sup-t over 12 cells exceeds the pointwise 1.96


def test_bootstrap_is_seeded(mpdta):
    result = att_gt(mpdta, "lemp")
    args = (result.influence, result.arrays.clusters, result.arrays.n_clusters)
    first = multiplier_bootstrap(*args, n_draws=99, rng=np.random.default_rng(11))
    again = multiplier_bootstrap(*args, n_draws=99, rng=np.random.default_rng(11))
    other = multiplier_bootstrap(*args, n_draws=99, rng=np.random.default_rng(12))
    np.testing.assert_array_equal(first.draws, again.draws)
    assert not np.array_equal(first.draws, other.draws)


@pytest.mark.parametrize("key", sorted(MODERNDID))
def test_matches_moderndid_full_precision(mpdta, key):
    # moderndid 0.2.0: att_gt(mpdta, yname="lemp", tname="year", idname="countyreal", gname="first.treat",
    #   xformla=<none|"~lpop">, est_method=<dr|ipw|reg>, control_group=<...>, anticipation=<0|1>, boot=False)
    control, formula, est_method, anticipation = key.split("|")
    ref = MODERNDID[key]
    result = att_gt(
        mpdta,
        "lemp",
        control_group=CONTROL[control],
        anticipation=int(anticipation),
        covariates=() if formula == "none" else ("lpop",),
        est_method=est_method,
    )
    np.testing.assert_allclose(result.cells["cohort"], ref["cohort"])
    np.testing.assert_allclose(result.cells["year"], ref["t"])
    np.testing.assert_allclose(result.cells["att"], ref["att"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(result.cells["std_error"], ref["se"], rtol=1e-8, atol=1e-12)  # analytic SEs
    for kind in ("simple", "group", "dynamic", "calendar"):
        agg = aggregate(result, kind)
        assert agg.overall_att == pytest.approx(ref[kind]["overall_att"], abs=1e-10)
        assert agg.overall_se == pytest.approx(ref[kind]["overall_se"], rel=1e-8)
        if ref[kind]["att"] is not None:
            np.testing.assert_allclose(agg.table.iloc[:, 0], ref[kind]["egt"])
            np.testing.assert_allclose(agg.table["att"], ref[kind]["att"], atol=1e-10)
            np.testing.assert_allclose(agg.table["std_error"], ref[kind]["se"], rtol=1e-8)


def test_caller_frame_unchanged_and_row_order_irrelevant(mpdta):
    before = mpdta.copy()
    first = att_gt(mpdta, "lemp", covariates=("lpop",))
    pd.testing.assert_frame_equal(mpdta, before)
    shuffled = mpdta.sample(frac=1.0, random_state=1).reset_index(drop=True)
    second = att_gt(shuffled, "lemp", covariates=("lpop",))
    np.testing.assert_allclose(first.cells["att"], second.cells["att"], atol=1e-12)
