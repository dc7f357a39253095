"""Bad input: a DataError naming file, column, row, what was found and the fix; never a traceback."""

from __future__ import annotations

import pytest

from evaltool.data.dfe import assemble_sources
from evaltool.errors import DataError
from tests.data.dfe.dfe_files import ESTABLISHMENTS, KS4, MEMBERSHIP, options, write_layout, write_text


def refused(tmp_path, sources, *fragments, **changes):
    with pytest.raises(DataError) as error:
        assemble_sources(options(sources, **changes), tmp_path)
    message = str(error.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_a_cp1252_file_is_read_and_a_utf8_one_too(tmp_path):
    sources = write_layout(tmp_path)
    assembled = assemble_sources(options(sources), tmp_path)
    membership = next(f for f in assembled.report["files"] if f["kind"] == "gias_membership")
    assert membership["encoding"] == "cp1252"
    write_text(tmp_path / "gias" / "academiesmatmembership.csv", MEMBERSHIP, encoding="utf-8")
    again = assemble_sources(options(sources), tmp_path)
    assert again.trusts.set_index("trust_id").loc["5002", "trust_name"] == "Ríver Schools Trust"


def test_wrong_encoding_names_the_file_line_and_encoding_key(tmp_path):
    sources = write_layout(tmp_path)
    path = tmp_path / "gias" / "academiesmatmembership.csv"
    path.write_bytes(path.read_bytes().replace(b"R\xedver", b"R\x81ver"))  # 0x81: not cp1252 (nor UTF-8)
    refused(tmp_path, sources, "academiesmatmembership.csv", "line 7", "sources.gias_membership.encoding")


def test_utf16_without_a_byte_order_mark_names_the_encoding(tmp_path):
    sources = write_layout(tmp_path)
    write_text(tmp_path / "gias" / "links_edubasealldata20240101.csv", "URN,LinkURN\n100001,100002\n",
               encoding="utf-16-le")
    refused(tmp_path, sources, "NUL bytes", "sources.gias_links.encoding: 'utf-16-le'")


@pytest.mark.parametrize(
    ("value", "why"),
    [("2019-09-01", "not written dd/mm/yyyy"), ("13/13/2019", "not a calendar date"),
     ("09/13/2019", "month-first"), ("31/02/2019", "not a calendar date"), ("Sept 2019", "not written dd/mm/yyyy")],
)
def test_dates_that_are_not_day_first_are_refused(tmp_path, value, why):
    membership = MEMBERSHIP.replace("100013,Elm Park Academy,01/09/2010", f"100013,Elm Park Academy,{value}")
    sources = write_layout(tmp_path, membership=membership)
    refused(tmp_path, sources, "'Date Joined Group'", "academiesmatmembership.csv", f"{value!r}",
            "data row 6 (line 7)", why, "dd/mm/yyyy")


def test_a_bad_open_date_in_the_establishments_is_refused(tmp_path):
    establishments = ESTABLISHMENTS.replace("01/09/2017,31/08/2019", "2017-09-01,31/08/2019")
    sources = write_layout(tmp_path, establishments=establishments)
    refused(tmp_path, sources, "'OpenDate'", "edubasealldata20240101.csv", "'2017-09-01'", "data row 2")


@pytest.mark.parametrize("urn", ["10001", "1000011", "A00001", "100001.0"])
def test_a_urn_that_is_not_six_digits_is_refused(tmp_path, urn):
    ks4 = dict(KS4)
    ks4["2018-2019_england_ks4final.csv"] = ks4["2018-2019_england_ks4final.csv"].replace("100012,", f"{urn},")
    sources = write_layout(tmp_path, ks4=ks4)
    message = refused(tmp_path, sources, "Column 'URN'", "2018-2019_england_ks4final.csv", repr(urn),
                      "data row 4 (line 5)", "6-digit")
    if urn.endswith(".0"):
        assert "decimals" in message


def test_a_bad_urn_in_the_links_is_refused(tmp_path):
    from tests.data.dfe.dfe_files import LINKS

    sources = write_layout(tmp_path, links=LINKS.replace("100002,100003,", "100002,10003,"))
    refused(tmp_path, sources, "Column 'LinkURN'", "sources.gias_links", "'10003'", "data row 3")


def test_duplicate_urn_rows_in_one_file_are_refused(tmp_path):
    ks4 = dict(KS4)
    ks4["2018-2019_england_ks4final.csv"] += "100013,Elm Park Academy,203,1110,202,52.4,0.31,8.6%,44.3,17,53.3,185\n"
    sources = write_layout(tmp_path, ks4=ks4)
    refused(tmp_path, sources, "URN 100013", "more than one row", "data rows 5, 9", "2018-2019_england_ks4final.csv")


def test_overlapping_files_with_the_same_values_are_merged_and_counted(tmp_path):
    ks4 = dict(KS4)
    ks4["2018-2019_england_ks4provisional.csv"] = KS4["2018-2019_england_ks4final.csv"]
    sources = write_layout(tmp_path, ks4=ks4)
    sources["performance_tables"] = ["ks4/*_england_ks4*.csv"]
    assembled = assemble_sources(options(sources), tmp_path)
    assert len(assembled.panel) == 30
    copies = next(e for e in assembled.report["exclusions"] if e["reason"].startswith("identical copy"))
    assert copies["rows"] == 8 and copies["detail"]["years"] == [2019]


def test_overlapping_files_with_different_values_are_refused(tmp_path):
    ks4 = dict(KS4)
    ks4["2018-2019_england_ks4provisional.csv"] = KS4["2018-2019_england_ks4final.csv"].replace(
        "100013,Elm Park Academy,203,1110,202,52.4", "100013,Elm Park Academy,203,1110,202,51.9"
    )
    sources = write_layout(tmp_path, ks4=ks4)
    sources["performance_tables"] = ["ks4/*_england_ks4*.csv"]
    refused(tmp_path, sources, "exam year 2019 disagree", "URN 100013", "'ATT8SCR' (attainment8)",
            "2018-2019_england_ks4final.csv", "2018-2019_england_ks4provisional.csv", "52.4", "51.9")


def test_a_file_name_without_a_year_needs_year(tmp_path):
    sources = write_layout(tmp_path, ks4={"england_ks4final.csv": KS4["2018-2019_england_ks4final.csv"]})
    sources["performance_tables"] = ["ks4/england_ks4final.csv"]
    refused(tmp_path, sources, "cannot tell the exam year", "england_ks4final.csv", "year: 2019")
    sources["performance_tables"] = [{"path": "ks4/england_ks4final.csv", "year": 2019}]
    assert set(assemble_sources(options(sources), tmp_path).panel["year"]) == {2019}


def test_a_glob_matching_nothing_and_a_missing_file(tmp_path):
    sources = write_layout(tmp_path)
    refused(tmp_path, {**sources, "performance_tables": ["ks2/*.csv"]}, "sources.performance_tables[0]",
            "matches no file")
    refused(tmp_path, {**sources, "gias_links": "gias/links.csv"}, "sources.gias_links", "does not exist")


def test_a_table_without_urn_or_outcome_columns_names_the_preset(tmp_path):
    ks4 = {name: text.replace("URN,", "SCHOOL_URN,", 1) for name, text in KS4.items()}
    sources = write_layout(tmp_path, ks4=ks4)
    refused(tmp_path, sources, "no column 'URN'", "sources.columns")
    sources = write_layout(tmp_path / "b", ks4={n: t.replace(",ATT8SCR,", ",ATT8,", 1) for n, t in KS4.items()})
    refused(tmp_path / "b", sources, "'ATT8SCR'", "sources.preset")


def test_a_custom_column_map_renames_and_must_exist(tmp_path):
    sources = write_layout(tmp_path)
    panel = assemble_sources(options(sources, columns={"ATT8SCR": "att8"}), tmp_path).panel
    assert "att8" in panel.columns and "attainment8" not in panel.columns
    refused(tmp_path, sources, "'ATT8SCR_EBACC'", "found in none", columns={"ATT8SCR_EBACC": "ebacc"})


def test_leaving_before_joining_is_refused(tmp_path):
    membership = MEMBERSHIP.replace("100014,Fir Tree School,01/09/2016,31/08/2018",
                                    "100014,Fir Tree School,01/09/2016,31/08/2015")
    sources = write_layout(tmp_path, membership=membership)
    refused(tmp_path, sources, "URN 100014", "before joining", "data row 7 (line 8)")


def test_a_year_outside_the_range_is_refused(tmp_path):
    sources = write_layout(tmp_path)
    with pytest.raises(DataError, match=r"outside 2018–2100"):
        assemble_sources(options(sources), tmp_path, year_range=(2018, 2100))
