"""``method: event_study``: TWFE event study with leads, lags, binned endpoints and sup-t bands.

``y_it = α_i + λ_t + Σ_{k≠ref} β_k·1{t − g_i = k} + X_it'γ + ε_it`` with event
times ``k`` in the window ``[lo, hi]`` (school-years before ``lo`` or after
``hi`` binned into the endpoints, or dropped), reference period ``ref = −1``,
never-joined schools with every indicator zero.  Reported: every ``β_k``, a
joint Wald test that the pre-period ``β_k`` are zero, and simultaneous (sup-t)
bands from the estimated covariance (Montiel Olea & Plagborg-Møller 2019,
*J. Applied Econometrics* 34(1)).

Under staggered adoption with heterogeneous effects the lead and lag
coefficients can be contaminated by other periods' effects (Sun & Abraham 2021);
``did_staggered``'s dynamic aggregation does not have that problem.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from evaltool.config.models import EventTime
from evaltool.diagnostics.pretrends import wald_test
from evaltool.errors import EstimationError
from evaltool.estimators.base import Method
from evaltool.estimators.common import result_for
from evaltool.estimators.did.engine.bootstrap import sup_t_crit
from evaltool.estimators.did.engine.clustering import (
    DidClusters,
    df_for,
    label_warnings,
    regression_route,
    resolve_clusters,
)
from evaltool.estimators.did.method_twfe import (
    TwfeOptionsBase,
    fit_panel_ols,
    panel_inference,
    panel_wild_bootstrap,
    prepare_twfe_sample,
)
from evaltool.estimators.did.sensitivity import event_time_sensitivity
from evaltool.results import AnalysisResult, EffectEstimate, SampleReport

if TYPE_CHECKING:
    from evaltool.estimators.context import AnalysisContext


class EventStudyOptions(TwfeOptionsBase):
    """Options of ``method: event_study``."""

    method: Literal["event_study"]
    window: tuple[EventTime, EventTime] = (-5, 5)
    """Event times [first lead, last lag] estimated, relative to the joining year (0 = first year in)."""
    bin_endpoints: bool = True
    """Bin school-years beyond the window into the end points (true) or leave them out, reported (false)."""
    reference: EventTime = -1
    """Event time omitted as the reference (its coefficient is 0 by construction)."""
    band_draws: int = Field(default=10_000, ge=100, le=1_000_000)
    """Draws used to compute the simultaneous (sup-t) band's critical value."""

    @model_validator(mode="after")
    def _window_ok(self) -> EventStudyOptions:
        lo, hi = self.window
        if not lo < 0 <= hi:
            raise ValueError(f"window must be [first lead, last lag] with first lead < 0 <= last lag (got {list(self.window)})")
        if not lo <= self.reference < 0:
            raise ValueError(f"reference must be a pre-joining event time inside the window {list(self.window)} (got {self.reference})")
        return self


def event_time_dummies(
    data: pd.DataFrame, window: tuple[int, int], reference: int, bin_endpoints: bool, sample: SampleReport, stage: str
) -> tuple[pd.DataFrame, list[str], list[int]]:
    """Add one indicator per event time in the window except the reference; returns data, names, event times."""
    lo, hi = window
    event = (data["year"] - data["join_year"]).to_numpy()
    joined = np.isfinite(event)
    observed_lo, observed_hi = (int(np.nanmin(event)), int(np.nanmax(event))) if joined.any() else (0, 0)
    if lo < observed_lo or hi > observed_hi:
        raise EstimationError(
            f"window [{lo}, {hi}] is beyond the data: joining schools are observed from event time {observed_lo} to "
            f"{observed_hi}. Choose a window within [{observed_lo}, {observed_hi}].",
            user_error=True,
        )
    if bin_endpoints:
        event = np.where(joined, np.clip(event, lo, hi), np.nan)
    else:
        outside = joined & ((event < lo) | (event > hi))
        sample.exclude(
            "joining school-year outside the event window (bin_endpoints: false)",
            int(outside.sum()),
            int(data.loc[outside, "school"].nunique()),
            stage=stage,
        )
        data, event = data.loc[~outside].copy(), event[~outside]
    times = [k for k in range(lo, hi + 1) if k != reference]
    names = [f"event_{k}".replace("-", "m") for k in times]
    dummies = pd.DataFrame((event[:, None] == np.array(times)[None, :]).astype(float), columns=names, index=data.index)
    empty = [k for k, name in zip(times, names, strict=True) if dummies[name].sum() == 0]
    if empty:
        raise EstimationError(
            f"No joining school is observed at event time(s) {empty} inside window [{lo}, {hi}]; narrow the window.",
            user_error=True,
        )
    return pd.concat([data, dummies], axis=1), names, times


def _normal_draws(corr: np.ndarray, n_draws: int, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """Draws from N(0, corr); negative eigenvalues (possible with two-way clustering) are clipped to 0."""
    values, vectors = np.linalg.eigh((corr + corr.T) / 2)
    clipped = bool((values < -1e-10 * max(values.max(), 1.0)).any())
    root = vectors * np.sqrt(np.clip(values, 0.0, None))
    return rng.standard_normal((n_draws, len(values))) @ root.T, clipped


def fit_event_study(
    frame: pd.DataFrame,
    outcome: str,
    *,
    options: EventStudyOptions,
    rng: np.random.Generator,
    clusters: DidClusters | None = None,
) -> tuple[list[EffectEstimate], dict, SampleReport, list[str]]:
    """TWFE event study on a school × year frame with canonical columns.

    ``clusters``: resolved clusters (default: ``options.inference.cluster`` resolved from ``frame``).
    With few clusters the average post-joining coefficient gets a wild cluster bootstrap p-value and
    interval; the event-time rows stay cluster-robust (their rows say so).

    Returns
    -------
    estimates (average post-joining coefficient first, then one per event time), diagnostics, sample, warnings
    """
    stage = options.name
    sample = SampleReport(n_rows_in=len(frame))
    warnings: list[str] = []
    data = prepare_twfe_sample(frame, outcome, list(options.covariates), sample, stage)
    data, names, times = event_time_dummies(data, options.window, options.reference, options.bin_endpoints, sample, stage)
    inference = options.inference
    clusters = clusters or resolve_clusters(inference.levels, frame)
    panel = fit_panel_ols(
        data,
        outcome,
        [*names, *options.covariates],
        clusters=clusters,
        correction=inference.correction,
        regressor_labels={n: f"event time {k}" for n, k in zip(names, times, strict=True)},
    )
    fit, n_clusters = panel.fit, panel.n_clusters
    route, route_warnings = regression_route(inference, clusters, n_clusters, panel.smallest)
    warnings += label_warnings(clusters) + route_warnings
    beta = fit.params[names].to_numpy()
    cov = fit.cov.loc[names, names].to_numpy()
    se = np.sqrt(np.diag(cov))
    alpha = 1 - options.ci_level
    corr = cov / np.outer(se, se)
    draws, clipped = _normal_draws(corr, options.band_draws, rng)
    crit = sup_t_crit(draws, np.ones(len(names)), alpha)
    if clipped:
        warnings.append(
            "The two-way clustered covariance is not positive semi-definite; its negative eigenvalues were set to 0 "
            "for the simultaneous band (Cameron, Gelbach & Miller 2011)."
        )

    times_arr = np.array(times)
    pre = times_arr < 0
    pretest = wald_test(beta[pre], cov[np.ix_(pre, pre)], label="pre-joining event-study coefficients jointly zero")
    post = times_arr >= 0
    avg = np.full(len(names), 0.0)
    avg[post] = 1 / post.sum()
    boot = None
    if route == "wild_bootstrap":
        boot = panel_wild_bootstrap(data, outcome, panel, pd.Series(avg, index=names), options=inference, rng=rng,
                                    ci_level=options.ci_level)
    main_record, record = panel_inference(panel, clusters, inference, route, boot)
    common = {"ci_level": options.ci_level, "df": df_for(inference.correction, n_clusters)}
    schools = data.drop_duplicates("school")
    joined = schools["join_year"].notna()
    estimates = [
        EffectEstimate.from_normal(
            term="average post-joining coefficient",
            estimand="event-study average (TWFE)",
            estimate=float(avg @ beta),
            std_error=float(np.sqrt(avg @ cov @ avg)),
            n_treated=int(joined.sum()),
            n_control=int((~joined).sum()),
            n_obs=int(fit.nobs),
            **common,
            **main_record.row_fields(),
        )
    ]
    if boot is not None:
        estimates[0] = estimates[0].with_context(ci_lower=boot.ci_lower, ci_upper=boot.ci_upper, p_value=boot.p_value)
    for k, b, s in zip(times, beta, se, strict=True):
        estimates.append(EffectEstimate.from_normal(term=f"event_time={k}", estimand="event-study coefficient (TWFE)",
                                                    estimate=b, std_error=s, **common, **record.row_fields()))

    table = pd.DataFrame({"event_time": times, "att": beta, "std_error": se, "critical_value": crit})
    table["ci_lower_uniform"] = table["att"] - crit * table["std_error"]
    table["ci_upper_uniform"] = table["att"] + crit * table["std_error"]
    if pretest["p_value"] is not None and pretest["p_value"] < 0.05:
        warnings.append(
            f"Pre-joining event-study coefficients are jointly different from zero (Wald p = {pretest['p_value']:.3g}, "
            f"{pretest['df']} df): parallel trends is doubtful."
        )
    if joined.any() and schools.loc[joined, "join_year"].nunique() > 1:
        warnings.append(
            "Staggered joining: TWFE event-study coefficients can mix effects of other event times when effects differ "
            "by cohort (Sun & Abraham 2021); compare with did_staggered's dynamic aggregation."
        )
    sample.n_rows_used = int(fit.nobs)
    sample.n_units_used = int(len(schools))
    diagnostics = {
        "design": {
            "window": list(options.window),
            "bin_endpoints": options.bin_endpoints,
            "reference": options.reference,
            "covariates": list(options.covariates),
            "cluster": clusters.name,
            "n_clusters": n_clusters,
            "band_draws": options.band_draws,
        },
        "event_study": table,
        "pretrend_test": pretest,
        "inference": main_record.to_dict(),
    }
    if options.sensitivity.enabled:
        sensitivity = event_time_sensitivity(times_arr, beta, cov, options.sensitivity, reference=options.reference)
        if options.bin_endpoints:
            sensitivity["note"] = ("The first and last event times bin every year beyond them (bin_endpoints: true); "
                                   "the bounds treat each as one year.")
        diagnostics["sensitivity"] = sensitivity
    return estimates, diagnostics, sample, warnings


def run(context: AnalysisContext) -> AnalysisResult:
    spec: EventStudyOptions = context.spec  # type: ignore[assignment]
    frame = context.panel.frame
    clusters = resolve_clusters(spec.inference.levels, frame, config=context.config)
    estimates, diagnostics, sample, warnings = fit_event_study(frame, context.outcome, options=spec, rng=context.rng,
                                                               clusters=clusters)
    # The report headlines the average post-joining coefficient; its counts are schools.
    diagnostics.update(headline_term=estimates[0].term, count_unit="schools")
    return result_for(context, estimates, diagnostics, sample, warnings)


def figures(result: AnalysisResult) -> dict:
    from evaltool.report.plots_did import event_study_figure, sensitivity_figures

    return {"event_study": event_study_figure(result), **sensitivity_figures(result)}


EVENT_STUDY = Method(
    name="event_study",
    options=EventStudyOptions,
    run=run,
    summary="TWFE event study: leads/lags around joining, binned endpoints, pre-trend Wald test, sup-t bands.",
    figures=figures,
)
