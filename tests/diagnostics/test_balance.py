"""Balance diagnostics: SMD, variance ratio, eCDF max, WWC effect sizes and verdicts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from evaltool.diagnostics.balance import (
    balance_table,
    ecdf_max,
    overlap_summary,
    weighted_mean_var,
    wwc_effect_size,
    wwc_verdict,
)


@pytest.fixture
def sample():
    rng = np.random.default_rng(0)
    n = 400
    treat = rng.random(n) < 0.4
    x = rng.normal(size=n) + 0.5 * treat
    b = (rng.random(n) < np.where(treat, 0.6, 0.3)).astype(float)
    return treat, pd.DataFrame({"x": x, "b": b})


def test_unweighted_statistics_equal_textbook_formulas(sample):
    treat, X = sample
    table = balance_table(X, treat).set_index("covariate")
    x = X["x"].to_numpy()
    assert table.loc["x", "smd_before"] == pytest.approx((x[treat].mean() - x[~treat].mean()) / x[treat].std(ddof=1))
    assert table.loc["x", "var_ratio_before"] == pytest.approx(x[treat].var(ddof=1) / x[~treat].var(ddof=1))
    # eCDF max is the two-sample Kolmogorov–Smirnov statistic (scipy.stats.ks_2samp)
    assert table.loc["x", "ecdf_max_before"] == pytest.approx(stats.ks_2samp(x[treat], x[~treat]).statistic)
    b = X["b"].to_numpy()
    p1 = b[treat].mean()
    assert table.loc["b", "type"] == "binary"
    assert table.loc["b", "smd_before"] == pytest.approx((p1 - b[~treat].mean()) / np.sqrt(p1 * (1 - p1)))
    assert np.isnan(table.loc["b", "var_ratio_before"])


def test_integer_weights_equal_replicated_rows(sample):
    """Weighted statistics with integer weights equal the statistics of the data with rows repeated."""
    treat, X = sample
    w = np.random.default_rng(1).integers(0, 4, treat.size).astype(float)
    w[treat] = 1.0
    table = balance_table(X, treat, w).set_index("covariate")
    rep = np.repeat(np.arange(treat.size), w.astype(int))
    x_rep, t_rep = X["x"].to_numpy()[rep], treat[rep]
    assert table.loc["x", "mean_control_after"] == pytest.approx(x_rep[~t_rep].mean())
    assert table.loc["x", "ecdf_max_after"] == pytest.approx(stats.ks_2samp(x_rep[t_rep], x_rep[~t_rep]).statistic)
    # SMD after keeps the unmatched treated SD as denominator (MatchIt/cobalt convention for the ATT)
    x = X["x"].to_numpy()
    assert table.loc["x", "smd_after"] == pytest.approx((x_rep[t_rep].mean() - x_rep[~t_rep].mean()) / x[treat].std(ddof=1))


def test_weighted_variance_is_unbiased_form():
    x = np.array([1.0, 2.0, 4.0])
    mean, var = weighted_mean_var(x, np.ones(3))
    assert var == pytest.approx(np.var(x, ddof=1))
    assert mean == pytest.approx(x.mean())


def test_ecdf_max_handles_ties():
    x = np.array([1.0, 1.0, 2.0, 2.0])
    treat = np.array([True, False, True, False])
    assert ecdf_max(x, treat, np.ones(4)) == 0.0


def test_wwc_hedges_g_and_cox_index():
    # WWC Procedures Handbook v5.0: g = ω (m1 − m0)/s_pooled, ω = 1 − 3/(4N − 9); Cox = ω ln(OR)/1.65
    x = np.array([1.0, 2.0, 3.0, 4.0, 2.0, 3.0, 4.0, 5.0])
    treat = np.array([True] * 4 + [False] * 4)
    omega = 1 - 3 / (4 * 8 - 9)
    pooled = np.sqrt((3 * np.var(x[:4], ddof=1) + 3 * np.var(x[4:], ddof=1)) / 6)
    assert wwc_effect_size(x, treat, np.ones(8), binary=False) == pytest.approx(omega * (-1.0) / pooled)
    b = np.array([1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0])
    lor = np.log(0.75 / 0.25) - np.log(0.25 / 0.75)
    assert wwc_effect_size(b, treat, np.ones(8), binary=True) == pytest.approx(omega * lor / 1.65)


@pytest.mark.parametrize(
    ("size", "verdict"),
    [(0.0, "satisfies"), (0.05, "satisfies"), (-0.051, "satisfies with adjustment"), (0.25, "satisfies with adjustment"),
     (0.2501, "does not satisfy"), (float("nan"), "not computable")],
)
def test_wwc_verdict_thresholds(size, verdict):
    assert wwc_verdict(size) == verdict


def test_overlap_summary_counts_units_outside_the_other_range():
    score = np.array([0.1, 0.5, 0.9, 0.2, 0.6])
    treat = np.array([True, True, True, False, False])
    out = overlap_summary(score, treat)
    assert out["n_treated_outside_control_range"] == 2
    assert out["n_control_outside_treated_range"] == 0
