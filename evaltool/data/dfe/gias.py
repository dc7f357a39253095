"""Read the GIAS extracts: establishments, links (predecessor/successor URNs) and trust membership.

GIAS downloads are Windows-1252 CSVs with day-first ``dd/mm/yyyy`` dates; URNs are 6 digits.  Every
reader refuses a file without its key columns, a URN that is not 6 digits and a date that is not
day-first, naming the file, column, data row and value.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from evaltool.data.dfe.raw import check_urns, parse_dates, read_raw, require_columns
from evaltool.errors import DataError

#: GIAS establishment columns read, and their tidy names.
ESTABLISHMENT_COLUMNS: dict[str, str] = {
    "URN": "urn",
    "EstablishmentName": "establishment_name",
    "TypeOfEstablishment (name)": "establishment_type",
    "EstablishmentTypeGroup (name)": "type_group",
    "PhaseOfEducation (name)": "phase",
    "LA (code)": "la_code",
    "LA (name)": "la_name",
    "GOR (name)": "region",
    "OpenDate": "open_date",
    "CloseDate": "close_date",
    "FederationFlag (name)": "federation_flag",
}
#: Link types that join a school to its predecessor or successor URN one-to-one.
ONE_TO_ONE_LINKS: dict[str, str] = {"Predecessor": "predecessor", "Successor": "successor"}
#: Link types of amalgamations and splits (one school from several, or several from one): never merged.
BRANCHING_LINKS: dict[str, str] = {
    "Predecessor - amalgamated": "predecessor",
    "Successor - amalgamated": "successor",
    "Predecessor - Split School": "predecessor",
    "Successor - Split School": "successor",
    "Predecessor - merged": "predecessor",
    "Successor - merged": "successor",
}
MEMBERSHIP_COLUMNS: dict[str, str] = {
    "Group UID": "trust_id",
    "Group Name": "trust_name",
    "Group Type": "group_type",
    "URN": "urn",
    "Date Joined Group": "joined",
    "Date Left Group": "left",
}


@dataclass
class Links:
    """Predecessor → successor edges (one row per pair) and what was ignored."""

    edges: pd.DataFrame  # pred, succ, branching (bool), link_type, date
    rows: int
    ignored: dict[str, int]


def read_establishments(path: Path, key: str, encoding: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One row per URN: type, type group, phase, LA, region, open and close dates (datetime64)."""
    raw, used = read_raw(path, key, encoding, usecols=lambda name: name in ESTABLISHMENT_COLUMNS)
    require_columns(raw, ["URN"], path=path, key=key, what="GIAS establishments extract (edubasealldata)")
    frame = raw.rename(columns=ESTABLISHMENT_COLUMNS)
    frame["urn"] = check_urns(raw["URN"], path=path, column="URN", key=key)
    duplicated = frame["urn"].duplicated(keep=False)
    if duplicated.any():
        rows = np.flatnonzero(duplicated.to_numpy()) + 1
        raise DataError(
            f"{key} '{path}' lists URN {frame['urn'].iloc[rows[0] - 1]} more than once (data rows "
            f"{', '.join(map(str, rows[:4]))}); an establishments extract has one row per URN. Download it again from GIAS."
        )
    for column, raw_name in (("open_date", "OpenDate"), ("close_date", "CloseDate")):
        if column in frame.columns:
            frame[column] = parse_dates(raw[raw_name], path=path, column=raw_name, key=key)
        else:
            frame[column] = pd.NaT
    for column in ESTABLISHMENT_COLUMNS.values():
        if column not in frame.columns:
            frame[column] = pd.Series(pd.NA, index=frame.index, dtype="str")
    record = {"key": key, "path": str(path), "kind": "gias_establishments", "encoding": used, "rows": len(frame)}
    return frame[list(ESTABLISHMENT_COLUMNS.values())], record


def read_links(path: Path, key: str, encoding: str) -> tuple[Links, dict[str, Any]]:
    """Predecessor/successor links as directed edges ``pred → succ``; other link types counted, not used.

    A link listed from both ends (A's successor B, B's predecessor A) is one edge.
    """
    raw, used = read_raw(path, key, encoding)
    require_columns(raw, ["URN", "LinkURN", "LinkType"], path=path, key=key, what="GIAS links extract")
    urn = check_urns(raw["URN"], path=path, column="URN", key=key)
    link = check_urns(raw["LinkURN"], path=path, column="LinkURN", key=key)
    kind = raw["LinkType"].astype("str").str.strip()
    if "LinkEstablishedDate" in raw.columns:
        date = parse_dates(raw["LinkEstablishedDate"], path=path, column="LinkEstablishedDate", key=key)
    else:
        date = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns]")
    direction = kind.map({**ONE_TO_ONE_LINKS, **BRANCHING_LINKS})
    self_link = urn.eq(link)
    used_rows = direction.notna() & ~self_link
    ignored = kind[direction.isna()].fillna("(empty)").value_counts().to_dict()
    if self_link.any():
        ignored["link of a URN to itself"] = int(self_link.sum())
    is_pred = direction.eq("predecessor")
    edges = pd.DataFrame(
        {
            "pred": link.where(is_pred, urn),
            "succ": urn.where(is_pred, link),
            "branching": kind.isin(list(BRANCHING_LINKS)),
            "link_type": kind,
            "date": date,
        }
    )[used_rows.to_numpy()]
    edges = (
        edges.sort_values(["pred", "succ", "date"], kind="stable")
        .groupby(["pred", "succ"], as_index=False, sort=True)
        .agg(branching=("branching", "any"), link_type=("link_type", "first"), date=("date", "min"))
    )
    record = {"key": key, "path": str(path), "kind": "gias_links", "encoding": used, "rows": len(raw)}
    return Links(edges=edges, rows=len(raw), ignored={str(k): int(v) for k, v in ignored.items()}), record


def read_membership(path: Path, key: str, encoding: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One row per membership episode: ``urn, trust_id, trust_name, group_type, joined, left`` (dates)."""
    raw, used = read_raw(path, key, encoding, usecols=lambda name: name in MEMBERSHIP_COLUMNS)
    require_columns(
        raw, ["Group UID", "URN", "Date Joined Group"], path=path, key=key, what="GIAS academy trust membership extract"
    )
    frame = pd.DataFrame(index=raw.index)
    frame["urn"] = check_urns(raw["URN"], path=path, column="URN", key=key)
    trust = raw["Group UID"].astype("str").str.strip()
    if trust.isna().any() or trust.eq("").any():
        row = int(np.flatnonzero((trust.isna() | trust.eq("")).to_numpy())[0]) + 1
        raise DataError(
            f"Column 'Group UID' of {key} '{path}' is empty in data row {row} (line {row + 1}); every membership row "
            "names its trust. Download the extract again from GIAS, or remove the row."
        )
    frame["trust_id"] = trust.str.removesuffix(".0")
    for column in ("Group Name", "Group Type"):
        tidy = MEMBERSHIP_COLUMNS[column]
        frame[tidy] = raw[column].astype("str").str.strip() if column in raw.columns else pd.NA
    frame["joined"] = parse_dates(raw["Date Joined Group"], path=path, column="Date Joined Group", key=key)
    if "Date Left Group" in raw.columns:
        frame["left"] = parse_dates(raw["Date Left Group"], path=path, column="Date Left Group", key=key)
    else:
        frame["left"] = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns]")
    backwards = (frame["left"] < frame["joined"]).to_numpy()
    if backwards.any():
        row = int(np.flatnonzero(backwards)[0]) + 1
        raise DataError(
            f"{key} '{path}': URN {frame['urn'].iloc[row - 1]} left trust {frame['trust_id'].iloc[row - 1]} "
            f"({raw['Date Left Group'].iloc[row - 1]}) before joining it ({raw['Date Joined Group'].iloc[row - 1]}) "
            f"in data row {row} (line {row + 1}); {int(backwards.sum())} such row(s). Check 'Date Joined Group' and "
            "'Date Left Group' (day-first dd/mm/yyyy)."
        )
    record = {"key": key, "path": str(path), "kind": "gias_membership", "encoding": used, "rows": len(frame)}
    return frame, record
