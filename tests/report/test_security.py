"""Evidence-security rating: each criterion from measured values, and the combined padlocks."""

from __future__ import annotations

import pytest

from evaltool.report.security import MDES_MULTIPLIER, attrition_share, mdes_value, rate, wwc_verdict


def analysis(method="psm", *, diagnostics=None, exclusions=(), used=900, status="ok"):
    return {
        "analysis": "a",
        "method": method,
        "status": status,
        "diagnostics": diagnostics or {},
        "sample": {"n_rows_in": 2000, "n_rows_used": used, "exclusions": list(exclusions)},
    }


def estimate(es_low=-0.05, es_high=0.15, level=0.95):
    return {"estimate": 1.0, "effect_size": 0.05, "effect_size_ci_lower": es_low, "effect_size_ci_upper": es_high, "ci_level": level}


def test_mdes_multiplier_is_bloom_80_percent_power():
    # Bloom (1995): MDE = (z_{0.975} + z_{0.80}) × SE ≈ 2.80 × SE.
    assert MDES_MULTIPLIER == pytest.approx(1.959964 + 0.841621, abs=1e-5)


def test_mdes_from_the_effect_size_interval():
    # SE(g) = (0.15 − (−0.05)) / (2 × 1.96) = 0.0510; MDES = 2.80 × 0.0510 = 0.143.
    assert mdes_value(estimate(), {}) == pytest.approx(2.8016 * 0.2 / (2 * 1.959964), rel=1e-4)
    assert mdes_value(estimate(), {"mdes": 0.31}) == 0.31
    assert mdes_value({"effect_size": None}, {}) is None


def test_attrition_counts_only_units_lost_from_the_design():
    exclusions = [
        {"reason": "year excluded", "n_rows": 500, "stage": "data", "attrition": False},
        {"reason": "joined too early", "n_rows": 400, "stage": "design", "attrition": False},
        {"reason": "comparison unit not matched", "n_rows": 700, "stage": "psm", "attrition": False},
        {"reason": "missing outcome", "n_rows": 60, "stage": "analysis", "attrition": True},
        {"reason": "no common support", "n_rows": 40, "stage": "matching", "attrition": True},
    ]
    assert attrition_share({"n_rows_used": 900, "exclusions": exclusions}) == pytest.approx(100 / 1000)


@pytest.mark.parametrize(("smd", "verdict"), [(0.05, "satisfies"), (0.051, "satisfies if adjusted for"), (0.25, "satisfies if adjusted for"), (-0.26, "does not satisfy")])
def test_wwc_baseline_equivalence_bands(smd, verdict):
    # WWC Procedures Handbook: ≤ 0.05 satisfies; 0.05–0.25 needs adjustment; > 0.25 does not satisfy.
    assert wwc_verdict(smd) == verdict


def test_well_matched_precise_design_gets_three_padlocks():
    balance = {"columns": ["covariate", "smd_before", "smd_after"], "data": [["ks2_prior", 0.6, 0.03], ["fsm_pct", 0.4, -0.04]]}
    rating = rate(analysis(diagnostics={"balance": balance}), estimate())
    assert rating.padlocks == 3
    values = {c.name: c.value for c in rating.criteria}
    assert values["Minimum detectable effect size"] == "0.14"
    assert values["Attrition (units lost from the design)"] == "0%"
    assert values["Baseline balance"].startswith("largest standardised difference 0.04")


def test_each_weakness_lowers_the_rating():
    imbalance = {"columns": ["covariate", "smd"], "data": [["ks2_prior", 0.4]]}
    assert rate(analysis(diagnostics={"balance": imbalance}), estimate()).padlocks == 2
    # An imprecise estimate: MDES = 2.8 × 1.0 / 3.92 = 0.71 → 0 padlocks.
    assert rate(analysis(), estimate(-0.5, 0.5)).padlocks == 0
    # Attrition 45 % → at most 1 padlock.
    lost = [{"reason": "treated school without a match", "n_rows": 450, "stage": "matching", "attrition": True}]
    assert rate(analysis(exclusions=lost, used=550), estimate()).padlocks == 1
    # Difference-in-differences: 2 without a pre-trend test; 3 with a passed test; 2 with a failed one.
    assert rate(analysis("did_staggered"), estimate()).padlocks == 2
    assert rate(analysis("did_staggered", diagnostics={"pretrend_test": {"p_value": 0.4}}), estimate()).padlocks == 3
    assert rate(analysis("did_staggered", diagnostics={"pretrend_test": {"p_value": 0.01}}), estimate()).padlocks == 2


def test_unknown_design_and_failures():
    assert rate(analysis("new_method"), estimate()).padlocks == 1
    assert rate(analysis("new_method", diagnostics={"design_type": "matched"}), estimate()).padlocks == 3
    failed = rate(analysis(status="failed"), None)
    assert failed.padlocks is None and "not rated" in failed.note


def test_unmeasured_criteria_are_named():
    rating = rate(analysis("did_2x2"), {"estimate": 1.0})
    assert rating.padlocks == 2
    assert "minimum detectable effect size" in rating.note and "trends before joining" in rating.note
