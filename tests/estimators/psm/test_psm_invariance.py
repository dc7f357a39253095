"""fit_psm / fit_ipw: shuffled rows and relabelled schools give the same answer; the caller's frame is unchanged."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evaltool.estimators.psm.ipw import fit_ipw
from evaltool.estimators.psm.method import fit_psm


def units(seed=0, n=500):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    treat = rng.random(n) < 1 / (1 + np.exp(-(x[:, 0] - 1)))
    return pd.DataFrame(
        {"school": [f"S{i:04d}" for i in range(n)], "cohort": rng.choice([2015, 2017], n), "treated": treat,
         "x1": x[:, 0], "x2": x[:, 1], "y": 2 * treat + x[:, 0] + rng.normal(size=n)}
    )


@pytest.mark.parametrize("replace", [False, True])
def test_shuffled_and_relabelled_rows_give_same_estimate(replace):
    frame = units()
    first, *_ = fit_psm(frame, "y", ["x1", "x2"], rng=np.random.default_rng(1), replace=replace, caliper=0.1)
    shuffled = frame.sample(frac=1.0, random_state=3).reset_index(drop=True)
    shuffled["school"] = "Z" + shuffled["school"]
    again, *_ = fit_psm(shuffled, "y", ["x1", "x2"], rng=np.random.default_rng(99), replace=replace, caliper=0.1)
    assert again.estimate == pytest.approx(first.estimate, rel=1e-10)
    assert again.std_error == pytest.approx(first.std_error, rel=1e-8)
    assert again.n_treated == first.n_treated


def test_callers_frame_is_unchanged():
    frame = units()
    before = frame.copy()
    fit_psm(frame, "y", ["x1", "x2"], rng=np.random.default_rng(1), ratio=2, exact=[])
    fit_ipw(frame, "y", ["x1", "x2"], common_support_rule="both")
    pd.testing.assert_frame_equal(frame, before)
