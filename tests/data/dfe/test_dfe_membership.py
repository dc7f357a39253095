"""Leavers, re-joiners and movers under each sources.movers rule; joins after the data; unmatched members."""

from __future__ import annotations

import pytest

from evaltool.data.dfe import assemble_sources
from evaltool.errors import DataError
from tests.data.dfe.dfe_files import MEMBERSHIP, options, write_layout

MOVERS = {"100014", "100015", "100016"}  # leaver, re-joiner, mover


def panel_years(panel, urn):
    return list(panel.loc[panel["urn"] == urn, "year"])


def test_movers_are_classified_and_counted(layout):
    folder, sources = layout
    report = assemble_sources(options(sources), folder).report["movers"]
    assert report == {"rule": "censor", "left": 1, "rejoined": 1, "moved": 1, "schools": 3,
                      "urns": ["100014", "100015", "100016"]}


def test_exclude_drops_the_schools_and_counts_their_rows(layout):
    folder, sources = layout
    assembled = assemble_sources(options(sources, movers="exclude"), folder)
    assert not set(assembled.panel["urn"]) & MOVERS
    excluded = next(e for e in assembled.report["exclusions"] if "sources.movers: exclude" in e["reason"])
    assert excluded["schools"] == 3 and excluded["rows"] == 15
    assert excluded["detail"] == {"left": 1, "rejoined": 1, "moved": 1}


def test_censor_drops_rows_from_leaving_on(layout):
    folder, sources = layout
    assembled = assemble_sources(options(sources, movers="censor"), folder)
    panel = assembled.panel
    assert panel_years(panel, "100014") == [2017, 2018]  # left 31/08/2018: out from 2018/19
    assert panel_years(panel, "100015") == [2017]  # left 31/08/2017, re-joined 2018: censored at first leaving
    assert panel_years(panel, "100016") == [2017, 2018]  # moved trust 1 September 2018
    leaver = panel[panel["urn"] == "100014"].iloc[0]
    assert (leaver["join_year"], leaver["leave_year"], leaver["trust_id"]) == (2017.0, 2019.0, "5002")
    censored = next(e for e in assembled.report["exclusions"] if e["reason"].startswith("censored at leaving"))
    assert censored["rows"] == 3 + 4 + 3 and censored["schools"] == 3


def test_first_trust_keeps_every_row_with_the_first_trust(layout):
    folder, sources = layout
    panel = assemble_sources(options(sources, movers="first_trust"), folder).panel
    mover = panel[panel["urn"] == "100016"].set_index("year")
    assert list(mover.index) == [2017, 2018, 2019, 2022, 2023]
    assert set(mover["trust_id"]) == {"5001"} and set(mover["join_year"]) == {2017.0}
    assert set(mover["leave_year"]) == {2019.0}
    assert list(mover["trust_size"]) == [3, 3, 0, 0, 0]  # in its first trust only until it left
    rejoiner = panel[panel["urn"] == "100015"].set_index("year")
    assert set(rejoiner["join_year"]) == {2017.0} and set(rejoiner["leave_year"]) == {2018.0}


def test_stayers_are_unaffected_by_the_rule(layout):
    folder, sources = layout
    panels = [assemble_sources(options(sources, movers=rule), folder).panel for rule in ("exclude", "censor",
                                                                                         "first_trust")]
    stayers = [p[~p["urn"].isin(MOVERS)].reset_index(drop=True) for p in panels]
    for other in stayers[1:]:
        assert other.equals(stayers[0])


def test_a_join_after_the_data_is_a_counted_exclusion(tmp_path):
    membership = MEMBERSHIP.replace("100011,Cedar High School,15/10/2021", "100011,Cedar High School,01/09/2024")
    sources = write_layout(tmp_path, membership=membership)
    assembled = assemble_sources(options(sources), tmp_path)
    late = next(e for e in assembled.report["exclusions"] if e["reason"] == "joins after the data")
    assert late["rows"] == 1 and late["schools"] == 1
    school = assembled.panel[assembled.panel["urn"] == "100011"]
    assert len(school) == 5 and school["join_year"].isna().all()


def test_membership_matching_no_table_is_an_error(tmp_path):
    membership = (
        "Group UID,Group ID,Group Name,Group Type,URN,Establishment Name,Date Joined Group,Date Left Group\n"
        "5001,TR05001,North Star Academy Trust,Multi-academy trust,200001,Ivy Primary Academy,01/09/2015,\n"
    )
    sources = write_layout(tmp_path, membership=membership)
    with pytest.raises(DataError) as error:
        assemble_sources(options(sources), tmp_path)
    assert "sources.gias_membership" in str(error.value) and "200001" in str(error.value)
    assert "same schools" in str(error.value)


def test_group_types_filter_is_counted(layout):
    folder, sources = layout
    assembled = assemble_sources(options(sources, group_types=["Multi-academy trust", "Single-academy trust"]),
                                 folder)
    assert assembled.panel.loc[assembled.panel["urn"] == "100010", "join_year"].eq(2015).all()
    assert assembled.report["pre_existing"] == 2
    default = assemble_sources(options(sources), folder)
    skipped = next(e for e in default.report["exclusions"] if "group type" in e["reason"])
    assert skipped["rows"] == 1 and skipped["detail"] == {"Single-academy trust": 1}
