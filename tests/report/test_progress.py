"""Months of additional progress against the EEF Teaching and Learning Toolkit table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaltool.report.progress import MonthsOfProgress, format_months, impact_label, months_of_progress

# EEF Teaching and Learning Toolkit, "About the Toolkits — attainment", conversion table (see the .md note).
TABLE = pd.read_csv(Path(__file__).parents[1] / "reference" / "eef_months_progress.csv")
ROWS = list(TABLE.itertuples(index=False))


@pytest.mark.parametrize("row", ROWS, ids=[f"{r.months}m" for r in ROWS])
def test_both_ends_of_every_row(row):
    # Each end of each published range converts to that row's months (EEF table, exact).
    assert months_of_progress(row.effect_size_from) == (row.months if row.effect_size_from >= 0 else 0)
    assert months_of_progress(row.effect_size_to) == row.months


@pytest.mark.parametrize("row", ROWS[1:], ids=[f"{r.months}m" for r in ROWS[1:]])
def test_negative_effect_sizes_mirror_the_table(row):
    # EEF note (ii): negative effect sizes give the same months, negative.
    assert months_of_progress(-row.effect_size_from) == -row.months
    assert months_of_progress(-row.effect_size_to) == -row.months


@pytest.mark.parametrize("row", ROWS[:-1], ids=[f"{r.months}m" for r in ROWS[:-1]])
def test_rounding_to_two_decimals_at_each_boundary(row):
    # EEF note (i): effect sizes are read to the nearest two decimals, so the gap between rows splits at .xx5.
    assert months_of_progress(row.effect_size_to + 0.0049) == row.months
    assert months_of_progress(row.effect_size_to + 0.005) == row.months + 1
    assert months_of_progress(-(row.effect_size_to + 0.005)) == -(row.months + 1)


def test_above_the_table_stays_at_twelve_months():
    assert months_of_progress(1.0) == 12
    assert months_of_progress(1.7) == 12
    assert months_of_progress(-1.7) == -12


def test_missing_effect_sizes():
    assert months_of_progress(None) is None
    assert months_of_progress(float("nan")) is None
    assert MonthsOfProgress.from_effect_size(None) is None


def test_array_matches_scalar():
    values = np.linspace(-1.2, 1.2, 2401)
    vector = months_of_progress(values)
    assert np.array_equal(vector, [months_of_progress(float(v)) for v in values])
    assert np.isnan(months_of_progress(np.array([np.nan, 0.3]))[0])


def test_interval_and_words():
    progress = MonthsOfProgress.from_effect_size(0.12, -0.03, 0.27)
    assert (progress.months, progress.months_low, progress.months_high) == (2, -1, 4)
    assert progress.describe() == "+2 months (−1 to +4)"
    assert format_months(0) == "0 months"
    assert impact_label(2) == "low impact"
    assert impact_label(5) == "moderate impact"
    assert impact_label(-7) == "high impact (negative)"
    # The impact words of the EEF table, row by row.
    for row in ROWS:
        assert impact_label(row.months) == row.impact.lower()
