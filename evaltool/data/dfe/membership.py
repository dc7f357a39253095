"""Trust membership → cohorts: join and leave years, movers, pre-existing members and trust size.

Rules
-----
- **Academic year of a date** (``sources.join_cutoff``, default 1 September): a date on or after the
  cut-off in calendar year ``Y`` is in academic year ``Y/Y+1``, exam year ``Y+1``; a date before it is in
  exam year ``Y``. ``join_year`` is the exam year of the academic year containing *Date Joined Group*;
  ``leave_year``, the first exam year the school is no longer in the trust, that of the first day out of
  the trust (the day after *Date Left Group*: a school that left on 31 August 2019 sat the 2019 exams in
  the trust, so ``leave_year`` is 2020).
  A school is in its trust in year ``t`` when ``join_year <= t < leave_year``.
- **Episodes**: membership rows are mapped to school identities (URN chains merged). Two rows of one
  school in one trust with no exam year between them (a URN change inside the trust) are one episode.
- **Movers**: a school that left its trust within the data, re-joined a trust it had left, or moved to
  another trust is handled by ``sources.movers``: ``exclude`` drops the school; ``censor`` keeps its first
  episode and drops its rows from ``leave_year`` on; ``first_trust`` keeps its first episode and all its
  rows (intention to treat). Each kind is counted.
- **Pre-existing members**: ``join_year`` before the first year of data (no pre-joining year observed).
- **Joins after the data**: an episode starting after the last year of data is dropped (counted); the
  school stays in the panel as not yet joined.
- **Trust size** in year ``t``: the number of school identities (of every phase, in the tables or not)
  in the trust in ``t``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from evaltool.data.dfe.raw import exam_year
from evaltool.errors import DataError


@dataclass
class Cohorts:
    """Per-school cohort columns, trust sizes, the trusts and what was counted."""

    schools: pd.DataFrame  # urn, join_year, leave_year, trust_id, censor_from, mover
    sizes: pd.DataFrame  # trust_id, year, trust_size
    trusts: pd.DataFrame  # trust_id, trust_name, group_type, n_schools
    exclusions: list[dict[str, Any]]
    movers: dict[str, Any]
    unmatched: dict[str, Any]
    dropped_schools: pd.Index


def episodes(
    membership: pd.DataFrame,
    identity: pd.Series,
    *,
    group_types: list[str],
    cutoff: tuple[int, int],
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Membership rows as episodes of school identities: ``urn, trust_id, …, join_year, leave_year``.

    ``identity`` maps a URN to its school identity (URNs not in it are their own identity).
    """
    exclusions = []
    frame = membership.copy()
    kept = frame["group_type"].isin(group_types) if frame["group_type"].notna().any() else pd.Series(True, frame.index)
    if (~kept).any():
        counts = frame.loc[~kept, "group_type"].fillna("(empty)").value_counts()
        exclusions.append(
            {
                "step": "membership",
                "reason": "membership row of a group type not in sources.group_types",
                "rows": int((~kept).sum()),
                "schools": int(frame.loc[~kept, "urn"].nunique()),
                "detail": {str(k): int(v) for k, v in counts.items()},
            }
        )
    frame = frame[kept.to_numpy()]
    undated = frame["joined"].isna()
    if undated.any():
        exclusions.append(
            {
                "step": "membership",
                "reason": "membership row without a join date",
                "rows": int(undated.sum()),
                "schools": int(frame.loc[undated, "urn"].nunique()),
                "detail": "'Date Joined Group' is empty",
            }
        )
        frame = frame[~undated.to_numpy()]
    frame = frame.assign(
        source_urn=frame["urn"],
        urn=frame["urn"].map(identity).astype("str").fillna(frame["urn"]) if len(identity) else frame["urn"],
        join_year=exam_year(frame["joined"], cutoff),
        leave_year=exam_year(frame["left"] + pd.Timedelta(days=1), cutoff),
    )
    return _merge_contiguous(frame), exclusions


def _merge_contiguous(frame: pd.DataFrame) -> pd.DataFrame:
    """One episode per school and trust spell: rows with no exam year between them are merged."""
    frame = frame.sort_values(["urn", "trust_id", "joined"], kind="stable").reset_index(drop=True)
    leave = frame["leave_year"].fillna(np.inf)
    same = frame["urn"].eq(frame["urn"].shift()) & frame["trust_id"].eq(frame["trust_id"].shift())
    reach = leave.groupby([frame["urn"], frame["trust_id"]], sort=False).cummax().shift()
    new_spell = ~same | (frame["join_year"] > reach)
    spell = new_spell.cumsum()
    frame["_leave"] = leave  # never left (NaN) outlasts any date: inf, back to NaN after the max
    merged = frame.groupby(spell, sort=False).agg(
        urn=("urn", "first"),
        trust_id=("trust_id", "first"),
        trust_name=("trust_name", "first"),
        group_type=("group_type", "first"),
        joined=("joined", "min"),
        join_year=("join_year", "min"),
        leave_year=("_leave", "max"),
        rows=("urn", "size"),
    )
    merged["leave_year"] = merged["leave_year"].replace(np.inf, np.nan)
    return merged.sort_values(["urn", "joined", "trust_id"], kind="stable").reset_index(drop=True)


def cohorts(
    spells: pd.DataFrame,
    panel_schools: pd.Index,
    *,
    years: np.ndarray,
    movers: str,
    membership_key: str,
    rows_by_school: pd.Series,
) -> Cohorts:
    """Join/leave years per school under the ``movers`` rule, and trust size by year (see the module)."""
    last_year = int(years.max())
    exclusions: list[dict[str, Any]] = []
    matched = spells["urn"].isin(panel_schools)
    if not matched.any():
        example = ", ".join(spells["urn"].drop_duplicates().head(3))
        raise DataError(
            f"None of the {spells['urn'].nunique()} schools of {membership_key} (e.g. URN {example}) is in the "
            f"performance tables ({len(panel_schools)} schools, e.g. URN {', '.join(panel_schools[:3])}). Check that "
            "the membership extract and the tables are for the same schools (e.g. KS4 tables with secondary "
            "academies), and give sources.gias_links so converted schools' URNs are matched."
        )
    unmatched_urns = spells.loc[~matched, "urn"].drop_duplicates()
    unmatched = {
        "rows": int(spells.loc[~matched, "rows"].sum()),
        "schools": int(len(unmatched_urns)),
        "examples": sorted(unmatched_urns.head(10).tolist()),
        "note": "members of no performance table (e.g. other phases): counted in trust sizes, not in the panel",
    }
    sizes = trust_sizes(spells, years)
    trusts = (
        spells.groupby("trust_id", sort=True)
        .agg(trust_name=("trust_name", "first"), group_type=("group_type", "first"), n_schools=("urn", "nunique"))
        .reset_index()
    )

    own = spells[matched.to_numpy()]
    late = own["join_year"] > last_year
    if late.any():
        exclusions.append(
            {
                "step": "membership",
                "reason": "joins after the data",
                "rows": int(own.loc[late, "rows"].sum()),
                "schools": int(own.loc[late, "urn"].nunique()),
                "detail": f"joined in an exam year after {last_year}, the last year of data: the membership is "
                "dropped and the school stays in the panel as not (yet) joined",
            }
        )
        own = own[~late.to_numpy()]
    grouped = own.groupby("urn", sort=False)
    n_spells = grouped["trust_id"].size()
    n_trusts = grouped["trust_id"].nunique()
    left_in_data = (own["leave_year"] <= last_year).groupby(own["urn"], sort=False).any()
    first = grouped.head(1).set_index("urn")
    moved = n_trusts > 1
    rejoined = n_spells > n_trusts
    left = left_in_data & ~moved & ~rejoined
    affected = moved | rejoined | left_in_data
    schools = pd.DataFrame(
        {
            "join_year": first["join_year"],
            "leave_year": first["leave_year"],
            "trust_id": first["trust_id"],
        }
    )
    schools.index.name = "urn"
    affected_urns = affected[affected].index
    mover_report = {
        "rule": movers,
        "left": int(left.sum()),
        "rejoined": int(rejoined.sum()),
        "moved": int(moved.sum()),
        "schools": int(affected.sum()),
        "urns": sorted(affected_urns.tolist())[:50],
    }
    dropped = pd.Index([], dtype=object)
    schools["censor_from"] = np.nan
    if movers == "exclude" and len(affected_urns):
        dropped = affected_urns
        exclusions.append(
            {
                "step": "membership",
                "reason": "left, re-joined or moved trust (sources.movers: exclude)",
                "rows": int(rows_by_school.reindex(affected_urns).fillna(0).sum()),
                "schools": int(len(affected_urns)),
                "detail": {"left": mover_report["left"], "rejoined": mover_report["rejoined"],
                           "moved": mover_report["moved"]},
            }
        )
        schools = schools.drop(index=affected_urns)
    elif movers == "censor":
        schools.loc[affected_urns, "censor_from"] = schools.loc[affected_urns, "leave_year"]
    return Cohorts(
        schools=schools.reset_index(),
        sizes=sizes,
        trusts=trusts,
        exclusions=exclusions,
        movers=mover_report,
        unmatched=unmatched,
        dropped_schools=dropped,
    )


def trust_sizes(spells: pd.DataFrame, years: np.ndarray) -> pd.DataFrame:
    """School identities in each trust in each of ``years`` (``join_year <= t < leave_year``)."""
    years = np.asarray(sorted(set(int(y) for y in years)), dtype=float)
    n = len(spells)
    rep_year = np.tile(years, n)
    idx = np.repeat(np.arange(n), len(years))
    join = spells["join_year"].to_numpy(dtype=float)[idx]
    leave = spells["leave_year"].fillna(np.inf).to_numpy(dtype=float)[idx]
    inside = (join <= rep_year) & (rep_year < leave)
    frame = pd.DataFrame(
        {
            "trust_id": spells["trust_id"].to_numpy()[idx][inside],
            "urn": spells["urn"].to_numpy()[idx][inside],
            "year": rep_year[inside].astype(int),
        }
    ).drop_duplicates()
    return frame.groupby(["trust_id", "year"], sort=True).size().rename("trust_size").reset_index()
