"""ATT estimators: Abadie–Imbens variance against a direct formula, coverage, regression adjustment."""

from __future__ import annotations

import numpy as np
import pytest

from evaltool.estimators.psm.estimate import abadie_imbens, weighted_att
from evaltool.estimators.psm.matching import match


def dgp(seed, n=600, effect=2.0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    treat = rng.random(n) < 1 / (1 + np.exp(-(x - 0.8)))
    y = 1.0 + 1.5 * x + effect * treat + rng.normal(size=n)
    return x, treat, y


def direct_ai_variance(y, treat, score, pairs_t, pairs_c, J=2):
    """Abadie & Imbens (2006) PATT variance written term by term with loops (test oracle, M = 1)."""
    n1 = len(pairs_t)
    tau = np.mean([y[t] - y[c] for t, c in zip(pairs_t, pairs_c, strict=True)])
    first = sum((y[t] - y[c] - tau) ** 2 for t, c in zip(pairs_t, pairs_c, strict=True))
    K = {}
    for c in pairs_c:
        K[c] = K.get(c, 0) + 1
    controls = np.flatnonzero(~treat)
    second = 0.0
    for c, k in K.items():
        others = controls[controls != c]
        nearest = others[np.argsort(np.abs(score[others] - score[c]), kind="stable")[:J]]
        sigma2 = J / (J + 1) * (y[c] - y[nearest].mean()) ** 2
        second += k * (k - 1) * sigma2
    return tau, (first + second) / n1**2


def test_abadie_imbens_equals_direct_formula():
    x, treat, y = dgp(0, n=300)
    result = match(treat, score=x, replace=True, rng=np.random.default_rng(0))
    fit = abadie_imbens(y, treat, x, result.pair_treated, result.pair_control)
    tau, var = direct_ai_variance(y, treat, x, result.pair_treated, result.pair_control)
    assert fit.estimate == pytest.approx(tau)
    assert fit.std_error == pytest.approx(np.sqrt(var))


def test_abadie_imbens_point_estimate_equals_weighted_difference():
    x, treat, y = dgp(1)
    result = match(treat, score=x, replace=True, ratio=3, rng=np.random.default_rng(0))
    ai = abadie_imbens(y, treat, x, result.pair_treated, result.pair_control)
    wls = weighted_att(y, treat, result.weights)
    assert ai.estimate == pytest.approx(wls.estimate)


def test_regression_adjustment_is_centred_interaction_model():
    """Coefficient on treat with covariates centred at the treated mean and treat × covariate terms (numpy lstsq)."""
    x, treat, y = dgp(2, n=2000)
    result = match(treat, score=x, ratio=2, replace=True, rng=np.random.default_rng(0))
    adjusted = weighted_att(y, treat, result.weights, covariates=x[:, None])
    m = result.weights > 0
    w, t = result.weights[m], treat[m].astype(float)
    xc = x[m] - np.average(x[m & treat], weights=result.weights[m & treat])
    X = np.column_stack([np.ones(m.sum()), t, xc, xc * t])
    beta = np.linalg.lstsq(X * np.sqrt(w)[:, None], y[m] * np.sqrt(w), rcond=None)[0]
    assert adjusted.estimate == pytest.approx(beta[1], rel=1e-10)
    assert abs(adjusted.estimate - 2.0) < 4 * adjusted.std_error


@pytest.mark.slow
@pytest.mark.parametrize("replace", [True, False])
def test_confidence_interval_coverage(replace):
    """Monte Carlo: 95% intervals cover the true ATT (= 2, constant effect) in 88–99% of 200 samples."""
    covered = 0
    reps = 200
    for seed in range(reps):
        x, treat, y = dgp(100 + seed, n=500)
        result = match(treat, score=x, replace=replace, caliper=None if replace else 0.1, rng=np.random.default_rng(seed))
        if replace:
            fit = abadie_imbens(y, treat, x, result.pair_treated, result.pair_control)
            crit = 1.96
        else:
            fit = weighted_att(y, treat, result.weights, clusters=result.unit_subclass)
            from scipy import stats

            crit = stats.t(fit.df).ppf(0.975)
        covered += abs(fit.estimate - 2.0) <= crit * fit.std_error
    assert 0.88 * reps <= covered <= 0.99 * reps


def test_gradient_boosting_propensity_is_seeded_and_in_unit_interval():
    import pandas as pd

    from evaltool.estimators.psm.propensity import fit_propensity

    x, treat, _ = dgp(5, n=400)
    X = pd.DataFrame({"x": x})
    first = fit_propensity(X, treat, kind="gradient_boosting", rng=np.random.default_rng(1))
    again = fit_propensity(X, treat, kind="gradient_boosting", rng=np.random.default_rng(1))
    assert np.array_equal(first.score, again.score)
    assert np.all((first.score > 0) & (first.score < 1))
    assert first.coefficients is None
    # it ranks units like the true propensity (monotone in x)
    assert np.corrcoef(first.logit, x)[0, 1] > 0.7
