"""URN chains: chains merged; cycles and amalgamations/splits detected, reported and not merged."""

from __future__ import annotations

import pandas as pd

from evaltool.data.dfe import assemble_sources
from evaltool.data.dfe.urns import resolve_chains
from tests.data.dfe.dfe_files import LINKS, options, write_layout


def edges(*pairs, branching=()):
    frame = pd.DataFrame(pairs, columns=["pred", "succ"])
    frame["branching"] = [(p, s) in branching for p, s in pairs]
    frame["link_type"] = ["Successor - amalgamated" if b else "Successor" for b in frame["branching"]]
    return frame


def test_chains_of_any_length_take_the_latest_urn():
    resolved = resolve_chains(edges(("100001", "100002"), ("100002", "100003"), ("100003", "100004"),
                                    ("100010", "100011")))
    mapping = resolved.mapping.set_index("urn")
    assert set(mapping.loc[["100001", "100002", "100003", "100004"], "identity"]) == {"100004"}
    assert list(mapping.loc[["100001", "100002", "100003", "100004"], "position"]) == [0, 1, 2, 3]
    assert mapping.loc["100010", "identity"] == "100011"
    assert resolved.report["urn_merges"]["longest_chain"] == 4 and resolved.report["urn_merges"]["n_chains"] == 2


def test_a_cycle_is_detected_reported_and_not_merged():
    resolved = resolve_chains(edges(("100030", "100031"), ("100031", "100032"), ("100032", "100030")))
    assert resolved.mapping.empty
    assert resolved.report["cycles"] == [
        {"urns": ["100030", "100031", "100032"], "reason": "the links lead back to a URN of the chain"}
    ]


def test_amalgamation_and_split_are_listed_not_merged():
    resolved = resolve_chains(
        edges(("100020", "100022"), ("100021", "100022"), ("100040", "100041"), ("100040", "100042"),
              ("100050", "100051"), branching={("100050", "100051")})
    )
    assert resolved.mapping.empty
    listed = {tuple(b["urns"]): b["reason"] for b in resolved.report["branching"]}
    assert listed[("100020", "100021", "100022")] == "amalgamation: 100022 has 2 predecessors"
    assert listed[("100040", "100041", "100042")] == "split: 100040 has 2 successors"
    assert listed[("100050", "100051")] == "link type 'Successor - amalgamated'"


def test_in_the_panel_branching_and_cycle_urns_stay_separate_schools(tmp_path):
    links = LINKS + (
        "100011,100012,Dale Academy,Successor - amalgamated,01/09/2020\n"
        "100014,100015,Grove School,Successor,01/09/2018\n"
        "100015,100014,Fir Tree School,Successor,01/09/2019\n"
    )
    sources = write_layout(tmp_path, links=links)
    assembled = assemble_sources(options(sources), tmp_path)
    assert {"100011", "100012", "100014", "100015"} <= set(assembled.panel["urn"])
    assert assembled.report["cycles"][0]["urns"] == ["100014", "100015"]
    assert assembled.report["branching"][0]["urns"] == ["100011", "100012"]
    assert assembled.report["urn_merges"]["n_chains"] == 1  # the Ashby chain only


def test_a_link_listed_from_both_ends_is_one_edge_and_other_link_types_are_counted(layout):
    folder, sources = layout
    assembled = assemble_sources(options(sources), folder)
    links = next(f for f in assembled.report["files"] if f["kind"] == "gias_links")
    assert links["ignored_link_types"] == {"Sixth Form Centre Link": 1}
    assert any(e["reason"].startswith("link not used") and e["rows"] == 1 for e in assembled.report["exclusions"])


def test_a_predecessor_row_in_its_successors_year_is_dropped_and_counted(tmp_path):
    from tests.data.dfe.dfe_files import KS4

    ks4 = dict(KS4)
    ks4["2017-2018_england_ks4final.csv"] += "100001,Ashby Community School,201,900,150,45.9,0.0,27.0%,38.0,40,47.0,110\n"
    sources = write_layout(tmp_path, ks4=ks4)
    assembled = assemble_sources(options(sources), tmp_path)
    school = assembled.panel[(assembled.panel["urn"] == "100003") & (assembled.panel["year"] == 2018)]
    assert school["source_urn"].item() == "100002"
    dropped = [e for e in assembled.report["exclusions"] if e["reason"].startswith("a predecessor URN")]
    assert dropped[0]["rows"] == 1 and dropped[0]["detail"] == ["100001"]
