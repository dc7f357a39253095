"""Reference tests on Goldstein's London exam data (mlmRev::Exam; provenance in tests/reference/exam.md)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from evaltool.estimators.multilevel.fastlmm import fit_fast_lmm

REFERENCE = Path(__file__).resolve().parents[2] / "reference"
HALF_DIGIT = 0.0005 + 1e-9


@pytest.fixture(scope="module")
def exam() -> pd.DataFrame:
    return pd.read_csv(REFERENCE / "exam.csv")


@pytest.fixture(scope="module")
def published() -> dict:
    return json.loads((REFERENCE / "exam_mlwin.json").read_text())


def _fit(exam: pd.DataFrame, slope: bool, reml: bool):
    X = np.column_stack([np.ones(len(exam)), exam["standLRT"]])
    Z = X if slope else X[:, :1]
    names = ["Intercept", "standLRT"]
    return fit_fast_lmm(exam["normexam"].to_numpy(), X, Z, exam["school"].to_numpy(), fixed_names=names,
                        random_names=names[: Z.shape[1]], reml=reml)


def test_random_intercept_ml_matches_mlwin(exam, published):
    # MLwiN User's Guide v2.26 ch. 3 (Rasbash et al. 2012): normexam ~ standlrt + (1|school), IGLS (ML)
    ref = published["random_intercept"]
    fit = _fit(exam, slope=False, reml=False)
    for name, value in ref["fixed"].items():
        assert fit.params[name] == pytest.approx(value, abs=HALF_DIGIT)
        assert fit.bse[name] == pytest.approx(ref["fixed_se"][name], abs=HALF_DIGIT)
    assert fit.re_cov.iloc[0, 0] == pytest.approx(ref["school_variance"], abs=HALF_DIGIT)
    assert fit.residual_variance == pytest.approx(ref["residual_variance"], abs=HALF_DIGIT)
    assert fit.deviance == pytest.approx(ref["minus_2_loglik"], abs=0.002)
    assert fit.aic == pytest.approx(fit.deviance + 2 * 4)
    assert not fit.boundary
    assert fit.icc == pytest.approx(0.092 / (0.092 + 0.566), abs=0.002)


def test_random_slope_ml_matches_mlwin(exam, published):
    # MLwiN User's Guide v2.26 ch. 4: normexam ~ standlrt + (1 + standlrt | school), IGLS (ML)
    ref = published["random_slope"]
    fit = _fit(exam, slope=True, reml=False)
    for name, value in ref["fixed"].items():
        assert fit.params[name] == pytest.approx(value, abs=HALF_DIGIT)
        assert fit.bse[name] == pytest.approx(ref["fixed_se"][name], abs=HALF_DIGIT)
    assert fit.re_cov.iloc[0, 0] == pytest.approx(ref["school_intercept_variance"], abs=HALF_DIGIT)
    assert fit.re_cov.iloc[1, 0] == pytest.approx(ref["school_covariance"], abs=HALF_DIGIT)
    assert fit.re_cov.iloc[1, 1] == pytest.approx(ref["school_slope_variance"], abs=HALF_DIGIT)
    assert fit.residual_variance == pytest.approx(ref["residual_variance"], abs=HALF_DIGIT)
    assert fit.deviance == pytest.approx(ref["minus_2_loglik"], abs=0.002)


@pytest.mark.parametrize("slope", [False, True])
@pytest.mark.parametrize("reml", [True, False])
def test_matches_statsmodels_mixedlm(exam, slope, reml):
    # statsmodels 0.15.0: smf.mixedlm("normexam ~ standLRT", Exam, groups=school[, re_formula="~standLRT"]).fit(reml=...)
    fit = _fit(exam, slope=slope, reml=reml)
    ref = smf.mixedlm("normexam ~ standLRT", exam, groups=exam["school"],
                      re_formula="~standLRT" if slope else None).fit(reml=reml)
    np.testing.assert_allclose(fit.params.to_numpy(), ref.fe_params.to_numpy(), atol=1e-4)
    np.testing.assert_allclose(fit.re_cov.to_numpy(), np.asarray(ref.cov_re), atol=1e-4)
    assert fit.residual_variance == pytest.approx(ref.scale, abs=1e-4)
    assert fit.llf == pytest.approx(ref.llf, abs=1e-4)
    # SEs: lme4's σ²(XᵀV⁻¹X)⁻¹ vs MixedLM's observed-information SEs differ slightly (< 1e-4 here)
    np.testing.assert_allclose(fit.bse.to_numpy(), ref.bse_fe.to_numpy(), atol=1e-4)


def test_rows_order_and_labels_do_not_matter(exam):
    base = _fit(exam, slope=True, reml=True)
    shuffled = exam.sample(frac=1.0, random_state=3).assign(school=lambda d: "s" + (100 - d["school"]).astype(str))
    other = _fit(shuffled, slope=True, reml=True)
    np.testing.assert_allclose(other.params.to_numpy(), base.params.to_numpy(), atol=1e-6)
    np.testing.assert_allclose(other.re_cov.to_numpy(), base.re_cov.to_numpy(), atol=1e-6)


@pytest.fixture(scope="module")
def lme4_printed() -> dict:
    return json.loads((REFERENCE / "exam_lme4.json").read_text())


def test_random_intercept_reml_matches_printed_lme4(exam, lme4_printed):
    # lme4: lmer(normexam ~ standLRT + (1 | school), data = Exam)  (REML; tests/reference/exam_lme4.json)
    ref = lme4_printed["random_intercept"]
    fit = _fit(exam, slope=False, reml=True)
    assert round(fit.deviance) == ref["reml_criterion"]
    assert np.sqrt(fit.re_cov.iloc[0, 0]) == pytest.approx(ref["school_sd"], abs=0.0005)
    assert np.sqrt(fit.residual_variance) == pytest.approx(ref["residual_sd"], abs=0.0005)
    assert fit.params["Intercept"] == pytest.approx(ref["fixed"]["Intercept"], abs=5e-6)
    assert fit.params["standLRT"] == pytest.approx(ref["fixed"]["standLRT"], abs=5e-6)
    assert round(-fit.deviance / 2) == ref["logLik_reml"]
    assert round(-_fit(exam, slope=False, reml=False).deviance / 2) == ref["logLik_ml"]


def test_random_slope_reml_matches_printed_lme4(exam, lme4_printed):
    # lme4: lmer(normexam ~ standLRT + (standLRT | school), data = Exam)  (REML)
    ref = lme4_printed["random_slope"]
    fit = _fit(exam, slope=True, reml=True)
    cov = fit.re_cov.to_numpy()
    sd = np.sqrt(np.diag(cov))
    assert round(fit.deviance) == ref["reml_criterion"]
    assert sd[0] == pytest.approx(ref["school_intercept_sd"], abs=0.0005)
    assert sd[1] == pytest.approx(ref["school_slope_sd"], abs=0.0005)
    assert cov[0, 1] / (sd[0] * sd[1]) == pytest.approx(ref["correlation"], abs=0.005)
    assert np.sqrt(fit.residual_variance) == pytest.approx(ref["residual_sd"], abs=0.0005)
    assert fit.params["Intercept"] == pytest.approx(ref["fixed"]["Intercept"], abs=5e-5)
    assert fit.params["standLRT"] == pytest.approx(ref["fixed"]["standLRT"], abs=5e-5)
