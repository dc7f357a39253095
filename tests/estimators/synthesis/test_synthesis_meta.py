"""Random-effects meta-analysis against metafor (published), pymare and statsmodels on dat.bcg."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from evaltool.errors import EstimationError
from evaltool.estimators.synthesis.meta import fit_meta
from evaltool.estimators.synthesis.metareg import build_design, fit_metareg

REFERENCE = Path(__file__).resolve().parents[2] / "reference"
REF = json.loads((REFERENCE / "dat_bcg_meta.json").read_text())
PUBLISHED = REF["metafor_printed"]
PYMARE = REF["pymare_0_0_13"]
#: Printed values have 4 decimals: agree to half a unit in the last place (plus REML stopping slack).
PRINTED = 6e-5


@pytest.fixture(scope="module")
def bcg() -> pd.DataFrame:
    d = pd.read_csv(REFERENCE / "dat_bcg.csv")
    # escalc(measure="RR"): log risk ratio and its large-sample variance
    d["yi"] = np.log(d.tpos / (d.tpos + d.tneg)) - np.log(d.cpos / (d.cpos + d.cneg))
    d["vi"] = 1 / d.tpos - 1 / (d.tpos + d.tneg) + 1 / d.cpos - 1 / (d.cpos + d.cneg)
    return d


def test_effect_sizes_match_metafor_escalc(bcg):
    # metafor documentation, escalc(measure="RR", ..., data=dat.bcg) printed yi
    printed = [-0.8893, -1.5854, -1.3481, -1.4416, -0.2175, -0.7861, -1.6209, 0.0120, -0.4694, -1.3713, -0.3394,
               0.4459, -0.0173]
    np.testing.assert_allclose(bcg["yi"], printed, atol=PRINTED)


def test_reml_matches_published_metafor(bcg):
    # metafor README / Viechtbauer (2010) JSS 36(3): rma(yi, vi, data=dat)
    ref = PUBLISHED["reml"]
    fit = fit_meta(bcg.yi, np.sqrt(bcg.vi), tau2_method="REML")
    assert fit.tau2 == pytest.approx(ref["tau2"], abs=PRINTED)
    assert fit.tau2_se == pytest.approx(ref["tau2_se"], abs=PRINTED)
    assert fit.I2 == pytest.approx(ref["I2"], abs=0.006)
    assert fit.H2 == pytest.approx(ref["H2"], abs=0.006)
    assert fit.QE == pytest.approx(ref["QE"], abs=PRINTED)
    assert fit.QE_df == 12
    assert fit.coef[0] == pytest.approx(ref["estimate"], abs=PRINTED)
    assert fit.se[0] == pytest.approx(ref["se"], abs=PRINTED)
    np.testing.assert_allclose(fit.conf_int()[0], [ref["ci_lower"], ref["ci_upper"]], atol=PRINTED)


def test_dl_matches_metafor_and_stata_metan(bcg):
    # metafor tests/testthat/test_misc_metan_vs_rma.uni_with_dat.bcg.r: rma(yi, vi, data=dat, method="DL")
    ref = PUBLISHED["dl"]
    fit = fit_meta(bcg.yi, np.sqrt(bcg.vi), tau2_method="DL")
    assert fit.tau2 == pytest.approx(ref["tau2"], abs=PRINTED)
    assert fit.I2 == pytest.approx(ref["I2"], abs=PRINTED)
    assert fit.coef[0] == pytest.approx(ref["estimate"], abs=PRINTED)
    assert fit.statistic[0] == pytest.approx(ref["z"], abs=PRINTED)
    np.testing.assert_allclose(fit.conf_int()[0], [ref["ci_lower"], ref["ci_upper"]], atol=PRINTED)


def test_knapp_hartung_matches_published_metafor(bcg):
    # metafor README: rma(yi, vi, data=dat, test="knha") and rma(yi, vi, mods = ~ ablat, data=dat, test="knha")
    ref = PUBLISHED["reml_knha"]
    fit = fit_meta(bcg.yi, np.sqrt(bcg.vi), tau2_method="REML", knapp_hartung=True)
    assert fit.se[0] == pytest.approx(ref["se"], abs=PRINTED)
    assert fit.statistic[0] == pytest.approx(ref["t"], abs=PRINTED)
    assert fit.df == ref["df"]
    np.testing.assert_allclose(fit.conf_int()[0], [ref["ci_lower"], ref["ci_upper"]], atol=PRINTED)
    ref = PUBLISHED["reml_ablat_knha"]
    fit, summary = fit_metareg(bcg.yi, np.sqrt(bcg.vi), build_design(bcg, ["ablat"]), knapp_hartung=True)
    np.testing.assert_allclose(fit.se, [ref["intercept_se"], ref["ablat_se"]], atol=PRINTED)
    # F is a squared ratio, so metafor's REML stopping threshold (1e-5) shows in its 4th decimal: relative 1e-4.
    assert summary["omnibus"]["statistic"] == pytest.approx(ref["F"], rel=1e-4)
    assert summary["R2_percent"] == pytest.approx(ref["R2"], abs=0.01)  # ratio of two REML τ²: same slack


@pytest.mark.parametrize("method,key", [("REML", "reml_knha"), ("DL", "dl_knha")])
def test_knapp_hartung_matches_pymare(bcg, method, key):
    # pymare 0.0.13: VarianceBasedLikelihoodEstimator(method="REML") / DerSimonianLaird(); KH-scaled SEs
    ref = PYMARE[key]
    fit = fit_meta(bcg.yi, np.sqrt(bcg.vi), tau2_method=method, knapp_hartung=True)
    assert fit.tau2 == pytest.approx(ref["tau2"], rel=1e-6)
    assert fit.coef[0] == pytest.approx(ref["estimate"], rel=1e-6)
    assert fit.se[0] == pytest.approx(ref["se"], rel=1e-6)
    assert fit.df == 12


def test_dl_knapp_hartung_matches_statsmodels(bcg):
    # statsmodels.stats.meta_analysis.combine_effects(method_re="dl"): conf_int(use_t=True)[3] is the HKSJ interval
    from statsmodels.stats.meta_analysis import combine_effects

    sm = combine_effects(bcg.yi.to_numpy(), bcg.vi.to_numpy(), method_re="dl")
    fit = fit_meta(bcg.yi, np.sqrt(bcg.vi), tau2_method="DL", knapp_hartung=True)
    np.testing.assert_allclose(fit.conf_int()[0], np.asarray(sm.conf_int(use_t=True)[3]), rtol=1e-10)
    assert fit.tau2 == pytest.approx(sm.tau2, rel=1e-10)
    assert fit.QE == pytest.approx(sm.q, rel=1e-10)


def test_prediction_interval_definition(bcg):
    # metafor predict.rma: pred ± z·sqrt(se² + τ²) (z test); t(k-1) quantile under Knapp–Hartung
    for kh in (False, True):
        fit = fit_meta(bcg.yi, np.sqrt(bcg.vi), knapp_hartung=kh)
        pred, low, high = fit.prediction_interval()
        crit = stats.t(12).ppf(0.975) if kh else stats.norm.ppf(0.975)
        half = crit * np.sqrt(fit.se[0] ** 2 + fit.tau2)
        assert pred == pytest.approx(fit.coef[0])
        assert (low, high) == pytest.approx((pred - half, pred + half), rel=1e-12)
    # exp of the z-based interval as printed by predict(res, transf=exp, digits=2): [0.15, 1.55]
    fit = fit_meta(bcg.yi, np.sqrt(bcg.vi))
    _, low, high = fit.prediction_interval()
    assert np.round(np.exp([low, high]), 2).tolist() == [0.15, 1.55]


def test_metaregression_on_ablat_matches_published_metafor(bcg):
    # metafor documentation: rma(yi, vi, mods = ~ ablat, data=dat)
    ref = PUBLISHED["reml_ablat"]
    design = build_design(bcg, ["ablat"])
    fit, summary = fit_metareg(bcg.yi, np.sqrt(bcg.vi), design, knapp_hartung=False)
    assert fit.tau2 == pytest.approx(ref["tau2"], abs=PRINTED)
    assert fit.tau2_se == pytest.approx(ref["tau2_se"], abs=PRINTED)
    assert fit.I2 == pytest.approx(ref["I2"], abs=0.006)
    assert fit.QE == pytest.approx(ref["QE"], abs=PRINTED)
    np.testing.assert_allclose(fit.coef, [ref["intercept"], ref["ablat"]], atol=PRINTED)
    np.testing.assert_allclose(fit.se, [ref["intercept_se"], ref["ablat_se"]], atol=PRINTED)
    assert summary["omnibus"]["test"] == "chi2"
    assert summary["omnibus"]["statistic"] == pytest.approx((fit.coef[1] / fit.se[1]) ** 2)
    assert 0 < summary["R2_percent"] <= 100


@pytest.mark.parametrize("method,key", [("REML", "reml_ablat_knha"), ("DL", "dl_ablat_knha")])
def test_metaregression_knapp_hartung_matches_pymare(bcg, method, key):
    ref = PYMARE[key]
    design = build_design(bcg, ["ablat"])
    fit, summary = fit_metareg(bcg.yi, np.sqrt(bcg.vi), design, tau2_method=method, knapp_hartung=True)
    assert fit.tau2 == pytest.approx(ref["tau2"], rel=1e-5)
    np.testing.assert_allclose(fit.coef, [ref["intercept"], ref["ablat"]], rtol=1e-6)
    np.testing.assert_allclose(fit.se, [ref["intercept_se"], ref["ablat_se"]], rtol=1e-5)
    assert fit.QE == pytest.approx(PYMARE["QE_ablat"], rel=1e-8)
    # one numeric moderator: F(1, k-2) equals t²
    test = summary["moderator_tests"].iloc[0]
    assert test["test"] == "F" and test["df2"] == 11
    assert test["statistic"] == pytest.approx(fit.statistic[1] ** 2)


def test_categorical_moderator_dummies(bcg):
    design = build_design(bcg, ["alloc", "ablat"])
    # most common level is the reference ('random', 7 trials)
    assert design.references == {"alloc": "random"}
    assert design.names == ("intercept", "alloc=alternate", "alloc=systematic", "ablat")
    fit, summary = fit_metareg(bcg.yi, np.sqrt(bcg.vi), design)
    tests = summary["moderator_tests"].set_index("moderator")
    assert tests.loc["alloc", "df1"] == 2
    # a design with explicit dummies gives the same fit
    X = np.column_stack([np.ones(13), bcg.alloc == "alternate", bcg.alloc == "systematic", bcg.ablat]).astype(float)
    direct = fit_meta(bcg.yi, np.sqrt(bcg.vi), X, knapp_hartung=True)
    np.testing.assert_allclose(fit.coef, direct.coef)
    # pymare 0.0.13 VarianceBasedLikelihoodEstimator(method="REML") on the same design (KH-scaled SEs)
    ref = PYMARE["reml_alloc_ablat_knha"]
    assert fit.tau2 == pytest.approx(ref["tau2"], rel=1e-5)
    np.testing.assert_allclose(fit.coef, ref["coef"], rtol=1e-5)
    np.testing.assert_allclose(fit.se, ref["se"], rtol=1e-5)


def test_invariant_to_study_order(bcg):
    shuffled = bcg.sample(frac=1.0, random_state=3)
    a = fit_meta(bcg.yi, np.sqrt(bcg.vi))
    b = fit_meta(shuffled.yi, np.sqrt(shuffled.vi))
    assert a.tau2 == pytest.approx(b.tau2, rel=1e-9) and a.coef[0] == pytest.approx(b.coef[0], rel=1e-9)


def test_homogeneous_studies_give_zero_tau2():
    y = np.array([0.10, 0.11, 0.09, 0.10, 0.105])
    fit = fit_meta(y, np.full(5, 0.2))
    assert fit.tau2 == 0.0
    assert fit.I2 == 0.0


# ------------------------------------------------------------------ bad input
def test_fewer_than_three_studies_is_an_error():
    with pytest.raises(EstimationError, match="at least 3 studies; got 2"):
        fit_meta(np.array([0.1, 0.2]), np.array([0.1, 0.1]))


def test_non_positive_standard_error_is_an_error():
    with pytest.raises(EstimationError, match="positive standard error; 1 have zero"):
        fit_meta(np.array([0.1, 0.2, 0.3]), np.array([0.1, 0.0, 0.1]))


def test_nan_effect_is_an_error():
    with pytest.raises(EstimationError, match="finite numbers"):
        fit_meta(np.array([0.1, np.nan, 0.3]), np.array([0.1, 0.1, 0.1]))


def test_single_level_moderator_fails_or_is_skipped(bcg):
    frame = bcg.assign(kind="federation")
    with pytest.raises(EstimationError, match="moderator 'kind' has a single level \\('federation'\\)"):
        build_design(frame, ["kind", "ablat"])
    design = build_design(frame, ["kind", "ablat"], on_problem="skip")
    assert design.moderators == ("ablat",)
    assert "single level" in design.dropped["kind"]


def test_constant_numeric_moderator_is_named(bcg):
    with pytest.raises(EstimationError, match="moderator 'n' takes one value \\(2\\)"):
        build_design(bcg.assign(n=2), ["n"])


def test_too_many_moderators_for_studies(bcg):
    small = bcg.iloc[[0, 4, 9, 10]]
    design = build_design(small, ["alloc", "ablat"])
    with pytest.raises(EstimationError, match="coefficients but only 4 studies"):
        fit_metareg(small.yi, np.sqrt(small.vi), design)


def test_collinear_moderators(bcg):
    design = build_design(bcg.assign(lat2=2 * bcg.ablat), ["ablat", "lat2"])
    with pytest.raises(EstimationError, match="collinear"):
        fit_metareg(bcg.yi, np.sqrt(bcg.vi), design)


def test_unknown_reference_level(bcg):
    with pytest.raises(EstimationError, match="Reference level 'cluster' of moderator 'alloc'"):
        build_design(bcg, ["alloc"], references={"alloc": "cluster"})


@settings(max_examples=40, deadline=None)
@given(
    y=st.lists(st.floats(-5, 5), min_size=3, max_size=12),
    seed=st.integers(0, 10_000),
    scale=st.floats(0.1, 10),
    shift=st.floats(-10, 10),
)
def test_equivariance(y, seed, scale, shift):
    # rescaling effects and SEs by c scales the mean by c and tau² by c²; shifting effects shifts the mean
    y = np.asarray(y)
    se = np.random.default_rng(seed).uniform(0.1, 1.0, size=len(y))
    for method in ("REML", "DL"):
        base = fit_meta(y, se, tau2_method=method)
        scaled = fit_meta(scale * y, scale * se, tau2_method=method)
        shifted = fit_meta(y + shift, se, tau2_method=method)
        assert scaled.coef[0] == pytest.approx(scale * base.coef[0], rel=1e-6, abs=1e-6)
        assert scaled.tau2 == pytest.approx(scale**2 * base.tau2, rel=1e-5, abs=1e-7)
        assert shifted.coef[0] == pytest.approx(base.coef[0] + shift, rel=1e-6, abs=1e-6)
        assert shifted.tau2 == pytest.approx(base.tau2, rel=1e-5, abs=1e-7)
        assert 0 <= base.I2 < 100 and base.tau2 >= 0
