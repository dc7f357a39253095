"""Pre-trend Wald tests: the small-sample F reference and the size of the staggered pre-test.

The χ² pre-test of R ``did`` (reproduced by default, see tests/estimators/did/test_staggered_reference.py)
over-rejects when cohorts are small: each cohort's part of the covariance is estimated from its own schools.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats import multivariate as sm_multivariate

from evaltool.data.simulate import SimulationSettings, simulate
from evaltool.diagnostics.pretrends import staggered_pretrend_test, wald_test, wald_test_f
from evaltool.estimators.did.engine.att_gt import att_gt

YEARS = np.array([2012, 2013, 2014, 2015, 2016, 2017, 2018, 2019])


def test_one_component_is_hotellings_exact_test():
    # Reference: statsmodels 0.15.0 statsmodels.stats.multivariate.test_mvmean(data, 0) (one-sample Hotelling T²).
    rng = np.random.default_rng(1)
    data = rng.normal(0.2, 1.0, size=(25, 4)) @ rng.normal(size=(4, 4))
    n = len(data)
    mean, cov = data.mean(axis=0), np.cov(data, rowvar=False, ddof=1)
    ours = wald_test_f(mean, [cov / n], [n - 1])
    reference = sm_multivariate.test_mvmean(data, 0)
    assert ours["statistic"] == pytest.approx(reference.t2, rel=1e-10)
    assert ours["df_denominator"] == pytest.approx(n - 4)
    assert ours["p_value"] == pytest.approx(reference.pvalue, rel=1e-9)
    assert ours["p_value"] > ours["p_value_chi2"]


def test_many_degrees_of_freedom_give_the_chi2_test():
    theta = np.array([0.3, -0.1, 0.2])
    vcov = np.array([[0.04, 0.01, 0.0], [0.01, 0.05, 0.0], [0.0, 0.0, 0.03]])
    f = wald_test_f(theta, [vcov / 2, vcov / 2], [1e7, 1e7])
    chi2 = wald_test(theta, vcov)
    assert f["statistic"] == pytest.approx(chi2["statistic"])
    assert f["p_value"] == pytest.approx(chi2["p_value"], rel=1e-4)


def test_too_few_units_for_the_restrictions_gives_no_p_value():
    theta = np.array([0.3, -0.1, 0.2, 0.1])
    out = wald_test_f(theta, [np.eye(4) * 0.05], [2])
    assert out["p_value"] is None
    assert "too few schools" in out["note"]


def _frame(cohort: np.ndarray, y: np.ndarray, years: np.ndarray = YEARS) -> pd.DataFrame:
    n = len(cohort)
    return pd.DataFrame({"school": np.repeat(np.arange(n).astype(str), years.size), "year": np.tile(years, n),
                         "join_year": np.repeat(cohort, years.size), "y": y.ravel()})


def test_single_cohort_is_the_two_sample_behrens_fisher_test():
    """One cohort vs never joined: the F pre-test is the Nel–van der Merwe test on the year-to-year changes."""
    rng = np.random.default_rng(7)
    cohort = np.concatenate([np.full(30, 2017.0), np.full(80, np.nan)])
    y = rng.normal(0, 2, (110, 1)) + rng.normal(0, 1, (110, YEARS.size)) * np.where(np.isnan(cohort), 1.0, 1.5)[:, None]
    result = att_gt(_frame(cohort, y), "y")
    out = staggered_pretrend_test(result, reference="f")
    # Textbook formula on the raw changes (varying base period: consecutive years 2013-2016 before 2017).
    dy = np.diff(y, axis=1)[:, :4]
    joined = ~np.isnan(cohort)
    x1, x0 = dy[joined], dy[~joined]
    v1, v0 = np.cov(x1, rowvar=False) / len(x1), np.cov(x0, rowvar=False) / len(x0)
    v = v1 + v0
    diff = x1.mean(axis=0) - x0.mean(axis=0)
    t2 = diff @ np.linalg.solve(v, diff)
    k = 4
    spread = sum((np.trace(a @ a) + np.trace(a) ** 2) / (m - 1)
                 for a, m in ((v1 @ np.linalg.inv(v), len(x1)), (v0 @ np.linalg.inv(v), len(x0))))
    nu = (k + k * k) / spread
    assert out["statistic"] == pytest.approx(t2, rel=1e-9)
    assert out["df_denominator"] == pytest.approx(nu - k + 1, rel=1e-9)
    assert out["p_value"] == pytest.approx(stats.f.sf(t2 * (nu - k + 1) / (nu * k), k, nu - k + 1), rel=1e-9)
    assert out["p_value_chi2"] == pytest.approx(staggered_pretrend_test(result)["p_value"])


def test_reference_is_checked():
    rng = np.random.default_rng(0)
    cohort = np.concatenate([np.full(10, 2016.0), np.full(10, np.nan)])
    result = att_gt(_frame(cohort, rng.normal(size=(20, YEARS.size))), "y")
    with pytest.raises(ValueError, match="reference must be 'chi2' or 'f'"):
        staggered_pretrend_test(result, reference="F-test")


def _rejection_rates(p_values: np.ndarray, level: float = 0.05) -> np.ndarray:
    return (np.asarray(p_values, dtype=float) < level).mean(axis=0)


@pytest.mark.slow
def test_size_with_small_cohorts_gaussian_panel():
    """i.i.d. normal panel, cohorts of 25-75 schools, 21 pre-joining cells: χ² over-rejects, F holds its size."""
    rng = np.random.default_rng(2024)
    sizes = {2014: 25, 2015: 38, 2016: 25, 2017: 55, 2018: 76, 2019: 61}
    years = np.array([2012, 2013, 2014, 2015, 2016, 2017, 2018, 2019, 2022, 2023])
    cohort = np.concatenate([np.full(k, float(g)) for g, k in sizes.items()] + [np.full(300, np.nan)])
    p = []
    for _ in range(300):
        y = rng.normal(0, 2, (cohort.size, 1)) + rng.normal(0, 1.4, (cohort.size, years.size))
        test = staggered_pretrend_test(att_gt(_frame(cohort, y, years), "y"), reference="f")
        assert test["df"] == 21
        p.append([test["p_value_chi2"], test["p_value"]])
    chi2_rate, f_rate = _rejection_rates(p)
    mc_se = np.sqrt(0.05 * 0.95 / 300)  # 1.26 percentage points
    assert chi2_rate > 0.05 + 3 * mc_se, chi2_rate  # measured 13.5% (400 draws)
    assert abs(f_rate - 0.05) < 3 * mc_se, f_rate  # measured 5.5% (400 draws)


def _simulated(seed: int, pretrend_slope: float = 0.0) -> pd.DataFrame:
    data = simulate(SimulationSettings(seed=seed, n_schools=400, pupils_per_school=40, pupil_years=(),
                                       share_unbalanced=0.0, missing_outcome_rate=0.0, effect_scale=0.0,
                                       pretrend_slope=pretrend_slope))
    panel = data.panel[~data.panel["year"].isin([2020, 2021])]
    frame = pd.DataFrame({"school": panel["urn"].astype(str), "year": panel["year"].astype("int64"),
                          "join_year": panel["join_year"].astype(float), "y": panel["attainment8"]})
    return frame[~(frame["join_year"] < 2012)]


@pytest.mark.slow
def test_size_and_power_on_the_simulator():
    """Parallel trends hold by construction: the F pre-test rejects ~5%; with pretrend_slope=-0.8 it rejects."""
    # 400 schools, cohorts of ~17-50 (the smallest has a median of 17 schools), 21 pre-joining cells.
    # Measured over seeds 0-99: χ² 28% rejections, F 5%.
    p = []
    for seed in range(80):
        test = staggered_pretrend_test(att_gt(_simulated(seed), "y"), reference="f")
        p.append([test["p_value_chi2"], test["p_value"]])
    chi2_rate, f_rate = _rejection_rates(p)
    mc_se = np.sqrt(0.05 * 0.95 / 80)  # 2.4 percentage points
    assert abs(f_rate - 0.05) < 3 * mc_se, (f_rate, chi2_rate)
    assert chi2_rate > 0.05 + 3 * mc_se, chi2_rate
    for seed in range(5):
        broken = staggered_pretrend_test(att_gt(_simulated(seed, pretrend_slope=-0.8), "y"), reference="f")
        assert broken["p_value"] < 1e-3, broken


def test_unequal_clusters_have_fewer_degrees_of_freedom():
    """Trusts of unequal size: Kish's effective number of clusters per cohort, below the number of trusts."""
    rng = np.random.default_rng(3)
    cohort = np.concatenate([np.full(40, 2016.0), np.full(60, np.nan)])
    trust_size = np.array([2, 2, 3, 3, 4, 6, 8, 12])  # 40 joining schools in 8 trusts
    trust = np.concatenate([np.repeat(np.arange(8), trust_size), 100 + np.arange(60)]).astype(str)
    y = rng.normal(0, 1, (100, YEARS.size))
    frame = _frame(cohort, y).assign(trust=np.repeat(trust, YEARS.size))
    by_school = staggered_pretrend_test(att_gt(frame, "y"), reference="f")
    by_trust = staggered_pretrend_test(att_gt(frame, "y", cluster="trust"), reference="f")
    assert by_trust["df_denominator"] < by_school["df_denominator"]
    # Joining stratum: Kish's effective number of trusts (equal working variance per school), minus one.
    kish = trust_size.sum() ** 2 / (trust_size**2).sum() - 1
    assert kish < 7
    # The matched Wishart df cannot exceed the sum of the strata's df (joining trusts + 60 never-joined schools).
    assert by_trust["df_denominator"] + by_trust["df"] - 1 <= kish + 59 + 1e-9
    assert by_trust["p_value"] is not None and by_trust["p_value"] > by_trust["p_value_chi2"]


def test_mpdta_keeps_r_did_value_and_reports_the_f_reference():
    # R did README (devel 2.5.0), att_gt(..., est_method="reg") on mpdta: "P-value for pre-test ...: 0.16812".
    from pathlib import Path

    frame = pd.read_csv(Path(__file__).resolve().parents[1] / "reference" / "mpdta.csv")
    frame = frame.rename(columns={"countyreal": "school", "first.treat": "join_year"})
    frame["join_year"] = frame["join_year"].replace(0, np.nan)
    result = att_gt(frame, "lemp", est_method="reg")
    chi2 = staggered_pretrend_test(result)
    f = staggered_pretrend_test(result, reference="f")
    assert chi2["p_value"] == pytest.approx(0.16812, abs=5e-6)
    assert f["p_value_chi2"] == pytest.approx(0.16812, abs=5e-6)
    assert f["df"] == chi2["df"] == 5
    assert chi2["p_value"] < f["p_value"] < 0.25  # cohorts of 20, 40 and 131 counties: a modest correction


def test_rank_and_pseudo_inverse_share_one_threshold_and_a_rank_drop_leaves_a_note():
    """#19: the Wald test's rank and pseudo-inverse used different thresholds and a rank drop left no note."""
    import numpy as np

    from evaltool.diagnostics.pretrends import _rank_and_pinv, wald_test

    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(4, 4)))
    # An eigenvalue between numpy's rank tolerance (4·eps ≈ 8.9e-16 of the largest) and its pinv cutoff (1e-15):
    # before, the rank counted that direction while the pseudo-inverse dropped it.
    full = q @ np.diag([2.0, 1.0, 0.5, 2.0 * 9.5e-16]) @ q.T
    rank, inverse = _rank_and_pinv(full)
    values = np.abs(np.linalg.eigvalsh(inverse))
    assert rank == int((values > 1e-10).sum())  # the pseudo-inverse inverts the directions the rank counts
    singular = q @ np.diag([2.0, 1.0, 0.5, 0.0]) @ q.T
    result = wald_test(q @ np.array([0.1, 0.2, 0.3, 0.0]), singular)
    assert result["df"] == 3
    assert "rank 3" in result["note"] and "1 of them" in result["note"]
    assert wald_test(np.array([0.1, 0.2, 0.3, 0.1]), full[:4, :4] + np.eye(4))["note"] == ""
