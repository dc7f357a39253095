"""``method: ipw``: inverse-probability weighting for the ATT, sharing the propensity model and diagnostics.

Treated units get weight 1 and comparison units ê/(1 − ê) (the odds of the
propensity score), normalised within the comparison group (Hájek form):

ATT = Ȳ₁ − Σ_{T=0} wᵢYᵢ / Σ_{T=0} wᵢ,  wᵢ = exp(xᵢ'β̂).

The standard error is the sandwich of the stacked estimating equations
(ψ_β = (T − ê)x, ψ₁ = T(Y − μ₁), ψ₀ = (1 − T)w(Y − μ₀)), so it accounts for the
estimation of the propensity score (Lunceford & Davidian 2004, *Statistics in
Medicine* 23, §3; Stefanski & Boos 2002), clustered by school, trust or local
authority with the G/(G − 1) factor and t(G − 1) intervals.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy.special import expit

from evaltool.diagnostics.balance import balance_table, overlap_summary
from evaltool.errors import EstimationError
from evaltool.estimators.base import Method
from evaltool.estimators.common import few_clusters_warning, result_for
from evaltool.estimators.inference import (
    DESIGN_REASON,
    NO_TRUST_REASON,
    ClusterLabels,
    Inference,
    check_cluster_count,
    design_level,
    few_clusters_route,
    school_cluster_labels,
)
from evaltool.estimators.psm.estimate import AttFit
from evaltool.estimators.psm.matching import common_support
from evaltool.estimators.psm.method import (
    PropensityOptions,
    _balance_frame,
    figures,
    post_window_notes,
    prepare_units,
    school_labels,
)
from evaltool.estimators.psm.propensity import check_covariates, design_matrix, fit_logit
from evaltool.results import AnalysisResult, EffectEstimate, SampleReport

if TYPE_CHECKING:
    from evaltool.config.inference import InferenceOptions
    from evaltool.estimators.context import AnalysisContext

#: The IPW sandwich's small-sample corrections (no (N − 1)/(N − K) factor: an M-estimation sandwich).
IPW_CORRECTIONS = {"CR1": "G/(G-1), t(G-1)", "none": "none: normal intervals"}


class IpwOptions(PropensityOptions):
    """Options of ``method: ipw``."""

    method: Literal["ipw"]
    propensity_model: Literal["logistic"] = "logistic"  # type: ignore[assignment]
    """Model of P(join | covariates): logistic regression (its fit enters the IPW standard error)."""


def ipw_att(
    y: np.ndarray,
    treat: np.ndarray,
    X: np.ndarray,
    clusters: np.ndarray,
    names: list[str] | None = None,
    *,
    correction: str = "CR1",
) -> tuple[AttFit, np.ndarray, np.ndarray]:
    """Hájek IPW estimate of the ATT with the stacked M-estimation sandwich SE.

    Parameters
    ----------
    y, treat
        Outcome and treatment indicator.
    X
        Propensity design *with* a constant column (logistic model).
    clusters
        Integer cluster id per unit.
    names
        Term names of ``X`` (for messages).
    correction
        ``"CR1"``: the G/(G − 1) factor and t(G − 1) intervals; ``"none"``: neither (normal intervals).

    Returns
    -------
    fit, ATT weights (1 for treated, normalised odds for comparison units), propensity scores
    """
    t = treat.astype(float)
    names = names or ["(Intercept)", *[f"x{i}" for i in range(1, X.shape[1])]]
    model = fit_logit(X, treat, names)  # rank, separation and non-convergence each raise or report
    if not model.converged:
        raise EstimationError(
            f"IPW cannot weight with this propensity model: {model.problem} (IPW weights and their standard "
            "error need the logit's maximum.)",
            user_error=True,
        )
    beta = model.params
    linear = X @ beta
    p = expit(linear)
    odds = np.exp(linear)
    mu1 = float(np.mean(y[treat]))
    w0 = (1 - t) * odds
    mu0 = float(np.sum(w0 * y) / np.sum(w0))
    n, k = X.shape
    psi = np.column_stack([(t - p)[:, None] * X, t * (y - mu1), w0 * (y - mu0)])
    A = np.zeros((k + 2, k + 2))
    A[:k, :k] = (X * (p * (1 - p))[:, None]).T @ X / n
    A[k, k] = t.mean()
    A[k + 1, k + 1] = w0.mean()
    A[k + 1, :k] = -((w0 * (y - mu0))[:, None] * X).mean(axis=0)
    groups = np.unique(clusters, return_inverse=True)[1]
    n_clusters = int(groups.max()) + 1
    summed = np.zeros((n_clusters, k + 2))
    np.add.at(summed, groups, psi)
    cr1 = correction == "CR1"
    B = summed.T @ summed / n * (n_clusters / (n_clusters - 1) if cr1 else 1.0)
    A_inv = np.linalg.inv(A)
    V = A_inv @ B @ A_inv.T / n
    c = np.zeros(k + 2)
    c[k], c[k + 1] = 1.0, -1.0
    se = float(np.sqrt(c @ V @ c))
    weights = np.where(treat, 1.0, w0 / w0.sum() * (~treat).sum())
    fit = AttFit(mu1 - mu0, se, n_clusters - 1 if cr1 else None, "", n_clusters)
    return fit, weights, p


def fit_ipw(
    units: pd.DataFrame,
    outcome_column: str,
    covariates: list[str],
    *,
    common_support_rule: str = "none",
    cluster: str = "school",
    cluster_labels: ClusterLabels | None = None,
    inference: InferenceOptions | None = None,
    ci_level: float = 0.95,
    sample: SampleReport | None = None,
    stage: str = "ipw",
) -> tuple[EffectEstimate, dict, SampleReport, list[str]]:
    """IPW estimate of the ATT on a frame of units (see :func:`evaltool.estimators.psm.method.fit_psm`).

    ``cluster`` is ``design`` (the trust when ``cluster_labels`` holds trust labels, else the school),
    ``school``, ``trust`` or ``local_authority``; a school's units (cohorts) are always in one cluster.
    """
    sample = sample if sample is not None else SampleReport(n_rows_in=len(units))
    warnings: list[str] = []
    treat = units["treated"].to_numpy(dtype=bool)
    if treat.all() or not treat.any():
        raise EstimationError("IPW needs both treated and comparison schools; check event_times and comparison.", user_error=True)
    check_covariates(units, covariates, treat)
    X = design_matrix(units, covariates)
    if units["cohort"].nunique() > 1:
        X = pd.concat([X, pd.get_dummies(units["cohort"].astype(str), prefix="cohort_", drop_first=True, dtype=float)], axis=1)
    exog = sm.add_constant(X.to_numpy(dtype=float), has_constant="add")
    if common_support_rule != "none":
        first = fit_logit(exog, treat, ["(Intercept)", *map(str, X.columns)]).score
        keep = common_support(first, treat, common_support_rule)  # type: ignore[arg-type]
        for is_t, label in ((True, "treated schools"), (False, "comparison school-cohort units")):
            hit = ~keep & (treat == is_t)
            sample.exclude("outside common support of the propensity score", int(hit.sum()),
                           int(units.loc[hit, "school"].nunique()), unit=label, stage=stage, changes_estimand=is_t,
                           attrition=is_t)
        units, treat, exog, X = units.loc[keep].reset_index(drop=True), treat[keep], exog[keep], X.loc[keep].reset_index(drop=True)
    level, reason = design_level(cluster, None, has_trust=cluster_labels is not None and cluster_labels.level == "trust")
    if cluster_labels is None or level == "school":
        cluster_labels = school_cluster_labels(units, "school")
    codes, n_clusters = cluster_labels.codes_for(units["school"])  # a school's units (cohorts) always together
    check_cluster_count(n_clusters, level)
    if inference is not None:
        warnings += few_clusters_route(inference, n_clusters, ())[1]
    elif n_clusters < 30:
        warnings.append(few_clusters_warning(n_clusters, level))
    correction = inference.correction if inference is not None else "CR1"
    if cluster == "design":
        reason = DESIGN_REASON if level == "trust" else NO_TRUST_REASON
    record = Inference(cluster=level.replace("_", " "), n_clusters=n_clusters, correction=IPW_CORRECTIONS[correction],
                       method="sandwich of the stacked estimating equations (incl. the propensity model)",
                       reason=reason, notes=(*cluster_labels.notes, f"{n_clusters} clusters; all units of a school "
                                             "(its cohorts) in one cluster"))
    y = units[outcome_column].to_numpy(dtype=float)
    fit, weights, score = ipw_att(y, treat, exog, codes, ["(Intercept)", *map(str, X.columns)], correction=correction)
    estimate = EffectEstimate.from_normal(
        term="ATT (IPW DiD)" if outcome_column == "y_change" else "ATT (IPW)",
        estimand="ATT",
        estimate=fit.estimate,
        std_error=fit.std_error,
        ci_level=ci_level,
        df=fit.df,
        n_treated=int(treat.sum()),
        n_control=int(units.loc[~treat, "school"].nunique()),
        n_obs=int(len(units)),
        **record.row_fields(),
    )
    control_w = weights[~treat]
    ess = float(control_w.sum() ** 2 / np.sum(control_w**2))
    sample.n_rows_used = int(len(units))
    sample.n_units_used = int(units["school"].nunique())
    diagnostics = {
        "design": {"propensity_model": "logistic", "common_support": common_support_rule, "cluster": level,
                   "n_treated_units": int(treat.sum()), "n_comparison_units": int((~treat).sum()),
                   "effective_comparison_sample_size": ess,
                   "max_comparison_weight_share": float(control_w.max() / control_w.sum())},
        "inference": record.to_dict(),
        # Converged (the report reads it): the logit's score equations X'(t - p) = 0 hold, and no score is at 0
        # or 1, where a logit diverging under quasi-separation ends (its score equations hold in the limit too).
        "convergence": {"converged": bool(np.max(np.abs(exog.T @ (treat - score))) < 1e-6 * len(treat)
                                          and np.all((score > 1e-11) & (score < 1 - 1e-11))),
                        "model": "propensity model (logistic)"},
        "headline_term": estimate.term,
        "count_unit": "schools",
        "overlap": overlap_summary(score, treat),
        "balance": balance_table(_balance_frame(units, covariates, np.log(score / (1 - score))), treat, weights),
        "propensity_scores": pd.DataFrame({"treated": treat.astype(int), "score": score, "matched": 1, "weight": weights}),
    }
    if ess < 0.1 * (~treat).sum():
        warnings.append(f"IPW weights are concentrated: effective comparison sample {ess:.0f} of {(~treat).sum()} units.")
    return estimate, diagnostics, sample, warnings


def run(context: AnalysisContext) -> AnalysisResult:
    spec: IpwOptions = context.spec  # type: ignore[assignment]
    units, covariates, outcome_column, sample = prepare_units(context, spec, [])
    level = spec.inference.levels[0]  # one level: cross_check rejects two-way clustering for ipw
    estimate, diagnostics, sample, warnings = fit_ipw(
        units, outcome_column, covariates, common_support_rule=spec.common_support,
        cluster=level, cluster_labels=school_labels(context, level), inference=spec.inference,
        ci_level=spec.ci_level, sample=sample, stage=spec.name,
    )
    diagnostics["design"].update(event_times=list(spec.event_times), did=spec.did)
    warnings += post_window_notes(context, units, spec, diagnostics)
    return result_for(context, [estimate], diagnostics, sample, warnings)


IPW = Method(
    name="ipw",
    options=IpwOptions,
    run=run,
    summary="Inverse-probability weighting for the ATT (odds weights), same propensity model and balance diagnostics.",
    figures=figures,
)
