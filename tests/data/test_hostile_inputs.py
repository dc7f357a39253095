"""More hostile and unlucky inputs (#20): encodings, year ranges, trusts-file headers, pupils-file numbers.

Each is refused by ``evaltool validate`` with exit 2 and a message naming the file, column and fix, never a
traceback; the ones a user may legitimately need (older data, UTF-32 files) still pass.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from evaltool.cli import main
from tests.conftest import CONFIG_TEMPLATE, make_panel

TRUSTS_CONFIG = CONFIG_TEMPLATE.replace("  panel: panel.csv", "  panel: panel.csv\n  trusts: trusts.csv")
PUPILS_CONFIG = CONFIG_TEMPLATE.replace("  panel: panel.csv", "  panel: panel.csv\n  pupils: pupils.csv")


def validate(folder: Path, config: str = CONFIG_TEMPLATE, panel: pd.DataFrame | None = None, **csv_options):
    (panel if panel is not None else make_panel()).to_csv(folder / "panel.csv", index=False, **csv_options)
    (folder / "config.yaml").write_text(config)
    return CliRunner().invoke(main, ["validate", str(folder / "config.yaml")])


def assert_data_error(result, *fragments):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.output.startswith("Error: ")
    for fragment in fragments:
        assert fragment in result.output, result.output


# ------------------------------------------------------------------ encodings
@pytest.mark.parametrize(("encoding", "named"), [("utf-16-le", "utf-16-le"), ("utf-16-be", "utf-16-be")])
def test_utf16_without_a_byte_order_mark_names_the_encoding_to_set(tmp_path, encoding, named):
    result = validate(tmp_path, encoding=encoding)
    assert_data_error(result, "panel.csv", "NUL bytes", f"data.panel.encoding: '{named}'")


def test_utf32_with_a_byte_order_mark_is_read(tmp_path):
    result = validate(tmp_path, encoding="utf-32")
    assert result.exit_code == 0, result.output
    assert "120 schools" in result.output


def test_a_latin1_file_names_the_line_and_column_of_the_first_bad_byte(tmp_path):
    panel = make_panel()
    panel["la"] = panel["la"].astype(str)
    panel.loc[4, "la"] = "Ealing é"  # data row 5 = line 6 of the file
    assert_data_error(validate(tmp_path, panel=panel, encoding="latin-1"), "panel.csv", "line 6, column 'la'",
                      "data.panel.encoding", "'cp1252'")


# ----------------------------------------------------------------- year range
def test_a_join_year_before_the_default_range_is_refused(tmp_path):
    panel = make_panel()
    panel.loc[panel["urn"] == panel["urn"].iloc[8], "join_year"] = 1985
    assert_data_error(validate(tmp_path, panel=panel), "'join_year' (join year)", "panel.csv", "1990–2100",
                      "data.year_range", "rows 9, 10, 11 …", "1985")


def test_data_year_range_can_be_widened_for_older_data(tmp_path):
    panel = make_panel()
    school = panel["urn"] == panel["urn"].iloc[8]
    panel.loc[school, ["join_year", "in_trust"]] = [1985, 1]
    config = CONFIG_TEMPLATE.replace("  panel: panel.csv", "  panel: panel.csv\n  year_range: [1980, 2100]")
    assert validate(tmp_path, config=config, panel=panel).exit_code == 0


def test_data_year_range_can_be_narrowed(tmp_path):
    config = CONFIG_TEMPLATE.replace("  panel: panel.csv", "  panel: panel.csv\n  year_range: [2013, 2100]")
    assert_data_error(validate(tmp_path, config=config), "Column 'year' (year)", "outside 2013–2100", "rows 1, 9, 17 …", "'2012'")


# --------------------------------------------------------------- trusts file
def trusts(**extra) -> pd.DataFrame:
    return pd.DataFrame({"trust_id": ["T01", "T02"], "collaboration_type": ["cultural", "expertise"], **extra})


@pytest.mark.parametrize("header", ["__import__('os')", "a/b", "x; rm -rf", "1st_year"])
def test_trusts_file_headers_that_are_code_or_paths_are_refused_by_validate(tmp_path, header):
    trusts(**{header: [1, 2]}).to_csv(tmp_path / "trusts.csv", index=False)
    assert_data_error(validate(tmp_path, config=TRUSTS_CONFIG), "data.trusts 'trusts.csv'", f"'{header}'",
                      "only letters, digits, '_' and spaces", "Rename")


def test_trusts_file_headers_that_clash_with_the_estimates_are_refused(tmp_path):
    trusts(estimate=[1, 2]).to_csv(tmp_path / "trusts.csv", index=False)
    assert_data_error(validate(tmp_path, config=TRUSTS_CONFIG), "'estimate'", "reserved")


def test_a_bad_trusts_file_is_reported_by_validate(tmp_path):
    trusts(common_budget=["yes", "perhaps"]).to_csv(tmp_path / "trusts.csv", index=False)
    assert_data_error(validate(tmp_path, config=TRUSTS_CONFIG), "'common_budget'", "yes or no", "'perhaps'")


def test_an_infinite_trust_size_is_refused(tmp_path):
    trusts(n_schools=["3", "inf"]).to_csv(tmp_path / "trusts.csv", index=False)
    assert_data_error(validate(tmp_path, config=TRUSTS_CONFIG), "'n_schools'", "'inf'")


def test_a_plain_trusts_file_passes(tmp_path):
    trusts(**{"n_schools": [3, 4], "Trust name": ["A", "B"]}).to_csv(tmp_path / "trusts.csv", index=False)
    assert validate(tmp_path, config=TRUSTS_CONFIG).exit_code == 0


# ---------------------------------------------------------------- pupils file
def pupils(att8, ks2=None) -> pd.DataFrame:
    panel = make_panel().head(6)
    frame = pd.DataFrame({"urn": panel["urn"], "year": panel["year"], "att8": att8})
    return frame if ks2 is None else frame.assign(fsm=ks2)


@pytest.mark.parametrize("value", ["inf", "-inf", "1e308"])
def test_non_finite_pupil_outcomes_are_refused_with_the_row(tmp_path, value):
    pupils(["40", "41", value, "43", "44", "45"]).to_csv(tmp_path / "pupils.csv", index=False)
    assert_data_error(validate(tmp_path, config=PUPILS_CONFIG), "'att8' (outcome)", "data.pupils 'pupils.csv'",
                      "row 3", value)


def test_non_finite_pupil_covariates_are_refused(tmp_path):
    pupils([40.0] * 6, ks2=[1.0, 2.0, 3.0, float("inf"), 5.0, 6.0]).to_parquet(tmp_path / "pupils.parquet")
    config = PUPILS_CONFIG.replace("pupils: pupils.csv", "pupils: pupils.parquet")
    assert_data_error(validate(tmp_path, config=config), "'fsm' (covariate)", "row 4", "inf")


def test_an_entirely_missing_pupil_outcome_is_refused(tmp_path):
    pupils(["c", "", "x", "c", "", "z"]).to_csv(tmp_path / "pupils.csv", index=False)
    assert_data_error(validate(tmp_path, config=PUPILS_CONFIG), "Outcome column 'att8'", "pupils.csv", "no values at all")


def test_run_writes_nothing_when_an_outcome_is_infinite(tmp_path):
    panel = make_panel()
    panel["att8"] = panel["att8"].astype(object)
    panel.loc[3, "att8"] = "inf"
    assert_data_error(validate(tmp_path, panel=panel), "row 4")
    result = CliRunner().invoke(main, ["run", str(tmp_path / "config.yaml"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and not (tmp_path / "out").exists()
