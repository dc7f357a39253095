"""Assemble the ``sources:`` files into a validated school × year panel with a data-assembly report.

Steps (each counted in ``report['steps']``, every dropped row in ``report['exclusions']``):

1. read the performance tables (markers → missing, summary rows dropped, overlapping files checked);
2. merge URN chains from the GIAS links (:mod:`evaltool.data.dfe.urns`);
3. add establishment attributes (region, phase, type; LA code where the table has none);
4. trust membership → ``join_year``, ``leave_year``, ``trust_id``, ``trust_size``, ``pre_existing``
   (:mod:`evaltool.data.dfe.membership`), applying ``sources.movers``;
5. academy conversion as a time-varying covariate (``sources.conversion``);
6. the gap years: never interpolated; a school whose last year before joining lies before a gap is
   counted under ``longer_baseline`` (its baseline is the last published year before joining), not as
   attrition.

Conversion rule: a URN is an academy when its GIAS type group is *Academies* or *Free Schools* (or its
type names an academy or free school); without an establishments file, the successor URNs of merged
chains are taken as the academies. ``converted_year`` is the exam year of the academic year containing
the academy URN's open date (or, without one, the date of the link to it), by ``sources.join_cutoff``;
``academy`` is 1 from ``converted_year`` on (or, with no date, in the rows of academy URNs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from evaltool.config.sources import SourcesOptions
from evaltool.data.dfe import gias, membership, presets, tables, urns
from evaltool.data.dfe.markers import marker_table
from evaltool.data.dfe.raw import exam_year

GAP_RULE = (
    "Years in sources.gap_years have no published tables: no rows are made for them and nothing is interpolated. "
    "A school's baseline is its last published year before joining; when gap years lie between it and the join "
    "year the school is counted under longer_baseline, not as attrition, and event time is join-relative calendar "
    "time across the gap."
)
ACADEMY_GROUPS = ("Academies", "Free Schools")


@dataclass
class Assembled:
    """The panel assembled from the raw files, with what was read and counted.

    Attributes
    ----------
    panel
        One row per school identity × exam year (see :func:`assemble_sources`).
    subgroups
        ``urn, year, subgroup_type, subgroup, n_pupils, <outcome>``, or None when the tables have none.
    trusts
        ``trust_id, trust_name, group_type, n_schools``, or None without a membership file.
    files
        Every file read, keyed ``sources.performance_tables[0]``, ``sources.gias_links``, ...
    report
        JSON-serialisable data-assembly report.
    """

    panel: pd.DataFrame
    subgroups: pd.DataFrame | None
    trusts: pd.DataFrame | None
    files: dict[str, Path]
    report: dict[str, Any] = field(default_factory=dict)


def assemble_sources(
    options: SourcesOptions, base_dir: Path, *, year_range: tuple[int, int] = (1990, 2100)
) -> Assembled:
    """Read and check the DfE/GIAS files of ``sources:`` and assemble the school × year panel.

    Parameters
    ----------
    options
        The ``sources:`` block.
    base_dir
        Folder relative paths are resolved from (the config file's folder).
    year_range
        Plausible exam years (``data.year_range``); a table for a year outside it is an error.

    Returns
    -------
    Assembled
        ``panel`` columns: ``urn`` (identity: the latest URN of its chain), ``source_urn``, ``urns``
        (';'-joined, sorted), ``year``, ``la_code``, ``region``, ``phase``, ``establishment_type`` (with
        establishments), the preset's tidy columns, ``join_year`` (NaN never joined), ``leave_year``,
        ``trust_id`` ('' never joined), ``trust_size``, ``pre_existing`` and, with
        ``conversion: covariate``, ``academy`` and ``converted_year``; sorted by ``urn, year``.

    Raises
    ------
    DataError
        On any bad input (see :mod:`evaltool.data.dfe.tables`, :mod:`~evaltool.data.dfe.gias`).
    """
    base_dir = Path(base_dir)
    preset = presets.resolve(options.preset, options.columns)
    markers = marker_table(options.markers)
    cutoff = options.cutoff_month_day()
    read = tables.read_tables(options, base_dir, preset, markers, year_range)
    files: dict[str, Path] = {f.key: f.path for f in read.files}
    file_records: list[dict[str, Any]] = [f.to_dict() for f in read.files]
    exclusions: list[dict[str, Any]] = list(read.exclusions)
    steps: list[dict[str, Any]] = []
    frame = read.frame.rename(columns={"urn": "source_urn"})
    steps.append(_step("read tables", read.rows_read, frame, schools_in=None, school="source_urn"))

    def resolve(key: str, entry: Any) -> tuple[Path, str]:
        path = entry.path if entry.path.is_absolute() else base_dir / entry.path
        files[key] = path
        return path, entry.encoding or options.encoding

    # 2. URN chains
    edges = None
    identity = pd.Series(dtype="str")
    chain_urns = pd.Series(dtype="str")
    report_chains: dict[str, Any] = {}
    position = pd.Series(dtype=float)
    if options.gias_links is not None:
        path, encoding = resolve("sources.gias_links", options.gias_links)
        links, record = gias.read_links(path, "sources.gias_links", encoding)
        file_records.append({**record, "ignored_link_types": links.ignored})
        edges = links.edges
        resolved = urns.resolve_chains(edges, relevant=pd.Index(frame["source_urn"].unique()))
        report_chains = resolved.report
        identity = resolved.mapping.set_index("urn")["identity"]
        position = resolved.mapping.set_index("urn")["position"]
        chain_urns = resolved.mapping.sort_values("urn").groupby("identity")["urn"].agg(";".join)
        if links.ignored:
            exclusions.append(
                {
                    "step": "merge URN chains",
                    "reason": "link not used (not a predecessor/successor link)",
                    "rows": int(sum(links.ignored.values())),
                    "schools": 0,
                    "detail": links.ignored,
                }
            )
    rows_in, schools_in = len(frame), frame["source_urn"].nunique()
    frame.insert(0, "urn", _lookup(frame["source_urn"], identity))
    frame.insert(2, "urns", _lookup(frame["urn"], chain_urns))
    frame = _one_row_per_year(frame, position, exclusions)
    steps.append(_step("merge URN chains", rows_in, frame, schools_in=schools_in))

    # 3. establishments
    establishments = None
    if options.gias_establishments is not None:
        path, encoding = resolve("sources.gias_establishments", options.gias_establishments)
        establishments, record = gias.read_establishments(path, "sources.gias_establishments", encoding)
        file_records.append(record)
        frame = _add_establishments(frame, establishments)
        record["table_urns_not_listed"] = int((~frame["source_urn"].isin(establishments["urn"])).sum())

    # 4. membership
    years = np.sort(frame["year"].unique())
    first_year = int(years.min())
    cohort_report: dict[str, Any] = {}
    trusts_frame = None
    if options.gias_membership is not None:
        path, encoding = resolve("sources.gias_membership", options.gias_membership)
        members, record = gias.read_membership(path, "sources.gias_membership", encoding)
        file_records.append(record)
        spells, dropped = membership.episodes(members, identity, group_types=options.group_types, cutoff=cutoff)
        exclusions.extend(dropped)
        result = membership.cohorts(
            spells,
            pd.Index(frame["urn"].unique()),
            years=years,
            movers=options.movers,
            membership_key="sources.gias_membership",
            rows_by_school=frame.groupby("urn").size(),
        )
        exclusions.extend(result.exclusions)
        trusts_frame = result.trusts
        rows_in, schools_in = len(frame), frame["urn"].nunique()
        frame = frame[~frame["urn"].isin(result.dropped_schools)]
        frame = frame.merge(result.schools, on="urn", how="left")
        censored = frame["year"] >= frame["censor_from"]
        if censored.any():
            exclusions.append(
                {
                    "step": "membership",
                    "reason": "censored at leaving the trust (sources.movers: censor)",
                    "rows": int(censored.sum()),
                    "schools": int(frame.loc[censored, "urn"].nunique()),
                    "detail": "rows from leave_year on of schools that left, re-joined or moved trust",
                }
            )
            frame = frame[~censored.to_numpy()]
        frame = frame.drop(columns="censor_from")
        in_trust = (frame["join_year"] <= frame["year"]) & (frame["year"] < frame["leave_year"].fillna(np.inf))
        frame = frame.merge(result.sizes, on=["trust_id", "year"], how="left")
        frame["trust_size"] = frame["trust_size"].where(in_trust.to_numpy(), 0).fillna(0).astype(int)
        steps.append(_step("membership", rows_in, frame, schools_in=schools_in))
        cohort_report = {"movers": result.movers, "membership_unmatched": result.unmatched}
    else:
        frame["join_year"] = np.nan
        frame["leave_year"] = np.nan
        frame["trust_id"] = ""
        frame["trust_size"] = 0
        cohort_report = {
            "movers": {"rule": options.movers, "left": 0, "rejoined": 0, "moved": 0, "schools": 0, "urns": []},
            "membership_unmatched": {"rows": 0, "schools": 0, "examples": []},
        }
    frame["join_year"] = frame["join_year"].astype(float)
    frame["leave_year"] = frame["leave_year"].astype(float)
    frame["trust_id"] = frame["trust_id"].fillna("").astype(str)
    frame["pre_existing"] = (frame["join_year"] < first_year).to_numpy()

    # 5. conversion
    if options.conversion == "covariate":
        frame = _conversion(frame, establishments, edges, position, cutoff)

    # 6. gap years
    longer = _longer_baseline(frame, options.gap_years)

    frame = frame.sort_values(["urn", "year"], kind="stable").reset_index(drop=True)
    frame["year"] = frame["year"].astype(int)
    frame = frame[_column_order(frame, read.value_columns)]
    subgroups = _subgroups(read.subgroups, frame, steps)

    markers_report = _markers(read.markers, preset)
    report = {
        "files": file_records,
        "steps": steps,
        "markers": markers_report,
        "urn_merges": report_chains.get(
            "urn_merges", {"n_chains": 0, "n_urns_merged": 0, "longest_chain": 0, "chains": [], "n_chains_in_links": 0}
        ),
        "urn_rule": urns.RULE,
        "branching": report_chains.get("branching", []),
        "cycles": report_chains.get("cycles", []),
        "exclusions": exclusions,
        "movers": cohort_report["movers"],
        "gap_years": {
            "years": sorted(options.gap_years),
            "with_tables": sorted(int(y) for y in set(options.gap_years) & set(int(y) for y in years)),
            "rule": GAP_RULE,
        },
        "longer_baseline": longer,
        "pre_existing": int(frame.loc[frame["pre_existing"], "urn"].nunique()),
        "membership_unmatched": cohort_report["membership_unmatched"],
        "join_cutoff": options.join_cutoff,
        "years": [int(y) for y in years],
        "rows": len(frame),
        "schools": int(frame["urn"].nunique()),
    }
    return Assembled(panel=frame, subgroups=subgroups, trusts=trusts_frame, files=files, report=report)


def _lookup(values: pd.Series, mapping: pd.Series) -> pd.Series:
    """``mapping[value]`` where the mapping has the value, else the value itself (text kept as text)."""
    if mapping.empty:
        return values.copy()
    return values.map(mapping).astype("str").fillna(values)


def _step(name: str, rows_in: int, frame: pd.DataFrame, *, schools_in: int | None, school: str = "urn") -> dict:
    schools_out = int(frame[school].nunique())
    return {
        "step": name,
        "rows_in": int(rows_in),
        "rows_out": len(frame),
        "schools_in": int(schools_in) if schools_in is not None else schools_out,
        "schools_out": schools_out,
    }


def _one_row_per_year(frame: pd.DataFrame, position: pd.Series, exclusions: list[dict]) -> pd.DataFrame:
    """Where two URNs of one identity both have a row in a year, keep the later URN's (counted)."""
    twice = frame.duplicated(["urn", "year"], keep=False)
    if not twice.any():
        return frame
    order = frame["source_urn"].map(position).fillna(0)
    ranked = frame.assign(_order=order).sort_values(["urn", "year", "_order"], ascending=[True, True, False])
    dropped = ranked.duplicated(["urn", "year"], keep="first")
    exclusions.append(
        {
            "step": "merge URN chains",
            "reason": "a predecessor URN's row in a year its successor also has a row (successor's row kept)",
            "rows": int(dropped.sum()),
            "schools": int(ranked.loc[dropped, "urn"].nunique()),
            "detail": sorted(ranked.loc[dropped, "source_urn"].unique().tolist())[:50],
        }
    )
    return ranked[~dropped.to_numpy()].drop(columns="_order").sort_index()


def _add_establishments(frame: pd.DataFrame, establishments: pd.DataFrame) -> pd.DataFrame:
    """Region, phase and type of each row's own URN (else of its identity); LA code where the table lacks it."""
    attributes = establishments.set_index("urn")
    for column in ("region", "phase", "establishment_type"):
        own = frame["source_urn"].map(attributes[column])
        frame[column] = own.fillna(frame["urn"].map(attributes[column]))
    la = frame["source_urn"].map(attributes["la_code"]).fillna(frame["urn"].map(attributes["la_code"]))
    frame["la_code"] = frame["la_code"].fillna(la) if "la_code" in frame.columns else la
    return frame


def _conversion(
    frame: pd.DataFrame,
    establishments: pd.DataFrame | None,
    edges: pd.DataFrame | None,
    position: pd.Series,
    cutoff: tuple[int, int],
) -> pd.DataFrame:
    """``academy`` (0/1 by year) and ``converted_year`` (see the module's conversion rule)."""
    if establishments is not None:
        type_text = establishments["establishment_type"].fillna("").str.lower()
        is_academy = establishments["type_group"].isin(ACADEMY_GROUPS) | type_text.str.contains(
            "academy|free school", regex=True
        )
        academies = establishments.loc[is_academy.to_numpy(), ["urn", "open_date"]]
    else:
        successors = position[position > 0].index
        academies = pd.DataFrame({"urn": successors, "open_date": pd.NaT})
    if edges is not None and len(academies):
        link_date = edges.groupby("succ")["date"].min()
        academies = academies.assign(open_date=academies["open_date"].fillna(academies["urn"].map(link_date)))
    academies = academies.assign(converted=exam_year(pd.to_datetime(academies["open_date"]), cutoff))
    academy_urns = set(academies["urn"])
    ident = frame[["urn", "source_urn"]].drop_duplicates("source_urn")
    converted_by_urn = academies.set_index("urn")["converted"]
    per_identity = (
        pd.DataFrame({"urn": ident["urn"], "converted": ident["source_urn"].map(converted_by_urn)})
        .groupby("urn")["converted"]
        .min()
    )
    # the identity's own (latest) URN may be an academy that has no table row yet
    latest = pd.Series(frame["urn"].unique())
    per_identity = per_identity.reindex(latest).fillna(latest.map(converted_by_urn).set_axis(latest))
    frame["converted_year"] = frame["urn"].map(per_identity).astype(float)
    by_row = frame["source_urn"].isin(academy_urns).astype(float)
    frame["academy"] = np.where(
        frame["converted_year"].notna(), (frame["year"] >= frame["converted_year"]).astype(float), by_row
    ).astype(int)
    return frame


def _longer_baseline(frame: pd.DataFrame, gap_years: list[int]) -> dict[str, Any]:
    """Schools whose last published year before joining is over a year before it because of gap years."""
    years = np.sort(frame["year"].unique())
    joiners = frame[frame["join_year"].notna() & (frame["join_year"] > years.min())]
    before = joiners[joiners["year"] < joiners["join_year"]]
    baseline = before.groupby("urn").agg(baseline_year=("year", "max"), join_year=("join_year", "first"))
    gaps = set(int(y) for y in gap_years)
    published = set(int(y) for y in years)

    def across_gap(first: float, join: float) -> bool:
        between = set(range(int(first) + 1, int(join)))
        return bool(between) and between <= gaps and not (between & published)

    pairs = baseline.drop_duplicates()
    flags = {(b, j): across_gap(b, j) for b, j in zip(pairs["baseline_year"], pairs["join_year"], strict=True)}
    chosen = [flags[(b, j)] for b, j in zip(baseline["baseline_year"], baseline["join_year"], strict=True)]
    longer = baseline.loc[np.asarray(chosen, dtype=bool)]
    by_join = longer.groupby("join_year").size()
    return {
        "schools": len(longer),
        "by_join_year": {str(int(k)): int(v) for k, v in by_join.items()},
        "urns": sorted(longer.index.tolist())[:50],
        "rule": GAP_RULE,
    }


def _column_order(frame: pd.DataFrame, value_columns: list[str]) -> list[str]:
    lead = ["urn", "source_urn", "urns", "year", "la_code", "region", "phase", "establishment_type"]
    tail = ["join_year", "leave_year", "trust_id", "trust_size", "pre_existing", "academy", "converted_year"]
    ordered = [c for c in lead if c in frame.columns]
    ordered += [c for c in value_columns if c in frame.columns and c not in ordered]
    ordered += [c for c in tail if c in frame.columns]
    return ordered + [c for c in frame.columns if c not in ordered]


def _subgroups(long: pd.DataFrame | None, panel: pd.DataFrame, steps: list[dict]) -> pd.DataFrame | None:
    """Subgroup rows of the panel's school-years, keyed by identity (rows of dropped school-years go too)."""
    if long is None:
        return None
    keys = panel[["urn", "source_urn", "year"]]
    out = long.rename(columns={"urn": "source_urn"}).merge(keys, on=["source_urn", "year"], how="inner")
    steps.append(
        {
            "step": "subgroups",
            "rows_in": len(long),
            "rows_out": len(out),
            "schools_in": int(long["urn"].nunique()),
            "schools_out": int(out["urn"].nunique()),
        }
    )
    columns = ["urn", "year", "subgroup_type", "subgroup", "n_pupils", *[c for c in long.columns if c not in
               ("urn", "year", "subgroup_type", "subgroup", "n_pupils")]]
    return out[columns].sort_values(["urn", "year", "subgroup_type", "subgroup"], kind="stable").reset_index(drop=True)


def _markers(tallies: pd.DataFrame, preset: presets.Preset) -> list[dict[str, Any]]:
    if tallies.empty:
        return []
    summed = tallies.groupby(["marker", "meaning", "column", "year"], as_index=False, sort=True)["count"].sum()
    summed = summed[summed["count"] > 0]
    summed.insert(3, "tidy", summed["column"].map(preset.columns).fillna(summed["column"]))
    return [
        {"marker": str(m), "meaning": str(me), "column": str(c), "tidy": str(t), "year": int(y), "count": int(n)}
        for m, me, c, t, y, n in summed.itertuples(index=False)
    ]
