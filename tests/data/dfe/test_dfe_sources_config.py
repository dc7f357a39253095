"""The sources: block: defaults, shorthand and the validation messages."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from evaltool.config.sources import SourcesOptions, TableFile


def test_defaults_and_string_shorthand():
    options = SourcesOptions.model_validate(
        {"performance_tables": ["dfe/*.csv", {"path": "x.csv", "year": 2019}], "gias_links": "links.csv"}
    )
    assert options.performance_tables[0] == TableFile(path=Path("dfe/*.csv"))
    assert options.performance_tables[1].year == 2019
    assert options.gias_links.path == Path("links.csv") and options.gias_links.encoding is None
    assert (options.preset, options.encoding, options.join_cutoff, options.movers, options.conversion) == (
        "ks4", "cp1252", "09-01", "censor", "covariate")
    assert options.gap_years == [2020, 2021] and options.group_types == ["Multi-academy trust"]
    assert options.cutoff_month_day() == (9, 1)


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"join_cutoff": "9/1"}, "'MM-DD'"),
        ({"join_cutoff": "02-29"}, "not a day of every year"),
        ({"movers": "drop"}, "exclude"),
        ({"preset": "ks5"}, "ks4"),
        ({"markers": {"0": "zero"}}, "is a number"),
        ({"markers": {"-": ""}}, "needs a meaning"),
        ({"columns": {"ATT8SCR": "year"}}, "reserves"),
        ({"columns": {"ATT8SCR": "8att"}}, "must start with a letter"),
        ({"preset": "none", "columns": {"ATT8SCR": "att8"}}, "map the school's URN column to 'urn'"),
        ({"performance_tables": []}, "at least 1"),
        ({"gap_year": [2020]}, "Extra inputs"),
    ],
)
def test_invalid_values_name_the_fix(changes, fragment):
    with pytest.raises(ValidationError, match=fragment):
        SourcesOptions.model_validate({"performance_tables": ["a.csv"], **changes})


def test_every_field_has_a_docstring():
    for model in (SourcesOptions, TableFile):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"
