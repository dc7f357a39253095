"""The simulated data written in England's raw layouts: per-year KS4 performance tables and GIAS extracts.

:func:`write_dfe_layout` takes the output of :func:`evaltool.data.simulate.simulate` and writes what a
trust analyst downloads: one ``YYYY-YYYY_england_ks4final.csv`` per exam year (none for the cancelled
2020 and 2021 exams), and the GIAS ``edubasealldata``, ``links_edubasealldata`` and
``academiesmatmembership`` extracts, all Windows-1252 with day-first dates.  What real files hold and a
tidy panel does not is put in on purpose, each with a documented rule so a test can check it was undone:

- **URN changes**: most schools that join a trust convert to an academy on the day they join and get a
  new URN (predecessor → successor link); some joiners converted earlier as a single-academy trust
  (``Single-academy trust`` membership, then a new URN again on joining for a share of them: 3-URN
  chains); some never-joined schools convert alone (a concurrent initiative, the ``academy`` covariate).
  The school's latest URN is always its URN in the tidy panel, so the assembled identity is that URN.
- **Markers**: every missing number is written as one of the DfE's markers (``SUPP``, ``NE``, ``LOWCOV``,
  ``NP``, ``DNS`` for outcomes; ``NA``, ``..``, ``x``, ``z``, ``LOW`` for covariates); Progress 8 is
  ``NA`` before 2016; percentages carry a ``%`` in the tables up to 2016; each table ends with an
  ``ENGLAND`` total row without a URN.
- **Movers**: a few joiners leave their trust (left; moved to another trust; left and re-joined).  Under
  ``sources.movers: censor`` (the default) their rows from the first exam year out are dropped; the
  returned ``censored`` mapping and ``layout.json`` list them, so a tidy twin can be cut the same way.
- **Trust size**: primary schools (no KS4 table) in the trusts, counted in trust size and reported as
  membership URNs without a table; with ``extra_establishments``, unrelated establishments pad the GIAS
  file to national size (for ``benchmarks/bench_ingest.py``).

Pupils (``pupils.parquet``) carry the URN the school had in that exam year, as the National Pupil
Database does; the collaboration typology of each trust (``trusts.csv``) is keyed by the GIAS Group UID.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from evaltool.data.simulate import SimulatedData
from evaltool.data.simulate.constants import _PANEL_ROUNDING
from evaltool.data.simulate.write import _rounded

#: Exam years without published tables (exams cancelled).
GAP_YEARS: tuple[int, ...] = (2020, 2021)
OUTCOME_MARKERS = np.array(["SUPP", "NE", "LOWCOV", "NP", "DNS"])
COVARIATE_MARKERS = np.array(["NA", "..", "x", "z", "LOW"])
#: KS4 subgroup columns written: (subgroup_type, subgroup, outcome column, pupil-count column), as preset ks4.
KS4_SUBGROUPS: tuple[tuple[str, str, str, str], ...] = (
    ("disadvantage", "disadvantaged", "ATT8SCR_FSM6CLA1A", "TFSM6CLA1A"),
    ("disadvantage", "not_disadvantaged", "ATT8SCR_NFSM6CLA1A", "TNOTFSM6CLA1A"),
    ("prior_attainment", "low_prior", "ATT8SCR_LO", "TPRIORLO"),
    ("prior_attainment", "middle_prior", "ATT8SCR_MID", "TPRIORAV"),
    ("prior_attainment", "high_prior", "ATT8SCR_HI", "TPRIORHI"),
    ("gender", "boys", "ATT8SCR_BOYS", "TBOYS"),
    ("gender", "girls", "ATT8SCR_GIRLS", "TGIRLS"),
    ("eal", "eal", "ATT8SCR_EAL", "TEAL"),
    ("eal", "not_eal", "ATT8SCR_NEAL", "TNEAL"),
)
_PLACES = np.array(
    ["Ashby", "Brook Valley", "Cedar", "Dale", "Elm Park", "Fir Tree", "Grove", "Hill Top", "Ivy Lane", "Juniper",
     "Kingsway", "Longford", "Meadow", "Northgate", "Oakfield", "Priory", "Queensbury", "Riverside", "St Mary’s",
     "Thornbury", "Upton", "Victoria", "Westfield", "Yew Tree", "Beaumont Café Quarter", "Chênehurst"]
)


def write_dfe_layout(
    data: SimulatedData,
    folder: Path,
    *,
    seed: int,
    share_convert_at_join: float = 0.6,
    share_converted_before: float = 0.25,
    share_second_urn: float = 0.3,
    share_lone_converters: float = 0.12,
    n_movers: int | None = None,
    primaries_per_trust: int = 2,
    extra_establishments: int = 0,
) -> dict[str, Any]:
    """Write ``data`` as DfE KS4 tables and GIAS extracts into ``folder/dfe`` (see the module's rules).

    Parameters
    ----------
    data
        Output of :func:`evaltool.data.simulate.simulate`; not modified.
    folder
        The layout goes into ``folder/dfe`` (``ks4/``, ``gias/``, ``pupils.parquet``, ``trusts.csv``,
        ``layout.json``).
    seed
        Seed of the layout's own draws (URNs, dates, markers, movers); same seed, same bytes.
    share_convert_at_join, share_converted_before, share_second_urn, share_lone_converters
        Shares of joiners converting on joining, of joiners that converted earlier (single-academy
        trust), of those getting a new URN again on joining (3-URN chains), and of never-joined schools
        converting alone.
    n_movers
        Joiners that leave their trust within the data (default: 2% of joiners, at least 3 when there
        are 30 joiners); cycled through left / moved / re-joined.
    primaries_per_trust
        Primary academies added to each trust (GIAS only).
    extra_establishments
        Unrelated establishments added to the GIAS extract (national size for benchmarks).

    Returns
    -------
    dict
        ``files`` (paths written), ``sources`` (a ``sources:`` mapping for a config in ``folder``),
        ``censored`` ({urn: first exam year dropped under ``movers: censor``}), ``urn_changes`` (rows
        ``urn, old_urn, year``) and ``counts`` (chains, movers, markers written).
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x44FE]))
    root = Path(folder) / "dfe"
    (root / "ks4").mkdir(parents=True, exist_ok=True)
    (root / "gias").mkdir(parents=True, exist_ok=True)

    panel = _rounded(data.panel, _PANEL_ROUNDING)
    schools = _schools(panel, data.trusts, rng)
    uids = _trust_uids(data.trusts)
    chains = _draw_urn_chains(schools, rng, share_convert_at_join, share_converted_before, share_second_urn,
                              share_lone_converters)
    movers = _draw_movers(schools, rng, n_movers)
    files: list[Path] = []
    marker_count = 0
    for year in sorted(set(panel["year"].unique()) - set(GAP_YEARS)):
        table, n = _ks4_table(panel[panel["year"] == year], data.subgroups, chains, schools, int(year), rng)
        path = root / "ks4" / f"{year - 1}-{year}_england_ks4final.csv"
        _write_csv(table, path)
        files.append(path)
        marker_count += n
    establishments, primaries = _establishments(schools, chains, data.trusts, uids, rng, primaries_per_trust,
                                                extra_establishments)
    gias = {
        "gias_establishments": (root / "gias" / "edubasealldata20240101.csv", establishments),
        "gias_links": (root / "gias" / "links_edubasealldata20240101.csv", _links(chains)),
        "gias_membership": (
            root / "gias" / "academiesmatmembership20240101.csv",
            _membership(schools, chains, movers, data.trusts, uids, primaries),
        ),
    }
    for path, frame in gias.values():
        _write_csv(frame, path)
        files.append(path)
    files.append(_write_pupils(data.pupils, chains, root / "pupils.parquet"))
    files.append(_write_trusts(data.trusts, uids, root / "trusts.csv"))
    censored = {str(u): int(y) for u, y in zip(movers["urn"], movers["leave_year"], strict=True)}
    urn_changes = _urn_changes(chains)
    counts = {
        "chains": int((chains["n_urns"] > 1).sum()),
        "three_urn_chains": int((chains["n_urns"] == 3).sum()),
        "lone_converters": int(chains["lone"].sum()),
        "movers": {kind: int((movers["kind"] == kind).sum()) for kind in ("left", "moved", "rejoined")},
        "markers": marker_count,
        "primaries": int(len(primaries)),
    }
    layout = root / "layout.json"
    layout.write_text(
        json.dumps({"censored": censored, "counts": counts,
                    "urn_changes": urn_changes.to_dict(orient="records")}, indent=2, sort_keys=True) + "\n",
        encoding="utf-8",
    )
    files.append(layout)
    sources = {
        "performance_tables": ["dfe/ks4/*_england_ks4final.csv"],
        "preset": "ks4",
        **{key: f"dfe/gias/{path.name}" for key, (path, _) in gias.items()},
        "gap_years": list(GAP_YEARS),
    }
    return {"files": files, "sources": sources, "censored": censored, "urn_changes": urn_changes, "counts": counts}


# -- schools and trusts ------------------------------------------------------------------------------------


def _schools(panel: pd.DataFrame, trusts: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """One row per school: urn, la_code, region, join_year, trust_id, name, join date, years observed."""
    first = panel.groupby("urn", sort=True).agg(
        la_code=("la_code", "first"), region=("region", "first"), join_year=("join_year", "first"),
        trust_id=("trust_id", "first"), first_year=("year", "min"), last_year=("year", "max"),
    ).reset_index()
    n = len(first)
    first["name"] = _PLACES[rng.integers(0, len(_PLACES), n)]
    join = first["join_year"].astype("float").to_numpy()
    # Joined between 1 September of the academic year before the exams and 1 April of the exam year.
    first["joined"] = _dates(np.where(np.isnan(join), 2000, join) - 1, 9, 1, rng.integers(0, 212, n))
    first.loc[np.isnan(join), "joined"] = pd.NaT
    return first


def _trust_uids(trusts: pd.DataFrame) -> pd.Series:
    """GIAS Group UID (a number as text) of each simulated trust id, in the trusts' order."""
    return pd.Series([str(2000 + i) for i in range(len(trusts))], index=trusts["trust_id"].astype(str))


def _dates(year: np.ndarray, month: int, day: int, offset_days: np.ndarray) -> pd.Series:
    """``day/month/year`` plus ``offset_days``, as datetimes."""
    base = pd.to_datetime(pd.DataFrame({"year": np.asarray(year, dtype="int64"), "month": month, "day": day}))
    return base + pd.to_timedelta(np.asarray(offset_days, dtype="int64"), unit="D")


def _new_urns(taken: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` distinct six-digit URNs not in ``taken``."""
    pool = np.setdiff1d(np.arange(100_000, 1_000_000), taken.astype("int64"))
    return rng.choice(pool, size=n, replace=False)


def _draw_urn_chains(
    schools: pd.DataFrame,
    rng: np.random.Generator,
    share_convert_at_join: float,
    share_converted_before: float,
    share_second_urn: float,
    share_lone: float,
) -> pd.DataFrame:
    """Per school: its URNs over time (``urn0`` → ``urn1`` at ``change1`` → ``urn`` at ``change2``).

    Columns: ``urn`` (latest; the tidy panel's), ``urn0``, ``urn1`` (NaN if unused), ``change1``,
    ``change2`` (exam year from which the next URN holds; NaN if none), ``date1``, ``date2`` (conversion
    dates), ``sat_from``/``sat_to`` (single-academy trust membership), ``n_urns``, ``lone``.
    """
    n = len(schools)
    join = schools["join_year"].astype("float").to_numpy()
    first_year = int(schools["first_year"].min())
    joiner = ~np.isnan(join) & (join > first_year)
    u = rng.random(n)
    at_join = joiner & (u < share_convert_at_join)
    before = joiner & (u >= share_convert_at_join) & (u < share_convert_at_join + share_converted_before) & (
        join - 1 >= first_year + 1
    )
    second = before & (rng.random(n) < share_second_urn)
    lone = np.isnan(join) & (rng.random(n) < share_lone)
    last_year = int(schools["last_year"].max())
    # Year of the earlier conversion: uniform over the exam years first_year+1 … join_year-1 (or … last year).
    upper = np.where(before, join - 1, last_year)
    conv = np.floor(first_year + 1 + rng.random(n) * (upper - first_year)).astype("int64")
    conv = np.minimum(conv, upper.astype("int64"))
    early_date = _dates(conv - 1, 9, 1, rng.integers(0, 200, n))
    joined = schools["joined"]

    chains = pd.DataFrame({"urn": schools["urn"].to_numpy(), "n_urns": 1, "lone": lone})
    chains["urn0"] = chains["urn"].astype("float")
    chains["urn1"] = np.nan
    chains["change1"] = np.nan
    chains["change2"] = np.nan
    chains["date1"] = pd.NaT
    chains["date2"] = pd.NaT
    chains["sat_from"] = pd.NaT
    chains["sat_to"] = pd.NaT
    n_new = int(at_join.sum() + before.sum() + second.sum() + lone.sum())
    fresh = _new_urns(schools["urn"].to_numpy(), n_new, rng).astype("float")
    used = 0

    def take(mask: np.ndarray) -> np.ndarray:
        nonlocal used
        block = fresh[used:used + int(mask.sum())]
        used += len(block)
        return block

    # converts on joining: old URN → tidy URN at join_year
    chains.loc[at_join, "urn0"] = take(at_join)
    chains.loc[at_join, "change1"] = join[at_join]
    chains.loc[at_join, "date1"] = joined[at_join].to_numpy()
    # converted earlier (single-academy trust), new URN at conversion; for a share, again on joining
    chains.loc[before, "urn0"] = take(before)
    chains.loc[before, "change1"] = conv[before]
    chains.loc[before, "date1"] = early_date[before].to_numpy()
    chains.loc[before, "sat_from"] = early_date[before].to_numpy()
    chains.loc[before, "sat_to"] = (joined[before] - pd.Timedelta(days=1)).to_numpy()
    chains.loc[second, "urn1"] = take(second)
    chains.loc[second, "change2"] = join[second]
    chains.loc[second, "date2"] = joined[second].to_numpy()
    # never-joined schools converting alone
    chains.loc[lone, "urn0"] = take(lone)
    chains.loc[lone, "change1"] = conv[lone]
    chains.loc[lone, "date1"] = early_date[lone].to_numpy()
    chains.loc[lone, "sat_from"] = early_date[lone].to_numpy()
    chains["n_urns"] = 1 + chains["change1"].notna().astype(int) + chains["change2"].notna().astype(int)
    return chains


def _draw_movers(schools: pd.DataFrame, rng: np.random.Generator, n_movers: int | None) -> pd.DataFrame:
    """Joiners that leave their trust within the data: ``urn, kind, leave_year, left, next_trust_offset``.

    ``leave_year`` is the first exam year out of the trust: Date Left Group is 31 August before it.
    """
    join = schools["join_year"].astype("float").to_numpy()
    last_year = int(schools["last_year"].max())
    first_year = int(schools["first_year"].min())
    eligible = np.flatnonzero(~np.isnan(join) & (join > first_year) & (join <= last_year - 3))
    if n_movers is None:
        n_movers = int(round(0.02 * len(eligible)))
        n_movers = max(n_movers, 3) if len(eligible) >= 30 else n_movers
    n_movers = min(n_movers, len(eligible))
    chosen = np.sort(rng.choice(eligible, size=n_movers, replace=False)) if n_movers else np.array([], int)
    leave_year = (join[chosen] + 2 + rng.integers(0, 2, n_movers)).astype("int64")
    leave_year = np.minimum(leave_year, last_year)
    leave_year = np.where(np.isin(leave_year, GAP_YEARS), max(GAP_YEARS) + 1, leave_year)
    kinds = np.array(["left", "moved", "rejoined"])[np.arange(n_movers) % 3]
    return pd.DataFrame({
        "urn": schools["urn"].to_numpy()[chosen],
        "trust_id": schools["trust_id"].to_numpy()[chosen],
        "kind": kinds,
        "leave_year": leave_year,
        "left": _dates(leave_year - 1, 8, 31, np.zeros(n_movers)),
    })


# -- the KS4 tables ----------------------------------------------------------------------------------------


def _source_urns(chains: pd.DataFrame, urn: np.ndarray, year: int) -> np.ndarray:
    """The URN each school (tidy ``urn``) had in exam ``year``."""
    c = chains.set_index("urn").loc[urn]
    out = c["urn0"].to_numpy()
    out = np.where(c["change1"].notna().to_numpy() & (c["change1"].to_numpy() <= year),
                   np.where(c["change2"].notna().to_numpy(), c["urn1"].to_numpy(), c.index.to_numpy()), out)
    out = np.where(c["change2"].notna().to_numpy() & (c["change2"].to_numpy() <= year), c.index.to_numpy(), out)
    return out.astype("int64")


def _marked(values: pd.Series, markers: np.ndarray, rng: np.random.Generator, *, percent: bool = False) -> tuple[pd.Series, int]:
    """Numbers as text, missing ones replaced by a marker drawn from ``markers``; the markers written."""
    text = values.astype("float").round(1).astype(str)
    if percent:
        text = text + "%"
    missing = values.isna().to_numpy()
    drawn = markers[rng.integers(0, len(markers), len(values))]
    return text.where(~missing, drawn), int(missing.sum())


def _counts(values: pd.Series) -> pd.Series:
    """Pupil counts as whole numbers in text (missing → ``SUPP``)."""
    out = values.astype("Int64").astype(str)
    return out.where(values.notna(), "SUPP")


def _ks4_table(
    rows: pd.DataFrame, subgroups: pd.DataFrame, chains: pd.DataFrame, schools: pd.DataFrame, year: int,
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, int]:
    """One year's ``england_ks4final``: a row per school (its URN of that year) and an ENGLAND total row."""
    rows = rows.sort_values("urn")
    urn = rows["urn"].to_numpy()
    source = _source_urns(chains, urn, year)
    names = schools.set_index("urn").loc[urn, "name"].to_numpy()
    is_academy = source == urn
    converted = chains.set_index("urn").loc[urn, "change1"].notna().to_numpy()
    suffix = np.where(is_academy & converted, " Academy", np.where(converted, " Community School", " School"))
    table = pd.DataFrame({"URN": source.astype(str), "SCHNAME": pd.Series(names).str.cat(suffix).to_numpy(),
                          "LEA": rows["la_code"].astype(str).to_numpy()})
    cohort = rows["cohort_size"].astype("float")
    table["TOTPUPS"] = (cohort * 5.1).round().astype("Int64").astype(str).to_numpy()
    table["TPUP"] = _counts(rows["cohort_size"]).to_numpy()
    n_markers = 0
    att8, n = _marked(rows["attainment8"], OUTCOME_MARKERS, rng)
    table["ATT8SCR"] = att8.to_numpy()
    n_markers += n
    if year >= 2016:
        p8 = ((rows["attainment8"] - 1.1 * rows["ks2_prior"] + 64.0) / 12.0).round(2)
        table["P8MEA"] = p8.astype(str).where(p8.notna(), "NE").to_numpy()
    else:
        table["P8MEA"] = "NA"
    for raw, tidy in (("PTFSM6CLA1A", "fsm_pct"), ("PTEALGRP2", "eal_pct"), ("PSEN_ALL4", "sen_pct"),
                      ("KS2APS", "ks2_prior")):
        column, n = _marked(rows[tidy], COVARIATE_MARKERS, rng, percent=tidy != "ks2_prior" and year <= 2016)
        table[raw] = column.to_numpy()
        n_markers += n
    wide = subgroups[subgroups["year"] == year].pivot_table(
        index="urn", columns="subgroup", values=["attainment8", "n_pupils"], aggfunc="first", dropna=False
    )
    for _type, name, outcome, count in KS4_SUBGROUPS:
        score = wide[("attainment8", name)].reindex(urn) if ("attainment8", name) in wide else pd.Series(np.nan, urn)
        pupils = wide[("n_pupils", name)].reindex(urn) if ("n_pupils", name) in wide else pd.Series(np.nan, urn)
        text = score.round(1).astype(str).where(score.notna(), "SUPP")
        n_markers += int(score.isna().sum())
        table[outcome] = text.to_numpy()
        table[count] = _counts(pupils).to_numpy()
    total = {column: "" for column in table.columns}
    total.update({"SCHNAME": "ENGLAND", "TPUP": str(int(cohort.sum())),
                  "ATT8SCR": str(round(float(rows["attainment8"].mean()), 1))})
    return pd.concat([table, pd.DataFrame([total])], ignore_index=True), n_markers


# -- GIAS --------------------------------------------------------------------------------------------------


def _fmt(dates: pd.Series) -> pd.Series:
    """Day-first GIAS dates; missing → empty."""
    return pd.to_datetime(dates).dt.strftime("%d/%m/%Y").fillna("")


def _establishments(
    schools: pd.DataFrame, chains: pd.DataFrame, trusts: pd.DataFrame, uids: pd.Series, rng: np.random.Generator,
    primaries_per_trust: int, extra: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``edubasealldata``: every URN of every school (closed predecessors too), primaries and extras."""
    info = schools.set_index("urn")
    parts = []
    # the latest URN: an academy if it came from a conversion (or the school was in a trust before the data)
    latest_academy = chains["change1"].notna().to_numpy() | (
        schools["join_year"].notna().to_numpy() & ~chains["change1"].notna().to_numpy()
    )
    opened = chains["date2"].fillna(chains["date1"])
    pre_member = schools["join_year"].notna().to_numpy() & chains["change1"].isna().to_numpy()
    opened = opened.where(~pre_member, schools["joined"].to_numpy())
    parts.append(pd.DataFrame({
        "URN": chains["urn"].to_numpy(), "suffix": np.where(latest_academy, " Academy", " School"),
        "type": np.where(latest_academy, "Academy converter", "Community school"),
        "group": np.where(latest_academy, "Academies", "Local authority maintained schools"),
        "open": opened.to_numpy(), "close": pd.NaT, "base": chains["urn"].to_numpy(),
    }))
    old = chains["change1"].notna().to_numpy()
    parts.append(pd.DataFrame({
        "URN": chains.loc[old, "urn0"].astype("int64").to_numpy(), "suffix": " Community School",
        "type": "Community school", "group": "Local authority maintained schools", "open": pd.NaT,
        "close": (chains.loc[old, "date1"] - pd.Timedelta(days=1)).to_numpy(), "base": chains.loc[old, "urn"].to_numpy(),
    }))
    mid = chains["change2"].notna().to_numpy()
    parts.append(pd.DataFrame({
        "URN": chains.loc[mid, "urn1"].astype("int64").to_numpy(), "suffix": " Academy", "type": "Academy converter",
        "group": "Academies", "open": chains.loc[mid, "date1"].to_numpy(),
        "close": (chains.loc[mid, "date2"] - pd.Timedelta(days=1)).to_numpy(), "base": chains.loc[mid, "urn"].to_numpy(),
    }))
    frame = pd.concat(parts, ignore_index=True)
    base = info.loc[frame["base"].to_numpy()]
    out = pd.DataFrame({
        "URN": frame["URN"].astype("int64").astype(str),
        "EstablishmentName": pd.Series(base["name"].to_numpy()).str.cat(frame["suffix"].to_numpy()),
        "TypeOfEstablishment (name)": frame["type"].to_numpy(),
        "EstablishmentTypeGroup (name)": frame["group"].to_numpy(),
        "PhaseOfEducation (name)": "Secondary",
        "LA (code)": base["la_code"].astype(str).to_numpy(),
        "LA (name)": ("Authority " + base["la_code"].astype(str)).to_numpy(),
        "GOR (name)": base["region"].to_numpy(),
        "OpenDate": _fmt(frame["open"]).to_numpy(),
        "CloseDate": _fmt(frame["close"]).to_numpy(),
        "FederationFlag (name)": "Not applicable",
    })
    taken = out["URN"].astype("int64").to_numpy()
    n_trusts = len(trusts)
    n_primary = primaries_per_trust * n_trusts
    fresh = _new_urns(taken, n_primary + extra, rng)
    start = trusts["start_year"].astype("int64").to_numpy()
    primaries = pd.DataFrame({
        "urn": fresh[:n_primary],
        "trust_id": np.repeat(uids.to_numpy(), primaries_per_trust),
        "joined": _dates(np.repeat(start, primaries_per_trust) - 1, 9, 1, np.zeros(n_primary)),
    })
    regions = schools["region"].to_numpy()
    filler = pd.DataFrame({
        "URN": np.concatenate([primaries["urn"], fresh[n_primary:]]).astype(str),
        "EstablishmentName": _PLACES[rng.integers(0, len(_PLACES), n_primary + extra)],
        "TypeOfEstablishment (name)": np.where(np.arange(n_primary + extra) < n_primary, "Academy converter",
                                               "Community school"),
        "EstablishmentTypeGroup (name)": np.where(np.arange(n_primary + extra) < n_primary, "Academies",
                                                  "Local authority maintained schools"),
        "PhaseOfEducation (name)": "Primary",
        "LA (code)": schools["la_code"].astype(str).to_numpy()[rng.integers(0, len(schools), n_primary + extra)],
        "LA (name)": "",
        "GOR (name)": regions[rng.integers(0, len(regions), n_primary + extra)],
        "OpenDate": "",
        "CloseDate": "",
        "FederationFlag (name)": "Not applicable",
    })
    filler["EstablishmentName"] = filler["EstablishmentName"] + " Primary School"
    filler["LA (name)"] = "Authority " + filler["LA (code)"]
    return pd.concat([out, filler], ignore_index=True).sort_values("URN", kind="stable"), primaries


def _links(chains: pd.DataFrame) -> pd.DataFrame:
    """``links_edubasealldata``: each URN change written from both ends (Successor / Predecessor)."""
    first = chains["change1"].notna()
    second = chains["change2"].notna()
    step1_to = chains["urn1"].where(second, chains["urn"].astype(float))
    pairs = pd.concat([
        pd.DataFrame({"old": chains.loc[first, "urn0"], "new": step1_to[first], "date": chains.loc[first, "date1"]}),
        pd.DataFrame({"old": chains.loc[second, "urn1"], "new": chains.loc[second, "urn"].astype(float),
                      "date": chains.loc[second, "date2"]}),
    ], ignore_index=True)
    old = pairs["old"].astype("int64").astype(str)
    new = pairs["new"].astype("int64").astype(str)
    date = _fmt(pairs["date"])
    links = pd.concat([
        pd.DataFrame({"URN": old, "LinkURN": new, "LinkName": "", "LinkType": "Successor", "LinkEstablishedDate": date}),
        pd.DataFrame({"URN": new, "LinkURN": old, "LinkName": "", "LinkType": "Predecessor", "LinkEstablishedDate": date}),
    ], ignore_index=True)
    return links.sort_values(["URN", "LinkURN"], kind="stable")


def _membership(
    schools: pd.DataFrame, chains: pd.DataFrame, movers: pd.DataFrame, trusts: pd.DataFrame, uids: pd.Series,
    primaries: pd.DataFrame,
) -> pd.DataFrame:
    """``academiesmatmembership``: MAT episodes (movers' second episodes), single-academy trusts, primaries."""
    names = pd.Series(trusts["trust_id"].astype(str).str.replace("TR", "", regex=False).astype(int).to_numpy(),
                      index=trusts["trust_id"].astype(str))
    member = schools["join_year"].notna().to_numpy()
    mat = pd.DataFrame({
        "Group UID": schools.loc[member, "trust_id"].astype(str).map(uids).to_numpy(),
        "URN": schools.loc[member, "urn"].to_numpy(),
        "Date Joined Group": schools.loc[member, "joined"].to_numpy(),
        "Date Left Group": pd.NaT,
        "Group Type": "Multi-academy trust",
    })
    # a member's URN on joining is its tidy URN: every URN change of a joiner is on or before joining
    if len(movers):
        mat["Date Left Group"] = mat["URN"].map(movers.set_index("urn")["left"]).to_numpy()
    episodes = [mat]
    if len(movers):
        again = movers[movers["kind"] != "left"]
        target = again["trust_id"].astype(str).map(uids)
        others = uids.to_numpy()
        # a mover joins the next trust in the list; a re-joiner its own trust a year after leaving
        shifted = pd.Series(np.roll(others, -1), index=others)
        # moved: the day after leaving; re-joined: 1 September a year later (out for one exam year)
        joined_again = np.where(again["kind"] == "moved", again["left"] + pd.Timedelta(days=1),
                                _dates(again["leave_year"].to_numpy(), 9, 1, np.zeros(len(again))))
        episodes.append(pd.DataFrame({
            "Group UID": np.where(again["kind"] == "moved", target.map(shifted), target),
            "URN": again["urn"].to_numpy(), "Date Joined Group": joined_again, "Date Left Group": pd.NaT,
            "Group Type": "Multi-academy trust",
        }))
    sat = chains["sat_from"].notna()
    sat_urn = chains["urn1"].where(chains["change2"].notna(), chains["urn"].astype(float))
    episodes.append(pd.DataFrame({
        "Group UID": (9000 + np.arange(int(sat.sum()))).astype(str),
        "URN": sat_urn[sat].astype("int64").to_numpy(),
        "Date Joined Group": chains.loc[sat, "sat_from"].to_numpy(),
        "Date Left Group": chains.loc[sat, "sat_to"].to_numpy(),
        "Group Type": "Single-academy trust",
    }))
    episodes.append(pd.DataFrame({
        "Group UID": primaries["trust_id"].to_numpy(), "URN": primaries["urn"].to_numpy(),
        "Date Joined Group": primaries["joined"].to_numpy(), "Date Left Group": pd.NaT,
        "Group Type": "Multi-academy trust",
    }))
    frame = pd.concat(episodes, ignore_index=True)
    uid_to_number = pd.Series(names.to_numpy(), index=uids.reindex(names.index).to_numpy())
    number = frame["Group UID"].map(uid_to_number)
    frame.insert(1, "Group ID", ("TR" + number.astype("Int64").astype(str).str.zfill(5)).where(number.notna(), "")
                 .to_numpy())
    frame.insert(2, "Group Name", np.where(frame["Group Type"] == "Single-academy trust",
                                           "Single Academy Trust " + frame["Group UID"],
                                           "Learning Trust " + frame["Group UID"]))
    frame["URN"] = frame["URN"].astype("int64").astype(str)
    frame["Establishment Name"] = ""
    frame["Date Joined Group"] = _fmt(frame["Date Joined Group"]).to_numpy()
    frame["Date Left Group"] = _fmt(frame["Date Left Group"]).to_numpy()
    columns = ["Group UID", "Group ID", "Group Name", "Group Type", "URN", "Establishment Name", "Date Joined Group",
               "Date Left Group"]
    return frame[columns].sort_values(["Group UID", "URN", "Date Joined Group"], kind="stable")


# -- files -------------------------------------------------------------------------------------------------


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Windows-1252 CSV with CRLF line ends, as the DfE and GIAS publish them."""
    frame.to_csv(path, index=False, encoding="cp1252", lineterminator="\r\n")


def _urn_changes(chains: pd.DataFrame) -> pd.DataFrame:
    """Rows ``urn, old_urn, year``: from exam ``year`` the school's URN is no longer ``old_urn``."""
    first = chains["change1"].notna()
    second = chains["change2"].notna()
    out = pd.concat([
        pd.DataFrame({"urn": chains.loc[first, "urn"], "old_urn": chains.loc[first, "urn0"],
                      "year": chains.loc[first, "change1"]}),
        pd.DataFrame({"urn": chains.loc[second, "urn"], "old_urn": chains.loc[second, "urn1"],
                      "year": chains.loc[second, "change2"]}),
    ], ignore_index=True)
    return out.astype("int64").sort_values(["urn", "year"], kind="stable").reset_index(drop=True)


def _write_pupils(pupils: pd.DataFrame, chains: pd.DataFrame, path: Path) -> Path:
    """Pupils with the URN of their school in their exam year (as the National Pupil Database has it)."""
    frame = _rounded(pupils, {"attainment8": 1}).copy()
    urn = frame["urn"].to_numpy()
    source = np.empty(len(frame), dtype="int64")
    for year in np.unique(frame["year"].to_numpy()):
        rows = frame["year"].to_numpy() == year
        source[rows] = _source_urns(chains, urn[rows], int(year))
    frame["urn"] = source
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, compression="zstd")
    return path


def _write_trusts(trusts: pd.DataFrame, uids: pd.Series, path: Path) -> Path:
    """The collaboration typology of each trust, keyed by GIAS Group UID (``trust_id``) with its Group ID."""
    frame = trusts.copy()
    frame.insert(1, "group_id", frame["trust_id"].astype(str).str.replace("TR", "TR0", regex=False))
    frame["trust_id"] = frame["trust_id"].astype(str).map(uids).to_numpy()
    frame.to_csv(path, index=False, lineterminator="\n")
    return path
