"""Holm and Benjamini–Hochberg adjustments against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from evaltool.results.multiplicity import adjust_pvalues


def test_holm_by_hand():
    # p = (0.01, 0.04, 0.03, 0.005), m = 4. Sorted: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → 0.06
    # (running maximum). Back in input order: (0.03, 0.06, 0.06, 0.02).
    np.testing.assert_allclose(adjust_pvalues([0.01, 0.04, 0.03, 0.005], "holm"), [0.03, 0.06, 0.06, 0.02])


def test_benjamini_hochberg_by_hand():
    # Sorted p·m/rank: 0.005·4/1 = 0.02, 0.01·4/2 = 0.02, 0.03·4/3 = 0.04, 0.04·4/4 = 0.04 (running minimum from the top).
    np.testing.assert_allclose(adjust_pvalues([0.01, 0.04, 0.03, 0.005], "bh"), [0.02, 0.04, 0.04, 0.02])


def test_missing_pvalues_are_left_out_of_the_family():
    out = adjust_pvalues([0.01, np.nan, 0.04], "holm")
    assert np.isnan(out[1])
    np.testing.assert_allclose(out[[0, 2]], [0.02, 0.04])
    assert adjust_pvalues([np.nan], "bh").tolist() != [0.0]


def test_unknown_method():
    with pytest.raises(ValueError, match=r"method must be one of \['bh', 'holm'\]; got 'bonferroni'"):
        adjust_pvalues([0.1], "bonferroni")
