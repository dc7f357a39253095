"""``method: psm``: propensity-score matching, optionally with matched DiD.

Flow: units (school × cohort, baseline-year covariates; :mod:`.design`) →
propensity model (:mod:`.propensity`) → common-support trimming and
nearest-neighbour matching (:mod:`.matching`) → balance before/after
(:mod:`evaltool.diagnostics.balance`) → ATT and SE (:mod:`.estimate`).
Treated schools dropped by common support or the caliper are exclusions that
change the estimand (the ATT is then for the matched treated schools), and are
reported as such.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from evaltool.config.models import AnalysisBase, EventTime
from evaltool.config.sensitivity import SensitivityOptions
from evaltool.diagnostics.balance import balance_table, overlap_summary
from evaltool.errors import EstimationError
from evaltool.estimators.base import Method
from evaltool.estimators.common import design_problems, few_clusters_warning, result_for
from evaltool.estimators.inference import (
    CORRECTIONS,
    DESIGN_REASON,
    ClusterLabels,
    Inference,
    check_cluster_count,
    few_clusters_route,
    inference_problems,
    linked_clusters,
    school_cluster_labels,
)
from evaltool.estimators.psm.design import absent_event_times, build_units
from evaltool.estimators.psm.estimate import AttFit, abadie_imbens, weighted_att
from evaltool.estimators.psm.matching import STATUS_NO_CONTROL, STATUS_NO_SUPPORT, MatchResult, common_support, match
from evaltool.estimators.psm.propensity import check_covariates, design_matrix, fit_propensity
from evaltool.results import AnalysisResult, EffectEstimate, SampleReport
from evaltool.sensitivity.rosenbaum import matched_differences, rosenbaum_bounds

if TYPE_CHECKING:
    from evaltool.config.inference import InferenceOptions
    from evaltool.config.root import Config
    from evaltool.estimators.context import AnalysisContext

#: Exact-match columns that are not covariates but canonical panel columns.
EXACT_CANONICAL = ("local_authority",)


class PropensityOptions(AnalysisBase):
    """Keys shared by ``psm`` and ``ipw``: the sample, the propensity model and the outcome."""

    covariates: list[str] | None = None
    """Covariates of the propensity model, measured in each joiner's baseline year; default columns.covariates."""
    covariate_years: int | None = Field(default=None, ge=1, le=50)
    """Years before joining over which covariates are averaged (null: every pre-joining year in the data)."""
    match_on_baseline_outcome: bool = False
    """Also match on the outcome in the baseline year (beware regression to the mean with did: true)."""
    propensity_model: Literal["logistic", "gradient_boosting"] = "logistic"
    """Model of P(join | covariates): unpenalised logistic regression or gradient boosting."""
    event_times: list[EventTime] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    """Years since joining (0 = joining year) whose outcomes are averaged as the 'after' outcome."""
    did: bool = True
    """Matched difference-in-differences: compare the change from the baseline year rather than the level after."""
    comparison: Literal["never_joined", "not_yet_joined"] = "never_joined"
    """Comparison schools: never joined, or also schools joining after the cohort's last post year."""
    common_support: Literal["none", "treated", "control", "both"] = "none"
    """Drop units outside the other group's propensity-score range (treated, control or both)."""
    ci_level: float = Field(default=0.95, gt=0.5, lt=1.0)
    """Confidence level of the intervals."""

    @model_validator(mode="after")
    def _event_times_valid(self) -> PropensityOptions:
        if min(self.event_times) < 0:
            raise ValueError(f"event_times are years since joining and must be 0 or more (got {self.event_times})")
        return self

    def covariate_list(self, config: Config) -> list[str]:
        return list(self.covariates) if self.covariates is not None else list(config.columns.covariates)

    def cross_check(self, config: Config) -> list[tuple[tuple, str]]:
        covariates = self.covariate_list(config)
        problems = design_problems(config, self.method, covariates=covariates)
        levels = ("matched_set", "school", "trust", "local_authority") if self.method == "psm" else (
            "school", "trust", "local_authority")
        problems += inference_problems(config, self, levels=levels)
        if not covariates and not self.match_on_baseline_outcome:
            problems.append((("covariates",), "no covariates: list some in columns.covariates or set match_on_baseline_outcome: true"))
        return problems


class PsmOptions(PropensityOptions):
    """Options of ``method: psm``."""

    method: Literal["psm"]
    distance: Literal["logit", "propensity", "mahalanobis"] = "logit"
    """Matching distance: logit of the propensity score, the score itself, or Mahalanobis on the covariates."""
    ratio: int = Field(default=1, ge=1, le=20)
    """Comparison schools per treated school (k of 1:k)."""
    replace: bool = False
    """Match with replacement (a comparison school may serve several treated schools)."""
    caliper: float | None = Field(default=0.2, gt=0, le=100)
    """Caliper in standard deviations of the logit propensity score (of the score itself for distance: propensity); null for none."""
    exact: list[str] = Field(default_factory=list)
    """Columns matched exactly (local_authority or covariates such as a region code); cohort is always exact."""
    order: Literal["largest", "smallest", "random", "data"] = "largest"
    """Order in which treated schools choose without replacement (largest propensity score first, as MatchIt)."""
    regression_adjustment: bool = False
    """Adjust the outcome model for the covariates (with treatment interactions) on the matched sample."""

    def cross_check(self, config: Config) -> list[tuple[tuple, str]]:
        problems = super().cross_check(config)
        for i, column in enumerate(self.exact):
            if column in EXACT_CANONICAL:
                if getattr(config.columns, column) is None:
                    problems.append((("exact", i), f"exact matching on {column} needs columns.{column}"))
            elif column not in config.columns.covariates:
                problems.append(
                    (("exact", i), f"'{column}' is neither local_authority nor in columns.covariates; add it there to match on it")
                )
        return problems


def _check_ratio(n_t: int, n_c: int, ratio: int, replace: bool, warnings: list[str]) -> None:
    """Enough comparison units for 1:k matching without replacement?"""
    if replace:
        return
    if n_c < ratio:
        raise EstimationError(
            f"Only {n_c} comparison units for ratio: {ratio} without replacement, so no treated school can get "
            f"{ratio} matches. Lower ratio, set replace: true, or use comparison: not_yet_joined.",
            user_error=True,
        )
    if n_c < ratio * n_t:
        warnings.append(
            f"Only {n_c} comparison units for {n_t} treated schools × ratio {ratio} without replacement: some treated "
            "schools get fewer or no matches (counted in the sample report). Lower ratio or set replace: true."
        )


def _caliper_width(caliper: float | None, distance_score: np.ndarray) -> float | None:
    """Absolute caliper: ``caliper`` SDs of the distance score (MatchIt ``std.caliper = TRUE``)."""
    return None if caliper is None else float(caliper * np.std(distance_score, ddof=1))


def exact_codes(units: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Integer code of each unit's exact-match cell (cohort × the exact columns)."""
    keys = units[["cohort", *columns]].astype(str)
    return pd.MultiIndex.from_frame(keys).factorize()[0] if columns else pd.factorize(keys["cohort"])[0]


def check_exact_overlap(units: pd.DataFrame, columns: list[str]) -> None:
    """Each exact-match column must share at least one value between the groups."""
    treat = units["treated"].to_numpy()
    for column in columns:
        shared = set(units.loc[treat, column].dropna()) & set(units.loc[~treat, column].dropna())
        if not shared:
            raise EstimationError(
                f"Exact matching on '{column}' (option exact) is impossible: no value of '{column}' occurs among both "
                f"treated and comparison schools. Remove '{column}' from exact.",
                user_error=True,
            )


def fit_psm(
    units: pd.DataFrame,
    outcome_column: str,
    covariates: list[str],
    *,
    rng: np.random.Generator,
    distance: str = "logit",
    ratio: int = 1,
    replace: bool = False,
    caliper: float | None = 0.2,
    exact: list[str] | None = None,
    order: str = "largest",
    common_support_rule: str = "none",
    propensity_model: str = "logistic",
    regression_adjustment: bool = False,
    cluster: str = "matched_set",
    cluster_labels: ClusterLabels | None = None,
    inference: InferenceOptions | None = None,
    ci_level: float = 0.95,
    sample: SampleReport | None = None,
    stage: str = "psm",
    sensitivity: SensitivityOptions | None = None,
) -> tuple[EffectEstimate, dict, SampleReport, list[str]]:
    """Match and estimate the ATT on a frame of units (one row each).

    ``units`` needs ``school``, ``cohort``, ``treated`` (bool), the covariates,
    the exact columns and ``outcome_column``.  ``cluster`` is ``design``,
    ``matched_set``, ``school``, ``trust`` or ``local_authority`` (see
    :func:`psm_clusters`); ``cluster_labels`` the trust (``design``, ``trust``)
    or local-authority labels of every school, from the whole panel;
    ``inference`` the analysis's options (correction, few clusters); ``sensitivity`` the analysis's
    sensitivity options (Rosenbaum bounds on the matched differences, :func:`rosenbaum_diagnostics`).

    Returns
    -------
    estimate, diagnostics, sample report, warnings
    """
    sample = sample if sample is not None else SampleReport(n_rows_in=len(units))
    exact = list(exact or [])
    warnings: list[str] = []
    treat = units["treated"].to_numpy(dtype=bool)
    n_t, n_c = int(treat.sum()), int((~treat).sum())
    if n_t == 0 or n_c == 0:
        raise EstimationError(
            f"No {'treated' if n_t == 0 else 'comparison'} schools left to match (treated {n_t}, comparison {n_c}). "
            "Check event_times against the years in the data, comparison, and the exclusions listed in the sample report.",
            user_error=True,
        )
    check_covariates(units, covariates, treat)
    check_exact_overlap(units, exact)
    _check_ratio(n_t, n_c, ratio, replace, warnings)
    X = design_matrix(units, covariates)
    if units["cohort"].nunique() > 1:
        X = pd.concat([X, pd.get_dummies(units["cohort"].astype(str), prefix="cohort_", drop_first=True, dtype=float)], axis=1)
    model = fit_propensity(X, treat, kind=propensity_model, rng=rng)
    if not model.converged:
        warnings.append(model.problem or "The propensity model did not converge; check for near-separation among the covariates.")
    score = {"logit": model.logit, "propensity": model.score}.get(distance, model.logit)
    width = _caliper_width(caliper, score)
    keep = common_support(model.score, treat, common_support_rule)  # type: ignore[arg-type]
    result = match(
        treat,
        score=score,
        covariates=design_matrix(units, covariates).to_numpy(dtype=float) if distance == "mahalanobis" else None,
        distance="mahalanobis" if distance == "mahalanobis" else "score",
        ratio=ratio,
        replace=replace,
        caliper=width,
        exact=exact_codes(units, exact),
        eligible=keep,
        order=order,  # type: ignore[arg-type]
        rng=rng,
    )
    _record_unmatched(units, result, treat, keep, sample, stage, caliper, exact, replace, ratio, warnings)
    n_matched_t = int((result.weights[treat] > 0).sum())
    if n_matched_t == 0:
        raise EstimationError(
            f"No treated school has a comparison school within the caliper ({caliper} SD of the {distance} score"
            + (f", exact on {exact}" if exact else "")
            + "). Widen caliper (or set caliper: null), drop exact columns, or use replace: true.",
            user_error=True,
        )
    y = units[outcome_column].to_numpy(dtype=float)
    correction = inference.correction if inference is not None else "CR1"
    groups, cluster_name = psm_clusters(units, result, cluster, cluster_labels, replace, regression_adjustment)
    fit = _estimate(units, y, treat, score, result, covariates, regression_adjustment, groups, cluster_name, correction)
    if fit.n_clusters is not None:
        check_cluster_count(fit.n_clusters, cluster_name)
        if inference is not None:
            warnings += few_clusters_route(inference, fit.n_clusters, ())[1]
        elif fit.n_clusters < 30:
            warnings.append(few_clusters_warning(fit.n_clusters, cluster_name))
    matched = result.weights > 0
    reuse = comparison_reuse(units, matched, treat, result)
    record = _inference(fit, cluster, cluster_name, reuse, correction, cluster_labels)
    estimate = EffectEstimate.from_normal(
        term="ATT (matched DiD)" if outcome_column == "y_change" else "ATT",
        estimand="ATT",
        estimate=fit.estimate,
        std_error=fit.std_error,
        ci_level=ci_level,
        df=fit.df,
        n_treated=n_matched_t,
        n_control=int(units.loc[matched & ~treat, "school"].nunique()),
        n_obs=int(matched.sum()),
        **record.row_fields(),
    )
    sample.n_rows_used = int(matched.sum())
    sample.n_units_used = int(units.loc[matched, "school"].nunique())
    balance_X = _balance_frame(units, covariates, model.logit if distance != "propensity" else model.score)
    diagnostics = {
        "design": {
            "distance": distance,
            "ratio": ratio,
            "replace": replace,
            "caliper_sd": caliper,
            "caliper_width": width,
            "exact": ["cohort", *exact],
            "order": order if not replace else None,
            "common_support": common_support_rule,
            "propensity_model": propensity_model,
            "regression_adjustment": regression_adjustment,
            "n_treated_units": n_t,
            "n_comparison_units": n_c,
            "n_treated_matched": n_matched_t,
            "n_comparison_matched": int((matched & ~treat).sum()),
            "n_pairs": result.n_pairs,
            "cohorts": {int(k): int(v) for k, v in units.loc[treat, "cohort"].value_counts().sort_index().items()},
            "comparison_reuse": reuse,
        },
        "inference": record.to_dict(),
        "propensity_coefficients": model.coefficients,
        # The report's "did not converge" section reads it; what the report headlines and its counts' unit.
        "convergence": {"converged": bool(model.converged), "model": f"propensity model ({propensity_model})"},
        "headline_term": estimate.term,
        "count_unit": "schools",
        "overlap": overlap_summary(model.score, treat),
        "balance": balance_table(balance_X, treat, result.weights),
        "propensity_scores": pd.DataFrame(
            {"treated": treat.astype(int), "score": model.score, "matched": matched.astype(int), "weight": result.weights}
        ),
        "matched_units": units.loc[matched, ["school", "cohort", "treated"]]
        .assign(weight=result.weights[matched], matched_set=result.unit_subclass[matched])
        .reset_index(drop=True),
    }
    if sensitivity is not None and sensitivity.enabled:
        diagnostics["sensitivity"] = {"rosenbaum": rosenbaum_diagnostics(y, result, fit.estimate, sensitivity,
                                                                          regression_adjustment)}
    return estimate, diagnostics, sample, warnings


def rosenbaum_diagnostics(
    y: np.ndarray, result: MatchResult, estimate: float, options: SensitivityOptions, regression_adjustment: bool
) -> dict[str, Any]:
    """Rosenbaum bounds (Wilcoxon signed-rank, Hodges–Lehmann) on the matched differences, for results.json.

    The test's direction is the reported estimate's sign.  Bounds that cannot be computed (fewer than five
    matched treated schools, all differences zero) are reported with the reason, never raised: the estimate
    stands, its sensitivity is unknown.
    """
    try:
        differences = matched_differences(y, result.pair_treated, result.pair_control)
        bounds = rosenbaum_bounds(differences, options.gamma, alpha=options.alpha,
                                  alternative="greater" if estimate >= 0 else "less")
    except EstimationError as exc:
        return {"available": False, "reason": str(exc)}
    out = {"available": True, **bounds.to_dict()}
    if regression_adjustment:
        out["note"] = (f"{bounds.note} The bounds are for the matched differences without the regression "
                       "adjustment of the reported estimate.")
    return out


def _estimate(
    units: pd.DataFrame,
    y: np.ndarray,
    treat: np.ndarray,
    score: np.ndarray,
    result: MatchResult,
    covariates: list[str],
    regression_adjustment: bool,
    groups: np.ndarray | None,
    cluster_name: str,
    correction: str,
) -> AttFit:
    covs = design_matrix(units, covariates).to_numpy(dtype=float) if regression_adjustment else None
    if groups is None:
        return abadie_imbens(y, treat, score, result.pair_treated, result.pair_control)
    return weighted_att(
        y, treat, result.weights, covariates=covs, clusters=groups, cluster_label=cluster_name, correction=correction
    )


def psm_clusters(
    units: pd.DataFrame,
    result: MatchResult,
    cluster: str,
    labels: ClusterLabels | None,
    replace: bool,
    regression_adjustment: bool,
) -> tuple[np.ndarray | None, str]:
    """Cluster codes of the units (``None``: Abadie–Imbens variance) and the clustering's name.

    Notes
    -----
    A unit is a school in one joining cohort, and every comparison school is a comparison unit of each cohort,
    so matching "without replacement" is without replacement *within* a cohort: one comparison school can serve
    a treated school in each of several cohorts (34 of 85 matched comparison schools on the sample data, up to 4
    cohorts).  Its cohorts share the school's shocks (the years overlap), just as a unit repeated across the
    sub-experiments of a stacked DiD, which is clustered by unit (Cengiz, Dube, Lindner & Zipperer 2019, *QJE*
    134(3); Wing, Freedman & Hollingsworth 2024, NBER WP 32054).  Every clustering here therefore keeps a school's
    units together.

    * ``design`` (default): the trust, each school outside a trust its own cluster, with all units of a school
      in one cluster (trust labels from the whole panel, blanks filled, trusts linked by a school recorded in
      two: :func:`evaltool.estimators.inference.school_cluster_labels`).  Joining is decided for a trust's
      schools together, so trust is the level of shared shocks and of assignment (Abadie, Athey, Imbens &
      Wooldridge 2023, *QJE* 138(1): cluster at the level at which treatment is assigned); a reused comparison
      school is one cluster for all its uses.  Matched sets are *not* linked in: MatchIt's guidance ("Estimating
      Effects After Matching": cluster by subclass without replacement; by subclass and unit with replacement,
      Austin & Cafri 2020) and Abadie & Spiess (2022, *JASA* 117(538)) target the dependence that matching
      creates between a treated unit and its matches, but linking sets, reused schools and trusts into
      connected components leaves 6 clusters on the sample data, one holding 244 of the 264 matched units,
      which cluster-robust inference cannot use.  On the sample data (``matched_did`` of
      configs/federation_impact.yaml) the SEs are 0.287 (design, 126 clusters), 0.165 (linked matched sets, 85)
      and 0.224 (school, 217).  On ``evaltool simulate`` data (100 replications, 1:1 without replacement,
      caliper 0.2; no trust-level shocks in the simulator) the design SE is the larger (mean 0.29 against 0.24
      for matched sets; coverage of the matched treated schools' ATT 100% against 98%), because between-trust
      effect heterogeneity enters it: conservative there, and the level that stays valid when a trust's
      schools share shocks.
    * ``matched_set``: MatchIt's subclass clustering, with matched sets linked by the comparison schools they
      share across cohorts (connected components of sets and schools), so each reused school is still in one
      cluster.  With replacement and regression adjustment, a comparison unit serving several sets links them.
    * ``school``, ``trust``, ``local_authority``: that level, a school's units always together.
    * With replacement and no regression adjustment, ``design`` and ``matched_set`` use the Abadie–Imbens
      (2006) variance, which accounts for comparison units used more than once within a cohort (it treats a
      school's cohorts as independent: the Abadie–Imbens row says so in its notes).
    """
    school = units["school"].astype(str).to_numpy()
    if cluster in ("design", "matched_set") and replace and not regression_adjustment:
        return None, "matched set"
    if cluster == "design" and labels is not None:
        codes, _ = labels.codes_for(school)
        return codes, "trust (each comparison school's cohorts together)"
    if cluster == "design":
        codes, _ = linked_clusters(school)
        return codes, "school (no trust mapped; each comparison school's cohorts together)"
    if cluster == "matched_set":
        return _linked_sets(result, school), "matched set (linked by reused comparison schools)"
    if cluster == "school" or labels is None:
        codes, _ = linked_clusters(school)
        return codes, "school"
    codes, _ = labels.codes_for(school)
    return codes, cluster.replace("_", " ")


def _linked_sets(result: MatchResult, school: np.ndarray) -> np.ndarray:
    """Connected components of units linked by matched pairs and by school (scipy, no loop over pairs)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = school.size
    school_code, uniques = pd.factorize(pd.Series(school), sort=True)
    rows = np.concatenate([result.pair_treated, np.arange(n)])
    cols = np.concatenate([result.pair_control, n + school_code])
    graph = coo_matrix((np.ones(rows.size), (rows, cols)), shape=(n + len(uniques), n + len(uniques)))
    component = connected_components(graph, directed=False)[1][:n]
    return pd.factorize(component, sort=True)[0].astype(np.int64)


def comparison_reuse(
    units: pd.DataFrame, matched: np.ndarray, treat: np.ndarray, result: MatchResult | None = None
) -> dict[str, int]:
    """How often matched comparison schools serve more than one joining cohort (and how many matched sets)."""
    uses = units.loc[matched & ~treat].groupby("school")["cohort"].nunique()
    out = {
        "n_comparison_schools": int(len(uses)),
        "n_reused": int((uses > 1).sum()),
        "max_cohorts": int(uses.max()) if len(uses) else 0,
    }
    if result is not None:
        sets = pd.Series(units["school"].to_numpy()[result.pair_control]).value_counts()
        out["max_uses"] = int(sets.max()) if len(sets) else 0
    return out


def _inference(
    fit: AttFit,
    cluster: str,
    cluster_name: str,
    reuse: dict[str, int],
    correction: str,
    labels: ClusterLabels | None,
) -> Inference:
    """The inference record of a PSM estimate, with the reuse of comparison schools in its notes."""
    reuse_note = (
        f"{reuse['n_reused']} of {reuse['n_comparison_schools']} matched comparison schools serve more than one "
        f"cohort (at most {reuse['max_cohorts']} cohorts, {reuse.get('max_uses', reuse['max_cohorts'])} matched "
        "sets)"
    )
    if fit.n_clusters is None:
        return Inference(
            cluster="", n_clusters=None, correction="none: normal intervals",
            method="Abadie–Imbens (2006) variance for matching with replacement",
            reason="matching with replacement (cluster: design/matched_set)",
            notes=(f"{reuse_note}; the variance treats a school's cohorts as independent",),
        )
    notes = [f"{reuse_note}; all units of a school are in one cluster; {fit.n_clusters} clusters"]
    if labels is not None and cluster in ("design", "trust", "local_authority"):
        notes += list(labels.notes)
    reason = {"design": DESIGN_REASON, "matched_set": "matched sets (MatchIt's subclass clustering), requested"}
    return Inference(
        cluster=cluster_name, n_clusters=fit.n_clusters, correction=CORRECTIONS[correction],
        method="cluster-robust", reason=reason.get(cluster, "requested in the config"), notes=tuple(notes),
    )


def _balance_frame(units: pd.DataFrame, covariates: list[str], distance_score: np.ndarray) -> pd.DataFrame:
    """Distance plus covariates, categorical ones as one 0/1 column per level."""
    parts = [pd.Series(distance_score, index=units.index, name="distance")]
    for column in covariates:
        values = units[column]
        if pd.api.types.is_numeric_dtype(values):
            parts.append(values.astype(float))
        else:
            parts.append(pd.get_dummies(values.astype(str), prefix=column, prefix_sep="", dtype=float))
    return pd.concat(parts, axis=1).reset_index(drop=True)


def _record_unmatched(
    units: pd.DataFrame,
    result: MatchResult,
    treat: np.ndarray,
    keep: np.ndarray,
    sample: SampleReport,
    stage: str,
    caliper: float | None,
    exact: list[str],
    replace: bool,
    ratio: int,
    warnings: list[str],
) -> None:
    status = result.treated_status
    no_support = status == STATUS_NO_SUPPORT
    sample.exclude(
        "treated school outside common support (propensity score outside the comparison range)",
        int(no_support.sum()),
        int(units.loc[no_support, "school"].nunique()),
        unit="treated schools",
        stage=stage,
        changes_estimand=True,
        attrition=True,
    )
    no_control = status == STATUS_NO_CONTROL
    why = [f"caliper {caliper} SD" if caliper is not None else None, f"exact on cohort{', ' + ', '.join(exact) if exact else ''}"]
    if not replace:
        why.append("comparison schools already used (without replacement)")
    sample.exclude(
        "treated school with no comparison school available (" + "; ".join(w for w in why if w) + ")",
        int(no_control.sum()),
        int(units.loc[no_control, "school"].nunique()),
        unit="treated schools",
        stage=stage,
        changes_estimand=True,
        attrition=True,
    )
    dropped_controls = ~treat & ~keep
    sample.exclude(
        "comparison unit outside common support",
        int(dropped_controls.sum()),
        int(units.loc[dropped_controls, "school"].nunique()),
        unit="comparison school-cohort units",
        stage=stage,
    )
    unused = ~treat & keep & (result.weights == 0)
    sample.exclude(
        "comparison unit not matched to any treated school",
        int(unused.sum()),
        int(units.loc[unused, "school"].nunique()),
        unit="comparison school-cohort units",
        stage=stage,
    )
    short = treat & (result.n_matches > 0) & (result.n_matches < ratio)
    if short.any():
        warnings.append(f"{int(short.sum())} treated schools have fewer than {ratio} matches (not enough comparison schools within the caliper).")
    lost = int((no_support | no_control).sum())
    if lost:
        warnings.append(
            f"{lost} of {int(treat.sum())} treated schools were not matched (common support/caliper): the estimate is "
            "the ATT for the matched treated schools only, not for every school that joined."
        )


def prepare_units(context: AnalysisContext, spec: PropensityOptions, extra: list[str]) -> tuple[pd.DataFrame, list[str], str, SampleReport]:
    """Units frame, the covariate list (incl. baseline outcome), outcome column and sample report."""
    frame = context.panel.frame
    sample = SampleReport(n_rows_in=len(frame))
    covariates = spec.covariate_list(context.config)
    extra_cols = [c for c in ("trust", "local_authority", *extra) if c in frame.columns and c not in covariates]
    units = build_units(
        frame,
        context.outcome,
        covariates,
        event_times=spec.event_times,
        comparison=spec.comparison,
        did=spec.did or spec.match_on_baseline_outcome,  # both need the baseline-year outcome
        extra_columns=extra_cols,
        sample=sample,
        stage=spec.name,
        covariate_years=spec.covariate_years,
        covariates_before_baseline=spec.did,
    )
    if spec.match_on_baseline_outcome:
        baseline = f"baseline_{context.outcome}"
        units = units.assign(**{baseline: units["y_base"]})
        covariates = [*covariates, baseline]
    outcome_column = "y_change" if spec.did else "y_post"
    return units, covariates, outcome_column, sample


def run(context: AnalysisContext) -> AnalysisResult:
    spec: PsmOptions = context.spec  # type: ignore[assignment]
    units, covariates, outcome_column, sample = prepare_units(context, spec, list(spec.exact))
    level = spec.inference.levels[0]  # one level: cross_check rejects two-way clustering for psm
    estimate, diagnostics, sample, warnings = fit_psm(
        units,
        outcome_column,
        covariates,
        rng=context.rng,
        distance=spec.distance,
        ratio=spec.ratio,
        replace=spec.replace,
        caliper=spec.caliper,
        exact=list(spec.exact),
        order=spec.order,
        common_support_rule=spec.common_support,
        propensity_model=spec.propensity_model,
        regression_adjustment=spec.regression_adjustment,
        cluster=level,
        cluster_labels=school_labels(context, level),
        inference=spec.inference,
        ci_level=spec.ci_level,
        sample=sample,
        stage=spec.name,
        sensitivity=spec.sensitivity,
    )
    diagnostics["design"]["event_times"] = list(spec.event_times)
    diagnostics["design"]["did"] = spec.did
    warnings += post_window_notes(context, units, spec, diagnostics)
    return result_for(context, [estimate], diagnostics, sample, warnings)


def school_labels(context: AnalysisContext, level: str) -> ClusterLabels | None:
    """Labels per school from the whole panel for ``level``: the trust for ``design`` when columns.trust is
    mapped (``None`` otherwise: design falls back to the school), the trust or local authority when asked."""
    frame = context.panel.frame
    if level == "design":
        return school_cluster_labels(frame, "trust") if context.config.columns.trust is not None else None
    if level in ("trust", "local_authority"):
        return school_cluster_labels(frame, level)
    return None


def post_window_notes(context: AnalysisContext, units: pd.DataFrame, spec: PropensityOptions, diagnostics: dict) -> list[str]:
    """Record which event times each cohort's outcome averages, and warn when years absent from the data cut them.

    With ``exclude_years`` (or a year missing from the panel) inside a cohort's post window, that cohort's
    "after" outcome averages only the event times it has, so the estimate weights early event times more
    than ``event_times`` suggests (the ATT is then not the mean of ATT(e) over ``event_times``).
    """
    cohorts = sorted(int(c) for c in units.loc[units["treated"], "cohort"].unique())
    absent = absent_event_times(context.panel.frame["year"], cohorts, list(spec.event_times))
    diagnostics["design"]["event_times_by_cohort"] = {
        str(c): [e for e in spec.event_times if e not in absent.get(c, [])] for c in cohorts
    }
    if not absent:
        return []
    listed = "; ".join(f"cohort {c}: event times {', '.join(map(str, absent[c]))} (years "
                       f"{', '.join(str(c + e) for e in absent[c])})" for c in sorted(absent))
    return [
        f"{spec.name}: some post years are not in the data ({listed}), so those cohorts' outcome averages only the "
        "event times they have and the ATT leans towards early event times (see diagnostics.design."
        "event_times_by_cohort). To compare like with like, choose event_times whose years are in the data for "
        "every cohort, or read the cohorts separately."
    ]


def figures(result: AnalysisResult) -> dict:
    from evaltool.report.plots_psm import love_plot, overlap_plot

    return {"love_plot": love_plot(result), "overlap": overlap_plot(result)}


PSM = Method(
    name="psm",
    options=PsmOptions,
    run=run,
    summary="Propensity-score matching (1:k nearest neighbour, caliper, exact, Mahalanobis), optionally matched DiD.",
    figures=figures,
)
