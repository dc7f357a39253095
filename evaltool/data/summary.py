"""Readable text summary of the loaded data (for ``evaltool validate``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from evaltool.config.root import Config
    from evaltool.data import StudyData


def format_summary(config: Config, study: StudyData) -> str:
    """Schools, years, cohorts, never-joined count, missingness and exclusions."""
    s = study.panel.summary()
    lines = [f"Config {config.source.name if config.source else ''}: OK ({len(config.analyses)} analyses)", ""]
    lines.append(f"School panel: {study.files.get('data.panel', s['file'] or 'assembled from sources:')}")
    lines.append(f"  {s['n_rows']:,} rows, {s['n_schools']:,} schools, years {s['years'][0]}–{s['years'][-1]} ({s['n_years']} years)")
    if not s["balanced"]:
        lines.append(f"  unbalanced: {s['n_schools_unbalanced']:,} schools are missing some years")
    lines.append(f"  never joined: {s['n_never_joined']:,} schools; joined: {s['n_joined']:,}")
    if s["cohorts"]:
        lines.append("  joining cohorts (first year in the collaboration: schools):")
        lines.append("    " + ", ".join(f"{year}: {n}" for year, n in s["cohorts"].items()))
    if s["n_joined_before_data"]:
        shown = ", ".join(s["joined_before_data_schools"][:10])
        lines.append(
            f"  flagged: {s['n_joined_before_data']} schools joined in or before their first year in the data "
            f"(no pre-joining years; DiD methods exclude them), e.g. {shown}"
        )
    if s["n_trusts"] is not None:
        lines.append(f"  trusts: {s['n_trusts']:,}")
    if s["n_local_authorities"] is not None:
        lines.append(f"  local authorities: {s['n_local_authorities']:,}")
    for year, reason in s["assessed_years_present"].items():
        lines.append(f"  note: {year} is in the data ({reason}); consider data.exclude_years: [2020, 2021]")
    lines.append("  missing values: " + (", ".join(f"{k} {v:,}" for k, v in s["missing"].items()) or "none"))
    for column, markers in s["missing_markers"].items():
        lines.append(f"    {column}: " + ", ".join(f"'{m}' ×{n}" for m, n in markers.items()) + " read as missing")
    _exclusions(lines, s["exclusions"])
    summary = study.summary()
    if "subgroups" in summary:
        sub = summary["subgroups"]
        lines += ["", f"Subgroup panel: {study.files.get('data.subgroups', sub['file'] or 'assembled from sources:')}", f"  {sub['n_rows']:,} rows, {sub['n_schools']:,} schools"]
        lines.append("  subgroups: " + ", ".join(sub["subgroups"]))
        _exclusions(lines, sub["exclusions"])
    if "pupils" in summary:
        pup = summary["pupils"]
        lines += ["", f"Pupil file: {pup['n_rows']:,} pupils in {pup['n_schools']:,} schools, years {pup['years']}"]
        _exclusions(lines, pup["exclusions"])
    if "trusts" in summary:
        lines += ["", f"Trust attributes: {summary['trusts']['n_rows']:,} rows"]
    if study.assembly is not None:
        _assembly(lines, study.assembly)
    lines += ["", "Analyses: " + ", ".join(f"{a.name} ({a.method})" for a in config.analyses)]
    return "\n".join(lines)


def _exclusions(lines: list[str], exclusions: list[dict]) -> None:
    if not exclusions:
        lines.append("  excluded rows: none")
        return
    lines.append("  excluded rows:")
    for e in exclusions:
        units = f" ({e['n_units']} {e['unit']})" if e.get("n_units") is not None else ""
        lines.append(f"    {e['n_rows']:,} rows{units}: {e['reason']}")


def _assembly(lines: list[str], report: dict) -> None:
    """The data-assembly report of ``sources:`` in a few lines."""
    files = report.get("files") or []
    merges = report.get("urn_merges") or {}
    lines += ["", f"Assembled from {len(files)} raw files (sources:)"]
    for step in report.get("steps") or []:
        lines.append(
            f"  {step.get('step')}: {step.get('rows_in', '?'):,} → {step.get('rows_out', '?'):,} rows"
            if isinstance(step.get("rows_in"), int) and isinstance(step.get("rows_out"), int)
            else f"  {step.get('step')}"
        )
    if merges:
        lines.append(f"  URN chains merged: {merges.get('n_chains', 0)} ({merges.get('n_urns_merged', 0)} URNs, "
                     f"longest {merges.get('longest_chain', 0)})")
    totals: dict[str, int] = {}
    for row in report.get("markers") or []:
        totals[str(row.get("marker"))] = totals.get(str(row.get("marker")), 0) + int(row.get("count", 0) or 0)
    if totals:
        lines.append("  markers read as missing: " + ", ".join(f"'{m}' ×{n:,}" for m, n in sorted(totals.items())))
    for e in report.get("exclusions") or []:
        lines.append(f"  left out: {e.get('rows', '?')} rows ({e.get('schools', '?')} schools): {e.get('reason')}")
