"""``method: multilevel``: pupils in schools (in trusts), or a growth model on the school panel.

The treatment indicator is 1 for a pupil (or school-year) whose school had joined the
trust/federation by that year (``join_year ≤ year``).  The effect is the coefficient of
``treated`` in a linear mixed model with random school intercepts (and optional random
slopes, and an optional trust level); its causal reading rests on the covariates removing
selection (schools that join differ).  By default (``estimand: att``) the covariates also
enter as treated × covariate interactions centred at the treated rows' means, so the
coefficient is the treated pupils' average effect when effects vary with the covariates;
school covariates are measured before any school joined (``school_covariates_at: baseline``)
and, on pupils, one exam year (the latest) is analysed unless ``years:`` says otherwise.
A Monte Carlo on simulated data (``benchmarks/mc_multilevel_att.py``) measured the bias of
the plain coefficient with exam-year covariates that these defaults remove.
With a ``heterogeneity`` block, treatment × subgroup interactions give subgroup effects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from evaltool.config.models import AnalysisBase, Year
from evaltool.errors import DataError, EstimationError
from evaltool.estimators import heterogeneity as het
from evaltool.estimators.base import Method
from evaltool.estimators.common import design_problems
from evaltool.estimators.inference import (
    DESIGN_REASON,
    NO_TRUST_REASON,
    Inference,
    check_cluster_count,
    few_clusters_route,
    inference_problems,
    school_cluster_labels,
)
from evaltool.estimators.multilevel.fastlmm import FastLMMResult
from evaltool.estimators.multilevel.model import CLUSTER_COLUMN, TREATED, design, fit_mixed, null_icc
from evaltool.results import AnalysisResult, EffectEstimate, SampleReport

if TYPE_CHECKING:
    from evaltool.config.root import Config
    from evaltool.estimators.context import AnalysisContext


class MultilevelOptions(AnalysisBase):
    """Options of ``method: multilevel``."""

    method: Literal["multilevel"]
    data: Literal["pupils", "panel"] = "pupils"
    """'pupils': pupils in schools (needs data.pupils); 'panel': growth model, years within schools."""
    pupil_covariates: list[str] = Field(default_factory=list)
    """Pupil-level fixed effects (columns of data.pupils, e.g. ks2_score, disadvantaged); text columns become dummies."""
    school_covariates: list[str] = Field(default_factory=list)
    """School-level fixed effects from columns.covariates (matched on school and year)."""
    random_slopes: list[str] = Field(default_factory=list)
    """Covariates whose slope varies across schools (pupils: pupil covariates; panel: 'year' for school growth)."""
    trust_intercept: bool = False
    """Add a random intercept for trusts (three levels; schools outside a trust are their own group)."""
    reml: bool = True
    """REML (default) or maximum likelihood (needed to compare models differing in fixed effects by likelihood)."""
    engine: Literal["auto", "fast", "statsmodels"] = "auto"
    """'auto'/'fast': the exact engine (two levels, or three with random intercepts); 'statsmodels': MixedLM."""
    years: list[Year] = Field(default_factory=list)
    """Years to use (default: data: pupils, the latest exam year of the pupil file; data: panel, all years)."""
    estimand: Literal["att", "conditional"] = "att"
    """'att' (default): treated × covariate interactions centred at the treated pupils' means, so the treated
    coefficient is the treated pupils' average effect when effects vary with the covariates; 'conditional': the
    plain treated coefficient (a variance-weighted average of effects)."""
    school_covariates_at: Literal["baseline", "exam_year"] = "baseline"
    """data: pupils: school covariates as the school's mean over the panel years before the first school joined
    (default; pre-treatment, like the reasons schools joined), or 'exam_year' (matched on school and year)."""
    ci_level: float = Field(default=0.95, gt=0.5, lt=1.0)
    """Confidence level of the intervals."""

    @model_validator(mode="after")
    def _slopes_are_covariates(self) -> MultilevelOptions:
        allowed = self.pupil_covariates if self.data == "pupils" else ["year"]
        extra = [c for c in self.random_slopes if c not in allowed]
        if extra:
            where = "pupil_covariates" if self.data == "pupils" else "['year'] for data: panel"
            raise ValueError(f"random_slopes {extra} must be among {where} ({allowed})")
        if self.trust_intercept and self.random_slopes:
            raise ValueError("random_slopes cannot be combined with trust_intercept: true (three-level slopes are not supported)")
        return self

    def cross_check(self, config: Config) -> list[tuple[tuple, str]]:
        problems = []
        if self.data == "pupils" and config.data.pupils is None:
            problems.append((("data",), "data: pupils needs data.pupils (a pupil-level file); add it or use data: panel"))
        if self.data == "panel" and self.pupil_covariates:
            problems.append((("pupil_covariates",), "pupil_covariates need data: pupils"))
        if self.trust_intercept and config.columns.trust is None:
            problems.append((("trust_intercept",), "trust_intercept: true needs columns.trust"))
        problems += design_problems(
            config, self.method, covariates=self.school_covariates, covariates_key="school_covariates"
        )
        problems += inference_problems(config, self, levels=("school", "trust", "local_authority"))
        return problems


# ------------------------------------------------------------------ data
def _joined_by(join_year: pd.Series, year: pd.Series) -> np.ndarray:
    """1.0 where the school had joined by ``year`` (never-joined schools: 0)."""
    return (np.asarray(join_year, dtype=float) <= np.asarray(year, dtype=float)).astype(float)


def pupil_frame(context: AnalysisContext, spec: MultilevelOptions) -> tuple[pd.DataFrame, SampleReport]:
    """Pupils with ``treated``, school covariates and trust; every dropped row counted."""
    pupils = context.study.pupils
    outcome = context.outcome
    by = spec.heterogeneity.by if spec.heterogeneity else []
    needed = [outcome, *spec.pupil_covariates, *by]
    missing_cols = [c for c in dict.fromkeys(needed) if c not in pupils.columns]
    if missing_cols:
        raise DataError(
            f"data.pupils has no column {missing_cols} (analysis '{spec.name}'); available columns: "
            f"{sorted(map(str, pupils.columns))}."
        )
    sample = SampleReport(n_rows_in=len(pupils))
    frame = pupils[["school", "year", *dict.fromkeys(needed)]].copy()
    keep = frame["year"].isin(spec.years or [int(frame["year"].max())]) if len(frame) else frame["year"].notna()
    reason = "year not in years" if spec.years else "not the latest exam year (years: not set)"
    sample.exclude(reason, int((~keep).sum()), unit="pupils", stage=spec.name)
    frame = frame.loc[keep]
    schools = context.panel.schools()
    known = frame["school"].isin(schools.index)
    sample.exclude("school not in the school panel", int((~known).sum()), int(frame.loc[~known, "school"].nunique()),
                   unit="pupils", stage=spec.name, attrition=True)
    frame = frame.loc[known]
    join = frame["school"].map(schools["join_year"])
    frame[TREATED] = _joined_by(join, frame["year"])
    if spec.trust_intercept:
        trust = frame["school"].map(schools["trust"]).astype("string")
        frame["trust_or_school"] = trust.fillna("__school__" + frame["school"].astype(str))
    if spec.school_covariates and spec.school_covariates_at == "baseline":
        frame = frame.merge(baseline_covariates(context.panel.frame, spec), left_on="school", right_index=True,
                            how="left", validate="many_to_one")
    elif spec.school_covariates:
        covs = context.panel.frame[["school", "year", *spec.school_covariates]]
        frame = frame.merge(covs, on=["school", "year"], how="left", validate="many_to_one")
    for column in [outcome, *spec.pupil_covariates, *spec.school_covariates, *by]:
        miss = frame[column].isna()
        sample.exclude(f"missing '{column}'", int(miss.sum()), int(frame.loc[miss, "school"].nunique()), unit="pupils",
                       stage=spec.name, attrition=True)
        frame = frame.loc[~miss]
    return frame.reset_index(drop=True), sample


def baseline_years(panel: pd.DataFrame) -> list[int]:
    """Panel years before the first join year after the panel's first year (no school treated yet, except those
    that joined at or before the start, which are treated in every year); all years if none joins later."""
    years = panel["year"].dropna().astype(int)
    joins = panel["join_year"].dropna().astype(float)
    joins = joins[joins > years.min()]
    first = int(joins.min()) if len(joins) else int(years.max()) + 1
    return sorted(set(years[years < first]))


def baseline_covariates(panel: pd.DataFrame, spec: MultilevelOptions) -> pd.DataFrame:
    """Each school's mean school covariates over :func:`baseline_years` (index: school)."""
    rows = panel.loc[panel["year"].isin(baseline_years(panel)), ["school", *spec.school_covariates]]
    return rows.groupby("school")[spec.school_covariates].mean()


def panel_frame(context: AnalysisContext, spec: MultilevelOptions) -> tuple[pd.DataFrame, SampleReport]:
    """School-years with ``treated``, centred ``year`` and covariates; every dropped row counted."""
    panel = context.panel.frame
    sample = SampleReport(n_rows_in=len(panel))
    columns = ["school", "year", "join_year", context.outcome, *spec.school_covariates]
    frame = panel[[*dict.fromkeys(columns)] + (["trust"] if "trust" in panel else [])].copy()
    if spec.years:
        keep = frame["year"].isin(spec.years)
        sample.exclude("year not in years", int((~keep).sum()), stage=spec.name)
        frame = frame.loc[keep]
    for column in [context.outcome, *spec.school_covariates]:
        miss = frame[column].isna()
        sample.exclude(f"missing '{column}'", int(miss.sum()), int(frame.loc[miss, "school"].nunique()), stage=spec.name,
                       attrition=True)
        frame = frame.loc[~miss]
    frame[TREATED] = _joined_by(frame["join_year"], frame["year"])
    frame["year_c"] = frame["year"] - frame["year"].mean()
    if spec.trust_intercept:
        frame["trust_or_school"] = frame["trust"].astype("string").fillna("__school__" + frame["school"].astype(str))
    return frame.reset_index(drop=True), sample


# ------------------------------------------------------------------ fit
def fit_multilevel(frame: pd.DataFrame, outcome: str, spec: MultilevelOptions) -> FastLMMResult:
    """The main model: ``outcome ~ treated + covariates (+ year effects for panels) + random effects``."""
    where = f"analysis '{spec.name}'"
    covariates = design(frame, spec.pupil_covariates + spec.school_covariates, where)
    X = pd.concat([frame[[TREATED]], covariates, att_interactions(frame[TREATED], covariates, spec)], axis=1)
    slopes = list(spec.random_slopes)
    if spec.data == "panel":
        years = pd.get_dummies(frame["year"], prefix="year", drop_first=True, dtype=float)
        X = pd.concat([X, years], axis=1)
        slopes = ["year_c" if s == "year" else s for s in slopes]
    return fit_mixed(frame, outcome, X, random_slopes=slopes, reml=spec.reml, engine=spec.engine,
                     trust=spec.trust_intercept)


def att_interactions(treated: pd.Series, covariates: pd.DataFrame, spec: MultilevelOptions) -> pd.DataFrame:
    """``treated × (x − x̄_treated)`` for every covariate column when ``estimand: att``, else no columns.

    With these interactions the ``treated`` coefficient is the effect at the treated pupils' mean covariates,
    i.e. their average effect when effects are linear in the covariates (regression adjustment for the ATT,
    Imbens & Wooldridge 2009, §5.3): without them a school-level treatment's coefficient weights schools by
    the residual variance of treatment, so effects that vary with e.g. disadvantage are averaged with the
    wrong weights.  Covariates constant among treated rows add no column.
    """
    if spec.estimand != "att" or covariates.empty:
        return pd.DataFrame(index=covariates.index)
    is_treated = treated.to_numpy() > 0
    centred = covariates - covariates.loc[is_treated].mean()
    varies = covariates.loc[is_treated].std().fillna(0.0) > 0
    return centred.loc[:, varies].mul(is_treated, axis=0).add_prefix(f"{TREATED}:")


def multilevel_inference(context: AnalysisContext, spec: MultilevelOptions, frame: pd.DataFrame) -> tuple[Inference, list[str]]:
    """Resolve ``inference.cluster`` for a mixed model; mark the frame's rows with their cluster (in place).

    ``design`` is the trust (cluster-robust sandwich, :mod:`.sandwich`) when columns.trust is mapped and the
    model has no trust random intercept; with ``trust_intercept: true`` the trust is in the model itself and
    the SEs stay model-based; without a trust column they are model-based too (stated, with a warning).
    """
    requested = spec.inference.cluster
    if isinstance(requested, tuple) or requested in ("matched_set", "year"):
        raise EstimationError(f"inference.cluster: multilevel clusters by one of design, school, trust or "
                              f"local_authority; got {requested!r}.", user_error=True)
    panel = context.panel.frame
    if requested == "design":
        if spec.trust_intercept:
            return _model_based(spec, "the trust random intercept models trust-level shocks"), []
        if "trust" not in panel or panel["trust"].isna().all():
            return _model_based(spec, NO_TRUST_REASON), [
                "Multilevel standard errors are model-based: columns.trust is not mapped, so trust-level shocks "
                "cannot be allowed for; map columns.trust to cluster by trust."]
        level, reason = "trust", DESIGN_REASON
    else:
        level, reason = requested, "requested in the config"
        if spec.trust_intercept:
            raise EstimationError("inference.cluster: cluster-robust SEs are not available with trust_intercept: "
                                  "true; drop one of the two (cluster: design keeps the model-based SEs).",
                                  user_error=True)
    labels = school_cluster_labels(panel, level)
    codes, n_clusters = labels.codes_for(frame["school"])
    check_cluster_count(n_clusters, level)
    frame[CLUSTER_COLUMN] = codes
    method, warnings = few_clusters_route(spec.inference, n_clusters, ())
    return Inference(cluster=level.replace("_", " "), n_clusters=n_clusters, correction="G/(G-1), t(G-1)",
                     method="cluster-robust sandwich of the mixed model's fixed effects", reason=reason,
                     notes=labels.notes), warnings


def _model_based(spec: MultilevelOptions, reason: str) -> Inference:
    return Inference(cluster="", n_clusters=None, correction="none: normal intervals",
                     method=f"model-based ({'REML' if spec.reml else 'ML'})", reason=reason)


def treated_estimate(fit: FastLMMResult, frame: pd.DataFrame, spec: MultilevelOptions, unit: str) -> EffectEstimate:
    """The ``treated`` coefficient as an :class:`EffectEstimate`.

    ``n_treated``/``n_control`` count the analysed rows (pupils, or school-years) in treated and comparison
    schools, as ``n_obs`` does, so the disclosure rules see pupil counts where the model is on pupils.
    """
    in_trust = frame[TREATED].to_numpy() > 0
    return EffectEstimate.from_normal(
        term=TREATED,
        estimand=(f"average effect of being in a trust on the treated {unit} (multilevel model, centred interactions)"
                  if spec.estimand == "att" else "conditional effect of being in a trust (multilevel model)"),
        estimate=float(fit.params[TREATED]),
        std_error=float(fit.bse[TREATED]),
        ci_level=spec.ci_level,
        n_treated=int(in_trust.sum()),
        n_control=int((~in_trust).sum()),
        n_obs=fit.n_obs,
        n_pupils_min=int(min(in_trust.sum(), (~in_trust).sum())) if unit == "pupils" else None,
        df=fit.cluster_count - 1 if fit.cluster_count is not None else None,
    )


def model_diagnostics(fit: FastLMMResult, frame: pd.DataFrame, outcome: str, spec: MultilevelOptions) -> dict:
    """Fixed effects, variance components, ICCs, likelihood and convergence facts."""
    icc0, tau0, sigma0 = null_icc(frame, outcome, spec.reml)
    return {
        "model": {
            "data": spec.data,
            "engine": fit.engine,
            "estimation": "REML" if fit.reml else "ML",
            "n_obs": fit.n_obs,
            "n_schools": fit.n_groups,
            "log_likelihood": fit.llf,
            "deviance": fit.deviance,
            "aic": fit.aic,
            "bic": fit.bic,
            "icc_null": icc0,
            "icc_conditional": fit.icc,
            "null_school_variance": tau0,
            "null_residual_variance": sigma0,
            "iterations": fit.n_iterations,
            "optimizer_message": fit.message,
            "boundary": list(fit.boundary),
        },
        "fixed_effects": fit.summary_frame(spec.ci_level).reset_index(names="term"),
        "variance_components": fit.variance_components(),
    }


def boundary_warning(fit: FastLMMResult) -> list[str]:
    if not fit.boundary:
        return []
    return [
        f"Boundary fit: {', '.join(fit.boundary)} estimated at zero or singular. The model is reported, but that random "
        "effect is not supported by the data; consider removing it (e.g. drop the random slope)."
    ]


def run(context: AnalysisContext) -> AnalysisResult:
    spec: MultilevelOptions = context.spec  # type: ignore[assignment]
    if spec.data == "pupils":
        frame, sample = pupil_frame(context, spec)
        unit = "pupils"
    else:
        frame, sample = panel_frame(context, spec)
        unit = "school-years"
    inference, inference_warnings = multilevel_inference(context, spec, frame)
    fit = fit_multilevel(frame, context.outcome, spec)
    estimate = treated_estimate(fit, frame, spec, unit).with_context(**inference.row_fields())
    diagnostics = model_diagnostics(fit, frame, context.outcome, spec)
    # What n_treated / n_control / n_obs count: the report and the disclosure rules read it.
    diagnostics["count_unit"] = unit
    diagnostics["headline_term"] = estimate.term
    # An unconverged fit raises (no estimates); the facts of the accepted optimum are recorded.
    diagnostics["convergence"] = {"converged": True, "engine": fit.engine, "iterations": fit.n_iterations,
                                  "message": fit.message}
    diagnostics["inference"] = inference.to_dict()
    sample.n_rows_used = fit.n_obs
    sample.n_units_used = fit.n_groups
    warnings = boundary_warning(fit) + inference_warnings
    if spec.data == "pupils" and frame["year"].nunique() > 1:
        warnings.append(
            f"years: lists {frame['year'].nunique()} exam years, so the model pools them: its treated coefficient is "
            "a variance-weighted average over years and cohorts, not the treated pupils' average effect. Give one "
            "exam year after the schools joined (e.g. years: [" + str(int(frame["year"].max())) + "], the default)."
        )
    diagnostics["sample_years"] = {"years": sorted(int(y) for y in frame["year"].unique()),
                                   "rule": "years: as configured" if spec.years or spec.data == "panel"
                                   else "the latest exam year of the pupil file (years: not set)",
                                   "school_covariates_at": spec.school_covariates_at if spec.data == "pupils"
                                   else "exam_year", "estimand": spec.estimand}
    estimates = [estimate.with_context(method=spec.method, outcome=context.outcome)]
    if spec.heterogeneity is not None and spec.data == "pupils":
        table = het.pupil_interactions(frame, context.outcome, spec, fit_function=_fit_with, base=estimate)
        diagnostics["subgroups"] = table
        estimates += het.table_estimates(table, estimates[0],
                                         df=fit.cluster_count - 1 if fit.cluster_count is not None else None)
        warnings += het.skipped_warnings(table)
    return AnalysisResult(
        analysis=spec.name,
        method=spec.method,
        outcome=context.outcome,
        estimates=estimates,
        diagnostics=diagnostics,
        sample=sample,
        warnings=warnings,
    )


def _fit_with(frame: pd.DataFrame, outcome: str, spec: MultilevelOptions, extra: pd.DataFrame) -> FastLMMResult:
    """The main model with extra fixed-effect columns (subgroup dummies and their treatment interactions)."""
    where = f"analysis '{spec.name}'"
    # A subgroup column that is also a covariate is represented by its subgroup dummies only.
    covariates = [c for c in spec.pupil_covariates + spec.school_covariates
                  if not any(str(e).startswith(f"{c}[") for e in extra.columns)]
    X = pd.concat([frame[[TREATED]], design(frame, covariates, where), extra], axis=1)
    return fit_mixed(frame, outcome, X, random_slopes=list(spec.random_slopes), reml=spec.reml, engine=spec.engine,
                     trust=spec.trust_intercept)


MULTILEVEL = Method(
    name="multilevel",
    options=MultilevelOptions,
    run=run,
    summary="Linear mixed model: pupils in schools (in trusts), or years within schools; fast exact REML/ML.",
)
