"""Hand-built DfE/GIAS files in the published layouts (a few schools each), written out in full.

The schools of the standard fixture (KS4 tables for 2017, 2018, 2019, 2022 and 2023: none for the
cancelled-exam years 2020 and 2021):

- 100001 → 100002 → 100003: a 3-link URN chain (maintained school, converter academy opened 01/09/2017,
  re-registered 01/09/2019), in trust 5003 from 01/09/2017 (the URN change inside the trust is not a move);
- 100010: never joins;
- 100011: joins trust 5001 on 15/10/2021 (exam year 2022, baseline 2019 across the gap);
- 100012: joins trust 5001 on 01/03/2021 (exam year 2021, a gap year; baseline 2019);
- 100013: joined trust 5002 in 2010 (pre-existing);
- 100014: leaver: trust 5002 from 01/09/2016, left 31/08/2018 (leave_year 2019);
- 100015: re-joiner: trust 5002 01/09/2016–31/08/2017, again from 01/09/2018;
- 100016: mover: trust 5001 from 01/09/2016 to 31/08/2018, trust 5002 from 01/09/2018;
- 200001, 200002: primary academies in trust 5001 (no KS4 table: counted in trust size only).
"""

from __future__ import annotations

from pathlib import Path

from evaltool.config.sources import SourcesOptions

KS4_HEADER = (
    "URN,SCHNAME,LEA,TOTPUPS,TPUP,ATT8SCR,P8MEA,PTFSM6CLA1A,"
    "ATT8SCR_FSM6CLA1A,TFSM6CLA1A,ATT8SCR_NFSM6CLA1A,TNOTFSM6CLA1A"
)

KS4 = {
    "2016-2017_england_ks4final.csv": (
        f"{KS4_HEADER}\n"
        "100001,Ashby Community School,201,900,150,45.2,NE,27.3%,38.1,40,47.9,110\n"
        "100010,Brook Valley School,202,1000,180,50.1,0.12,12.0%,41.0,20,51.3,160\n"
        "100011,Cedar High School,202,800,140,44.0,-0.2,30.1%,SUPP,c,46.0,100\n"
        "100012,Dale Academy,203,700,120,NP,-0.05,25.0%,37.5,30,46.1,90\n"
        "100013,Elm Park Academy,203,1100,200,52.3,0.3,8.5%,x,z,53.0,190\n"
        "100014,Fir Tree School,204,950,160,47.0,NA,18.2%,39.0,30,49.0,130\n"
        "100015,Grove School,204,600,100,43.1,DNS,22.0%,u,k,45.0,80\n"
        "100016,Hill Top School,205,1200,210,49.9,0.05,15.5%,..,5,50.5,180\n"
        ",ENGLAND,,,540000,46.7,-0.03,26.0%,36.7,143816,50.3,398805\n"
    ),
    "2017-2018_england_ks4final.csv": (
        f"{KS4_HEADER}\n"
        "100002,Ashby Academy,201,910,152,46.0,0.01,26.0%,39.0,38,48.5,114\n"
        "100010,Brook Valley School,202,1010,181,50.3,0.10,11.8%,41.2,21,51.6,160\n"
        "100011,Cedar High School,202,805,141,44.5,-0.18,29.9%,LOWCOV,15,46.2,126\n"
        "100012,Dale Academy,203,705,121,NEW,LOW,24.0%,37.9,29,46.4,92\n"
        "100013,Elm Park Academy,203,1105,201,52.0,0.28,8.7%,44.0,17,53.1,184\n"
        "100014,Fir Tree School,204,955,161,47.5,0.0,18.0%,39.5,29,49.6,132\n"
        "100015,Grove School,204,605,101,43.6,-0.3,21.5%,36.0,22,45.7,79\n"
        "100016,Hill Top School,205,1205,211,50.2,0.07,15.0%,42.1,32,51.6,179\n"
    ),
    "2018-2019_england_ks4final.csv": (
        f"{KS4_HEADER}\n"
        "100002,Ashby Academy,201,920,155,46.8,0.05,25.5%,39.6,40,49.0,115\n"
        "100010,Brook Valley School,202,1020,182,50.6,0.11,11.5%,41.5,21,51.9,161\n"
        "100011,Cedar High School,202,810,142,44.9,-0.15,29.5%,37.2,42,48.1,100\n"
        "100012,Dale Academy,203,710,122,42.2,-0.01,23.8%,38.3,29,43.4,93\n"
        "100013,Elm Park Academy,203,1110,202,52.4,0.31,8.6%,44.3,17,53.3,185\n"
        "100014,Fir Tree School,204,960,162,47.9,0.02,17.7%,39.8,29,49.7,133\n"
        "100015,Grove School,204,610,102,44.0,-0.25,21.0%,36.4,21,46.0,81\n"
        "100016,Hill Top School,205,1210,212,50.5,0.09,14.8%,42.5,31,52.0,181\n"
    ),
    "2021-2022_england_ks4final.csv": (
        f"{KS4_HEADER}\n"
        "100003,Ashby Academy,201,930,157,48.0,0.10,25.0%,40.2,39,50.3,118\n"
        "100010,Brook Valley School,202,1030,183,51.0,0.12,11.0%,42.0,20,52.2,163\n"
        "100011,Cedar High School,202,815,143,46.1,-0.05,29.0%,38.5,41,49.3,102\n"
        "100012,Dale Academy,203,715,123,43.5,0.04,23.0%,39.0,28,44.8,95\n"
        "100013,Elm Park Academy,203,1115,203,52.9,0.33,8.4%,44.8,17,53.9,186\n"
        "100014,Fir Tree School,204,965,163,48.1,0.03,17.5%,40.1,28,50.0,135\n"
        "100015,Grove School,204,615,103,44.8,-0.2,20.8%,37.0,21,46.9,82\n"
        "100016,Hill Top School,205,1215,213,51.0,0.12,14.5%,43.0,31,52.6,182\n"
    ),
    "2022-2023_england_ks4final.csv": (
        f"{KS4_HEADER}\n"
        "100003,Ashby Academy,201,935,158,48.4,0.12,24.6%,40.6,39,50.7,119\n"
        "100010,Brook Valley School,202,1035,184,51.2,0.13,10.9%,42.2,20,52.4,164\n"
        "100011,Cedar High School,202,820,144,46.9,0.02,28.7%,39.4,41,50.0,103\n"
        "100012,Dale Academy,203,720,124,44.0,0.08,22.5%,39.5,28,45.2,96\n"
        "100013,Elm Park Academy,203,1120,204,53.0,0.34,8.3%,45.0,17,54.0,187\n"
        "100014,Fir Tree School,204,970,164,48.3,0.04,17.2%,40.3,28,50.2,136\n"
        "100015,Grove School,204,620,104,45.2,-0.18,20.5%,37.5,21,47.3,83\n"
        "100016,Hill Top School,205,1220,214,51.3,0.13,14.4%,43.3,31,52.9,183\n"
    ),
}

ESTABLISHMENTS = (
    "URN,EstablishmentName,TypeOfEstablishment (name),EstablishmentTypeGroup (name),PhaseOfEducation (name),"
    "LA (code),LA (name),GOR (name),OpenDate,CloseDate,FederationFlag (name)\n"
    "100001,Ashby Community School,Community school,Local authority maintained schools,Secondary,201,"
    "City of London,London,,31/08/2017,Not applicable\n"
    "100002,Ashby Academy,Academy converter,Academies,Secondary,201,City of London,London,01/09/2017,31/08/2019,"
    "Not applicable\n"
    "100003,Ashby Academy,Academy converter,Academies,Secondary,201,City of London,London,01/09/2019,,"
    "Not applicable\n"
    "100010,Brook Valley School,Foundation school,Local authority maintained schools,Secondary,202,Camden,London,"
    ",,Supported by a federation\n"
    "100011,Cedar High School,Academy converter,Academies,Secondary,202,Camden,London,01/04/2012,,Not applicable\n"
    "100012,Dale Academy,Academy sponsor led,Academies,Secondary,203,Greenwich,London,01/09/2013,,Not applicable\n"
    "100013,Elm Park Academy,Academy converter,Academies,Secondary,203,Greenwich,London,01/09/2010,,Not applicable\n"
    "100014,Fir Tree School,Academy converter,Academies,Secondary,204,Hackney,London,01/09/2016,,Not applicable\n"
    "100015,Grove School,Academy converter,Academies,Secondary,204,Hackney,London,01/09/2016,,Not applicable\n"
    "100016,Hill Top School,Academy converter,Academies,Secondary,205,Hammersmith and Fulham,London,01/09/2016,,"
    "Not applicable\n"
    "200001,Ivy Primary Academy,Academy converter,Academies,Primary,202,Camden,London,01/09/2015,,Not applicable\n"
    "200002,Juniper Primary Academy,Academy converter,Academies,Primary,202,Camden,London,01/09/2015,,"
    "Not applicable\n"
)

LINKS = (
    "URN,LinkURN,LinkName,LinkType,LinkEstablishedDate\n"
    "100001,100002,Ashby Academy,Successor,01/09/2017\n"
    "100002,100001,Ashby Community School,Predecessor,01/09/2017\n"
    "100002,100003,Ashby Academy,Successor,01/09/2019\n"
    "100003,100002,Ashby Academy,Predecessor,01/09/2019\n"
    "100010,130001,Brook Sixth Form,Sixth Form Centre Link,01/09/2015\n"
)

MEMBERSHIP = (
    "Group UID,Group ID,Group Name,Group Type,URN,Establishment Name,Date Joined Group,Date Left Group\n"
    "5001,TR05001,North Star Academy Trust,Multi-academy trust,100011,Cedar High School,15/10/2021,\n"
    "5001,TR05001,North Star Academy Trust,Multi-academy trust,100012,Dale Academy,01/03/2021,\n"
    "5001,TR05001,North Star Academy Trust,Multi-academy trust,100016,Hill Top School,01/09/2016,31/08/2018\n"
    "5001,TR05001,North Star Academy Trust,Multi-academy trust,200001,Ivy Primary Academy,01/09/2015,\n"
    "5001,TR05001,North Star Academy Trust,Multi-academy trust,200002,Juniper Primary Academy,01/09/2015,\n"
    "5002,TR05002,Ríver Schools Trust,Multi-academy trust,100013,Elm Park Academy,01/09/2010,\n"
    "5002,TR05002,Ríver Schools Trust,Multi-academy trust,100014,Fir Tree School,01/09/2016,31/08/2018\n"
    "5002,TR05002,Ríver Schools Trust,Multi-academy trust,100015,Grove School,01/09/2016,31/08/2017\n"
    "5002,TR05002,Ríver Schools Trust,Multi-academy trust,100015,Grove School,01/09/2018,\n"
    "5002,TR05002,Ríver Schools Trust,Multi-academy trust,100016,Hill Top School,01/09/2018,\n"
    "5003,TR05003,Ashby Learning Trust,Multi-academy trust,100002,Ashby Academy,01/09/2017,31/08/2019\n"
    "5003,TR05003,Ashby Learning Trust,Multi-academy trust,100003,Ashby Academy,01/09/2019,\n"
    "6001,ST06001,Brook Valley Trust,Single-academy trust,100010,Brook Valley School,01/09/2014,\n"
)


def write_text(path: Path, text: str, encoding: str = "cp1252") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.replace("\n", "\r\n").encode(encoding))
    return path


def write_layout(
    folder: Path,
    *,
    ks4: dict[str, str] | None = None,
    establishments: str | None = ESTABLISHMENTS,
    links: str | None = LINKS,
    membership: str | None = MEMBERSHIP,
) -> dict:
    """Write the files into ``folder``; return the matching ``sources:`` mapping."""
    for name, text in (ks4 if ks4 is not None else KS4).items():
        write_text(folder / "ks4" / name, text)
    sources: dict = {"performance_tables": ["ks4/*_england_ks4final.csv"]}
    for key, name, text in (
        ("gias_establishments", "edubasealldata20240101.csv", establishments),
        ("gias_links", "links_edubasealldata20240101.csv", links),
        ("gias_membership", "academiesmatmembership.csv", membership),
    ):
        if text is not None:
            write_text(folder / "gias" / name, text)
            sources[key] = f"gias/{name}"
    return sources


def options(sources: dict, **changes) -> SourcesOptions:
    return SourcesOptions.model_validate({**sources, **changes})
