"""E-values: VanderWeele & Ding's example (tests/reference/evalue_examples.md), the SMD conversion, properties."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from evaltool.errors import EstimationError
from evaltool.sensitivity.evalue import evalue_point, evalue_rr, evalue_smd

REFERENCE = Path(__file__).resolve().parents[1] / "reference"


def test_vanderweele_ding_example():
    ref = json.loads((REFERENCE / "evalue_examples.json").read_text())["rr_example"]
    # VanderWeele & Ding (2017): RR 3.9 (1.8, 8.7) -> E-values 7.26 and 3.0
    out = evalue_rr(ref["rr"], ref["ci_lower"], ref["ci_upper"])
    assert out.evalue == pytest.approx(ref["evalue"], abs=5e-3)
    assert out.evalue_ci == pytest.approx(ref["evalue_ci"], abs=5e-3)


def test_protective_rr_is_inverted_and_ci_uses_upper_limit():
    out = evalue_rr(0.5, 0.3, 0.8)
    assert out.evalue == pytest.approx(evalue_point(2.0))
    assert out.evalue_ci == pytest.approx(evalue_point(1 / 0.8))


def test_ci_including_null_gives_one():
    assert evalue_rr(1.3, 0.9, 1.8).evalue_ci == 1.0
    assert evalue_smd(0.1, 0.1).evalue_ci == 1.0


def test_smd_conversion_is_evalues_md():
    # EValue::evalues.MD(est = 0.5, se = 0.1): RR = exp(0.91 * 0.5), lower = exp(0.91 * 0.5 - 1.78 * 0.1)
    out = evalue_smd(0.5, 0.1)
    assert out.rr == pytest.approx(np.exp(0.455))
    assert out.rr_lower == pytest.approx(np.exp(0.455 - 0.178))
    assert out.rr_upper == pytest.approx(np.exp(0.455 + 0.178))
    assert out.evalue == pytest.approx(np.exp(0.455) + np.sqrt(np.exp(0.455) * (np.exp(0.455) - 1)))
    assert out.evalue_ci == pytest.approx(evalue_point(np.exp(0.277)))
    json.dumps(out.to_dict())


def test_evalue_is_one_at_zero_and_monotone_in_abs_d():
    assert evalue_smd(0.0).evalue == 1.0
    d = np.linspace(0, 2, 41)
    e = np.array([evalue_smd(x).evalue for x in d])
    assert np.all(np.diff(e) > 0)
    e_neg = np.array([evalue_smd(-x).evalue for x in d])
    np.testing.assert_allclose(e, e_neg)


@pytest.mark.parametrize(("args", "match"), [((0.0,), "positive"), ((2.0, 2.5, 3.0), "does not contain"),
                                             ((2.0, 1.5), "both")])
def test_bad_rr_input(args, match):
    with pytest.raises(EstimationError, match=match):
        evalue_rr(*args)


def test_negative_se():
    with pytest.raises(EstimationError, match="standard error"):
        evalue_smd(0.2, -1)
