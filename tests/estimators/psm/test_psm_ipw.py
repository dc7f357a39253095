"""IPW for the ATT: point estimate, sandwich SE against numerical derivatives, recovery and coverage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy.special import expit

from evaltool.estimators.psm.ipw import fit_ipw, ipw_att


def dgp(seed, n=1500, effect=2.0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    treat = rng.random(n) < expit(-0.8 + 0.8 * x[:, 0] - 0.5 * x[:, 1])
    y = 1 + 1.5 * x[:, 0] + x[:, 1] + effect * treat + rng.normal(size=n)
    return x, treat, y


def stacked_psi(theta, X, t, y):
    k = X.shape[1]
    beta, mu1, mu0 = theta[:k], theta[k], theta[k + 1]
    p = expit(X @ beta)
    w0 = (1 - t) * np.exp(X @ beta)
    return np.column_stack([(t - p)[:, None] * X, t * (y - mu1), w0 * (y - mu0)])


def test_point_estimate_is_hajek_odds_weighting():
    x, treat, y = dgp(0)
    X = sm.add_constant(x)
    fit, weights, score = ipw_att(y, treat, X, np.arange(y.size))
    beta = sm.Logit(treat.astype(float), X).fit(disp=0).params
    odds = np.exp(X @ beta)
    expected = y[treat].mean() - np.sum(odds[~treat] * y[~treat]) / odds[~treat].sum()
    assert fit.estimate == pytest.approx(expected, rel=1e-10)
    assert weights[treat].tolist() == [1.0] * int(treat.sum())


def test_sandwich_equals_numerical_derivative_sandwich():
    """Second implementation: A from finite differences of the stacked estimating equations."""
    x, treat, y = dgp(1, n=800)
    X = sm.add_constant(x)
    t = treat.astype(float)
    fit, *_ = ipw_att(y, treat, X, np.arange(y.size))
    beta = sm.Logit(t, X).fit(disp=0).params
    odds = np.exp(X @ beta)
    theta = np.r_[beta, y[treat].mean(), np.sum(odds[~treat] * y[~treat]) / odds[~treat].sum()]
    n, k = len(y), theta.size
    A = np.zeros((k, k))
    h = 1e-6
    for j in range(k):  # finite differences over parameters (test oracle, not a loop over units)
        up, down = theta.copy(), theta.copy()
        up[j] += h
        down[j] -= h
        A[:, j] = -(stacked_psi(up, X, t, y).mean(axis=0) - stacked_psi(down, X, t, y).mean(axis=0)) / (2 * h)
    psi = stacked_psi(theta, X, t, y)
    B = psi.T @ psi / n * n / (n - 1)  # every unit its own cluster: G/(G−1) with G = n
    V = np.linalg.inv(A) @ B @ np.linalg.inv(A).T / n
    c = np.zeros(k)
    c[-2], c[-1] = 1, -1
    assert fit.std_error == pytest.approx(np.sqrt(c @ V @ c), rel=1e-5)


def test_fit_ipw_recovers_effect_and_balances():
    x, treat, y = dgp(2, n=3000)
    units = pd.DataFrame({"school": [f"s{i}" for i in range(y.size)], "cohort": 2016, "treated": treat,
                          "x1": x[:, 0], "x2": x[:, 1], "y": y})
    estimate, diagnostics, sample, _ = fit_ipw(units, "y", ["x1", "x2"])
    assert abs(estimate.estimate - 2.0) < 4 * estimate.std_error
    naive = y[treat].mean() - y[~treat].mean()
    assert naive > 2.0 + 5 * estimate.std_error  # confounding is visible without weighting
    balance = diagnostics["balance"].set_index("covariate")
    assert balance.loc[["x1", "x2"], "smd_after"].abs().max() < 0.1


@pytest.mark.slow
def test_ipw_interval_coverage():
    covered = 0
    reps = 150
    for seed in range(reps):
        x, treat, y = dgp(500 + seed, n=600)
        fit, *_ = ipw_att(y, treat, sm.add_constant(x), np.arange(y.size))
        covered += abs(fit.estimate - 2.0) <= 1.96 * fit.std_error
    assert 0.88 * reps <= covered <= 0.99 * reps
