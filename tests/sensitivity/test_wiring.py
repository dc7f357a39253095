"""The sensitivity block wired into the analyses, results and report (#15).

The computations are tested against their references in the other files of this folder; here: the
analyses give them the right inputs (the matched pairs the reported ATT uses, the reported effect size
and its SE), the config block is validated with its key and line, and the report and rating read them.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

import evaltool
from evaltool.config.loader import parse_config
from evaltool.config.sensitivity import SensitivityOptions
from evaltool.estimators.psm.method import rosenbaum_diagnostics
from evaltool.report.security import rate
from evaltool.report.sensitivity import FRAGILE_GAMMA, sensitivity_lines
from evaltool.sensitivity.robustness import robustness
from evaltool.sensitivity.rosenbaum import rosenbaum_bounds

COVARIATES = ["ks2_prior", "fsm_pct"]


@pytest.fixture(scope="module")
def sim():
    return evaltool.simulate(n_schools=200, seed=21)


@pytest.fixture(scope="module")
def matched(sim):
    return evaltool.psm(sim.panel, outcome="attainment8", covariates=COVARIATES, trust="trust_id", did=True,
                        event_times=[0, 1], pupils=sim.pupils)


def test_rosenbaum_bounds_use_the_reported_matched_differences(matched):
    """The bounds are computed on the differences whose mean is the reported matched ATT (1:1, no reuse)."""
    bounds = matched.diagnostics["sensitivity"]["rosenbaum"]
    assert bounds["available"] and bounds["method"] == "paired"
    assert bounds["n_pairs"] == matched.estimates[0].n_treated
    # Hodges-Lehmann at Γ = 1 is a location estimate of the same differences: near the mean difference (ATT).
    assert abs(bounds["hodges_lehmann"] - matched.estimates[0].estimate) < 3 * matched.estimates[0].std_error
    assert bounds["p_upper"] == sorted(bounds["p_upper"])  # worse with more hidden bias
    assert bounds["breakdown_gamma"] > 1.0


def test_rosenbaum_diagnostics_are_the_bounds_of_the_pair_differences():
    """The psm wiring passes y[treated] - y[control] of each pair, oriented by the estimate's sign."""
    rng = np.random.default_rng(3)
    y = rng.normal(0, 1, 60)
    y[:30] -= 0.8  # the treated (0-29) do worse: a negative estimate
    pairs = SimpleNamespace(pair_treated=np.arange(30), pair_control=np.arange(30, 60))
    options = SensitivityOptions(gamma=[1, 1.5, 2])
    wired = rosenbaum_diagnostics(y, pairs, estimate=-0.8, options=options, regression_adjustment=True)
    direct = rosenbaum_bounds(y[:30] - y[30:], [1, 1.5, 2], alternative="less").to_dict()
    assert wired["p_upper"] == pytest.approx(direct["p_upper"], rel=1e-12)
    assert wired["hl_lower"] == pytest.approx(direct["hl_lower"], rel=1e-12)
    assert wired["alternative"] == "less"
    assert "without the regression adjustment" in wired["note"]


def test_sensitivity_can_be_switched_off_and_the_grid_is_used(sim):
    off = evaltool.psm(sim.panel, outcome="attainment8", covariates=COVARIATES, trust="trust_id",
                       sensitivity={"enabled": False})
    assert "sensitivity" not in off.diagnostics
    grid = evaltool.psm(sim.panel, outcome="attainment8", covariates=COVARIATES, trust="trust_id",
                        sensitivity={"gamma": [3, 1, 2, 2]})
    assert grid.diagnostics["sensitivity"]["rosenbaum"]["gamma"] == [1.0, 2.0, 3.0]


def test_a_gamma_below_one_names_the_key_and_line(tmp_path):
    text = (
        "data: {panel: p.csv}\ncolumns: {outcomes: [y]}\nanalyses:\n  - name: m\n    method: psm\n"
        "    sensitivity:\n      gamma: [0.5, 2]\n"
    )
    with pytest.raises(evaltool.ConfigError, match=r"analyses\[0\]\.sensitivity\.gamma\[0\] \(config.yaml:7:\d+\): Input should be greater than or equal to 1"):
        parse_config(text, source=tmp_path / "config.yaml")


def test_e_values_of_every_effect_size(matched, sim):
    """E-value columns (VanderWeele & Ding 2017, with EValue's evalues.MD conversion) on every standardised row."""
    est = matched.estimates[0]
    factor = est.effect_size / est.estimate
    rr = math.exp(0.91 * est.effect_size)  # evalues.MD: RR = exp(0.91 d)
    assert est.e_value == pytest.approx(rr + math.sqrt(rr * (rr - 1)), rel=1e-12)
    lower = math.exp(0.91 * est.effect_size - 1.78 * est.std_error * factor)
    expected_ci = 1.0 if lower <= 1 else lower + math.sqrt(lower * (lower - 1))
    assert est.e_value_ci == pytest.approx(expected_ci, rel=1e-12)
    staggered = evaltool.did_staggered(sim.panel, outcome="attainment8", trust="trust_id", bootstrap_draws=0,
                                       pupils=sim.pupils)
    tidy = staggered.tidy()
    with_size = tidy["effect_size"].notna()
    assert with_size.any() and tidy.loc[with_size, "e_value"].notna().all()
    assert (tidy.loc[with_size, "e_value"] >= 1).all()


def test_the_report_sentences_and_the_rating(matched):
    payload = matched.to_dict()
    lines = sensitivity_lines(payload, payload["estimates"][0])
    assert any(line.startswith("Hidden bias (Rosenbaum 2002)") for line in lines)
    assert any("E-value" in line for line in lines)
    rating = rate(payload, payload["estimates"][0])
    line = next(c for c in rating.criteria if c.name == "Sensitivity of the finding")
    assert line.deduction == 0  # the simulated effect is large: robust


def test_a_fragile_matched_finding_costs_a_padlock(matched):
    payload = matched.to_dict()
    robust = rate(payload, payload["estimates"][0])
    bounds = payload["diagnostics"]["sensitivity"]["rosenbaum"]
    bounds.update(breakdown_gamma=FRAGILE_GAMMA - 0.1, p_upper=[0.01, *bounds["p_upper"][1:]])
    fragile = rate(payload, payload["estimates"][0])
    line = next(c for c in fragile.criteria if c.name == "Sensitivity of the finding")
    assert line.deduction == 1 and "fragile" in line.value
    assert fragile.padlocks == max(0, robust.padlocks - 1)


def test_bounds_that_cannot_be_computed_are_reported_not_raised(sim):
    """Fewer than five matched joiners: the estimate stands, the bounds say why they are missing."""
    few = sim.panel[(sim.panel["join_year"].isna()) | (sim.panel["urn"].isin(
        sim.panel.loc[sim.panel["join_year"] == 2016, "urn"].unique()[:4]))]
    result = evaltool.psm(few, outcome="attainment8", covariates=COVARIATES, caliper=None)
    bounds = result.diagnostics["sensitivity"]["rosenbaum"]
    assert bounds["available"] is False and "5" in bounds["reason"]
    assert any("not computed" in line for line in sensitivity_lines(result.to_dict(), None))
    assert np.isfinite(result.estimates[0].estimate)


# ------------------------------------------------------------------ event studies (Rambachan-Roth, Roth 2022)
@pytest.fixture(scope="module")
def universal(sim):
    return evaltool.did_staggered(sim.panel, outcome="attainment8", trust="trust_id", bootstrap_draws=0,
                                  base_period="universal", aggregations=["simple", "dynamic"])


def test_staggered_bounds_read_the_reported_dynamic_effects(universal):
    """betahat of the bounds = the reported dynamic effects (e = −1 dropped); its SE = the reported SE."""
    block = universal.diagnostics["sensitivity"]
    bounds = block["honest"]["smoothness"]
    assert bounds["available"], bounds
    dynamic = universal.diagnostics["aggregations"]["dynamic"]
    table = dynamic if not isinstance(dynamic, dict) else None
    e0 = table.loc[table["event_time"] == 0].iloc[0]
    assert bounds["estimate"] == pytest.approx(e0["att"], rel=1e-12)
    assert bounds["std_error"] == pytest.approx(e0["std_error"], rel=1e-9)
    assert bounds["num_pre"] == int((table["event_time"] < -1).sum())
    assert bounds["num_post"] == int((table["event_time"] >= 0).sum())
    power = block["pretrend_power"]
    assert power["available"] and 0 < power["slope_50"] < power["slope_80"]
    assert power["power"] == pytest.approx(0.5, abs=1e-6)  # evaluated at the 50%-power slope by default


def test_varying_base_period_says_why_there_are_no_bounds(sim):
    result = evaltool.did_staggered(sim.panel, outcome="attainment8", trust="trust_id", bootstrap_draws=0,
                                    aggregations=["simple"])
    bounds = result.diagnostics["sensitivity"]["honest"]["smoothness"]
    assert bounds["available"] is False and "base_period: universal" in bounds["reason"]
    lines = sensitivity_lines(result.to_dict(), result.to_dict()["estimates"][0])
    assert any("not computed" in line and "base_period: universal" in line for line in lines)


def test_event_study_bounds_and_their_reasons(sim):
    study = evaltool.event_study(sim.panel, outcome="attainment8", trust="trust_id", window=[-4, 3])
    block = study.diagnostics["sensitivity"]
    assert block["honest"]["smoothness"]["available"]
    assert block["honest"]["smoothness"]["num_pre"] == 3 and block["honest"]["smoothness"]["num_post"] == 4
    short = evaltool.event_study(sim.panel, outcome="attainment8", trust="trust_id", window=[-3, 3])
    assert "needs at least 3 pre-joining event times" in short.diagnostics["sensitivity"]["honest"]["smoothness"]["reason"]
    given = evaltool.event_study(sim.panel, outcome="attainment8", trust="trust_id", window=[-3, 3],
                                 sensitivity={"m": [0, 0.1]})
    assert [r["m"] for r in given.diagnostics["sensitivity"]["honest"]["smoothness"]["intervals"]] == [0.0, 0.1]
    other = evaltool.event_study(sim.panel, outcome="attainment8", trust="trust_id", window=[-3, 3], reference=-2)
    reason = other.diagnostics["sensitivity"]["honest"]["smoothness"]["reason"]
    assert "event time −1 as the reference" in reason
    assert "sensitivity" in study.figures()


def test_pretrend_power_grows_with_a_broken_trend():
    """Data with a known linear pre-trend (the simulator's pretrend_slope): the test's power against that slope is
    higher the steeper the slope; the 80%-power slope does not depend on the truth (only on the design)."""
    results = {}
    for slope in (0.0, 0.6):
        data = evaltool.simulate(n_schools=200, seed=5, pretrend_slope=slope)
        fit = evaltool.event_study(data.panel, outcome="attainment8", trust="trust_id", window=[-4, 3],
                                   sensitivity={"pretrend_power": True})
        results[slope] = fit.diagnostics["sensitivity"]["pretrend_power"]
    assert results[0.0]["slope_80"] == pytest.approx(results[0.6]["slope_80"], rel=0.5)
    # Power at the true slope: from the computed 50%/80% slopes, a trend of 0.6 a year is detected almost surely.
    assert results[0.6]["slope_80"] < 0.6


def test_a_fragile_did_finding_costs_a_padlock(universal):
    payload = universal.to_dict()
    head = payload["estimates"][0]
    robust = rate(payload, head)
    bounds = payload["diagnostics"]["sensitivity"]["honest"]["smoothness"]
    bounds["breakdown_status"] = "not_significant"
    fragile = rate(payload, head)
    line = next(c for c in fragile.criteria if c.name == "Sensitivity of the finding")
    assert line.deduction == 1
    assert fragile.padlocks == max(0, robust.padlocks - 1)


def test_varying_base_power_is_the_noncentral_chi2_of_the_reported_test(sim):
    """Under δ_t = slope·t every varying-base pre-joining ATT(g, t) equals the slope, so the χ² test's power is
    P(χ²_k(slope²·1'Σ⁻¹1) > χ²_{k,0.95}) (Roth 2022 for this test): 0.5 and 0.8 at the reported slopes."""
    from scipy import stats

    from evaltool.diagnostics.pretrends import staggered_pretrend_test
    from evaltool.estimators.did.engine.aggregate import aggregate
    from evaltool.estimators.did.engine.att_gt import att_gt
    from evaltool.estimators.did.method_staggered import varying_base_power

    frame = sim.panel.rename(columns={"urn": "school"})[["school", "year", "join_year", "attainment8"]]
    gt = att_gt(frame, "attainment8", control_group="never_joined")
    pretrend = staggered_pretrend_test(gt, reference="chi2")
    out = varying_base_power(gt, aggregate(gt, "group"), 1.0, pretrend, 0.05)
    cells = gt.cells
    pre = (cells["year"] < cells["cohort"]).to_numpy() & np.isfinite(cells["att"].to_numpy()) & (
        cells["std_error"].to_numpy() > 0)
    sigma = gt.vcov(pre)
    ones = np.ones(int(pre.sum()))
    curvature = float(ones @ np.linalg.pinv(sigma, rcond=1e-10, hermitian=True) @ ones)  # as the Wald test's pinv
    k = int(np.linalg.matrix_rank(sigma, tol=1e-10 * np.linalg.eigvalsh(sigma).max(), hermitian=True))
    assert out["df"] == k
    critical = stats.chi2.ppf(0.95, k)
    for slope, target in ((out["slope_50"], 0.5), (out["slope_80"], 0.8)):
        assert stats.ncx2.sf(critical, k, slope**2 * curvature) == pytest.approx(target, abs=1e-6)
    assert out["bias_unconditional"] > 0  # a rising trend biases a positive-weighted headline upwards


def test_the_year_before_joining_is_the_same_change_in_both_base_periods(sim, universal):
    """Universal base: −β(−2) = change from e = −2 to −1; varying base: the dynamic effect at e = −1 is that change."""
    varying = evaltool.did_staggered(sim.panel, outcome="attainment8", trust="trust_id", bootstrap_draws=0,
                                     aggregations=["simple", "dynamic"])
    a = universal.diagnostics["sensitivity"]["pre_joining_year"]
    b = varying.diagnostics["sensitivity"]["pre_joining_year"]
    assert a["change"] == pytest.approx(b["change"], rel=1e-8)
    assert a["std_error"] == pytest.approx(b["std_error"], rel=1e-6)


def test_a_rising_pre_joining_trend_shows_the_year_before_joining_moving():
    data = evaltool.simulate(n_schools=300, seed=8, pretrend_slope=1.0)
    fit = evaltool.event_study(data.panel, outcome="attainment8", trust="trust_id", window=[-4, 3])
    change = fit.diagnostics["sensitivity"]["pre_joining_year"]
    assert change["moves"] and change["change"] > 0
    lines = sensitivity_lines(fit.to_dict(), fit.to_dict()["estimates"][0])
    assert any(line.startswith("The year before joining already moves") for line in lines)


def test_twfe_robustness_values_from_the_classical_within_regression(sim):
    """Reference: statsmodels OLS with school and year dummies (the classical t of the TWFE coefficient and of the
    covariate); the robustness values then follow sensemakr's formulas (tested on Darfur in test_robustness.py)."""
    import statsmodels.formula.api as smf

    from evaltool.sensitivity.robustness import partial_r2, robustness_value

    fit = evaltool.did_twfe(sim.panel, outcome="attainment8", trust="trust_id", covariates=["ks2_prior"])
    values = fit.diagnostics["sensitivity"]["robustness"]
    assert values["available"] and values["estimate"] == pytest.approx(fit.estimates[0].estimate, rel=1e-9)
    data = sim.panel.dropna(subset=["attainment8", "ks2_prior"]).copy()
    data["joined"] = (data["year"] >= data["join_year"].astype(float).fillna(9999)).astype(float)  # never: 0
    ols = smf.ols("attainment8 ~ joined + ks2_prior + C(urn) + C(year)", data=data).fit()
    assert values["dof"] == ols.df_resid
    assert values["t_statistic"] == pytest.approx(ols.tvalues["joined"], rel=1e-6)
    assert values["partial_r2"] == pytest.approx(partial_r2(ols.tvalues["joined"], ols.df_resid), rel=1e-6)
    assert values["rv_q"] == pytest.approx(robustness_value(ols.tvalues["joined"], ols.df_resid), rel=1e-6)
    treat = smf.ols("joined ~ ks2_prior + C(urn) + C(year)", data=data).fit()
    bound = next(b for b in values["bounds"] if b["covariate"] == "ks2_prior" and b["kd"] == 1.0)
    r2d = partial_r2(treat.tvalues["ks2_prior"], treat.df_resid)
    r2y = partial_r2(ols.tvalues["ks2_prior"], ols.df_resid)
    expected = robustness(values["estimate"], values["std_error"], values["dof"],
                          benchmarks={"ks2_prior": (r2d, r2y)}, k=(1.0,)).bounds[0]
    assert bound["adjusted_estimate"] == pytest.approx(expected.adjusted_estimate, rel=1e-6)
    assert any("as strong as ks2_prior" in line for line in sensitivity_lines(fit.to_dict(), None))


def test_placebo_years_and_a_placebo_outcome(sim):
    """Placebo joining years 1 and 2 early (2 is placebo_shift's own test), and a placebo outcome rerun."""
    panel = sim.panel.copy()
    panel["noise"] = np.random.default_rng(0).normal(50, 5, len(panel))  # joining cannot have changed it
    fit = evaltool.did_staggered(panel, outcome="attainment8", trust="trust_id", bootstrap_draws=0,
                                 aggregations=["simple"], sensitivity={"placebo_outcome": "noise"})
    block = fit.diagnostics["sensitivity"]
    assert [t["shift"] for t in block["placebo_years"]] == [1, 2]
    assert block["placebo_years"][1] == fit.diagnostics["placebo_test"]
    placebo = block["placebo_outcome"]
    assert placebo["available"] and placebo["outcome"] == "noise" and placebo["term"] == fit.estimates[0].term
    direct = evaltool.did_staggered(panel, outcome="noise", trust="trust_id", bootstrap_draws=0,
                                    aggregations=["simple"], sensitivity={"enabled": False})
    assert placebo["estimate"] == pytest.approx(direct.estimates[0].estimate, rel=1e-12)
    lines = sensitivity_lines(fit.to_dict(), None)
    assert any(line.startswith("Placebo joining years") for line in lines)
    assert any(line.startswith("Placebo outcome noise") for line in lines)


def test_a_placebo_outcome_must_be_another_mapped_outcome(tmp_path):
    text = ("data: {panel: p.csv}\ncolumns: {outcomes: [y]}\nanalyses:\n  - name: s\n    method: did_twfe\n"
            "    sensitivity: {placebo_outcome: z}\n")
    with pytest.raises(evaltool.ConfigError, match=r"sensitivity\.placebo_outcome \(config.yaml:6:\d+\): placebo outcome 'z' "
                                                   r"is not listed in columns.outcomes"):
        parse_config(text, source=tmp_path / "config.yaml")


def test_did_2x2_placebo_power_by_simulation():
    """At the slope placebo_power says is detected half (80%) of the time, data with that linear trend make the
    placebo test reject about half (80%) of the time (normal reference, 400 replications; Roth 2022)."""
    from evaltool.estimators.did.sensitivity import placebo_power

    n, reps = 200, 400
    years = np.arange(2010, 2016)
    pre, post = [2010, 2011, 2012], [2014, 2015]
    treated = np.arange(n) < n // 2
    # The placebo's SE with unit-variance noise: change = y(2012) − mean(y(2010), y(2011)) has variance 1.5.
    se = float(np.sqrt(1.5 / treated.sum() + 1.5 / (~treated).sum()))
    out = placebo_power({"std_error": se, "n_clusters": n, "se_correction": "none"}, pre, post, 0.05)
    for slope, target in ((out["slope_50"], 0.5), (out["slope_80"], 0.8)):
        rng = np.random.default_rng(11)
        y = rng.normal(0, 1, (reps, n, len(years))) + np.where(treated[None, :, None], slope * (years - 2010), 0.0)
        change = y[:, :, 2] - y[:, :, :2].mean(axis=2)
        diff = change[:, treated].mean(axis=1) - change[:, ~treated].mean(axis=1)
        rate = float(np.mean(np.abs(diff / se) > 1.959964))
        assert abs(rate - target) < 3 * np.sqrt(target * (1 - target) / reps), (slope, rate, target)
    assert out["bias_unconditional"] == pytest.approx(out["slope_50"] * (np.mean(post) - np.mean(pre)))
