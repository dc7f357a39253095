"""Markers in numeric columns: each kind becomes missing with its meaning kept and counted by column and year."""

from __future__ import annotations

import numpy as np
import pytest

from evaltool.data.dfe import DFE_MARKERS, assemble_sources
from evaltool.errors import DataError
from tests.data.dfe.dfe_files import KS4, KS4_HEADER, options, write_layout


def counts(report) -> dict[tuple[str, str, int], int]:
    return {(m["marker"], m["column"], m["year"]): m["count"] for m in report["markers"]}


def test_every_marker_kind_is_missing_and_counted_with_its_meaning(layout):
    folder, sources = layout
    assembled = assemble_sources(options(sources), folder)
    found = counts(assembled.report)
    expected = {
        ("NE", "P8MEA", 2017), ("SUPP", "ATT8SCR_FSM6CLA1A", 2017), ("c", "TFSM6CLA1A", 2017),
        ("NP", "ATT8SCR", 2017), ("x", "ATT8SCR_FSM6CLA1A", 2017), ("z", "TFSM6CLA1A", 2017),
        ("NA", "P8MEA", 2017), ("DNS", "P8MEA", 2017), ("u", "ATT8SCR_FSM6CLA1A", 2017),
        ("k", "TFSM6CLA1A", 2017), ("..", "ATT8SCR_FSM6CLA1A", 2017), ("LOWCOV", "ATT8SCR_FSM6CLA1A", 2018),
        ("NEW", "ATT8SCR", 2018), ("LOW", "P8MEA", 2018),
    }
    assert set(found) == expected and all(v == 1 for v in found.values())
    assert {m for m, _, _ in expected} == set(DFE_MARKERS)
    meanings = {m["marker"]: m["meaning"] for m in assembled.report["markers"]}
    assert meanings["SUPP"] == "suppressed" and meanings["k"].startswith("rounds to zero")
    tidy = {(m["marker"], m["tidy"]) for m in assembled.report["markers"]}
    assert ("NP", "attainment8") in tidy
    panel = assembled.panel.set_index(["urn", "year"])
    assert np.isnan(panel.loc[("100012", 2017), "attainment8"])  # NP
    assert np.isnan(panel.loc[("100012", 2018), "attainment8"])  # NEW
    sub = assembled.subgroups.set_index(["urn", "year", "subgroup"])
    assert np.isnan(sub.loc[("100015", 2017, "disadvantaged"), "n_pupils"])  # k: missing, not 0


def test_blank_cells_are_counted_as_blank(tmp_path):
    ks4 = dict(KS4)
    ks4["2016-2017_england_ks4final.csv"] = ks4["2016-2017_england_ks4final.csv"].replace(
        "100010,Brook Valley School,202,1000,180,50.1,", "100010,Brook Valley School,202,1000,180,,"
    )
    sources = write_layout(tmp_path, ks4=ks4)
    found = counts(assemble_sources(options(sources), tmp_path).report)
    assert found[("", "ATT8SCR", 2017)] == 1


def test_summary_rows_markers_are_not_counted(tmp_path):
    ks4 = dict(KS4)
    ks4["2016-2017_england_ks4final.csv"] = ks4["2016-2017_england_ks4final.csv"].replace(
        ",ENGLAND,,,540000,46.7", ",ENGLAND,,,540000,SUPP"
    )
    sources = write_layout(tmp_path, ks4=ks4)
    found = counts(assemble_sources(options(sources), tmp_path).report)
    assert ("SUPP", "ATT8SCR", 2017) not in found


def test_an_unknown_marker_names_file_column_row_and_value(tmp_path):
    ks4 = dict(KS4)
    ks4["2017-2018_england_ks4final.csv"] = ks4["2017-2018_england_ks4final.csv"].replace(
        "100013,Elm Park Academy,203,1105,201,52.0", "100013,Elm Park Academy,203,1105,201,-"
    )
    sources = write_layout(tmp_path, ks4=ks4)
    with pytest.raises(DataError) as error:
        assemble_sources(options(sources), tmp_path)
    message = str(error.value)
    for fragment in ("'ATT8SCR'", "2017-2018_england_ks4final.csv", "data row 5 (line 6)", "'-'",
                     "sources.markers"):
        assert fragment in message, message
    # declared, it is a marker like the others
    assembled = assemble_sources(options(sources, markers={"-": "not available"}), tmp_path)
    assert counts(assembled.report)[("-", "ATT8SCR", 2018)] == 1


def test_markers_are_case_sensitive_and_the_message_suggests_the_published_one(tmp_path):
    ks4 = dict(KS4)
    ks4["2017-2018_england_ks4final.csv"] = ks4["2017-2018_england_ks4final.csv"].replace(
        "100013,Elm Park Academy,203,1105,201,52.0", "100013,Elm Park Academy,203,1105,201,supp"
    )
    sources = write_layout(tmp_path, ks4=ks4)
    with pytest.raises(DataError, match=r"did you mean 'SUPP'"):
        assemble_sources(options(sources), tmp_path)


def test_header_of_the_standard_fixture_is_the_ks4_layout():
    assert KS4_HEADER.split(",")[:3] == ["URN", "SCHNAME", "LEA"]
