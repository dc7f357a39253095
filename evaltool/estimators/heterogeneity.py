"""Effects by pupil subgroup, for any method: one tidy table, adjusted p-values, effect sizes.

Two routes, chosen by the data:

(a) **pupil level** (``method: multilevel`` on pupils): for each ``by`` column the model is
    refitted with subgroup dummies and ``treated × subgroup`` interactions; the effect for
    level ``l`` is ``β_T + β_{T×l}`` (the reference level's is ``β_T``), the interaction
    p-value tests ``β_{T×l} = 0`` and ``joint_interaction_p_value`` all of a column's
    interactions at once (Wald χ² with k − 1 degrees of freedom; F(k − 1, G − 1) under cluster-robust SEs);
(b) **school subgroup panels** (every other method, with ``data.subgroups``): the method is
    rerun unchanged on each subgroup's school × year panel, and for each ``compare`` pair
    ``[a, b]`` on the within-school gap ``y_a − y_b`` (a triple difference: the method's
    difference in differences of the gap), whose p-value is the interaction p-value.

Within an analysis the subgroup p-values and the interaction p-values are each adjusted
for multiplicity by Holm (family-wise) and Benjamini–Hochberg (false discovery rate).
Subgroups too small to estimate are kept in the table as ``skipped`` with the reason.

:func:`post_process` is the pipeline's single hook: it runs (b) when asked and fills the
effect-size columns of every estimate (:mod:`evaltool.results.effect_size`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats

from evaltool.errors import DataError, EstimationError
from evaltool.results import AnalysisResult, EffectEstimate
from evaltool.results.effect_size import Standardiser, standardise
from evaltool.results.multiplicity import adjust_pvalues

if TYPE_CHECKING:
    from evaltool.estimators.base import Method
    from evaltool.estimators.context import AnalysisContext

#: Codes read as "no" (the default reference level of a yes/no column).
NO_CODES = ("0", "no", "n", "false", "f", "not")
#: Most distinct codes a subgroup column may have without an explicit ``levels`` list.
MAX_LEVELS = 20
#: The inference fields a subgroup row copies from its analysis's headline estimate.
INFERENCE_FIELDS = ("inference", "cluster", "n_clusters", "se_correction", "se_method")

TABLE_COLUMNS = (
    "by", "subgroup", "kind", "estimate", "std_error", "ci_lower", "ci_upper", "p_value", "interaction_p_value",
    "p_holm", "p_bh", "interaction_p_holm", "interaction_p_bh", "n_obs", "n_treated", "n_control", "n_pupils_min",
    "status", "reason", "joint_interaction_p_value",
)


# ------------------------------------------------------------------ codes
def _code_text(values: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(values):
        return values.astype(int).astype(str)
    if pd.api.types.is_numeric_dtype(values):
        integral = np.all(np.isclose(values.to_numpy(dtype=float), np.round(values.to_numpy(dtype=float))))
        return (values.astype("int64") if integral else values).astype(str)
    return values.astype("string").str.strip().astype(str)


def subgroup_codes(
    values: pd.Series, column: str, expected: list[str] | None = None, reference: str | None = None
) -> tuple[pd.Series, str]:
    """The subgroup code of each pupil (text) and the reference code.

    Raises
    ------
    DataError
        Listing the codes found that are not in ``expected`` (``heterogeneity.levels``), or
        when a column has more than :data:`MAX_LEVELS` codes and no ``levels`` list.
    """
    codes = _code_text(values)
    counts = codes.value_counts()
    if expected is not None:
        unexpected = counts[~counts.index.isin([str(e) for e in expected])]
        if len(unexpected):
            listed = ", ".join(f"'{k}' ({v} pupils)" for k, v in unexpected.items())
            raise DataError(
                f"Subgroup column '{column}' has codes not in heterogeneity.levels.{column} {list(expected)}: {listed}. "
                "Recode them in the pupil file, or add them to the levels list."
            )
    elif len(counts) > MAX_LEVELS:
        raise DataError(
            f"Subgroup column '{column}' has {len(counts)} distinct codes (e.g. {list(counts.index[:8])}); a subgroup "
            f"column needs at most {MAX_LEVELS}. Group the codes in the pupil file, or list the expected ones in "
            f"heterogeneity.levels.{column}."
        )
    if reference is not None:
        if str(reference) not in counts.index:
            raise DataError(
                f"heterogeneity.reference.{column} is '{reference}', which is not a code of column '{column}'; codes "
                f"found: {sorted(counts.index)}."
            )
        return codes, str(reference)
    no = [c for c in counts.index if c.lower() in NO_CODES]
    return codes, (no[0] if no else str(counts.index[0]))


# ------------------------------------------------------------------ table
def finish_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows → the tidy heterogeneity table with Holm and BH adjustments."""
    table = pd.DataFrame(rows).reindex(columns=TABLE_COLUMNS)
    subgroup = table["kind"] == "subgroup"
    table["p_holm"] = np.nan
    table["p_bh"] = np.nan
    table.loc[subgroup, "p_holm"] = adjust_pvalues(table.loc[subgroup, "p_value"], "holm")
    table.loc[subgroup, "p_bh"] = adjust_pvalues(table.loc[subgroup, "p_value"], "bh")
    # One test per comparison: with gap rows (school panels), the focal subgroup's interaction p-value
    # repeats its gap's, so the family is the gaps and the focal rows get their gap's adjusted values.
    gaps = table["kind"] == "gap"
    family = gaps if gaps.any() else subgroup
    for column, method in (("interaction_p_holm", "holm"), ("interaction_p_bh", "bh")):
        table[column] = np.nan
        table.loc[family, column] = adjust_pvalues(table.loc[family, "interaction_p_value"], method)
    if gaps.any():
        for gap in table.index[gaps]:
            focal = str(table.at[gap, "subgroup"]).split(" - ")[0]
            match = (table["kind"] == "subgroup") & (table["subgroup"] == focal) & table["interaction_p_value"].notna()
            table.loc[match, ["interaction_p_holm", "interaction_p_bh"]] = table.loc[
                gap, ["interaction_p_holm", "interaction_p_bh"]].to_numpy(dtype=float)
    return table


def skipped_warnings(table: pd.DataFrame) -> list[str]:
    """One warning per skipped subgroup, with the reason (the reader of the results must see them)."""
    skipped = table.loc[table["status"] == "skipped"]
    return [f"Subgroup '{row.subgroup}' was not estimated: {row.reason}." for row in skipped.itertuples(index=False)]


def table_estimates(table: pd.DataFrame, template: EffectEstimate, df: float | None = None) -> list[EffectEstimate]:
    """One :class:`EffectEstimate` per estimated row of the table.

    Intervals are normal, or Student's t with ``df`` degrees of freedom (G − 1 under cluster-robust SEs, as the
    headline estimate); the inference fields are the headline's, since the rows come from the same model.
    """
    out = []
    for row in table.loc[table["status"] == "ok"].itertuples(index=False):
        gap = row.kind == "gap"
        out.append(
            EffectEstimate.from_normal(
                term=f"{template.term} difference" if gap else template.term,
                estimand=("difference between subgroups' effects" if gap else f"{template.estimand}, subgroup"),
                estimate=row.estimate,
                std_error=row.std_error,
                ci_level=template.ci_level,
                df=df,
                n_treated=_int(row.n_treated),
                n_control=_int(row.n_control),
                n_obs=_int(row.n_obs),
                n_pupils_min=_int(row.n_pupils_min),
                method=template.method,
                outcome=template.outcome,
                subgroup=row.subgroup,
                **{name: getattr(template, name) for name in INFERENCE_FIELDS},
            )
        )
    return out


def _int(value: Any) -> int | None:
    return None if value is None or (isinstance(value, float) and not np.isfinite(value)) else int(value)


# ------------------------------------------------------------------ (a) pupil level
def pupil_interactions(
    frame: pd.DataFrame,
    outcome: str,
    spec: Any,
    *,
    fit_function: Callable[[pd.DataFrame, str, Any, pd.DataFrame], Any],
    base: EffectEstimate,
    treated: str = "treated",
) -> pd.DataFrame:
    """Subgroup effects from ``treated × subgroup`` interactions, one model per ``by`` column.

    A level with fewer than ``min_pupils`` pupils, or fewer than ``min_schools`` treated or
    comparison schools, is skipped (its pupils leave that column's model) and listed with
    the reason; so is a whole column whose model does not converge.
    """
    options = spec.heterogeneity
    rows: list[dict[str, Any]] = []
    for column in options.by:
        codes, reference = subgroup_codes(frame[column], column, options.levels.get(column), options.reference.get(column))
        school_treated = frame[treated] > 0
        kept, skipped = [], []
        for code in sorted(codes.unique(), key=lambda c: (c != reference, c)):
            mask = codes == code
            n_pupils = int(mask.sum())
            n_t = int(frame.loc[mask & school_treated, "school"].nunique())
            n_c = int(frame.loc[mask & ~school_treated, "school"].nunique())
            # Counts of the row are pupils (as n_obs), so a small group of pupils is seen by the disclosure rules;
            # the schools are checked against min_schools here.
            n_pt, n_pc = int((mask & school_treated).sum()), int((mask & ~school_treated).sum())
            base_row = {"by": column, "subgroup": f"{column}={code}", "kind": "subgroup", "n_obs": n_pupils,
                        "n_treated": n_pt, "n_control": n_pc, "n_pupils_min": min(n_pt, n_pc)}
            reason = _too_small(n_pupils, n_t, n_c, options.min_pupils, options.min_schools)
            if reason:
                skipped.append({**base_row, "status": "skipped", "reason": reason})
            else:
                kept.append((code, base_row))
        if not kept or kept[0][0] != reference or len(kept) < 2:
            why = (f"reference level '{reference}' is too small" if not kept or kept[0][0] != reference
                   else "fewer than two levels large enough to compare")
            rows += [{**r, "status": "skipped", "reason": r.get("reason") or why} for r in skipped + [k[1] for k in kept]]
            continue
        use = codes.isin([k[0] for k in kept])
        sub = frame.loc[use]
        sub_codes = codes[use]
        extra = {}
        for code, _ in kept[1:]:
            dummy = (sub_codes == code).astype(float)
            extra[f"{column}[{code}]"] = dummy
            extra[f"{treated}:{column}[{code}]"] = dummy * sub[treated]
        try:
            fit = fit_function(sub, outcome, spec, pd.DataFrame(extra, index=sub.index))
        except EstimationError as exc:
            rows += [{**r, "status": "skipped", "reason": f"model with {column} interactions failed: {exc}"}
                     for r in [k[1] for k in kept]] + skipped
            continue
        names = list(fit.params.index)
        cov = fit.cov_params.to_numpy()
        # Cluster-robust fits (cluster_count set) use t(G − 1) as the headline does; model-based ones the normal.
        clusters = getattr(fit, "cluster_count", None)
        df = clusters - 1 if clusters is not None else None
        inter = [names.index(f"{treated}:{column}[{code}]") for code, _ in kept[1:]]
        # Wald test that the effect is the same in every level: b' V⁻¹ b ~ χ²(k − 1), or, cluster-robust,
        # (b' V⁻¹ b)/(k − 1) ~ F(k − 1, G − 1) (for one interaction the square of the t test)
        b = fit.params.to_numpy()[inter]
        wald = float(b @ np.linalg.solve(cov[np.ix_(inter, inter)], b))
        joint_p = float(stats.chi2.sf(wald, len(inter)) if df is None
                        else stats.f.sf(wald / len(inter), len(inter), df))
        for i, (_code, row) in enumerate(kept):
            c = np.zeros(len(names))
            c[names.index(treated)] = 1.0
            p_inter = np.nan
            if i > 0:
                c[inter[i - 1]] = 1.0
                b, s = fit.params.iloc[inter[i - 1]], fit.bse.iloc[inter[i - 1]]
                p_inter = float(2 * (stats.norm.sf(abs(b / s)) if df is None else stats.t.sf(abs(b / s), df)))
            est, se = float(c @ fit.params.to_numpy()), float(np.sqrt(c @ cov @ c))
            rows.append({**row, **_normal(est, se, base.ci_level, df), "interaction_p_value": p_inter, "status": "ok",
                         "reason": "reference level" if i == 0 else "", "joint_interaction_p_value": joint_p})
        rows += skipped
    return finish_table(rows)


def _too_small(n_pupils: int, n_treated: int, n_control: int, min_pupils: int, min_schools: int) -> str:
    if n_pupils < min_pupils:
        return f"only {n_pupils} pupils (heterogeneity.min_pupils is {min_pupils})"
    if n_treated < min_schools or n_control < min_schools:
        return (f"only {n_treated} treated and {n_control} comparison schools with pupils in this subgroup "
                f"(heterogeneity.min_schools is {min_schools})")
    return ""


def _normal(estimate: float, se: float, level: float, df: float | None = None) -> dict[str, float]:
    """Wald interval and p-value: normal, or Student's t with ``df`` degrees of freedom."""
    reference = stats.norm if df is None else stats.t(df)
    z = float(reference.ppf(0.5 + level / 2))
    p = float(2 * reference.sf(abs(estimate / se))) if se > 0 else np.nan
    return {"estimate": estimate, "std_error": se, "ci_lower": estimate - z * se, "ci_upper": estimate + z * se,
            "p_value": p}


# ------------------------------------------------------------------ (b) school subgroup panels
def resolve_subgroups(sub: pd.DataFrame, by: list[str]) -> list[tuple[str, str]]:
    """``by`` entries → (subgroup type, subgroup) pairs; unknown names are an error listing the known ones."""
    types = sub["subgroup_type"].astype(str) if "subgroup_type" in sub else pd.Series("", index=sub.index)
    pairs = pd.DataFrame({"type": types, "subgroup": sub["subgroup"].astype(str)}).drop_duplicates()
    out: list[tuple[str, str]] = []
    unknown = []
    for name in by:
        match = pairs[(pairs["subgroup"] == name) | (pairs["type"] == name)]
        if match.empty:
            unknown.append(name)
        out += [(t, s) for t, s in match.itertuples(index=False) if (t, s) not in out]
    if unknown:
        raise DataError(
            f"heterogeneity.by names {unknown}, which are neither subgroups nor subgroup types of data.subgroups. "
            f"Subgroups found: {sorted(pairs['subgroup'].unique())}; types: {sorted(set(pairs['type']) - {''})}."
        )
    return out


def _subgroup_context(context: AnalysisContext, frame: pd.DataFrame) -> AnalysisContext:
    """The analysis context with the school panel replaced by a subgroup's (or a gap's) panel."""
    panel = context.study.panel
    covariates = [c for c in panel.covariates if c in panel.frame and c not in frame]
    # The cluster columns too: a subgroup rerun clusters as its analysis does (subgroup files rarely carry them).
    extra = [c for c in ("treated", "trust", "local_authority") if c in panel.frame and c not in frame]
    if covariates or extra:
        frame = frame.merge(panel.frame[["school", "year", *extra, *covariates]], on=["school", "year"], how="left")
    sub_panel = dataclasses.replace(panel, frame=frame.sort_values(["school", "year"]).reset_index(drop=True),
                                    report=type(panel.report)())
    # Only the subgroup's estimate is kept from a rerun, so its sensitivity analyses would be computed for nothing.
    spec = context.spec.model_copy(update={"sensitivity": context.spec.sensitivity.model_copy(update={"enabled": False})})
    return dataclasses.replace(context, spec=spec, study=dataclasses.replace(context.study, panel=sub_panel))


def _rerun(method: Method, context: AnalysisContext, frame: pd.DataFrame, term: str) -> EffectEstimate:
    result = method.run(_subgroup_context(context, frame))
    for estimate in result.estimates:
        if estimate.term == term and estimate.subgroup == "all":
            return estimate
    raise EstimationError(f"the rerun gave no estimate of '{term}'")


def school_subgroups(method: Method, context: AnalysisContext, result: AnalysisResult) -> AnalysisResult:
    """Route (b): rerun the method per subgroup panel and on each compared pair's gap."""
    options = context.spec.heterogeneity
    study = context.study
    if study.subgroups is None:
        result.warnings.append(
            "heterogeneity was requested but there is no data.subgroups file (school × year × subgroup outcomes), so no "
            "subgroup effects were estimated; add data.subgroups, or use method: multilevel on pupil data."
        )
        return result
    outcome = context.outcome
    main = result.estimates[0]
    sub = study.subgroups.frame
    if outcome not in sub:
        raise DataError(f"data.subgroups has no column '{outcome}' (the outcome of analysis '{context.spec.name}').")
    wanted = resolve_subgroups(sub, options.by)
    for pair in options.compare:
        missing = [s for s in pair if s not in set(sub["subgroup"].astype(str))]
        if missing:
            raise DataError(f"heterogeneity.compare names {missing}, not subgroups of data.subgroups; subgroups found: "
                            f"{sorted(sub['subgroup'].astype(str).unique())}.")
    base_cols = [c for c in ("school", "year", "join_year", "trust", "local_authority", "pupil_count") if c in sub]
    rows: list[dict[str, Any]] = []
    estimates: list[EffectEstimate] = []
    panels: dict[str, pd.DataFrame] = {}

    def cells_of(name: str) -> pd.DataFrame:
        """The subgroup's school × year panel: cells below min_pupils excluded (and counted) once."""
        if name not in panels:
            cells = sub.loc[sub["subgroup"].astype(str) == name]
            small = (cells["pupil_count"] < options.min_pupils if "pupil_count" in cells
                     else pd.Series(False, index=cells.index))
            result.sample.exclude(f"subgroup '{name}': cell with fewer than {options.min_pupils} pupils",
                                  int(small.sum()), int(cells.loc[small, "school"].nunique()),
                                  stage=f"{context.spec.name}:heterogeneity")
            panels[name] = cells.loc[~small & cells[outcome].notna(), base_cols + [outcome]]
        return panels[name]

    for kind_type, name in wanted:
        cells = cells_of(name)
        row, estimate = _school_row(method, context, cells, main, options, name, kind_type)
        rows.append(row)
        if estimate is not None:
            estimates.append(estimate.with_context(subgroup=name, method=main.method, outcome=main.outcome))
    for focal, reference in options.compare:
        both = gap_panel(cells_of(focal), cells_of(reference), outcome)
        label = f"{focal} - {reference}"
        row, estimate = _school_row(method, context, both, main, options, label, "gap", kind="gap")
        if estimate is not None:
            row["interaction_p_value"] = estimate.p_value
            estimates.append(estimate.with_context(subgroup=label, term=f"{main.term} difference",
                                                   estimand="difference between subgroups' effects (triple difference)",
                                                   method=main.method, outcome=main.outcome))
            for r in rows:
                if r["subgroup"] == focal and r["status"] == "ok":
                    r["interaction_p_value"] = estimate.p_value
        rows.append(row)
    result.diagnostics["subgroups"] = finish_table(rows)
    result.warnings.extend(skipped_warnings(result.diagnostics["subgroups"]))
    result.estimates = list(result.estimates) + estimates
    return result


def gap_panel(focal: pd.DataFrame, reference: pd.DataFrame, outcome: str) -> pd.DataFrame:
    """School-years with both subgroups: outcome = focal − reference.

    ``pupil_count`` becomes ``n_a·n_b/(n_a + n_b)``, proportional to the inverse variance of a
    difference of two means, for methods that weight by it.
    """
    right = reference[["school", "year", outcome, *(["pupil_count"] if "pupil_count" in reference else [])]]
    both = focal.merge(right, on=["school", "year"], suffixes=("", "__ref"))
    both[outcome] = both[outcome] - both.pop(f"{outcome}__ref")
    if "pupil_count" in both:
        n_a, n_b = both["pupil_count"], both.pop("pupil_count__ref")
        both["pupil_count"] = n_a * n_b / (n_a + n_b)
    return both


def _school_row(
    method: Method,
    context: AnalysisContext,
    cells: pd.DataFrame,
    main: EffectEstimate,
    options: Any,
    name: str,
    kind_type: str,
    kind: str = "subgroup",
) -> tuple[dict[str, Any], EffectEstimate | None]:
    """One table row: the method rerun on ``cells``, or the reason it was skipped."""
    schools = cells.drop_duplicates("school")
    n_t = int(schools["join_year"].notna().sum())
    n_c = int(schools["join_year"].isna().sum())
    row = {"by": kind_type, "subgroup": name, "kind": kind, "n_obs": len(cells), "n_treated": n_t, "n_control": n_c,
           "n_pupils_min": _smaller_group_pupils(cells), "interaction_p_value": np.nan}
    if n_t < options.min_schools or n_c < options.min_schools:
        return {**row, "status": "skipped", "reason": (
            f"only {n_t} joining and {n_c} never-joining schools with data (heterogeneity.min_schools is "
            f"{options.min_schools})")}, None
    try:
        estimate = _rerun(method, context, cells, main.term)
    except (EstimationError, DataError) as exc:
        return {**row, "status": "skipped", "reason": f"the method failed on this subgroup: {exc}"}, None
    values = {"estimate": estimate.estimate, "std_error": estimate.std_error, "ci_lower": estimate.ci_lower,
              "ci_upper": estimate.ci_upper, "p_value": estimate.p_value}
    estimate = estimate.with_context(n_pupils_min=row["n_pupils_min"])
    return {**row, **values, "n_obs": estimate.n_obs, "n_treated": estimate.n_treated, "n_control": estimate.n_control,
            "status": "ok", "reason": ""}, estimate


def _smaller_group_pupils(cells: pd.DataFrame) -> int | None:
    """Pupils in the smaller of the joining and comparison groups of a subgroup panel (None without counts).

    The disclosure threshold applies to it: an estimate is withheld in publication when either side rests on
    fewer pupils than the threshold.  (For a gap panel the counts are the harmonic combination of both subgroups.)
    """
    if "pupil_count" not in cells:
        return None
    joined = cells["join_year"].notna()
    totals = [float(cells.loc[joined, "pupil_count"].sum()), float(cells.loc[~joined, "pupil_count"].sum())]
    return int(np.floor(min(totals)))


# ------------------------------------------------------------------ the pipeline hook
def post_process(method: Method, context: AnalysisContext, result: AnalysisResult) -> AnalysisResult:
    """Run school-panel heterogeneity (when asked and not done by the method) and fill effect sizes."""
    spec = context.spec
    if getattr(spec, "heterogeneity", None) is not None and "subgroups" not in result.diagnostics \
            and result.estimates:
        result = school_subgroups(method, context, result)
    # Estimates read from an external file (meta-analysis of published effects) are not on the scale of
    # this study's outcome, so they are not standardised with its SD.
    external = getattr(spec, "effects_file", None) is not None
    standardiser = None if external else outcome_standardiser(context)
    if standardiser is not None:
        result.estimates = [e if e.effect_size is not None else standardise(e, standardiser) for e in result.estimates]
        result.diagnostics["effect_size"] = standardiser.to_dict()
    sensitivity = getattr(spec, "sensitivity", None)
    if sensitivity is not None and sensitivity.enabled and sensitivity.placebo_outcome and result.estimates:
        result.diagnostics.setdefault("sensitivity", {})["placebo_outcome"] = placebo_outcome(
            method, context, result, sensitivity.placebo_outcome)
    return result


def placebo_outcome(method: Method, context: AnalysisContext, result: AnalysisResult, outcome: str) -> dict:
    """Rerun the analysis on an outcome joining cannot have changed; its headline effect should be about zero."""
    term = result.diagnostics.get("headline_term") or result.estimates[0].term
    spec = context.spec.model_copy(update={
        "outcome": outcome, "heterogeneity": None,
        "sensitivity": context.spec.sensitivity.model_copy(update={"enabled": False}),
    })
    try:
        rerun = method.run(dataclasses.replace(context, spec=spec, outcome=outcome))
    except (EstimationError, DataError) as exc:
        return {"available": False, "outcome": outcome, "reason": str(exc)}
    estimate = next((e for e in rerun.estimates if e.term == term and e.subgroup == "all"), rerun.estimates[0])
    return {"available": True, "outcome": outcome, "term": estimate.term, "estimate": estimate.estimate,
            "std_error": estimate.std_error, "ci_lower": estimate.ci_lower, "ci_upper": estimate.ci_upper,
            "p_value": estimate.p_value, "rejects_no_effect": bool(estimate.p_value < context.spec.sensitivity.alpha)}


def outcome_standardiser(context: AnalysisContext) -> Standardiser | None:
    """Pupil-level total SD from a null multilevel model if pupil data hold the outcome, else the school-level SD."""
    from evaltool.estimators.multilevel.model import null_icc

    outcome = context.outcome
    pupils = context.study.pupils
    if pupils is not None and outcome in pupils and pupils[outcome].notna().sum() > 10:
        data = pupils.loc[pupils[outcome].notna(), ["school", outcome]]
        try:
            _, tau, sigma2 = null_icc(data, outcome, reml=True)
            return Standardiser(
                sd=float(np.sqrt(tau + sigma2)), n_total=len(data), level="pupil",
                description="Hedges' g: total SD (school + pupil variance) of a multilevel model without covariates "
                            "on the pupil data (EEF), small-sample corrected",
            )
        except EstimationError:
            pass
    values = context.panel.frame[outcome].dropna() if outcome in context.panel.frame else pd.Series(dtype=float)
    if len(values) < 3:
        return None
    return Standardiser(
        sd=float(values.std(ddof=1)), n_total=len(values), level="school",
        description="school-level standardised difference: SD of school × year means (no pupil data); larger than "
                    "pupil-level Hedges' g and not comparable with EEF/WWC effect sizes",
    )
