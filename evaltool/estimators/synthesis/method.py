"""Methods ``trust_effects`` (one row per trust) and ``meta_analysis`` (random-effects synthesis).

``meta_analysis`` pools either the per-trust estimates of a ``trust_effects``
analysis of the same config (re-run with that analysis's own seed, so the
numbers are identical) with moderators from the trusts file, or a CSV of
effect sizes and standard errors (one row per study) with moderators from its
own columns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from evaltool.config.models import AnalysisBase, EventTime, SourceFile
from evaltool.errors import DataError, EstimationError
from evaltool.estimators.base import Method
from evaltool.estimators.common import design_problems, result_for
from evaltool.estimators.inference import inference_problems
from evaltool.estimators.synthesis.answers import review_answers
from evaltool.estimators.synthesis.meta import MIN_STUDIES, MetaFit, fit_meta
from evaltool.estimators.synthesis.metareg import build_design, fit_metareg, is_categorical
from evaltool.estimators.synthesis.trust_effects import Window, fit_trust_effects
from evaltool.results import AnalysisResult, EffectEstimate, SampleReport

if TYPE_CHECKING:
    from evaltool.config.root import Config
    from evaltool.estimators.context import AnalysisContext


# ------------------------------------------------------------ trust_effects
class TrustEffectsOptions(AnalysisBase):
    """Options of ``method: trust_effects``."""

    method: Literal["trust_effects"]
    pre_window: tuple[EventTime, EventTime] = (-3, -1)
    """First and last year of the 'before' period, in years relative to joining (0 = first year in the trust)."""
    post_window: tuple[EventTime, EventTime] = (0, 2)
    """First and last year of the 'after' period, relative to joining (0 = first year in the trust)."""
    comparison: Literal["never_joined", "not_yet_joined"] = "never_joined"
    """Comparison schools: 'never_joined', or 'not_yet_joined' (also schools joining after the post window)."""
    min_schools: int = Field(default=2, ge=1, le=1000)
    """Trusts with fewer schools having outcomes before and after joining are reported and skipped."""
    n_permutations: int = Field(default=999, ge=99, le=100_000)
    """Number of placebo trusts drawn for each trust's randomisation-inference p-value."""
    on_problem: Literal["skip", "fail"] = "skip"
    """What to do with a trust that cannot be estimated: 'skip' (report it and go on) or 'fail'."""
    ci_level: float = Field(default=0.95, gt=0.5, lt=1.0)
    """Confidence level of the intervals."""
    subgroup_gap: tuple[str, str] | None = None
    """Analyse the gap between two pupil subgroups instead of the whole-school outcome, e.g. [disadvantaged, not_disadvantaged]."""

    @model_validator(mode="after")
    def _windows(self) -> TrustEffectsOptions:
        for key in ("pre_window", "post_window"):
            first, last = getattr(self, key)
            if first > last:
                raise ValueError(f"{key} must be [first, last] with first <= last (got [{first}, {last}])")
        if self.pre_window[1] >= 0:
            raise ValueError(f"pre_window must end before joining, at -1 or earlier (got {self.pre_window[1]})")
        if self.post_window[0] < 0:
            raise ValueError(f"post_window must start at joining (0) or later (got {self.post_window[0]})")
        return self

    def cross_check(self, config: Config) -> list[tuple[tuple, str]]:
        problems = []
        if config.columns.trust is None:
            problems.append((("method",), "trust_effects needs columns.trust (the trust or federation id of each school)"))
        problems += design_problems(config, self.method)
        problems += inference_problems(config, self, levels=(), few_clusters=("randomisation",))
        problems += _unclustered_problems(self, "its p-values are randomisation inference over placebo trusts")
        if self.subgroup_gap is not None and config.data.subgroups is None and getattr(config, "sources", None) is None:
            problems.append((("subgroup_gap",), "subgroup_gap needs data.subgroups (the school x year x subgroup file) "
                                                "or sources: (the performance tables' subgroup columns)"))
        if self.subgroup_gap is not None and self.subgroup_gap[0] == self.subgroup_gap[1]:
            problems.append((("subgroup_gap",), "subgroup_gap needs two different subgroups"))
        return problems


def subgroup_gap_frame(subgroups: pd.DataFrame, outcome: str, first: str, second: str) -> tuple[pd.DataFrame, int]:
    """School x year frame whose outcome is the gap ``first − second`` between two subgroups' means.

    Returns the frame (canonical columns plus ``outcome``) and the number of
    school-years that have only one of the two subgroups (no gap; left out).
    """
    known = set(subgroups["subgroup"].dropna().astype(str))
    absent = [g for g in (first, second) if g not in known]
    if absent:
        raise EstimationError(
            f"subgroup_gap names {absent}, which are not in the subgroups file; subgroups are {sorted(known)}.",
            user_error=True,
        )
    part = subgroups.loc[subgroups["subgroup"].isin([first, second])]
    wide = part.pivot_table(index=["school", "year"], columns="subgroup", values=outcome, aggfunc="mean")
    both = wide[[first, second]].notna().all(axis=1)
    gap = (wide.loc[both, first] - wide.loc[both, second]).rename(outcome).reset_index()
    schools = subgroups.groupby("school")[["join_year", "trust"]].first()
    return gap.join(schools, on="school"), int((~both).sum())


def run_trust_effects(context: AnalysisContext) -> AnalysisResult:
    spec: TrustEffectsOptions = context.spec  # type: ignore[assignment]
    frame = context.panel.frame
    gap_note, n_single = None, 0
    if spec.subgroup_gap is not None:
        if context.study.subgroups is None:
            raise EstimationError("subgroup_gap needs data.subgroups; add the subgroups file to the config.",
                                  user_error=True)
        first, second = spec.subgroup_gap
        frame, n_single = subgroup_gap_frame(context.study.subgroups.frame, context.outcome, first, second)
        gap_note = (f"Outcome is the gap {first} minus {second} in mean {context.outcome}; "
                    f"{n_single} school-years with only one of the two subgroups have no gap and are left out.")
    fitted = fit_trust_effects(
        frame,
        context.outcome,
        window=Window(pre=tuple(spec.pre_window), post=tuple(spec.post_window)),
        comparison=spec.comparison,
        min_schools=spec.min_schools,
        n_permutations=spec.n_permutations,
        on_problem=spec.on_problem,
        ci_level=spec.ci_level,
        rng=context.rng,
    )
    warnings = list(fitted.warnings)
    estimates = fitted.estimates
    if spec.subgroup_gap is not None:
        first, second = spec.subgroup_gap
        estimates = [e.with_context(estimand="effect on the gap " + e.estimand.replace("ATT of trust", f"{first} - {second}"),
                                    subgroup=f"{first}-{second}") for e in estimates]
        warnings.append(gap_note)
        fitted.sample.exclude("school-year with only one of the two subgroups (no gap)", n_single, stage="analysis", attrition=True,
                              unit="school-years")
    if context.study.trusts is not None:
        from evaltool.data.trusts import compare_ids, validate_trusts

        attributes = validate_trusts(context.study.trusts, id_column=_trust_id_column(context))
        data_ids = context.panel.frame["trust"].dropna().astype(str).unique()
        warnings += compare_ids(attributes, data_ids).messages()
    diagnostics = {
        "trusts": fitted.table,
        "skipped_trusts": fitted.skipped,
        "design": {
            "pre_window": list(spec.pre_window),
            "post_window": list(spec.post_window),
            "comparison": spec.comparison,
            "n_permutations": spec.n_permutations,
            "did_core": "2x2 on school means around each trust's joining year",
            "note": (
                "Trusts that joined in the same year share comparison schools, so their estimates are slightly "
                "correlated (covariance s_C^2/n_C, small when comparison schools are many)."
            ),
        },
        # One estimate per trust (no single headline); n_treated / n_control count schools.
        "count_unit": "schools",
    }
    return result_for(context, estimates, diagnostics, fitted.sample, warnings)


def _trust_id_column(context: AnalysisContext) -> str:
    """The trusts file's id column: the panel's trust column name if the file has it, else 'trust_id'."""
    name = context.config.columns.trust
    trusts = context.study.trusts
    return name if name and trusts is not None and name in trusts.columns else "trust_id"


# ------------------------------------------------------------ meta_analysis
class MetaAnalysisOptions(AnalysisBase):
    """Options of ``method: meta_analysis``."""

    method: Literal["meta_analysis"]
    source: str | None = None
    """Name of a trust_effects analysis in this config whose per-trust estimates are pooled."""
    effects_file: SourceFile | None = None
    """Instead of source: a CSV (or Parquet/Stata) file with one row per study: id, estimate and standard error."""
    study_column: str = "study"
    """Column of effects_file with the study id."""
    estimate_column: str = "estimate"
    """Column of effects_file with the effect estimate."""
    std_error_column: str = "std_error"
    """Column of effects_file with the standard error of the estimate."""
    tau2_method: Literal["REML", "DL"] = "REML"
    """Estimator of the between-study variance: 'REML' (restricted maximum likelihood) or 'DL' (DerSimonian-Laird)."""
    knapp_hartung: bool = True
    """Use the Knapp-Hartung adjustment (t and F tests on k - p df); recommended with few studies."""
    moderators: list[Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_ ]{0,63}$")]] = Field(default_factory=list)
    """Moderators for the meta-regression: trusts-file columns (or computed depth scores) or effects_file columns."""
    categorical: list[str] = Field(default_factory=list)
    """Moderators to treat as categories even if they hold numbers (text columns always are)."""
    reference_levels: dict[str, str] = Field(default_factory=dict)
    """Reference level per categorical moderator (default: its most common level)."""
    on_problem: Literal["skip", "fail"] = "skip"
    """A moderator with a single level, or studies without moderator values: 'skip' (report, drop) or 'fail'."""
    ci_level: float = Field(default=0.95, gt=0.5, lt=1.0)
    """Confidence level of the intervals (also of the prediction interval)."""

    @model_validator(mode="after")
    def _one_source(self) -> MetaAnalysisOptions:
        if (self.source is None) == (self.effects_file is None):
            raise ValueError(
                "give exactly one of source (a trust_effects analysis name) and effects_file (a file of estimates)"
            )
        unknown = sorted((set(self.categorical) | set(self.reference_levels)) - set(self.moderators))
        if unknown:
            raise ValueError(f"categorical/reference_levels name {unknown}, which are not in moderators")
        return self

    def cross_check(self, config: Config) -> list[tuple[tuple, str]]:
        # Studies (trusts) are the independent units of a meta-analysis: there is nothing to cluster.
        problems = inference_problems(config, self, levels=())
        problems += _unclustered_problems(self, "its intervals are set by knapp_hartung (t(k-1)) or are normal")
        if self.source is not None:
            methods = {a.name: a.method for a in config.analyses}
            if self.source not in methods:
                problems.append((("source",), f"no analysis named '{self.source}'; analyses are {sorted(methods)}"))
            elif methods[self.source] != "trust_effects":
                problems.append((("source",), f"analysis '{self.source}' uses method {methods[self.source]}; "
                                              "source must name a trust_effects analysis"))
            if self.moderators and config.data.trusts is None:
                problems.append((("moderators",), "moderators of per-trust estimates come from data.trusts; add "
                                                  "data.trusts to the config"))
        return problems


def _studies_from_source(context: AnalysisContext, spec: MetaAnalysisOptions
                         ) -> tuple[pd.DataFrame, str, list[str], tuple[str, str] | None]:
    """Per-trust estimates of the source analysis, joined with trust attributes."""
    from evaltool.estimators.context import AnalysisContext, analysis_rng

    source = next(a for a in context.config.analyses if a.name == spec.source)
    outcome = context.config.analysis_outcomes(source)
    source_context = AnalysisContext(study=context.study, spec=source, outcome=outcome,
                                     rng=analysis_rng(context.config.seed, source.name), config=context.config)
    try:
        result = run_trust_effects(source_context)
    except EstimationError as exc:
        raise EstimationError(f"The source analysis '{source.name}' could not run, so there is nothing to pool: {exc}",
                              user_error=exc.user_error) from None
    studies = pd.DataFrame({
        "study": [e.term for e in result.estimates],
        "estimate": [e.estimate for e in result.estimates],
        "std_error": [e.std_error for e in result.estimates],
    })
    notes = [f"Per-trust estimates from analysis '{source.name}' ({len(studies)} trusts)."] + result.warnings
    if context.study.trusts is not None:
        from evaltool.data.trusts import validate_trusts

        attributes = validate_trusts(context.study.trusts, id_column=_trust_id_column(context))
        notes += attributes.notes
        studies = studies.join(attributes.frame, on="study")
    return studies, outcome, notes, getattr(source, "subgroup_gap", None)


def _studies_from_file(context: AnalysisContext, spec: MetaAnalysisOptions, sample: SampleReport) -> pd.DataFrame:
    from evaltool.data.io import read_source

    if "effects_file" in context.study.inline:  # the Python API's data frame
        key = "the data frame passed as effects"
        raw = context.study.inline["effects_file"].copy()
        where = key
    else:
        key = f"analyses.{spec.name}.effects_file"
        path = context.config.resolve(spec.effects_file.path)
        raw = read_source(spec.effects_file, path, key)
        where = f"{key} '{path.name}'"
    needed = [spec.study_column, spec.estimate_column, spec.std_error_column, *spec.moderators]
    missing = [c for c in needed if c not in raw.columns]
    if missing:
        raise DataError(f"{where} has no column(s) {missing}; columns are {list(raw.columns)}.")
    studies = raw.rename(columns={spec.study_column: "study", spec.estimate_column: "estimate",
                                  spec.std_error_column: "std_error"})
    studies["study"] = studies["study"].astype(str)
    repeated = studies["study"][studies["study"].duplicated()].unique()
    if len(repeated):
        raise DataError(
            f"{key}: study ids in column '{spec.study_column}' must be unique (one independent estimate per study); "
            f"{len(repeated)} repeat, e.g. {repeated[0]!r}. Combine a study's estimates into one first."
        )
    for column in ("estimate", "std_error"):
        values = pd.to_numeric(studies[column], errors="coerce")
        bad = values.isna() & studies[column].notna()
        if bad.any():
            raise DataError(f"{key}: column '{column}' must hold numbers; found text in {int(bad.sum())} row(s).")
        studies[column] = values
    incomplete = studies["estimate"].isna() | studies["std_error"].isna()
    if incomplete.any():
        sample.exclude("study without estimate or standard error", int(incomplete.sum()), int(incomplete.sum()),
                       unit="studies", stage="analysis", attrition=True, detail=", ".join(studies.loc[incomplete, "study"][:5]))
        studies = studies.loc[~incomplete]
    nonpositive = studies["std_error"] <= 0
    if nonpositive.any():
        raise DataError(
            f"{key}: standard errors must be positive; {int(nonpositive.sum())} study(ies) have zero or negative "
            f"ones, e.g. {studies.loc[nonpositive, 'study'].iloc[0]!r}."
        )
    return studies.reset_index(drop=True)


def _pooled_estimate(fit: MetaFit, term: str, estimand: str, inference: str) -> EffectEstimate:
    ci = fit.conf_int()[0]
    return EffectEstimate(
        term=term, estimand=estimand, estimate=float(fit.coef[0]), std_error=float(fit.se[0]),
        ci_lower=float(ci[0]), ci_upper=float(ci[1]), p_value=float(fit.p_values[0]), n_obs=fit.k,
        ci_level=fit.level, inference=inference, **_inference_fields(inference),
    )


def _unclustered_problems(spec: AnalysisBase, how: str) -> list[tuple[tuple, str]]:
    """A cluster correction asked of a method whose units are independent by design is a config error."""
    if "correction" not in spec.inference.model_fields_set:
        return []
    return [(("inference", "correction"), f"{spec.method} does not cluster, so there is no cluster correction to "
             f"choose ({how}); remove inference.correction")]


def _inference_fields(text: str) -> dict[str, str]:
    """The row's inference fields: studies (trusts) are the independent units, so no clustering."""
    method, _, correction = text.rpartition(", ")
    return {"se_method": method or text, "se_correction": correction, "cluster": ""}


def _inference_text(spec: MetaAnalysisOptions, k: int, p: int = 1) -> str:
    test = f"Knapp-Hartung t({k - p})" if spec.knapp_hartung else "normal (z)"
    return f"random-effects meta-analysis, {spec.tau2_method} tau^2, {test}"


def run_meta_analysis(context: AnalysisContext) -> AnalysisResult:
    spec: MetaAnalysisOptions = context.spec  # type: ignore[assignment]
    sample = SampleReport()
    if spec.source is not None:
        studies, outcome, notes, gap = _studies_from_source(context, spec)
    else:
        studies = _studies_from_file(context, spec, sample)
        outcome, notes, gap = spec.outcome or "effect size", [], None
    sample.n_rows_in = len(studies) + sum(e.n_rows for e in sample.exclusions)
    warnings: list[str] = []
    if len(studies) < MIN_STUDIES:
        raise EstimationError(
            f"Only {len(studies)} study(ies) to pool ({', '.join(studies['study'])}); a random-effects "
            f"meta-analysis needs at least {MIN_STUDIES}. Report the estimates one by one instead.",
            user_error=True,
        )
    fit = fit_meta(studies["estimate"], studies["std_error"], tau2_method=spec.tau2_method,
                   knapp_hartung=spec.knapp_hartung, level=spec.ci_level)
    pred, pi_low, pi_high = fit.prediction_interval()
    estimates = [_pooled_estimate(fit, "pooled", "mean effect across studies (random effects)",
                                  _inference_text(spec, fit.k))]
    diagnostics: dict = {
        "studies": studies[["study", "estimate", "std_error"]].assign(
            weight_percent=100 * fit.weights / fit.weights.sum()),
        "heterogeneity": {
            "k": fit.k, "tau2": fit.tau2, "tau": float(np.sqrt(fit.tau2)), "tau2_se": fit.tau2_se,
            "tau2_method": fit.tau2_method, "I2_percent": fit.I2, "H2": fit.H2,
            "Q": fit.QE, "Q_df": fit.QE_df, "Q_p_value": fit.QE_p,
        },
        "pooled": {"estimate": pred, "ci_lower": estimates[0].ci_lower, "ci_upper": estimates[0].ci_upper,
                   "prediction_lower": pi_low, "prediction_upper": pi_high, "ci_level": spec.ci_level,
                   "test": fit.test},
        "notes": notes,
        "headline_term": estimates[0].term,
        "count_unit": "studies",
        # REML that does not converge raises; DerSimonian-Laird is closed-form (0 iterations).
        "convergence": {"converged": True, "tau2_method": fit.tau2_method, "iterations": fit.iterations},
    }
    if spec.moderators:
        estimates += _moderator_analysis(studies, spec, diagnostics, warnings, sample)
    diagnostics["review_questions"] = review_answers(diagnostics, outcome, gap=gap)
    sample.n_rows_used = fit.k
    sample.n_units_used = fit.k
    return AnalysisResult(analysis=spec.name, method=spec.method, outcome=outcome,
                          estimates=[e.with_context(method=spec.method, outcome=outcome) for e in estimates],
                          diagnostics=diagnostics, sample=sample, warnings=warnings)


def _moderator_analysis(studies: pd.DataFrame, spec: MetaAnalysisOptions, diagnostics: dict, warnings: list[str],
                        sample: SampleReport) -> list[EffectEstimate]:
    """Meta-regression on the moderators, plus a pooled estimate per level of each categorical moderator."""
    absent = [m for m in spec.moderators if m not in studies.columns]
    if absent:
        available = sorted(c for c in studies.columns if c not in ("study", "estimate", "std_error"))
        raise EstimationError(f"moderator(s) {absent} are not columns of the study attributes; available: "
                              f"{available}.", user_error=True)
    lacking = studies[spec.moderators].isna().any(axis=1)
    if lacking.any():
        message = (f"{int(lacking.sum())} study(ies) have no value for some moderator (e.g. "
                   f"{', '.join(studies.loc[lacking, 'study'][:5])}), so they are left out of the meta-regression")
        if spec.on_problem == "fail":
            raise EstimationError(message + "; fill the values or set on_problem: skip.", user_error=True)
        warnings.append(message + ".")
        sample.exclude("study without moderator values (meta-regression only)", int(lacking.sum()),
                       int(lacking.sum()), unit="studies", stage="analysis", attrition=True)
    data = studies.loc[~lacking].reset_index(drop=True)
    if len(data) < MIN_STUDIES:
        raise EstimationError(f"Only {len(data)} studies have values for every moderator {spec.moderators}; the "
                              f"meta-regression needs at least {MIN_STUDIES}.", user_error=True)
    design = build_design(data, spec.moderators, categorical=spec.categorical, references=spec.reference_levels,
                          on_problem=spec.on_problem)
    for moderator, problem in design.dropped.items():
        warnings.append(f"Moderator '{moderator}' left out: {problem}.")
    estimates: list[EffectEstimate] = []
    if design.moderators:
        fit, summary = fit_metareg(data["estimate"], data["std_error"], design, tau2_method=spec.tau2_method,
                                   knapp_hartung=spec.knapp_hartung, level=spec.ci_level)
        summary["n_studies"] = fit.k
        diagnostics["meta_regression"] = summary
        table = summary["coefficients"]
        for row in table.iloc[1:].itertuples():
            name = row.term
            column, _, level = name.partition("=")
            estimand = (f"difference in effect, {column} '{level}' vs '{design.references[column]}'" if level
                        else f"change in effect per unit of {column}")
            estimates.append(EffectEstimate(
                term=f"moderator:{name}", estimand=estimand, estimate=row.estimate, std_error=row.std_error,
                ci_lower=row.ci_lower, ci_upper=row.ci_upper, p_value=row.p_value, n_obs=fit.k,
                ci_level=spec.ci_level, inference="meta-regression, " + _inference_text(spec, fit.k, len(fit.names)),
                **_inference_fields(_inference_text(spec, fit.k, len(fit.names))),
            ))
    by_level = {}
    for moderator in design.moderators:
        if not (moderator in spec.categorical or is_categorical(data[moderator])):
            continue
        rows = []
        for level, part in data.groupby(data[moderator].astype(str), sort=True):
            if len(part) < MIN_STUDIES:
                rows.append({"level": level, "k": len(part), "status": f"not pooled: fewer than {MIN_STUDIES} studies"})
                continue
            sub = fit_meta(part["estimate"], part["std_error"], tau2_method=spec.tau2_method,
                           knapp_hartung=spec.knapp_hartung, level=spec.ci_level)
            est = _pooled_estimate(sub, f"{moderator}={level}", f"mean effect among studies with {moderator} '{level}'",
                                   _inference_text(spec, sub.k))
            estimates.append(est)
            rows.append({"level": level, "k": sub.k, "status": "pooled", "estimate": est.estimate,
                         "std_error": est.std_error, "ci_lower": est.ci_lower, "ci_upper": est.ci_upper,
                         "tau2": sub.tau2, "I2_percent": sub.I2})
        by_level[moderator] = pd.DataFrame(rows)
    if by_level:
        diagnostics["by_level"] = by_level
    return estimates


# ------------------------------------------------------------ figures
def trust_figures(result: AnalysisResult) -> dict:
    from evaltool.report.plots_synthesis import forest_figure

    table = _frame(result.diagnostics["trusts"])
    return {"forest": forest_figure(table.rename(columns={"trust": "study"}), result.outcome,
                                    title="Effect of joining, trust by trust")}


def meta_figures(result: AnalysisResult) -> dict:
    from evaltool.report.plots_synthesis import forest_figure

    studies = _frame(result.diagnostics["studies"])
    figures = {"forest": forest_figure(studies, result.outcome, pooled=result.diagnostics["pooled"],
                                       heterogeneity=result.diagnostics["heterogeneity"],
                                       title="Random-effects synthesis")}
    for moderator, levels in result.diagnostics.get("by_level", {}).items():
        levels = _frame(levels)
        pooled_levels = levels[levels["status"] == "pooled"] if "status" in levels else levels.iloc[0:0]
        if len(pooled_levels):
            labelled = pooled_levels.assign(study=lambda d: d["level"] + " (" + d["k"].astype(str) + " studies)")
            figures[f"by_{moderator}"] = forest_figure(
                labelled, result.outcome, pooled=result.diagnostics["pooled"],
                title=f"Pooled effect by {moderator.replace('_', ' ')}")
    return figures


def _frame(value) -> pd.DataFrame:
    if isinstance(value, pd.DataFrame):
        return value
    return pd.DataFrame(value["data"], columns=value["columns"])


TRUST_EFFECTS = Method(
    name="trust_effects",
    options=TrustEffectsOptions,
    run=run_trust_effects,
    summary="Per-trust DiD effects (one row per trust) with randomisation-inference p-values for few schools.",
    figures=trust_figures,
)
META_ANALYSIS = Method(
    name="meta_analysis",
    options=MetaAnalysisOptions,
    run=run_meta_analysis,
    summary="Random-effects meta-analysis (REML/DL, Knapp-Hartung) and meta-regression on trust moderators.",
    figures=meta_figures,
)
