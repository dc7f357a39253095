"""The assembled panel of the standard fixture: URN chains, cohorts, conversion, gap years, subgroups."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from evaltool.data.dfe import assemble_sources
from tests.data.dfe.dfe_files import ESTABLISHMENTS, KS4, LINKS, MEMBERSHIP, options, write_layout


@pytest.fixture
def assembled(layout):
    folder, sources = layout
    return assemble_sources(options(sources), folder)


def rows(panel: pd.DataFrame, urn: str) -> pd.DataFrame:
    return panel[panel["urn"] == urn].set_index("year")


def test_one_row_per_identity_and_year_sorted_with_the_spec_columns(assembled):
    panel = assembled.panel
    assert not panel.duplicated(["urn", "year"]).any()
    assert panel.equals(panel.sort_values(["urn", "year"]).reset_index(drop=True))
    for column in ("urn", "source_urn", "urns", "year", "la_code", "region", "phase", "establishment_type",
                   "attainment8", "progress8", "fsm_pct", "cohort_size", "total_pupils", "join_year", "leave_year",
                   "trust_id", "trust_size", "pre_existing", "academy", "converted_year"):
        assert column in panel.columns, column
    assert panel["join_year"].dtype == float and panel["year"].dtype.kind == "i"
    assert sorted(panel["year"].unique()) == [2017, 2018, 2019, 2022, 2023]
    json.dumps(assembled.report)  # JSON-serialisable


def test_a_three_link_chain_is_one_school_with_its_original_urns_kept(assembled):
    school = rows(assembled.panel, "100003")
    assert list(school.index) == [2017, 2018, 2019, 2022, 2023]
    assert list(school["source_urn"]) == ["100001", "100002", "100002", "100003", "100003"]
    assert set(school["urns"]) == {"100001;100002;100003"}
    merges = assembled.report["urn_merges"]
    assert merges["n_chains"] == 1 and merges["n_urns_merged"] == 3 and merges["longest_chain"] == 3
    assert merges["chains"] == [{"urn": "100003", "urns": ["100001", "100002", "100003"]}]
    # a URN change inside one trust is one membership, not a move
    assert set(school["join_year"]) == {2018.0} and school["leave_year"].isna().all()
    assert "100003" not in assembled.report["movers"]["urns"]


def test_conversion_from_the_links_and_open_dates(assembled):
    school = rows(assembled.panel, "100003")
    assert set(school["converted_year"]) == {2018.0}  # Academy converter opened 01/09/2017 → 2017/18
    assert list(school["academy"]) == [0, 1, 1, 1, 1]
    assert rows(assembled.panel, "100010")["academy"].eq(0).all()  # a foundation school
    assert rows(assembled.panel, "100010")["converted_year"].isna().all()
    assert set(rows(assembled.panel, "100011")["converted_year"]) == {2012.0}  # opened 01/04/2012: 2011/12


def test_conversion_none_leaves_the_columns_out(layout):
    folder, sources = layout
    panel = assemble_sources(options(sources, conversion="none"), folder).panel
    assert "academy" not in panel.columns and "converted_year" not in panel.columns


def test_establishment_attributes_come_from_each_rows_own_urn(assembled):
    school = rows(assembled.panel, "100003")
    assert school.loc[2017, "establishment_type"] == "Community school"
    assert school.loc[2018, "establishment_type"] == "Academy converter"
    assert set(assembled.panel["region"]) == {"London"} and set(assembled.panel["phase"]) == {"Secondary"}
    assert school.loc[2017, "la_code"] == "201"


def test_join_years_by_the_1_september_cut_off(assembled):
    join = assembled.panel.groupby("urn")["join_year"].first()
    assert join["100011"] == 2022  # 15/10/2021: academic year 2021/22
    assert join["100012"] == 2021  # 01/03/2021: 2020/21
    assert join["100013"] == 2011
    assert np.isnan(join["100010"])  # its single-academy trust is not a listed group type
    assert (assembled.panel.loc[assembled.panel["urn"] == "100010", "trust_id"] == "").all()


def test_a_configured_cut_off_moves_a_join_date_before_it_into_the_next_year(tmp_path):
    membership = MEMBERSHIP.replace("100011,Cedar High School,15/10/2021", "100011,Cedar High School,15/08/2021")
    sources = write_layout(tmp_path, membership=membership)
    default = assemble_sources(options(sources), tmp_path).panel
    august = assemble_sources(options(sources, join_cutoff="08-01"), tmp_path).panel
    assert rows(default, "100011")["join_year"].iloc[0] == 2021  # 15/08/2021 before 1 September: 2020/21
    assert rows(august, "100011")["join_year"].iloc[0] == 2022  # on/after 1 August: 2021/22


def test_pre_existing_members_are_flagged_and_counted(assembled):
    flagged = assembled.panel.groupby("urn")["pre_existing"].first()
    assert flagged["100013"] and not flagged.drop("100013").any()
    assert assembled.report["pre_existing"] == 1


def test_trust_size_by_year_counts_every_member_of_any_phase(assembled):
    size = assembled.panel.set_index(["urn", "year"])["trust_size"]
    # trust 5001: Hill Top (until it leaves for 5002 in 2018) and two primaries, then Cedar High and Dale
    assert size[("100011", 2019)] == 0  # not yet a member
    assert size[("100011", 2022)] == 4  # 100011, 100012, 200001, 200002
    assert size[("100016", 2017)] == 3  # 100016, 200001, 200002
    # trust 5002: Elm Park, Fir Tree, Grove in 2017; Grove away in 2017/18
    assert size[("100013", 2017)] == 3 and size[("100013", 2018)] == 2 and size[("100013", 2019)] == 3
    assert size[("100003", 2017)] == 0 and size[("100003", 2018)] == 1
    trusts = assembled.trusts.set_index("trust_id")
    assert trusts.loc["5001", "n_schools"] == 5 and trusts.loc["5002", "trust_name"] == "Ríver Schools Trust"


def test_the_covid_gap_is_never_interpolated_and_counted_as_a_longer_baseline(assembled):
    panel = assembled.panel
    assert not panel["year"].isin([2020, 2021]).any()
    longer = assembled.report["longer_baseline"]
    assert longer["urns"] == ["100011", "100012"] and longer["by_join_year"] == {"2021": 1, "2022": 1}
    assert assembled.report["gap_years"]["years"] == [2020, 2021] and assembled.report["gap_years"]["with_tables"] == []
    reasons = " ".join(e["reason"] for e in assembled.report["exclusions"])
    assert "attrition" not in reasons
    # both keep every row: their baseline is 2019, the last published year before joining
    assert list(rows(panel, "100011").index) == [2017, 2018, 2019, 2022, 2023]
    assert list(rows(panel, "100012").index) == [2017, 2018, 2019, 2022, 2023]


def test_summary_rows_percent_suffixes_and_subgroups(assembled):
    assert assembled.report["files"][0]["summary_rows"] == 1
    summary = [e for e in assembled.report["exclusions"] if e["reason"].startswith("summary row")]
    assert summary[0]["rows"] == 1
    assert rows(assembled.panel, "100003").loc[2017, "fsm_pct"] == pytest.approx(27.3)  # "27.3%"
    sub = assembled.subgroups
    assert list(sub.columns) == ["urn", "year", "subgroup_type", "subgroup", "n_pupils", "attainment8"]
    cell = sub[(sub["urn"] == "100003") & (sub["year"] == 2017) & (sub["subgroup"] == "disadvantaged")]
    assert cell["n_pupils"].item() == 40 and cell["attainment8"].item() == pytest.approx(38.1)
    # subgroup rows follow the panel's rows: none for censored school-years
    assert not sub[(sub["urn"] == "100016") & (sub["year"] >= 2019)].shape[0]


def test_every_dropped_row_is_in_the_report(assembled):
    report = assembled.report
    read = report["steps"][0]
    assert read["rows_in"] == 41 and read["rows_out"] == 40
    dropped_rows = sum(e["rows"] for e in report["exclusions"] if e["step"] in ("read tables", "membership")
                       and "membership row" not in e["reason"])
    assert report["steps"][0]["rows_in"] - len(assembled.panel) == dropped_rows
    for step in report["steps"][:-1]:
        assert step["rows_out"] <= step["rows_in"]
    assert set(assembled.files) >= {"sources.gias_links", "sources.gias_membership", "sources.gias_establishments"}
    assert report["membership_unmatched"]["schools"] == 2
    assert report["membership_unmatched"]["examples"] == ["200001", "200002"]


def test_shuffled_files_give_the_same_panel(tmp_path, layout):
    folder, sources = layout
    expected = assemble_sources(options(sources), folder).panel
    shuffled = {}
    for name, text in KS4.items():
        header, *lines = text.strip("\n").split("\n")
        shuffled[name] = "\n".join([header, *reversed(lines)]) + "\n"
    links = LINKS.strip("\n").split("\n")
    members = MEMBERSHIP.strip("\n").split("\n")
    other = tmp_path / "shuffled"
    sources2 = write_layout(
        other, ks4=shuffled, establishments=ESTABLISHMENTS,
        links="\n".join([links[0], *reversed(links[1:])]) + "\n",
        membership="\n".join([members[0], *reversed(members[1:])]) + "\n",
    )
    pd.testing.assert_frame_equal(assemble_sources(options(sources2), other).panel, expected)


def test_without_gias_files_urns_stay_separate_and_nobody_joins(tmp_path):
    sources = write_layout(tmp_path, establishments=None, links=None, membership=None)
    assembled = assemble_sources(options(sources), tmp_path)
    panel = assembled.panel
    assert panel["urn"].nunique() == 10 and panel["join_year"].isna().all() and (panel["trust_size"] == 0).all()
    assert assembled.trusts is None and assembled.report["urn_merges"]["n_chains"] == 0


def test_links_without_establishments_take_successors_as_academies(tmp_path):
    sources = write_layout(tmp_path, establishments=None)
    school = rows(assemble_sources(options(sources), tmp_path).panel, "100003")
    assert set(school["converted_year"]) == {2018.0}  # from LinkEstablishedDate 01/09/2017
    assert list(school["academy"]) == [0, 1, 1, 1, 1]
