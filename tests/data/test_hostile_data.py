"""Hostile and unlucky data (#20): each is a clear exit-2 message naming file, column and rows, never a run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from evaltool.cli import main
from tests.conftest import CONFIG_TEMPLATE, make_panel


def validate(folder: Path, panel: pd.DataFrame | None = None, *, encoding: str = "utf-8", config: str = CONFIG_TEMPLATE):
    if panel is not None:
        panel.to_csv(folder / "panel.csv", index=False, encoding=encoding)
    (folder / "config.yaml").write_text(config)
    return CliRunner().invoke(main, ["validate", str(folder / "config.yaml")])


def assert_data_error(result, *fragments):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.output.startswith("Error: ")
    for fragment in fragments:
        assert fragment in result.output, result.output


def with_cell(column: str, row: int, value) -> pd.DataFrame:
    frame = make_panel()
    frame[column] = frame[column].astype(object)
    frame.loc[row, column] = value
    return frame


@pytest.mark.parametrize("value", ["inf", "-inf", "1e308", "Infinity"])
@pytest.mark.parametrize(("column", "role"), [("att8", "outcome"), ("fsm", "covariate")])
def test_non_finite_and_absurd_values_are_refused_with_column_and_row(tmp_path, value, column, role):
    result = validate(tmp_path, with_cell(column, 6, value))
    assert_data_error(result, f"'{column}' ({role})", "panel.csv", "row 7", value)


def test_a_join_year_of_2200_is_refused_with_its_rows(tmp_path):
    frame = make_panel()
    frame.loc[frame["urn"] == frame["urn"].iloc[0], "join_year"] = 2200
    assert_data_error(validate(tmp_path, frame), "'join_year'", "outside 1990–2100 (data.year_range)", "rows 1, 2, 3", "2200")


def test_an_entirely_missing_outcome_is_flagged_by_validate_and_run_writes_nothing(tmp_path):
    frame = make_panel().assign(att8="c")
    assert_data_error(validate(tmp_path, frame), "Outcome column 'att8'", "no values at all", "columns.outcomes")
    result = CliRunner().invoke(main, ["run", str(tmp_path / "config.yaml"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and not (tmp_path / "out").exists()


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252"])
def test_a_non_utf8_file_names_the_encoding_key(tmp_path, encoding):
    frame = make_panel()
    frame["la"] = frame["la"].astype(str) + "é"
    assert_data_error(validate(tmp_path, frame, encoding=encoding), "not valid utf-8", "data.panel.encoding", "cp1252")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig"])
def test_files_with_a_byte_order_mark_are_read(tmp_path, encoding):
    result = validate(tmp_path, make_panel(), encoding=encoding)
    assert result.exit_code == 0, result.output
    assert "120 schools" in result.output


def test_an_unknown_encoding_is_a_config_message(tmp_path):
    config = CONFIG_TEMPLATE.replace("  panel: panel.csv", "  panel: {path: panel.csv, encoding: klingon}")
    assert_data_error(validate(tmp_path, make_panel(), config=config), "klingon", "not a known text encoding")


SUBGROUP_CONFIG = CONFIG_TEMPLATE.replace(
    "  panel: panel.csv", "  panel: panel.csv\n  subgroups: subgroups.csv"
).replace("  covariates: [fsm]", "  covariates: [fsm]\n  subgroup: subgroup\n  pupil_count: n_pupils")


@pytest.mark.parametrize("count", [-3, 2.5])
def test_negative_or_fractional_pupil_counts_are_refused(tmp_path, count):
    panel = make_panel()
    rows = panel[["urn", "year", "att8"]].assign(subgroup="disadvantaged", n_pupils=20)
    rows["n_pupils"] = rows["n_pupils"].astype(object)
    rows.loc[4, "n_pupils"] = count
    rows.to_csv(tmp_path / "subgroups.csv", index=False)
    assert_data_error(validate(tmp_path, panel, config=SUBGROUP_CONFIG), "'n_pupils' (pupil count)", "row 5", "0 or more")


def test_valid_pupil_counts_pass(tmp_path):
    panel = make_panel()
    panel[["urn", "year", "att8"]].assign(subgroup="disadvantaged", n_pupils=np.arange(len(panel)) % 30).to_csv(
        tmp_path / "subgroups.csv", index=False
    )
    assert validate(tmp_path, panel, config=SUBGROUP_CONFIG).exit_code == 0
