"""Turn a (disclosure-controlled) results payload into rows and sentences for the templates.

Generic pieces are built for every analysis, whatever its method: headline,
estimates table, sample and exclusions, warnings, failures, figures found in
``figures/`` under the analysis-name prefix.  Richer sections appear when an
analysis's ``diagnostics`` contain one of the well-known keys below, so a new
method gets them by emitting those keys (documented in
``docs/configuration.md``, "Report options"):

``balance``
    table (``columns``/``data``) with a ``covariate`` column and a
    standardised difference column (``smd_after``, ``smd``, ``std_diff`` …;
    optionally ``smd_before``); each row gets its WWC baseline-equivalence
    verdict.
``pretrend_test``
    ``{"statistic", "df", "p_value", "description"}``.
``event_study``
    table with ``event_time``, ``estimate``, ``ci_lower``, ``ci_upper``.
``subgroups``
    table with ``subgroup``, ``estimate``, ``ci_lower``, ``ci_upper`` (and
    optional ``subgroup_type``, ``effect_size``, counts); estimates whose
    ``subgroup`` is not ``"all"`` are used in the same way.
``convergence``
    ``{"converged": bool, "message": str, ...}``.
``overlap``
    mapping of overlap measures (shown as a list).
``headline_term``
    which estimate ``term`` is the headline (default: the first whole-population
    ATT/overall estimate).
``design_type``, ``mdes``
    see :mod:`evaltool.report.security`.
``sensitivity``
    breakdown values (``rosenbaum``: Γ grid, bounds, ``breakdown_gamma``), gathered with the headline's
    E-values in the "How sure are we?" section (:mod:`evaltool.report.sensitivity`).

Everything else in ``diagnostics`` is shown, collapsed, under "Other
diagnostics".
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

from evaltool.report.charts import event_study_figure, forest_figure, png_bytes
from evaltool.report.disclosure import SUPPRESSED
from evaltool.report.formatting import fmt_ci, fmt_count, fmt_num, fmt_p, is_number
from evaltool.report.progress import EEF_SOURCE, MonthsOfProgress, format_months, impact_label
from evaltool.report.security import SecurityRating, rate, wwc_verdict
from evaltool.report.sensitivity import sensitivity_lines
from evaltool.report.words import (
    METHOD_EXPLANATIONS,
    NOT_SHOWN,
    SECURITY_WORDS,
    method_words,
    outcome_words,
    registered_summary,
    subgroup_words,
)

#: Diagnostics keys the report renders in their own sections.
KNOWN_DIAGNOSTICS = (
    "balance",
    "pretrend_test",
    "event_study",
    "subgroups",
    "convergence",
    "overlap",
    "headline_term",
    "count_unit",
    "design_type",
    "mdes",
    "review_questions",
    "sensitivity",
)
#: The questions of the Campbell systematic review of inter-school collaboration (Connolly et al.),
#: in the order ``diagnostics.review_questions`` answers them.
REVIEW_QUESTIONS = {
    "overall": "1. Does collaboration improve outcomes?",
    "types": "2. Do types of collaboration differ, and which work best?",
    "characteristics": "3. Which characteristics of a collaboration matter?",
    "subgroups": "4. Do effects differ for pupil groups, and does that vary by type?",
}
#: Internal diagnostics never shown.
HIDDEN_DIAGNOSTICS = ("exit_code",)
HEADLINE_ESTIMANDS = ("ATT", "overall", "simple", "ATE", "group", "average")


def table_rows(table: Any) -> list[dict]:
    """``{columns, data}`` → list of row dicts (empty for anything else)."""
    if not (isinstance(table, dict) and "columns" in table and "data" in table):
        return []
    return [dict(zip(table["columns"], row, strict=False)) for row in table["data"]]


# -- estimates -----------------------------------------------------------------------------------------


def headline_estimate(analysis: dict) -> dict | None:
    """The estimate that answers "did joining help?" for this analysis."""
    estimates = analysis.get("estimates") or []
    if not estimates:
        return None
    term = (analysis.get("diagnostics") or {}).get("headline_term")
    whole = [e for e in estimates if e.get("subgroup", "all") == "all"]
    for candidates in (
        [e for e in estimates if term is not None and e.get("term") == term],
        [e for e in whole if e.get("estimand") in HEADLINE_ESTIMANDS],
        whole,
        estimates,
    ):
        if candidates:
            return candidates[0]
    return None


def estimate_row(e: dict, unit: str) -> dict:
    withheld = e.get("estimate") == SUPPRESSED
    months = None
    if not withheld and is_number(e.get("effect_size")):
        months = MonthsOfProgress.from_effect_size(
            e.get("effect_size"), _num_or_none(e.get("effect_size_ci_lower")), _num_or_none(e.get("effect_size_ci_upper"))
        )
    level = e.get("ci_level") if is_number(e.get("ci_level")) else 0.95
    return {
        "term": str(e.get("term", "")),
        "estimand": str(e.get("estimand", "")),
        "subgroup": subgroup_words(e.get("subgroup", "all")),
        "estimate": fmt_num(e.get("estimate"), signed=True),
        "ci": fmt_ci(e.get("ci_lower"), e.get("ci_upper")),
        "ci_level": f"{level:.0%}",
        "std_error": fmt_num(e.get("std_error")),
        "p_value": fmt_p(e.get("p_value")),
        "effect_size": fmt_num(e.get("effect_size"), signed=True),
        "effect_size_ci": fmt_ci(e.get("effect_size_ci_lower"), e.get("effect_size_ci_upper")),
        "months": months.describe() if months else (SUPPRESSED if withheld else "–"),
        "n_treated": fmt_count(e.get("n_treated")),
        "n_control": fmt_count(e.get("n_control")),
        "n_obs": fmt_count(e.get("n_obs")),
        "inference": str(e.get("inference", "")),
        "clustering": clustering_text(e),
        "unit": unit,
        "withheld": withheld,
        "withheld_note": str(e.get("withheld", "")),
    }



def clustering_text(e: dict) -> str:
    """How the row's SE was obtained, short: "trust (271), CR1" or the variance method (#19: shown beside each estimate)."""
    cluster, n = str(e.get("cluster") or ""), e.get("n_clusters")
    method = str(e.get("se_method") or "")
    if cluster:
        count = f" ({fmt_count(n)})" if n is not None else ""
        short = "wild bootstrap" if "wild" in method else ("bootstrap" if "bootstrap" in method else "")
        return f"{cluster}{count}" + (f", {short}" if short else "")
    return method.split(" (")[0] if method else "–"

def _num_or_none(value: Any) -> float | None:
    return float(value) if is_number(value) else None


def verdict(e: dict | None, outcome_label: str, unit: str) -> tuple[str, str]:
    """(short answer, sentence) to "did joining help?" from the headline estimate."""
    if e is None:
        return "No estimate", "This analysis produced no estimate."
    if e.get("estimate") == SUPPRESSED:
        return "Withheld", "The estimate is withheld because it describes too few pupils or schools to publish."
    est, low, high = e.get("estimate"), e.get("ci_lower"), e.get("ci_upper")
    if not is_number(est):
        return "No estimate", "The estimate could not be computed."
    level = e.get("ci_level") if is_number(e.get("ci_level")) else 0.95
    size = f"{fmt_num(est, signed=True)} {unit} of {outcome_label}"
    interval = f"{level:.0%} confidence interval {fmt_ci(low, high)}"
    if is_number(low) and is_number(high):
        if low > 0:
            return "Yes", f"Schools that joined did better than comparison schools: {size} ({interval})."
        if high < 0:
            return "No, lower", f"Schools that joined did worse than comparison schools: {size} ({interval})."
        return (
            "Not clearly",
            f"The estimate is {size}, but the {interval} includes zero, so the data are consistent with no effect.",
        )
    return "Uncertain", f"The estimate is {size}; its uncertainty could not be computed."


def subgroup_rows(analysis: dict) -> list[dict]:
    """Subgroup effects, from estimates with a subgroup or ``diagnostics.subgroups``."""
    rows = [e for e in analysis.get("estimates") or [] if e.get("subgroup", "all") != "all"]
    head = headline_estimate(analysis)
    same_term = [e for e in rows if head is not None and e.get("term") == head.get("term")]
    rows = same_term or rows  # the headline's term, broken down by subgroup, when the method gives it
    if len({e.get("term") for e in rows}) > 1:
        rows = [{**e, "subgroup": f"{e['subgroup']} ({e.get('term')})"} for e in rows]
    if not rows:
        rows = [r for r in table_rows((analysis.get("diagnostics") or {}).get("subgroups")) if "subgroup" in r]
    return [{**r, "label": subgroup_words(r["subgroup"]), "n_label": _group_size(r)} for r in rows]


def _group_size(row: dict) -> str:
    """``n = 1,234`` (pupils or schools in the group), ``n = c`` when suppressed, ``""`` if unknown."""
    for key in ("n_obs", "n_pupils", "n"):
        if key in row and row[key] is not None:
            return f"n = {fmt_count(row[key])}"
    parts = [row.get("n_treated"), row.get("n_control")]
    if SUPPRESSED in parts:
        return f"n = {SUPPRESSED}"
    if all(is_number(p) for p in parts):
        return f"n = {fmt_count(sum(parts))}"  # type: ignore[arg-type]
    return ""


def subgroup_line(rows: list[dict], unit: str) -> str:
    """One sentence on who gained most and least (by point estimate)."""
    shown = [r for r in rows if is_number(r.get("estimate"))]
    if len(shown) < 2:
        return ""
    ordered = sorted(shown, key=lambda r: r["estimate"], reverse=True)
    top, bottom = ordered[0], ordered[-1]
    withheld = len(rows) - len(shown)
    text = (
        f"Largest estimated effect for {top['label'].lower()} ({fmt_num(top['estimate'], signed=True)} {unit}), "
        f"smallest for {bottom['label'].lower()} ({fmt_num(bottom['estimate'], signed=True)} {unit}); "
        f"{len(shown)} subgroups compared"
    )
    if withheld:
        text += f", {withheld} withheld (too few pupils)"
    return text + ". Overlapping intervals mean the groups may not truly differ."


# -- sections ------------------------------------------------------------------------------------------


def balance_rows(balance: Any) -> list[dict]:
    rows = []
    for row in table_rows(balance):
        after = next((row[c] for c in ("smd_after", "smd_matched", "smd_adjusted", "std_diff_after", "smd", "std_diff") if c in row), None)
        before = row.get("smd_before", row.get("std_diff_before"))
        rows.append(
            {
                "covariate": outcome_words(str(row.get("covariate", row.get("variable", ""))))[0],
                "before": fmt_num(before),
                "after": fmt_num(after),
                "verdict": SUPPRESSED if after == SUPPRESSED else wwc_verdict(after if is_number(after) else None),
            }
        )
    return rows


#: Normal critical value of a pointwise 95% interval (the event-study table's heading says 95%).
Z95 = 1.959963984540054


def event_rows(table: Any) -> list[dict]:
    """Rows of the event-study table: ``estimate`` (or ``att``, as ``method: event_study`` writes it) and the
    pointwise 95% interval (``ci_lower``/``ci_upper``, else estimate ± 1.96 ``std_error``)."""
    rows = []
    for r in table_rows(table):
        estimate = r.get("estimate", r.get("att"))
        low, high = r.get("ci_lower"), r.get("ci_upper")
        if low is None and high is None and is_number(estimate) and is_number(r.get("std_error")):
            low, high = estimate - Z95 * r["std_error"], estimate + Z95 * r["std_error"]
        rows.append({
            "event_time": fmt_num(r.get("event_time"), 0, signed=True) if is_number(r.get("event_time")) else str(r.get("event_time")),
            "estimate": fmt_num(estimate, signed=True),
            "ci": fmt_ci(low, high),
        })
    return rows


YEAR_NAME = re.compile(r"(year|cohort|event_time|relative_time|period|^g$|^t$)", re.IGNORECASE)


def key_values(mapping: Any) -> list[tuple[str, str]]:
    if not isinstance(mapping, dict):
        return [("value", _scalar(mapping))]
    return [(str(k).replace("_", " "), _scalar(v, str(k))) for k, v in mapping.items()]


def _scalar(value: Any, name: str = "") -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) and YEAR_NAME.search(name):
        return str(value)
    if isinstance(value, int):
        return fmt_count(value)
    if is_number(value):
        return fmt_num(value, 3)
    if isinstance(value, (list, tuple)):
        return ", ".join(_scalar(v, name) for v in value[:20]) + (" …" if len(value) > 20 else "")
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_scalar(v, name)}" for k, v in list(value.items())[:20])
    return "–" if value is None else str(value)


def other_diagnostics(diagnostics: dict) -> list[dict]:
    """Diagnostics without their own section: tables (max 40 rows) and key/value lists."""
    out = []
    for key, value in diagnostics.items():
        if key in KNOWN_DIAGNOSTICS or key in HIDDEN_DIAGNOSTICS:
            continue
        title = key.replace("_", " ").capitalize()
        rows = table_rows(value)
        if rows or (isinstance(value, dict) and set(value) == {"columns", "data"}):
            columns = [str(c).replace("_", " ") for c in value["columns"]]
            body = [[_scalar(v, str(c)) for c, v in zip(value["columns"], row, strict=False)] for row in value["data"][:40]]
            more = max(0, len(value["data"]) - 40)
            out.append({"title": title, "kind": "table", "columns": columns, "rows": body, "more": more})
        else:
            out.append({"title": title, "kind": "list", "entries": key_values(value)})
    return out


def exclusion_rows(sample: dict) -> list[dict]:
    return [
        {
            "reason": str(e.get("reason", "")),
            "stage": str(e.get("stage", "")),
            "n_rows": fmt_count(e.get("n_rows")),
            "n_units": fmt_count(e.get("n_units")),
            "unit": str(e.get("unit", "")),
            "changes_estimand": "yes" if e.get("changes_estimand") else "no",
        }
        for e in sample.get("exclusions", [])
    ]


def find_figures(folder: Path, names: list[str]) -> dict[str, list[dict]]:
    """PNG figures in ``folder/figures`` for each analysis, by its name prefix (longest name wins)."""
    found: dict[str, list[dict]] = {name: [] for name in names}
    figure_dir = folder / "figures"
    if not figure_dir.is_dir():
        return found
    by_length = sorted(names, key=len, reverse=True)
    for path in sorted(figure_dir.glob("*.png")):
        owner = next((n for n in by_length if path.stem.startswith(f"{n}_")), None)
        if owner is None:
            continue
        title = path.stem[len(owner) + 1 :].replace("_", " ").capitalize()
        found[owner].append({"title": title, "file": f"figures/{path.name}", "src": data_uri(path.read_bytes())})
    return found


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")



def security_view(rating: SecurityRating) -> dict:
    return {
        "padlocks": rating.padlocks,
        "words": "Not rated" if rating.padlocks is None else SECURITY_WORDS[rating.padlocks],
        "text": "not rated" if rating.padlocks is None else f"{rating.padlocks} of 5",
        "criteria": [
            {"name": c.name, "value": c.value, "effect": c.effect} for c in rating.criteria
        ],
        "note": rating.note,
    }


def plain_english(method: str, analysis: dict, head: dict | None, verdict_text: str, rating: SecurityRating) -> list[str]:
    explanation = METHOD_EXPLANATIONS.get(method) or registered_summary(method) or f"Method '{method}'."
    compared = ""
    if head is not None and head.get("n_treated") is not None and head.get("n_control") is not None:
        unit = str((analysis.get("diagnostics") or {}).get("count_unit") or "schools")
        compared = (
            f" It compares {fmt_count(head['n_treated'])} {unit} that joined with "
            f"{fmt_count(head['n_control'])} comparison {unit}."
        )
    paragraphs = [explanation + compared + " " + verdict_text]
    if head is not None and head.get("estimate") != SUPPRESSED and is_number(head.get("estimate")):
        paragraphs.append(
            f"The interval is the range of effects compatible with the data at the stated confidence level; "
            f"evidence security is {('not rated' if rating.padlocks is None else f'{rating.padlocks} of 5 padlocks')}, "
            "which reflects the design and what this run measured (see below), not the size of the effect."
        )
    paragraphs.append(NOT_SHOWN)
    return paragraphs


def analysis_view(safe: dict, raw: dict, figures: list[dict], descriptions: dict[str, str]) -> tuple[dict, dict]:
    """The rows and sentences of one analysis, and the figures the report draws for it."""
    name, method = str(safe.get("analysis", "")), str(safe.get("method", ""))
    outcome_label, unit = outcome_words(str(safe.get("outcome") or "outcome"))
    head = headline_estimate(safe)
    raw_head = headline_estimate(raw)
    rating = rate(raw, raw_head if head is not None and head.get("estimate") != SUPPRESSED else None)
    short, sentence = verdict(head, outcome_label, unit)
    diagnostics = safe.get("diagnostics") or {}
    subgroups = subgroup_rows(safe)
    drawn = {}
    sub_figure = None
    if subgroups:
        labelled = [{**r, "label": f"{r['label']} ({r['n_label']})" if r["n_label"] else r["label"]} for r in subgroups]
        fig = forest_figure(
            labelled, xlabel=f"Estimated effect on {outcome_label} ({unit})", title="Effect by pupil group"
        )
        if fig is not None:
            drawn[f"{name}_subgroups"] = fig
            sub_figure = {"title": "Effect by pupil group", "file": f"figures/report/{name}_subgroups.png", "src": data_uri(png_bytes(fig))}
    event_figure = None
    has_own_plot = any("event" in f["file"] for f in figures)
    if not has_own_plot and table_rows(diagnostics.get("event_study")):
        fig = event_study_figure(table_rows(diagnostics["event_study"]), ylabel=f"Effect on {outcome_label} ({unit})")
        if fig is not None:
            drawn[f"{name}_event_study"] = fig
            title = "Effect by years since joining"
            event_figure = {"title": title, "file": f"figures/report/{name}_event_study.png", "src": data_uri(png_bytes(fig))}
    head_row = estimate_row(head, unit) if head is not None else None
    convergence = diagnostics.get("convergence")
    view = {
        "name": name,
        "anchor": f"analysis-{name}",
        "method": method,
        "method_label": method_words(method),
        "description": descriptions.get(name, ""),
        "status": str(safe.get("status", "")),
        "failed": safe.get("status") != "ok",
        "error": str(safe.get("error") or ""),
        "outcome_label": outcome_label,
        "unit": unit,
        "verdict": short,
        "sentence": sentence,
        "headline": head_row,
        "estimates": [estimate_row(e, unit) for e in safe.get("estimates") or []],
        "count_unit": str(diagnostics.get("count_unit") or "schools"),
        "withheld_note": next((str(e["withheld"]) for e in [*safe.get("estimates", []), *subgroups] if e.get("withheld")), ""),
        "security": security_view(rating),
        "how_sure": sensitivity_lines(safe, head) if safe.get("status") == "ok" else [],
        "plain_english": plain_english(method, safe, head, sentence, rating),
        "sample": {
            "n_rows_in": fmt_count((safe.get("sample") or {}).get("n_rows_in")),
            "n_rows_used": fmt_count((safe.get("sample") or {}).get("n_rows_used")),
            "n_units_used": fmt_count((safe.get("sample") or {}).get("n_units_used")),
            "n_treated": head_row["n_treated"] if head_row else "–",
            "n_control": head_row["n_control"] if head_row else "–",
            "exclusions": exclusion_rows(safe.get("sample") or {}),
        },
        "warnings": [str(w) for w in safe.get("warnings") or []]
        + (["The model did not converge: treat its estimates with caution (see Model convergence)."]
           if isinstance(convergence, dict) and convergence.get("converged") is False else []),
        "balance": balance_rows(diagnostics.get("balance")),
        "pretrend": key_values(diagnostics["pretrend_test"]) if isinstance(diagnostics.get("pretrend_test"), dict) else [],
        "event_study": event_rows(diagnostics.get("event_study")),
        "event_figure": event_figure,
        "convergence": key_values(convergence) if convergence is not None else [],
        "converged": (convergence or {}).get("converged", True) if isinstance(convergence, dict) else True,
        "overlap": key_values(diagnostics["overlap"]) if "overlap" in diagnostics else [],
        "review": review_rows(diagnostics.get("review_questions")),
        "subgroups": [
            {
                "label": r["label"],
                "type": str(r.get("subgroup_type", "")).replace("_", " "),
                "estimate": fmt_num(r.get("estimate"), signed=True),
                "ci": fmt_ci(r.get("ci_lower"), r.get("ci_upper")),
                "effect_size": fmt_num(r.get("effect_size"), signed=True),
                "months": format_months(MonthsOfProgress.from_effect_size(r["effect_size"]).months)
                if is_number(r.get("effect_size"))
                else "–",
                "n": r["n_label"].removeprefix("n = ") or "–",
                "withheld": r.get("estimate") == SUPPRESSED,
            }
            for r in subgroups
        ],
        "subgroup_line": subgroup_line(subgroups, unit),
        "subgroup_figure": sub_figure,
        "figures": figures,
        "other": other_diagnostics(diagnostics),
    }
    if head_row and head is not None and is_number(head.get("effect_size")):
        months = MonthsOfProgress.from_effect_size(head["effect_size"])
        view["impact"] = impact_label(months.months if months else None)
    else:
        view["impact"] = ""
    return view, drawn


def agreement(ok: list[dict]) -> str:
    """One sentence on whether the analyses that ran point the same way (empty for fewer than two)."""
    verdicts = [a["verdict"] for a in ok if a["headline"] is not None]
    if len(verdicts) < 2:
        return ""
    groups = (
        ("Yes", "found a clear positive effect"),
        ("Not clearly", "{was} inconclusive (interval includes zero)"),
        ("No, lower", "found a clear negative effect"),
    )
    parts = [
        f"{verdicts.count(v)} " + text.format(was="was" if verdicts.count(v) == 1 else "were")
        for v, text in groups
        if verdicts.count(v)
    ]
    other = len(verdicts) - sum(verdicts.count(v) for v, _ in groups)
    if other:
        parts.append(f"{other} gave no usable estimate")
    return f"Of the {len(verdicts)} analyses that ran, " + ", ".join(parts) + "."


def data_view(data: dict) -> dict:
    panel = data.get("panel") or {}
    cohorts = panel.get("cohorts") or {}
    return {
        "known": bool(panel),
        "n_schools": fmt_count(panel.get("n_schools")),
        "n_rows": fmt_count(panel.get("n_rows")),
        "years": _year_span(panel.get("years") or []),
        "n_joined": fmt_count(panel.get("n_joined")),
        "n_never_joined": fmt_count(panel.get("n_never_joined")),
        "n_trusts": fmt_count(panel.get("n_trusts")),
        "cohorts": [{"year": str(k), "n": fmt_count(v)} for k, v in cohorts.items()],
        "exclusions": exclusion_rows(panel),
        "subgroups": [subgroup_words(s) for s in (data.get("subgroups") or {}).get("subgroups", [])],
        "assembly": assembly_view(data.get("assembly")),
    }


def assembly_view(report: Any) -> dict:
    """The data-assembly summary of a run from ``sources:`` (files read, URNs merged, markers, exclusions).

    Counts here are of files, table rows, cells and schools, all public information from published
    tables (never pupil counts), so they are shown as they are.
    """
    if not isinstance(report, dict):
        return {"known": False}
    files = report.get("files") or []
    markers: dict[tuple[str, str], int] = {}
    for row in report.get("markers") or []:
        key = (str(row.get("marker", "")), str(row.get("meaning", "")))
        markers[key] = markers.get(key, 0) + int(row.get("count", 0) or 0)
    merges = report.get("urn_merges") or {}
    movers = report.get("movers") or {}
    return {
        "known": True,
        "n_files": fmt_count(len(files)),
        "files": [{"path": Path(str(f.get("path", ""))).name, "year": str(f.get("year", "")),
                   "rows": fmt_count(f.get("rows"))} for f in files],
        "steps": [{"step": str(s.get("step", "")), "rows_in": fmt_count(s.get("rows_in")),
                   "rows_out": fmt_count(s.get("rows_out")), "schools_in": fmt_count(s.get("schools_in")),
                   "schools_out": fmt_count(s.get("schools_out"))} for s in report.get("steps") or []],
        "markers": [{"marker": m or "(empty)", "meaning": meaning, "n": fmt_count(n)}
                    for (m, meaning), n in sorted(markers.items(), key=lambda kv: -kv[1])],
        "n_chains": fmt_count(merges.get("n_chains")),
        "n_urns_merged": fmt_count(merges.get("n_urns_merged")),
        "longest_chain": fmt_count(merges.get("longest_chain")),
        "n_branching": fmt_count(len(report.get("branching") or [])),
        "n_cycles": fmt_count(len(report.get("cycles") or [])),
        "movers_rule": str(movers.get("rule", "")),
        "movers": [(k, fmt_count(_count_of(movers.get(k)))) for k in ("left", "rejoined", "moved") if k in movers],
        "longer_baseline": fmt_count(_count_of(report.get("longer_baseline"))),
        "pre_existing": fmt_count(_count_of(report.get("pre_existing"))),
        "gap_years": ", ".join(str(y) for y in _gap_years(report.get("gap_years"))),
        "exclusions": [{"reason": str(e.get("reason", "")), "rows": fmt_count(e.get("rows")),
                        "schools": fmt_count(e.get("schools")), "detail": _detail(e.get("detail"))}
                       for e in report.get("exclusions") or []],
    }


def _count_of(value: Any) -> Any:
    """A count given as a number, a list of schools, or a mapping with ``schools``/``n``/``count``."""
    if isinstance(value, (list, tuple)):
        return len(value)
    if isinstance(value, dict):
        return next((value[k] for k in ("schools", "n", "count", "n_schools") if k in value), None)
    return value


def _gap_years(value: Any) -> list:
    """The gap years, given as a list or as ``{"years": [...], ...}``."""
    if isinstance(value, dict):
        value = value.get("years")
    return list(value) if isinstance(value, (list, tuple)) else []


def _detail(value: Any) -> str:
    """An exclusion's detail as text: ``{'Single-academy trust': 1}`` → ``Single-academy trust: 1``."""
    if isinstance(value, dict):
        return "; ".join(f"{k}: {v}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value or "")


def _year_span(years: list) -> str:
    years = sorted(int(y) for y in years if is_number(y))
    if not years:
        return "–"
    missing = sorted(set(range(years[0], years[-1] + 1)) - set(years))
    text = f"{years[0]}–{years[-1]}"
    return text + (f" (without {', '.join(str(y) for y in missing)})" if missing else "")


def build_view(
    safe: dict, raw: dict, manifest: dict | None, folder: Path, *, publication: bool
) -> tuple[dict, dict]:
    """The whole report's view model and the figures the report draws.

    ``safe`` is the disclosure-controlled payload (everything shown comes from
    it); ``raw`` is used only for the security rating's percentages and
    precision, which are not counts.
    """
    descriptions = {}
    if manifest:
        try:
            for spec in manifest["config"]["validated"]["analyses"]:
                descriptions[spec["name"]] = spec.get("description") or ""
        except (KeyError, TypeError):
            descriptions = {}
    names = [str(a.get("analysis", "")) for a in safe.get("analyses", [])]
    figures = find_figures(folder, names)
    raw_by_name = {str(a.get("analysis", "")): a for a in raw.get("analyses", [])}
    analyses, drawn = [], {}
    for analysis in safe.get("analyses", []):
        name = str(analysis.get("analysis", ""))
        view, figs = analysis_view(analysis, raw_by_name.get(name, analysis), figures.get(name, []), descriptions)
        analyses.append(view)
        drawn.update(figs)
    ok = [a for a in analyses if not a["failed"]]
    disclosure = safe.get("disclosure", {})
    report = {
        "title": str(safe.get("title") or "Evaluation report"),
        "evaltool_version": str(safe.get("evaltool_version", "")),
        "format": safe.get("format"),
        "seed": safe.get("seed"),
        "started_at": str((manifest or {}).get("started_at", "")),
        "analyses": analyses,
        "main": ok[0] if ok else None,
        "agreement": agreement(ok),
        "for_whom": next((a for a in ok if a["subgroup_line"]), None),
        "how_sure": [a for a in ok if a["how_sure"]],
        "failed": [a for a in analyses if a["failed"]],
        "n_analyses": len(analyses),
        "data": data_view(safe.get("data") or {}),
        "disclosure": {
            "threshold": disclosure.get("threshold"),
            "n_suppressed": disclosure.get("n_suppressed", 0),
            "n_withheld": disclosure.get("n_withheld", 0),
            "publication": publication,
        },
        "eef_source": EEF_SOURCE,
    }
    return report, drawn


def review_rows(answers: object) -> list[tuple[str, str]]:
    """(question, answer) pairs from ``diagnostics.review_questions``, in the review's order."""
    if not isinstance(answers, dict):
        return []
    known = [(REVIEW_QUESTIONS[k], str(answers[k])) for k in REVIEW_QUESTIONS if answers.get(k)]
    other = [(str(k).replace("_", " ").capitalize(), str(v)) for k, v in answers.items() if k not in REVIEW_QUESTIONS and v]
    return known + other
