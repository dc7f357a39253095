"""``evaltool init``: a commented config scaffolded from the data files a user has.

Each file is recognised from its header alone (nothing is estimated, no value is trusted): England's
raw files by their published headers (KS4/KS2 performance tables, the GIAS membership, links and
establishments extracts), otherwise a tidy school × year panel whose roles are guessed from column
names and marked ``# REVIEW`` for the user to check.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from evaltool.errors import DataError

#: Header columns that identify each kind of raw file (all must be present).
RAW_KINDS: dict[str, tuple[str, ...]] = {
    "ks4_table": ("URN", "ATT8SCR"),
    "ks2_table": ("URN", "PTRWM_EXP"),
    "gias_membership": ("Group UID", "URN", "Date Joined Group"),
    "gias_links": ("URN", "LinkURN", "LinkType"),
    "gias_establishments": ("URN", "EstablishmentName"),
}

#: Column names guessed for each role of a tidy panel, best first (compared case-insensitively).
ROLE_NAMES: dict[str, tuple[str, ...]] = {
    "school": ("urn", "school_id", "school", "laestab", "estab"),
    "year": ("year", "academic_year", "exam_year", "time_period"),
    "join_year": ("join_year", "joined", "year_joined", "cohort", "first_treated"),
    "trust": ("trust_id", "trust", "mat_id", "group_uid", "federation_id"),
    "local_authority": ("la_code", "la", "lea", "local_authority"),
}
OUTCOME_HINT = re.compile(r"attain|att8|progress|p8|score|ks4|ks2_read|ks2_mat|rwm|gcse|grade", re.IGNORECASE)
PRIOR_HINT = re.compile(r"prior|ks2_prior|ks2aps", re.IGNORECASE)


#: File suffixes read as data (others are listed as not recognised).
TABULAR = (".csv", ".txt", ".tsv", ".parquet", ".pq")


@dataclass
class Recognised:
    """What :func:`scaffold_config` made of the files."""

    tables: dict[str, list[Path]] = field(default_factory=dict)
    gias: dict[str, Path] = field(default_factory=dict)
    panels: list[tuple[Path, list[str]]] = field(default_factory=list)
    unknown: list[Path] = field(default_factory=list)


def read_header(path: Path) -> list[str]:
    """The column names of a CSV (UTF-8 with or without BOM, else cp1252) or Parquet file."""
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        try:
            return list(pq.read_schema(path).names)
        except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
            raise DataError(f"'{path}' is not a readable Parquet file ({exc}).") from None
    try:
        raw = path.read_bytes()[:65536]
    except OSError as exc:
        raise DataError(f"'{path}' cannot be read: {exc.strerror or exc}.") from None
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - cp1252 decodes nearly any byte
        raise DataError(f"'{path}' is neither UTF-8 nor Windows-1252 text; is it a CSV file?")
    first = text.splitlines()[0] if text else ""
    delimiter = max(",;\t|", key=first.count)
    return [name.strip() for name in next(csv.reader([first], delimiter=delimiter), [])]


def recognise(paths: list[Path]) -> Recognised:
    """Sort the files by kind from their headers."""
    found = Recognised()
    for path in paths:
        if not path.is_file():
            raise DataError(f"'{path}' is not a file; name the data files to scaffold a config from.")
        if path.suffix.lower() not in TABULAR:
            found.unknown.append(path)
            continue
        header = read_header(path)
        kind = next((k for k, needed in RAW_KINDS.items() if all(c in header for c in needed)), None)
        if kind in ("ks4_table", "ks2_table"):
            found.tables.setdefault(kind, []).append(path)
        elif kind is not None:
            found.gias[kind] = path
        elif header:
            found.panels.append((path, header))
        else:
            found.unknown.append(path)
    return found


def _relative(path: Path, base: Path) -> str:
    return Path(os.path.relpath(path.resolve(), base.resolve())).as_posix()


def _tidy_kind(header: list[str]) -> str:
    """'subgroups', 'pupils', 'trusts' or 'panel', from the roles a tidy file's columns suggest."""
    lower = {c.lower() for c in header}
    if lower & {"subgroup", "subgroup_type", "pupil_group"}:
        return "subgroups"
    if lower & {"pupil_id", "upn", "pupil", "candidate_id"}:
        return "pupils"
    if _guess(header, "year") is None and _guess(header, "trust") is not None:
        return "trusts"
    return "panel"


def _table_pattern(paths: list[Path], base: Path) -> list[str]:
    """One glob for tables that share a folder and a name ending (e.g. ``*_england_ks4final.csv``)."""
    folders = {p.resolve().parent for p in paths}
    endings = {re.sub(r"^[\d_\-]+", "", p.name) for p in paths}
    if len(paths) > 1 and len(folders) == 1 and len(endings) == 1:
        return [_relative(paths[0].parent / f"*{endings.pop()}", base)]
    return [_relative(p, base) for p in sorted(paths)]


def _guess(header: list[str], role: str) -> str | None:
    lower = {c.lower(): c for c in header}
    return next((lower[name] for name in ROLE_NAMES[role] if name in lower), None)


def _panel_columns(header: list[str]) -> list[str]:
    roles = {role: _guess(header, role) for role in ROLE_NAMES}
    taken = {c for c in roles.values() if c}
    outcomes = [c for c in header if c not in taken and OUTCOME_HINT.search(c) and not PRIOR_HINT.search(c)]
    covariates = [c for c in header if c not in taken and c not in outcomes and re.search(
        r"prior|fsm|disadv|eal|sen|size|pupils|cohort", c, re.IGNORECASE)]
    lines = ["columns:"]
    for role, column in roles.items():
        if column:
            lines.append(f"  {role}: {column}" + ("" if role in ("school", "year") else "  # REVIEW: guessed from the name"))
        elif role in ("school", "year"):
            lines.append(f"  {role}: CHANGE_ME_{role}  # REVIEW: no column looked like the {role}; name it")
    lines.append(f"  outcomes: [{', '.join(outcomes) or 'CHANGE_ME'}]  # REVIEW: the attainment measure(s) to evaluate")
    lines.append(f"  covariates: [{', '.join(covariates)}]  # REVIEW: school characteristics before joining")
    return lines


def scaffold_config(paths: list[Path], base: Path) -> str:
    """A commented YAML config for ``paths`` (relative to the folder ``base`` the config will live in).

    Raises
    ------
    DataError
        If a file cannot be read or nothing usable was recognised.
    """
    found = recognise(paths)
    lines = [
        "# Scaffolded by `evaltool init`: check every line marked REVIEW, then run",
        "#   evaltool validate <this file>   (checks config and data, estimates nothing)",
        "title: CHANGE_ME (what was evaluated)",
        "seed: 20240601",
        "",
    ]
    if found.tables:
        kind = "ks4_table" if "ks4_table" in found.tables else "ks2_table"
        preset = "ks4" if kind == "ks4_table" else "ks2"
        lines += ["# England's raw files: the panel is assembled from them (see docs: From DfE and GIAS files).",
                  "sources:", "  performance_tables:"]
        lines += [f"    - {p}" for p in _table_pattern(found.tables[kind], base)]
        lines.append(f"  preset: {preset}  # the published {preset.upper()} layout: no columns to map")
        for key in ("gias_membership", "gias_links", "gias_establishments"):
            if key in found.gias:
                lines.append(f"  {key}: {_relative(found.gias[key], base)}")
            else:
                lines.append(f"  # {key}: CHANGE_ME  # REVIEW: not found among the files"
                             + ("; without it no school has a join year" if key == "gias_membership" else ""))
        lines += ["  join_cutoff: \"09-01\"  # a join date from 1 September counts for the next summer's exams",
                  "  movers: censor         # schools that left or moved trust: exclude | censor | first_trust", ""]
        lines += ["columns:", f"  outcomes: [{'attainment8' if preset == 'ks4' else 'rwm_expected'}]",
                  "  covariates: [ks2_prior, fsm_pct, eal_pct, sen_pct]  # REVIEW: tidy names of the preset"
                  if preset == "ks4" else "  covariates: [fsm_pct, eal_pct]  # REVIEW: tidy names of the preset", ""]
    elif any(_tidy_kind(h) == "panel" for _, h in found.panels):
        kinds = {}
        # The panel is the file whose school and year columns were both recognised, if any.
        ranked = sorted(found.panels, key=lambda f: (_guess(f[1], "school") is None) + (_guess(f[1], "year") is None))
        for path, header in ranked:
            kinds.setdefault(_tidy_kind(header), (path, header))
        path, header = kinds["panel"]
        lines += ["data:", f"  panel: {_relative(path, base)}  # school x year"]
        notes = {"subgroups": "school x year x pupil subgroup", "pupils": "one row per pupil", "trusts": "one row per trust"}
        for kind, note in notes.items():
            if kind in kinds:
                lines.append(f"  {kind}: {_relative(kinds[kind][0], base)}  # {note}  REVIEW")
        lines.append("")
        lines += _panel_columns(header)
        if "subgroups" in kinds:
            sub = kinds["subgroups"][1]
            for role, names in (("subgroup", ("subgroup",)), ("subgroup_type", ("subgroup_type",)),
                                ("pupil_count", ("n_pupils", "pupils", "count", "n"))):
                column = next((c for c in sub if c.lower() in names), None)
                if column:
                    lines.append(f"  {role}: {column}  # REVIEW: guessed from the name")
        lines.append("")
        used = {kinds[k][0] for k in kinds}
        found.panels = [(p, h) for p, h in found.panels if p not in used]
    else:
        names = ", ".join(str(p) for p in paths) or "no files"
        raise DataError(
            f"None of the files ({names}) was recognised: expected DfE performance tables (URN, ATT8SCR ...), GIAS "
            "extracts or a school x year panel with a header row."
        )
    for path, _ in found.panels:
        lines.append(f"# REVIEW: also given, not used above: {_relative(path, base)}")
    for path in found.unknown:
        lines.append(f"# REVIEW: not recognised as a data file: {_relative(path, base)}")
    lines += [
        "analyses:",
        "  - name: staggered",
        "    description: Each cohort of joining schools against schools that never joined (Callaway-Sant'Anna).",
        "    method: did_staggered",
        "    comparison: never_joined",
        "",
    ]
    return "\n".join(lines)
