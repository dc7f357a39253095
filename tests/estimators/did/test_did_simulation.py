"""Simulation recovery on evaltool's simulator: heterogeneous effects that grow with years since joining.

The exact truth of each aggregated ATT is computed from ``truth['school_year_effects']`` for the
schools and group-time cells the estimator used (balanced panel, cohorts with a pre-period).
"""

from __future__ import annotations

import numpy as np
import pytest
from did_sim_helpers import simulated_frame, true_aggregates

from evaltool.diagnostics.pretrends import placebo_test, staggered_pretrend_test
from evaltool.estimators.did.engine.aggregate import aggregate
from evaltool.estimators.did.engine.att_gt import att_gt
from evaltool.estimators.did.method_event_study import EventStudyOptions, fit_event_study
from evaltool.estimators.did.method_twfe import fit_did_twfe

N_SCHOOLS = 400


def _event_study_pretest(frame, seed: int = 0) -> float:
    options = EventStudyOptions(name="es", method="event_study", window=(-4, 4))
    _, diagnostics, _, _ = fit_event_study(frame, "attainment8", options=options, rng=np.random.default_rng(seed))
    return diagnostics["pretrend_test"]["p_value"]


def test_staggered_covers_truth_and_twfe_is_biased():
    frame, truth = simulated_frame(31, n_schools=N_SCHOOLS)
    result = att_gt(frame, "attainment8")
    exact = true_aggregates(truth, result)
    for kind in ("simple", "group"):
        agg = aggregate(result, kind)
        low, high = agg.overall_att - 1.96 * agg.overall_se, agg.overall_att + 1.96 * agg.overall_se
        assert low <= exact[kind] <= high, (kind, agg.overall_att, exact[kind])
    # Same data: TWFE is pulled below the truth by already-joined comparisons (negative weights).
    twfe, diagnostics, _, warnings = fit_did_twfe(frame, "attainment8")
    assert twfe.ci_upper < exact["simple"], (twfe.estimate, exact["simple"])
    assert diagnostics["negative_weights"]["n_negative"] > 0
    assert diagnostics["negative_weights"]["sum_negative"] < 0
    assert any("negative weight" in w for w in warnings)


def test_no_effect_is_not_found():
    frame, _ = simulated_frame(36, n_schools=N_SCHOOLS, effect_scale=0.0)
    agg = aggregate(att_gt(frame, "attainment8"), "group")
    assert abs(agg.overall_att) < 1.96 * agg.overall_se


def test_pretrend_diagnostics_detect_broken_parallel_trends():
    frame, _ = simulated_frame(31, n_schools=N_SCHOOLS)
    broken, _ = simulated_frame(31, n_schools=N_SCHOOLS, pretrend_slope=-0.8)
    assert _event_study_pretest(frame) > 0.05
    assert _event_study_pretest(broken) < 1e-6
    assert staggered_pretrend_test(att_gt(frame, "attainment8"))["p_value"] > 0.05
    assert staggered_pretrend_test(att_gt(broken, "attainment8"))["p_value"] < 1e-6
    assert placebo_test(frame, "attainment8", shift=2)["p_value"] > 0.05
    assert placebo_test(broken, "attainment8", shift=2)["p_value"] < 1e-6


@pytest.mark.slow
@pytest.mark.parametrize("seed", [32, 33, 34, 35])
def test_recovery_across_seeds(seed):
    frame, truth = simulated_frame(seed, n_schools=N_SCHOOLS)
    result = att_gt(frame, "attainment8", control_group="not_yet_joined")
    exact = true_aggregates(truth, result)
    simple = aggregate(result, "simple")
    assert abs(simple.overall_att - exact["simple"]) < 4 * simple.overall_se
    twfe = fit_did_twfe(frame, "attainment8")[0]
    assert twfe.estimate < exact["simple"]  # the TWFE bias is downward in this design, seed after seed
    assert _event_study_pretest(frame) > 0.01
    broken, _ = simulated_frame(seed, n_schools=N_SCHOOLS, pretrend_slope=-0.8)
    assert _event_study_pretest(broken) < 1e-6
