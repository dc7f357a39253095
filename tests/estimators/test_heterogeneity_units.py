"""Unit tests of the heterogeneity helpers: gap panels and the adjusted table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evaltool.estimators.heterogeneity import finish_table, gap_panel


def test_gap_panel_differences_and_weights():
    a = pd.DataFrame({"school": ["1", "1", "2"], "year": [2018, 2019, 2018], "att8": [40.0, 42.0, 35.0],
                      "pupil_count": [30, 20, 10]})
    b = pd.DataFrame({"school": ["1", "2", "3"], "year": [2018, 2018, 2018], "att8": [50.0, 45.0, 47.0],
                      "pupil_count": [90, 10, 50]})
    gap = gap_panel(a, b, "att8")
    assert gap[["school", "year"]].values.tolist() == [["1", 2018], ["2", 2018]]  # only school-years with both
    np.testing.assert_allclose(gap["att8"], [-10.0, -10.0])
    np.testing.assert_allclose(gap["pupil_count"], [30 * 90 / 120, 5.0])  # n_a n_b / (n_a + n_b)


def test_finish_table_adjusts_each_family_separately():
    rows = [
        {"subgroup": "a", "kind": "subgroup", "p_value": 0.01, "interaction_p_value": 0.04, "status": "ok"},
        {"subgroup": "b", "kind": "subgroup", "p_value": 0.04, "interaction_p_value": np.nan, "status": "ok"},
        {"subgroup": "c", "kind": "subgroup", "p_value": np.nan, "interaction_p_value": np.nan, "status": "skipped"},
        {"subgroup": "a - b", "kind": "gap", "p_value": 0.04, "interaction_p_value": 0.04, "status": "ok"},
    ]
    table = finish_table(rows)
    # subgroup p-values: family {0.01, 0.04}: Holm (0.02, 0.04), BH (0.02, 0.04); gaps are not in that family
    np.testing.assert_allclose(table["p_holm"].iloc[:2], [0.02, 0.04])
    assert np.isnan(table["p_holm"].iloc[2]) and np.isnan(table["p_holm"].iloc[3])
    # interaction p-values: one test per gap, the focal row repeating its gap's (not counted twice)
    assert table["interaction_p_holm"].iloc[3] == pytest.approx(0.04)
    assert table["interaction_p_holm"].iloc[0] == pytest.approx(0.04)
    assert np.isnan(table["interaction_p_holm"].iloc[1])


def test_two_gaps_are_one_family():
    rows = [
        {"subgroup": "a", "kind": "subgroup", "p_value": 0.01, "interaction_p_value": 0.01, "status": "ok"},
        {"subgroup": "a - b", "kind": "gap", "p_value": 0.01, "interaction_p_value": 0.01, "status": "ok"},
        {"subgroup": "c - d", "kind": "gap", "p_value": 0.03, "interaction_p_value": 0.03, "status": "ok"},
    ]
    table = finish_table(rows)
    # Holm over {0.01, 0.03}: (0.02, 0.03); the focal row 'a' gets its gap's 0.02
    np.testing.assert_allclose(table["interaction_p_holm"], [0.02, 0.02, 0.03])
    np.testing.assert_allclose(table["interaction_p_bh"], [0.02, 0.02, 0.03])


def test_post_process_standardises_outcome_estimates_but_not_external_effects():
    from types import SimpleNamespace

    from evaltool.estimators.heterogeneity import post_process
    from evaltool.results import AnalysisResult, EffectEstimate
    from evaltool.results.effect_size import hedges_correction

    frame = pd.DataFrame({"school": ["1", "2", "3", "4"], "year": 2019, "att8": [40.0, 44.0, 50.0, 46.0]})
    context = SimpleNamespace(outcome="att8", study=SimpleNamespace(pupils=None), panel=SimpleNamespace(frame=frame))

    def result():
        e = EffectEstimate.from_normal(term="t", estimand="ATT", estimate=2.0, std_error=0.5)
        return AnalysisResult(analysis="a", method="m", estimates=[e])

    context.spec = SimpleNamespace(heterogeneity=None)
    done = post_process(None, context, result())
    sd = frame["att8"].std(ddof=1)
    assert done.estimates[0].effect_size == pytest.approx(hedges_correction(4) * 2.0 / sd)
    assert done.diagnostics["effect_size"]["level"] == "school"
    context.spec = SimpleNamespace(heterogeneity=None, effects_file="published_effects.csv")
    assert post_process(None, context, result()).estimates[0].effect_size is None
