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
schools``, ``n = 7``).  Secondary suppression is limited to one case: when an
exclusion count of an analysis is suppressed, its total rows in
(``n_rows_in``) is suppressed too so the hidden count cannot be recovered by
subtraction.  Methods that publish other small numbers must name them so the
rules above catch them (see ``docs/configuration.md``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from evaltool.results.writer import csv_safe

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


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value))


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
            return {k: self.count(v) if _is_number(v) else self.apply(v, str(k)) for k, v in record.items()}
        small = any(is_count_name(str(k)) and self.counts_pupils(str(k)) and self.is_small(v) for k, v in record.items())
        out: dict[str, Any] = {}
        withheld = False
        for key, value in record.items():
            key = str(key)
            if is_count_name(key) and _is_number(value):
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
        """Secondary suppression: a hidden group count must not follow from the total minus the other group."""
        hidden = [k for k in ("n_treated", "n_control") if record.get(k) == SUPPRESSED]
        if hidden and _is_number(record.get("n_obs")):
            record["n_obs"] = SUPPRESSED
            self.n_suppressed += 1

    def _table(self, table: dict) -> dict:
        columns = [str(c) for c in table["columns"]]
        counts = [i for i, c in enumerate(columns) if is_count_name(c)]
        people = [i for i in counts if self.counts_pupils(columns[i])]
        keep = {i for i, c in enumerate(columns) if KEY_NAME.match(c)}
        rows = []
        for row in table["data"]:
            small = any(self.is_small(row[i]) for i in people)
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
        return {**table, "columns": columns, "data": rows}

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
        out["estimates"] = [self._record(e, "estimate") for e in analysis.get("estimates", [])]
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


def withhold_small_groups(result: Any, threshold: int = DEFAULT_THRESHOLD) -> Any:
    """A copy of an :class:`~evaltool.results.AnalysisResult` without the statistics of small groups of pupils.

    Figures are drawn from it (the report embeds them, and the report always suppresses): an estimate or
    subgroup-table row resting on fewer than ``threshold`` pupils (``n_pupils_min``, or any count of an
    analysis whose ``count_unit`` is ``pupils``) loses its estimate and interval, and a table row says why.
    """
    import dataclasses

    pupils = (result.diagnostics or {}).get("count_unit") == "pupils"

    def small(counts: dict[str, Any]) -> bool:
        named = counts.get("n_pupils_min")
        if _is_number(named) and named < threshold:
            return True
        return pupils and any(_is_number(counts.get(k)) and counts[k] < threshold for k in ESTIMATE_COUNTS)

    nan = float("nan")
    estimates = [
        dataclasses.replace(e, estimate=nan, std_error=nan, ci_lower=nan, ci_upper=nan, p_value=nan)
        if small({k: getattr(e, k) for k in (*ESTIMATE_COUNTS, "n_pupils_min")}) else e
        for e in result.estimates
    ]
    diagnostics = dict(result.diagnostics)
    table = diagnostics.get("subgroups")
    if isinstance(table, pd.DataFrame) and not table.empty:
        table = table.copy()
        hide = table.apply(lambda row: small(row.to_dict()), axis=1).astype(bool)
        if hide.any():
            stats = [c for c in table.columns if STATISTIC_NAME.search(c) and c not in ("status", "reason")]
            table.loc[hide, stats] = nan
            table.loc[hide, "status"] = "withheld"
            table.loc[hide, "reason"] = f"withheld: fewer than {threshold} pupils"
        diagnostics["subgroups"] = table
    return dataclasses.replace(result, estimates=estimates, diagnostics=diagnostics)


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
    return out
