"""Small-number suppression (statistical disclosure control) for reports and published results.

Every count of pupils or schools below a threshold is replaced by the GSS
symbol ``c`` (confidential), and every statistic computed from such a small
cell (an estimate, a mean, a standardised difference …) is withheld the same
way, with a note saying why.  The rules apply to the results payload (the
content of ``results.json``) before anything is rendered, so every table, plot
label and file built from it is covered; :func:`suppress_tidy` does the same
for ``results.csv``.

Default threshold
-----------------
10, the ONS "10 threshold rule" for research outputs (Office for National
Statistics, Secure Research Service output checking guidance and the
Statistical Disclosure Control Principles model: a published cell must
describe at least 10 units; counts below 10, zeros included, are not
released).  ``c`` is the Government Statistical Service symbol for a
suppressed value (GSS, "Symbols in tables", also used by DfE statistics).
The threshold is ``output.suppression_threshold`` in the config.

Whom it protects
----------------
Pupils.  Every small count, of pupils or of schools, is suppressed; but a
statistic is withheld only when it rests on fewer than ``threshold`` *pupils*
(a count named like ``n_pupils``/``pupil_count``, or the estimate counts of an
analysis whose ``diagnostics.count_unit`` is ``pupils``).  School-level results
are public in England (DfE performance tables are published school by school),
so an effect for a trust of three schools, which rests on hundreds of pupils,
is shown, with its count of schools suppressed.

What is and is not done
-----------------------
Counts are recognised by name (``n``, ``n_*``, ``*_n``, ``*_count``,
``count``, dictionaries named ``cohorts``/``*_cohorts``/``missing``/
``*_counts`` whose values are counts) and, in free text (warnings, error
messages, exclusion reasons), by a number followed by a unit word (``7
schools``, ``n = 7``, zeros included).  :meth:`Disclosure.withholds` is the one
rule deciding whether a row's statistics are withheld; results.json and the
report (:meth:`Disclosure.payload`), results.csv (:func:`suppress_tidy`) and
the figures (:meth:`Disclosure.result`) all apply it.

Secondary suppression (a hidden count must not follow from a total minus the
parts shown):

- a total beside its parts: ``n_obs`` when ``n_treated`` or ``n_control`` is
  hidden, ``n_schools`` when ``n_joined`` or ``n_never_joined`` is;
- an analysis's ``n_rows_in`` when one of its exclusion counts is hidden;
- a dictionary of counts (``cohorts`` …) with exactly one value hidden: the
  smallest other value is hidden too (the total of the dictionary, e.g.
  ``n_joined``, is published);
- the levels of one subgroup variable (``eal=0``, ``eal=1`` of one analysis
  and term), which add up to the whole sample: when one level's count is
  hidden, the smallest other level's count in that column is hidden too.

Methods that publish other small numbers must name them so the rules above
catch them (see ``docs/configuration.md``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from evaltool.results.writer import csv_safe

if TYPE_CHECKING:
    from evaltool.results import AnalysisResult, EffectEstimate

#: The ONS 10 threshold rule (see the module docstring).
DEFAULT_THRESHOLD = 10
#: GSS symbol for a confidential (suppressed) value.
SUPPRESSED = "c"

COUNT_NAME = re.compile(r"^(n|count|n_[a-z0-9_]+|[a-z0-9_]+_n|[a-z0-9_]+_count|pupil_count)$", re.IGNORECASE)
#: Counts of things other than pupils or schools: never suppressed.
NOT_PERSON_COUNT = re.compile(
    r"^n_(years|periods|cohorts|terms|covariates|iter\w*|boot\w*|draws|reps|replications|params|parameters"
    r"|subgroups|event_times|analyses|folds|trims?)$",
    re.IGNORECASE,
)
#: Blocks of published, non-personal counts that are shown as they are: the data-assembly report of
#: ``sources:`` counts files, table rows, marker cells and schools of England's published performance
#: tables and GIAS (public registers), never pupils, so small-number suppression does not apply to it.
PUBLIC_BLOCK = re.compile(r"^assembly$")
#: Dictionaries whose values are all counts (keyed by year, column …).
COUNT_CONTAINER = re.compile(r"^(cohorts|[a-z0-9_]+_cohorts|missing|missing_markers|[a-z0-9_]+_counts|counts)$", re.IGNORECASE)
#: Columns that identify a row (never withheld when the row's cell is small).
KEY_NAME = re.compile(
    r"^(year|cohort|join_year|event_time|relative_time|period|g|t|term|subgroup|subgroup_type|group|covariate|"
    r"variable|trust|label|name|analysis|estimand|method|outcome|ci_level|inference|stage|unit|reason|detail|"
    r"changes_estimand|exit_code)$",
    re.IGNORECASE,
)
#: Statistics withheld in a record (dict) that describes a small group.
STATISTIC_NAME = re.compile(
    r"(estimate|std_error|^se$|^ci_|conf_|p_value|effect_size|mean|median|smd|std_diff|^att|coef|diff|rate|share|"
    r"pct|percent|proportion|ratio|^sd|variance|statistic)",
    re.IGNORECASE,
)
UNIT_WORDS = (
    r"schools?|pupils?|students?|children|clusters?|trusts?|federations?|academies|rows?|observations?|units?|cells?"
)
#: A number followed (within five words or numbers: "only 4 joining and 3 never-joining schools") by a unit
#: word, or "n = 7".
TEXT_COUNT = re.compile(rf"(?<![\d.,:\w])(\d[\d,]*)(?=\s+(?:(?:[A-Za-z\-']+|\d[\d,]*)\s+){{0,5}}?(?:{UNIT_WORDS})\b)")
TEXT_N_EQUALS = re.compile(r"(\b[nN]\s*=\s*)(\d[\d,]*)")
#: Counts of people: a small one withholds the statistics of its row.
PUPIL_COUNT = re.compile(r"pupil|student", re.IGNORECASE)
#: Estimate counts that count pupils when the analysis's ``count_unit`` is ``pupils``.
ESTIMATE_COUNTS = frozenset({"n_treated", "n_control", "n_obs"})
#: Totals and the parts they are the sum of: a hidden part hides its total (secondary suppression).
TOTALS = {"n_obs": ("n_treated", "n_control"), "n_schools": ("n_joined", "n_never_joined")}
#: A subgroup level ``variable=code`` (a gap ``a - b`` is not a level).
LEVEL = re.compile(r"^([^=]+)=(?!.* - )")
#: Statistics of an estimate withheld (as NaN) in figures when its group is small.
ESTIMATE_STATISTICS = (
    "estimate", "std_error", "ci_lower", "ci_upper", "p_value", "effect_size", "effect_size_ci_lower",
    "effect_size_ci_upper", "e_value", "e_value_ci",
)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) and math.isfinite(float(value))


def is_count_name(name: str) -> bool:
    """Whether a field/column named ``name`` holds a count of pupils or schools."""
    return bool(COUNT_NAME.match(name)) and not NOT_PERSON_COUNT.match(name)


@dataclass
class Disclosure:
    """Apply small-number suppression with a given threshold.

    Parameters
    ----------
    threshold
        Counts ``0 ≤ n < threshold`` are suppressed (``threshold=1`` suppresses
        only zeros).
    """

    threshold: int = DEFAULT_THRESHOLD
    notes: list[str] = field(default_factory=list)
    n_suppressed: int = 0
    n_withheld: int = 0
    #: Whether the analysis being suppressed counts pupils in n_treated/n_control/n_obs.
    pupil_estimates: bool = False

    def counts_pupils(self, name: str) -> bool:
        """Whether the count ``name`` counts pupils (so a small one withholds its row's statistics)."""
        return bool(PUPIL_COUNT.search(name)) or (self.pupil_estimates and name in ESTIMATE_COUNTS)

    def is_small(self, value: Any) -> bool:
        """Whether ``value`` is a count below the threshold."""
        return _is_number(value) and 0 <= float(value) < self.threshold

    def withholds(self, counts: Mapping[str, Any]) -> bool:
        """Whether a row with these fields describes fewer than ``threshold`` pupils (its statistics are withheld).

        The one rule every output applies: some count of pupils in the row (a count named like a pupil count,
        or an estimate count of an analysis whose ``count_unit`` is ``pupils``) is below the threshold.
        """
        return any(is_count_name(str(k)) and self.counts_pupils(str(k)) and self.is_small(v) for k, v in counts.items())

    def count(self, value: Any) -> Any:
        """``value``, or ``"c"`` if it is a count below the threshold."""
        if self.is_small(value):
            self.n_suppressed += 1
            return SUPPRESSED
        return value

    def text(self, value: str) -> str:
        """Suppress small counts written in words ("7 schools", "n = 7")."""

        def swap(match: re.Match, group: int) -> str:
            number = int(match.group(group).replace(",", ""))
            if number < self.threshold:
                self.n_suppressed += 1
                return match.group(0).replace(match.group(group), SUPPRESSED, 1) if group == 2 else SUPPRESSED
            return match.group(0)

        value = TEXT_COUNT.sub(lambda m: swap(m, 1), value)
        return TEXT_N_EQUALS.sub(lambda m: swap(m, 2), value)

    # -- structures ---------------------------------------------------------------------------------

    def apply(self, value: Any, name: str = "") -> Any:
        """Return a suppressed copy of a JSON-like value (the caller's value is not changed)."""
        if _is_table(value):
            return self._table(value)
        if isinstance(value, dict):
            return self._record(value, name)
        if isinstance(value, list):
            return [self.apply(v, name) for v in value]
        if isinstance(value, str):
            return self.text(value)
        if name and is_count_name(name):
            return self.count(value)
        return value

    def _record(self, record: dict, name: str) -> dict:
        if COUNT_CONTAINER.match(name):
            return self._container(record)
        small = self.withholds(record)
        out: dict[str, Any] = {}
        withheld = False
        for key, value in record.items():
            key = str(key)
            if PUBLIC_BLOCK.match(key) and name == "data":
                out[key] = value
            elif is_count_name(key) and _is_number(value):
                out[key] = self.count(value)
            elif small and _is_number(value) and STATISTIC_NAME.search(key) and not KEY_NAME.match(key):
                self.n_withheld += 1
                withheld = True
                out[key] = SUPPRESSED
            else:
                out[key] = self.apply(value, key)
        if withheld:
            out["withheld"] = f"statistics withheld: based on fewer than {self.threshold} pupils"
        self._secondary(out)
        return out

    def _secondary(self, record: dict) -> None:
        """Secondary suppression: a hidden part must not follow from its total minus the other parts."""
        for total, parts in TOTALS.items():
            if _is_number(record.get(total)) and any(record.get(k) == SUPPRESSED for k in parts):
                record[total] = SUPPRESSED
                self.n_suppressed += 1

    def _container(self, record: dict) -> dict:
        """A dictionary of counts (by year, column …); with exactly one value hidden, the smallest other is too.

        Its total is usually published beside it (``n_joined`` beside ``cohorts``): a single hidden value would
        be that total minus the others.
        """
        out = {k: self.count(v) if _is_number(v) else self.apply(v, str(k)) for k, v in record.items()}
        hidden = [k for k, v in out.items() if v == SUPPRESSED and _is_number(record[k])]
        shown = [k for k, v in out.items() if _is_number(v)]
        if len(hidden) == 1 and shown:
            smallest = min(shown, key=lambda k: float(out[k]))
            out[smallest] = SUPPRESSED
            self.n_suppressed += 1
        return out

    def _complementary(self, records: list[dict]) -> list[dict]:
        """Hide a second level's count where one level of a subgroup variable has a hidden count (in place)."""
        groups: dict[tuple, list[dict]] = {}
        for record in records:
            level = LEVEL.match(str(record.get("subgroup", "")))
            if level:
                key = (record.get("analysis"), record.get("term"), record.get("by") or level.group(1))
                groups.setdefault(key, []).append(record)
        for rows in groups.values():
            columns = sorted({str(k) for r in rows for k in r if is_count_name(str(k))})
            changed = True
            while changed:  # hiding one count can hide a total (n_obs), which can need a complement in turn
                changed = False
                for column in columns:
                    hidden = [r for r in rows if r.get(column) == SUPPRESSED]
                    shown = [r for r in rows if _is_number(r.get(column))]
                    if len(hidden) == 1 and shown:
                        other = min(shown, key=lambda r: float(r[column]))
                        other[column] = SUPPRESSED
                        self.n_suppressed += 1
                        self._secondary(other)
                        changed = True
        return records

    def _table(self, table: dict) -> dict:
        columns = [str(c) for c in table["columns"]]
        counts = [i for i, c in enumerate(columns) if is_count_name(c)]
        keep = {i for i, c in enumerate(columns) if KEY_NAME.match(c)}
        rows = []
        for row in table["data"]:
            small = self.withholds({columns[i]: row[i] for i in counts})
            new = []
            for i, value in enumerate(row):
                if i in counts:
                    new.append(self.count(value))
                elif small and _is_number(value) and i not in keep:
                    self.n_withheld += 1
                    new.append(SUPPRESSED)
                else:
                    new.append(self.apply(value, columns[i]) if isinstance(value, (str, dict, list)) else value)
            rows.append(new)
        if "subgroup" in columns:
            records = self._complementary([dict(zip(columns, row, strict=True)) for row in rows])
            rows = [[r[c] for c in columns] for r in records]
        return {**table, "columns": columns, "data": rows}

    # -- figures ----------------------------------------------------------------------------------------

    def result(self, result: AnalysisResult) -> AnalysisResult:
        """A copy of an analysis result with the rules applied, to draw figures from.

        The same rules as :meth:`payload`, with numbers a plot can take: withheld statistics and small counts
        become NaN (a figure leaves a gap, or labels the row "withheld"), counts in text become ``c``.  The
        caller's result is not changed.
        """
        self.pupil_estimates = (result.diagnostics or {}).get("count_unit") == "pupils"
        return dataclasses.replace(
            result,
            estimates=[self._estimate(e) for e in result.estimates],
            diagnostics={k: self._drawable(v, str(k)) for k, v in (result.diagnostics or {}).items()},
            warnings=[self.text(w) for w in result.warnings],
            error=self.text(result.error) if result.error else result.error,
        )

    def _estimate(self, estimate: EffectEstimate) -> EffectEstimate:
        fields = dataclasses.asdict(estimate)
        nan = float("nan")
        changes: dict[str, Any] = {k: None for k, v in fields.items() if is_count_name(k) and self.is_small(v)}
        if self.withholds(fields):
            self.n_withheld += 1
            changes.update({k: nan for k in ESTIMATE_STATISTICS if k in fields})
        return dataclasses.replace(estimate, **changes) if changes else estimate

    def _drawable(self, value: Any, name: str) -> Any:
        if isinstance(value, pd.DataFrame):
            return self._frame(value)
        if isinstance(value, dict) and not _is_table(value):
            out = {k: self._drawable(v, str(k)) for k, v in value.items()}
            if COUNT_CONTAINER.match(name):
                out = {k: float("nan") if self.is_small(v) else v for k, v in out.items()}
            return out
        if _is_table(value):
            return {"columns": value["columns"], "data": self._frame(pd.DataFrame(value["data"], columns=value["columns"])).to_numpy().tolist()}
        if isinstance(value, list):
            return [self._drawable(v, name) for v in value]
        if isinstance(value, str):
            return self.text(value)
        if name and is_count_name(name) and self.is_small(value):
            return float("nan")
        return value

    def _frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """A table for a figure: the rows of small groups of pupils lose their statistics (NaN) and say why."""
        columns = [str(c) for c in frame.columns]
        counts = [c for c in columns if is_count_name(c)]
        numbers = {c: pd.to_numeric(frame[c], errors="coerce") for c in counts}
        small = {c: numbers[c].ge(0) & numbers[c].lt(self.threshold) for c in counts}
        pupils = [c for c in counts if self.counts_pupils(c)]
        hide = np.logical_or.reduce([small[c].to_numpy() for c in pupils]) if pupils else np.zeros(len(frame), bool)
        out = frame.copy()
        for column in counts:
            if small[column].any():
                out[column] = numbers[column].mask(small[column])
        statistics = [
            c for c in columns
            if c not in counts and not KEY_NAME.match(c) and pd.api.types.is_numeric_dtype(frame[c])
            and not pd.api.types.is_bool_dtype(frame[c])
        ]
        if hide.any():
            self.n_withheld += int(hide.sum())
            out.loc[hide, statistics] = np.nan
            if "status" in out:
                out.loc[hide, "status"] = "withheld"
            if "reason" in out:
                out.loc[hide, "reason"] = f"withheld: fewer than {self.threshold} pupils"
        for column in columns:
            if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
                out[column] = out[column].map(lambda v: self.text(v) if isinstance(v, str) else v)
        return out

    # -- the results payload ------------------------------------------------------------------------

    def payload(self, results: dict) -> dict:
        """Suppress a whole ``results.json`` payload (returns a new dict)."""
        out = {k: v for k, v in results.items() if k not in ("data", "analyses")}
        out["data"] = self.apply(results.get("data") or {}, "data")
        out["analyses"] = [self._analysis(a) for a in results.get("analyses", [])]
        earlier = results.get("disclosure") or {}  # a published results.json was suppressed already
        out["disclosure"] = {
            "threshold": min(self.threshold, earlier.get("threshold", self.threshold)),
            "symbol": SUPPRESSED,
            "n_suppressed": self.n_suppressed + int(earlier.get("n_suppressed", 0)),
            "n_withheld": self.n_withheld + int(earlier.get("n_withheld", 0)),
        }
        return out

    def _analysis(self, analysis: dict) -> dict:
        out = dict(analysis)
        self.pupil_estimates = (analysis.get("diagnostics") or {}).get("count_unit") == "pupils"
        out["estimates"] = self._complementary([self._record(e, "estimate") for e in analysis.get("estimates", [])])
        sample = dict(analysis.get("sample") or {})
        before = self.n_suppressed
        sample["exclusions"] = [self._record(e, "exclusion") for e in sample.get("exclusions", [])]
        hidden_exclusion = self.n_suppressed > before
        sample = {k: (self.count(v) if is_count_name(k) else v) if k != "exclusions" else v for k, v in sample.items()}
        if hidden_exclusion and _is_number(sample.get("n_rows_in")):
            # Secondary suppression: otherwise the hidden count = rows in − rows used − the other exclusions.
            sample["n_rows_in"] = SUPPRESSED
            self.n_suppressed += 1
        out["sample"] = sample
        out["diagnostics"] = self.apply(analysis.get("diagnostics") or {}, "diagnostics")
        out["warnings"] = [self.text(w) for w in analysis.get("warnings", [])]
        if analysis.get("error"):
            out["error"] = self.text(analysis["error"])
        return out


def withhold_small_groups(result: AnalysisResult, threshold: int = DEFAULT_THRESHOLD) -> AnalysisResult:
    """A copy of an :class:`~evaltool.results.AnalysisResult` to draw figures from (:meth:`Disclosure.result`).

    Figures are always drawn from it (the report embeds them, and the report always suppresses): the
    estimates and subgroup-table rows of groups of fewer than ``threshold`` pupils lose their statistics,
    a table row says why, small counts are not drawn and counts written in text become ``c``.
    """
    return Disclosure(threshold).result(result)


def _is_table(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"columns", "data"} and isinstance(value["data"], list)


#: Columns of results.csv withheld when a row describes a small group.
TIDY_STATISTICS: tuple[str, ...] = (
    "estimate",
    "std_error",
    "ci_lower",
    "ci_upper",
    "p_value",
    "effect_size",
    "effect_size_ci_lower",
    "effect_size_ci_upper",
    "e_value",
    "e_value_ci",
)


def publish_results(folder: Path, threshold: int = DEFAULT_THRESHOLD) -> None:
    """Suppress small numbers in ``results.csv`` and ``results.json`` of an output folder (in place).

    Used when ``output.publication`` is true.  The suppressed ``results.json``
    records ``disclosure`` (threshold and counts) and still rebuilds the report.
    """
    folder = Path(folder)
    csv_path, json_path = folder / "results.csv", folder / "results.json"
    tidy = pd.read_csv(csv_path, dtype={"subgroup": str, "term": str})
    payload = json.loads(json_path.read_text(encoding="utf-8"))
    pupil_analyses = {
        a["analysis"] for a in payload.get("analyses", []) if (a.get("diagnostics") or {}).get("count_unit") == "pupils"
    }
    pupil_rows = tidy["analysis"].isin(pupil_analyses) if "analysis" in tidy else None
    csv_safe(suppress_tidy(tidy, threshold, pupil_rows=pupil_rows)).to_csv(csv_path, index=False, lineterminator="\n")
    safe = Disclosure(threshold).payload(payload)
    json_path.write_text(json.dumps(safe, indent=2, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8")


def suppress_tidy(
    frame: pd.DataFrame,
    threshold: int = DEFAULT_THRESHOLD,
    counts: Iterable[str] | None = None,
    pupil_rows: pd.Series | None = None,
) -> pd.DataFrame:
    """``results.csv`` for publication: small counts and the estimates of small groups of pupils become ``c``.

    Vectorised over rows: every count column (``n_treated``, ``n_control``,
    ``n_obs`` by default) below ``threshold`` becomes ``c``; a row's statistics
    are withheld when one of its counts is small and the row counts pupils
    (``pupil_rows``; every row when not given, the cautious default).
    """
    counts = [c for c in (counts or [c for c in frame.columns if is_count_name(c)]) if c in frame.columns]
    out = frame.astype({c: object for c in [*counts, *TIDY_STATISTICS] if c in frame.columns})
    small_cells = pd.DataFrame(
        {c: pd.to_numeric(frame[c], errors="coerce").lt(threshold) for c in counts}, index=frame.index
    )
    small_rows = small_cells.any(axis=1) if counts else pd.Series(False, index=frame.index)
    if pupil_rows is not None:
        small_rows = small_rows & pupil_rows.reindex(frame.index, fill_value=False).astype(bool)
    for column in [c for c in counts if PUPIL_COUNT.search(c)]:  # a named pupil count withholds its row anywhere
        small_rows = small_rows | small_cells[column]
    for column in counts:
        out.loc[small_cells[column], column] = SUPPRESSED
    if {"n_treated", "n_control", "n_obs"} <= set(counts):  # secondary: n_obs − the shown group = the hidden one
        out.loc[small_cells["n_treated"] | small_cells["n_control"], "n_obs"] = SUPPRESSED
    stats = [c for c in TIDY_STATISTICS if c in frame.columns]
    if stats:
        out.loc[small_rows, stats] = SUPPRESSED
    if "subgroup" in out and counts:
        _complementary_rows(out, counts, threshold)
    return out


def _complementary_rows(out: pd.DataFrame, counts: list[str], threshold: int) -> None:
    """Secondary suppression across the levels of each subgroup variable of ``results.csv`` (in place)."""
    levels = out["subgroup"].astype(str).str.match(LEVEL.pattern)
    if not levels.any():
        return
    columns = [c for c in ("analysis", "term", "subgroup") if c in out]
    records = out.loc[levels, columns + counts].to_dict("records")
    for record in records:
        for column in counts:
            value = record[column]
            record[column] = value if value == SUPPRESSED or pd.isna(value) else float(value)
    Disclosure(threshold)._complementary(records)
    hidden = pd.DataFrame(records, index=out.index[levels])[counts].eq(SUPPRESSED)
    for column in counts:
        out.loc[hidden.index[hidden[column]], column] = SUPPRESSED
