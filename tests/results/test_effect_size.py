"""Hedges' g against a published worked example, and the standardisation of estimates."""

from __future__ import annotations

import math

import pytest

from evaltool.results import EffectEstimate
from evaltool.results.effect_size import Standardiser, hedges_correction, hedges_g_groups, pooled_sd, standardise


def test_borenstein_worked_example():
    # Borenstein, Hedges, Higgins & Rothstein (2009), Introduction to Meta-Analysis, ch. 4 worked example:
    # means 103 and 100, SDs 5.5 and 4.5, n = 50 each → S_within = 5.0249, d = 0.5970, J = 0.9923,
    # g = 0.5924, V_g = 0.0411 (SE 0.2028).
    assert pooled_sd(5.5, 50, 4.5, 50) == pytest.approx(5.0249, abs=5e-5)
    assert hedges_correction(100) == pytest.approx(0.9923, abs=5e-5)
    g, se = hedges_g_groups(103, 5.5, 50, 100, 4.5, 50)
    assert g == pytest.approx(0.5924, abs=5e-5)
    assert se**2 == pytest.approx(0.0411, abs=5e-5)


def test_correction_is_the_wwc_formula():
    # WWC Procedures Handbook: ω = 1 − 3/(4N − 9); e.g. N = 30 → 1 − 3/111
    assert hedges_correction(30) == pytest.approx(1 - 3 / 111)
    assert hedges_correction(10**6) == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match="more than 2 observations"):
        hedges_correction(2)


def test_standardise_scales_estimate_and_interval():
    e = EffectEstimate.from_normal(term="treated", estimand="ATT", estimate=3.0, std_error=0.5)
    s = Standardiser(sd=15.0, n_total=1000, level="pupil", description="")
    out = standardise(e, s)
    omega = 1 - 3 / (4 * 1000 - 9)
    assert out.effect_size == pytest.approx(omega * 3.0 / 15.0)
    assert out.effect_size_ci_lower == pytest.approx(omega * e.ci_lower / 15.0)
    assert out.effect_size_ci_upper == pytest.approx(omega * e.ci_upper / 15.0)
    assert out.estimate == e.estimate  # the estimate itself is unchanged
    assert standardise(e, Standardiser(sd=math.nan, n_total=10, level="school", description="")).effect_size is None
