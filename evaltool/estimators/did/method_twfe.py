"""``method: did_twfe``: two-way fixed-effects DiD, with its negative-weight diagnostic.

``y_it = α_i + λ_t + β·D_it + X_it'γ + ε_it`` estimated with
:class:`linearmodels.PanelOLS` (school effects absorbed, year effects as
regressors), standard errors clustered as ``inference.cluster`` says (by
default the trust, each school outside a trust its own cluster; optionally
two-way, e.g. ``[design, year]``), CR1 with t(G − 1), or a wild cluster
bootstrap when clusters are few.  Under staggered joining β is a weighted average of
school-year effects whose weights can be negative (de Chaisemartin &
D'Haultfœuille 2020, *AER* 110(9), Theorem 1); the diagnostics report those
weights, so users see why the staggered estimator differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from linearmodels import PanelOLS
from pydantic import Field

from evaltool.config.inference import InferenceOptions
from evaltool.config.models import AnalysisBase
from evaltool.config.sensitivity import SensitivityOptions
from evaltool.errors import EstimationError
from evaltool.estimators.base import Method
from evaltool.estimators.common import design_problems, result_for
from evaltool.estimators.did.engine.clustering import (
    DidClusters,
    df_for,
    label_warnings,
    regression_route,
    resolve_clusters,
)
from evaltool.estimators.did.sensitivity import regression_robustness
from evaltool.estimators.inference import CORRECTIONS, Inference, inference_problems
from evaltool.estimators.wild_bootstrap import WildBootstrapResult, wild_cluster_bootstrap
from evaltool.results import AnalysisResult, EffectEstimate, SampleReport

if TYPE_CHECKING:
    from evaltool.config.root import Config
    from evaltool.estimators.context import AnalysisContext


class TwfeOptionsBase(AnalysisBase):
    """Keys shared by ``did_twfe`` and ``event_study``."""

    covariates: list[str] = Field(default_factory=list)
    """Time-varying covariates (from columns.covariates) added to the regression."""
    ci_level: float = Field(default=0.95, gt=0.5, lt=1.0)
    """Confidence level of the intervals."""

    def cross_check(self, config: Config) -> list[tuple[tuple, str]]:
        problems = design_problems(config, self.method, covariates=self.covariates)
        problems += inference_problems(config, self, levels=["school", "trust", "local_authority"],
                                       few_clusters=["wild_bootstrap"], two_way=True)
        return problems


class DidTwfeOptions(TwfeOptionsBase):
    """Options of ``method: did_twfe``."""

    method: Literal["did_twfe"]


def prepare_twfe_sample(
    frame: pd.DataFrame, outcome: str, covariates: list[str], sample: SampleReport, stage: str
) -> pd.DataFrame:
    """Rows with the outcome and every covariate; exclusions counted by reason."""
    data = frame
    for column in [outcome, *covariates]:
        if column not in data.columns:
            raise EstimationError(f"Column '{column}' is not in the panel; map it under columns: in the config.", user_error=True)
        missing = data[column].isna()
        what = "outcome" if column == outcome else "covariate"
        sample.exclude(f"missing {what} '{column}'", int(missing.sum()), int(data.loc[missing, "school"].nunique()), stage=stage,
                       attrition=True)
        data = data.loc[~missing]
    counts = data.groupby("school")["year"].transform("size")
    single = counts < 2
    sample.exclude(
        "school observed in only one year (absorbed by its school effect)",
        int(single.sum()),
        int(data.loc[single, "school"].nunique()),
        stage=stage,
        attrition=True,
    )
    data = data.loc[~single].copy()
    data["treated_now"] = (data["join_year"].notna() & (data["year"] >= data["join_year"])).astype(float)
    return data


@dataclass(frozen=True)
class PanelFit:
    """A PanelOLS fit with the clusters and the design it used.

    Attributes
    ----------
    fit
        linearmodels results (coefficients of ``regressors`` and the year effects).
    exog
        Regressors then year effects (first year left out), indexed by school and year.
    dims
        ``(level, code of each row, number of clusters)`` per cluster dimension.
    n_clusters
        Clusters of the smallest dimension (G of the t(G − 1) reference).
    k
        K of the CR1 factor: regressors plus year effects (the school effects are nested in the clusters).
    """

    fit: object
    exog: pd.DataFrame
    dims: list[tuple[str, np.ndarray, int]]
    n_clusters: int
    k: int

    @property
    def smallest(self) -> str:
        """Level of the dimension with the fewest clusters."""
        return min(self.dims, key=lambda dim: dim[2])[0]

    @property
    def k_note(self) -> str:
        n_years = int(self.exog.columns.str.startswith(YEAR_PREFIX).sum())
        return (f"K = {self.k}: {self.k - n_years} regressor(s) and {n_years} year effects; the school effects are "
                "nested in the clusters and not counted")


YEAR_PREFIX = "__year_"


def fit_panel_ols(
    data: pd.DataFrame,
    outcome: str,
    regressors: list[str],
    *,
    clusters: DidClusters,
    correction: str = "CR1",
    regressor_labels: dict[str, str] | None = None,
) -> PanelFit:
    """PanelOLS with school and year effects and clustered covariance.

    Notes
    -----
    School effects are absorbed and year effects enter as regressors, so that ``correction: CR1`` is
    ``G/(G−1)·(N−1)/(N−K)`` with K the regressors plus the T − 1 year effects (school effects are nested
    in the clusters, so not counted, as in Stata's ``xtreg, fe vce(cluster)``): linearmodels'
    ``debiased=True`` (N/(N−K)) with ``group_debias=True`` (G/(G−1)·(N−1)/N), effects not counted.
    Under two-way clustering each of the three one-way matrices (Cameron, Gelbach & Miller 2011) has
    its own G/(G−1).  ``correction: none`` is the plain sandwich.

    Raises
    ------
    EstimationError
        If the regressors are collinear with each other or with the fixed effects, or a cluster dimension
        has fewer than two clusters.
    """
    indexed = data.set_index(["school", "year"])
    dims = clusters.row_codes(data)
    cluster_frame = pd.DataFrame({f"c{i}": codes for i, (_, codes, _) in enumerate(dims)}, index=indexed.index)
    labels = regressor_labels or {}
    _check_rank(indexed, regressors, [labels.get(r, r) for r in regressors])
    years = np.sort(data["year"].unique())[1:]
    year_effects = pd.DataFrame(
        (data["year"].to_numpy()[:, None] == years[None, :]).astype(float),
        columns=[f"{YEAR_PREFIX}{y}" for y in years], index=indexed.index,
    )
    exog = pd.concat([indexed[regressors], year_effects], axis=1)
    model = PanelOLS(indexed[outcome], exog, entity_effects=True, drop_absorbed=False)
    cr1 = correction == "CR1"
    fit = model.fit(cov_type="clustered", clusters=cluster_frame, debiased=cr1, group_debias=cr1, auto_df=False,
                    count_effects=False)
    return PanelFit(fit=fit, exog=exog, dims=dims, n_clusters=min(n for _, _, n in dims), k=exog.shape[1])


def panel_wild_bootstrap(
    data: pd.DataFrame, outcome: str, panel: PanelFit, contrast: pd.Series, *, options: InferenceOptions,
    rng: np.random.Generator, ci_level: float,
) -> WildBootstrapResult:
    """Wild cluster bootstrap of ``contrast @ β`` in the TWFE regression (one-way clustering).

    The school effects are partialled out (within-school demeaning); they are nested in the clusters, so
    the bootstrap on the demeaned data is exact (see :mod:`evaltool.estimators.wild_bootstrap`).
    """
    school = data["school"].to_numpy()
    exog = panel.exog.to_numpy()
    y = data[outcome].to_numpy(dtype=float)
    x_dm = exog - pd.DataFrame(exog).groupby(school).transform("mean").to_numpy()
    y_dm = y - pd.Series(y).groupby(school).transform("mean").to_numpy()
    weights = contrast.reindex(panel.exog.columns, fill_value=0.0).to_numpy()
    return wild_cluster_bootstrap(y_dm, x_dm, weights, panel.dims[0][1], n_draws=options.wild_bootstrap_draws,
                                  rng=rng, ci_level=ci_level)


def panel_inference(
    panel: PanelFit, clusters: DidClusters, options: InferenceOptions, route: str, boot: WildBootstrapResult | None
) -> tuple[Inference, Inference]:
    """Inference records of the main coefficient and of the other rows (cluster-robust)."""
    correction = CORRECTIONS[options.correction]
    notes = [panel.k_note]
    if clusters.two_way:
        sizes = " and ".join(f"{n} {level.replace('_', ' ')} clusters" for level, _, n in panel.dims)
        notes.append(f"two-way: {sizes}; G of t(G-1) is the smaller")
    robust = clusters.record(panel.n_clusters, correction, "cluster-robust", notes)
    if boot is None:
        return robust, robust
    main = clusters.record(panel.n_clusters, correction, boot.method,
                           [*notes, "the standard error is the cluster-robust one; the p-value and interval are the "
                            "bootstrap's"])
    return main, robust


def _check_rank(indexed: pd.DataFrame, regressors: list[str], names: list[str]) -> None:
    """Fail if the regressors are collinear once school and year effects are removed.

    PanelOLS's own rank check looks at the regressors before the fixed effects are swept out, so a covariate
    that is an affine function of another (or constant within schools) can slip through and give meaningless
    coefficients; this checks the two-way-demeaned regressors instead.
    """
    const = pd.DataFrame({"const": 1.0}, index=indexed.index)
    demeaned = np.column_stack(
        [PanelOLS(indexed[r], const, entity_effects=True, time_effects=True).fit().resids.to_numpy() for r in regressors]
    )
    scale = np.abs(indexed[regressors].to_numpy()).max(axis=0)
    absorbed = [name for name, col, sc in zip(names, demeaned.T, scale, strict=True) if np.abs(col).max() <= 1e-9 * max(sc, 1.0)]
    singular = np.linalg.svd(demeaned / np.maximum(np.linalg.norm(demeaned, axis=0), 1e-300), compute_uv=False)
    if absorbed or singular[-1] < 1e-8:
        detail = f" ({', '.join(absorbed)} absorbed by the school and year effects)" if absorbed else ""
        raise EstimationError(
            f"The regressors {names} are collinear once school and year effects are removed{detail}. "
            "Remove a redundant or time-constant covariate, or narrow the event window.",
            user_error=True,
        )


def negative_weights(data: pd.DataFrame) -> dict:
    r"""de Chaisemartin–D'Haultfœuille (2020) weights of the TWFE coefficient.

    Notes
    -----
    With :math:`\hat\varepsilon_{it}` the residual of :math:`D_{it}` on school and year effects,
    :math:`\hat\beta_{TWFE} = \sum_{D_{it}=1} w_{it}\,\Delta_{it}` (under parallel trends) with
    :math:`w_{it} = \hat\varepsilon_{it} / \sum_{D=1}\hat\varepsilon`.  Negative weights arise for
    long-treated school-years, whose outcomes serve as comparisons for later joiners ("forbidden
    comparisons", Goodman-Bacon 2021); with heterogeneous, growing effects they bias β towards zero or
    beyond.  Reported: number and share of treated school-years with negative weight and the sum of
    the negative weights.
    """
    treated = data["treated_now"].to_numpy() == 1
    if not treated.any() or treated.all():
        return {"n_treated_school_years": int(treated.sum()), "n_negative": 0, "share_negative": 0.0, "sum_negative": 0.0}
    indexed = data.set_index(["school", "year"])
    fit = PanelOLS(indexed["treated_now"], pd.DataFrame({"const": 1.0}, index=indexed.index), entity_effects=True, time_effects=True).fit()
    resid = fit.resids.to_numpy()
    weights = resid[treated] / resid[treated].sum()
    negative = weights < 0
    by_event = (
        pd.DataFrame({"event_time": (data["year"] - data["join_year"]).to_numpy()[treated], "weight": weights})
        .groupby("event_time")["weight"]
        .agg(["sum", "size"])
        .reset_index()
        .rename(columns={"sum": "total_weight", "size": "n_school_years"})
    )
    return {
        "n_treated_school_years": int(treated.sum()),
        "n_negative": int(negative.sum()),
        "share_negative": float(negative.mean()),
        "sum_negative": float(weights[negative].sum()),
        "weights_by_event_time": by_event,
    }


def fit_did_twfe(
    frame: pd.DataFrame,
    outcome: str,
    *,
    covariates: list[str] | tuple[str, ...] = (),
    cluster: str | tuple[str, str] | DidClusters = "school",
    cluster_by_year: bool = False,
    ci_level: float = 0.95,
    stage: str = "did_twfe",
    inference: InferenceOptions | None = None,
    rng: np.random.Generator | None = None,
    sensitivity: SensitivityOptions | None = None,
) -> tuple[EffectEstimate, dict, SampleReport, list[str]]:
    """Two-way fixed-effects DiD on a school × year frame with canonical columns.

    Parameters
    ----------
    cluster
        Cluster level(s) (resolved from ``frame``), or resolved clusters; ``cluster_by_year`` adds year.
    inference
        Correction and few-cluster method (its ``cluster`` is not read); default CR1, ``few_clusters: none``.
    rng
        Generator of the wild cluster bootstrap (needed when it is used).
    sensitivity
        The ``sensitivity:`` block: robustness values of the coefficient (Cinelli & Hazlett 2020) with the
        covariates as benchmarks (``None``: not computed).

    Returns
    -------
    estimate, diagnostics, sample report, warnings
    """
    sample = SampleReport(n_rows_in=len(frame))
    warnings: list[str] = []
    covariates = list(covariates)
    data = prepare_twfe_sample(frame, outcome, covariates, sample, stage)
    if data["treated_now"].nunique() < 2:
        raise EstimationError(
            "No school changes status (joins) within the data years, so the TWFE effect is not identified. "
            "Check columns.join_year and data.exclude_years.",
            user_error=True,
        )
    options = inference or InferenceOptions(few_clusters="none")
    clusters = as_clusters(cluster, cluster_by_year, frame)
    panel = fit_panel_ols(data, outcome, ["treated_now", *covariates], clusters=clusters,
                          correction=options.correction, regressor_labels={"treated_now": "joined"})
    fit, n_clusters = panel.fit, panel.n_clusters
    route, route_warnings = regression_route(options, clusters, n_clusters, panel.smallest)
    warnings += label_warnings(clusters) + route_warnings
    boot = None
    if route == "wild_bootstrap":
        if rng is None:
            raise ValueError("fit_did_twfe: the wild cluster bootstrap needs rng (a numpy Generator)")
        boot = panel_wild_bootstrap(data, outcome, panel, pd.Series({"treated_now": 1.0}), options=options, rng=rng,
                                    ci_level=ci_level)
    record, _ = panel_inference(panel, clusters, options, route, boot)
    schools = data.drop_duplicates("school")
    joined = schools["join_year"].notna()
    estimate = EffectEstimate.from_normal(
        term="joined",
        estimand="TWFE coefficient (weighted average of school-year effects)",
        estimate=float(fit.params["treated_now"]),
        std_error=float(fit.std_errors["treated_now"]),
        ci_level=ci_level,
        df=df_for(options.correction, n_clusters),
        n_treated=int(joined.sum()),
        n_control=int((~joined).sum()),
        n_obs=int(fit.nobs),
        **record.row_fields(),
    )
    if boot is not None:
        estimate = estimate.with_context(ci_lower=boot.ci_lower, ci_upper=boot.ci_upper, p_value=boot.p_value)
    robust = None
    if sensitivity is not None and sensitivity.enabled:
        robust = regression_robustness(data[outcome].to_numpy(dtype=float), panel.exog.to_numpy(dtype=float),
                                       list(panel.exog.columns), data["school"].to_numpy(), "treated_now",
                                       covariates, sensitivity)
    sample.n_rows_used = int(fit.nobs)
    sample.n_units_used = int(len(schools))
    weights = negative_weights(data)
    cohorts = schools.loc[joined, "join_year"].nunique()
    if cohorts > 1:
        warnings.append(
            f"Schools joined in {cohorts} different years (staggered adoption): the TWFE coefficient uses already-joined "
            f"schools as comparisons and puts negative weight on {weights['n_negative']} of "
            f"{weights['n_treated_school_years']} joined school-years (sum of negative weights "
            f"{weights['sum_negative']:.3f}). With effects that vary by cohort or grow over time it can be biased, even in "
            "sign; prefer method: did_staggered (Callaway-Sant'Anna)."
        )
    diagnostics = {
        "design": {
            "covariates": covariates,
            "cluster": clusters.name,
            "n_clusters": n_clusters,
            "n_cohorts": int(cohorts),
            "coefficients": coefficient_table(fit),
        },
        "negative_weights": weights,
        "inference": record.to_dict(),
    }
    if robust is not None:
        diagnostics["sensitivity"] = {"robustness": robust}
    return estimate, diagnostics, sample, warnings


def as_clusters(cluster: str | tuple[str, str] | DidClusters, by_year: bool, frame: pd.DataFrame) -> DidClusters:
    """Resolved clusters from a library call's ``cluster`` (and ``cluster_by_year``) arguments."""
    if isinstance(cluster, DidClusters):
        return cluster
    levels = (cluster,) if isinstance(cluster, str) else tuple(cluster)
    if by_year:
        levels = (*levels, "year")
    return resolve_clusters(levels, frame)


def coefficient_table(fit) -> pd.DataFrame:
    """Coefficients and SEs of the regressors (the year effects left out)."""
    keep = ~fit.params.index.str.startswith(YEAR_PREFIX)
    return pd.DataFrame({"term": fit.params.index[keep], "estimate": fit.params.to_numpy()[keep],
                         "std_error": fit.std_errors.to_numpy()[keep]})


def run(context: AnalysisContext) -> AnalysisResult:
    spec: DidTwfeOptions = context.spec  # type: ignore[assignment]
    frame = context.panel.frame
    estimate, diagnostics, sample, warnings = fit_did_twfe(
        frame,
        context.outcome,
        covariates=spec.covariates,
        cluster=resolve_clusters(spec.inference.levels, frame, config=context.config),
        ci_level=spec.ci_level,
        stage=spec.name,
        inference=spec.inference,
        rng=context.rng,
        sensitivity=spec.sensitivity,
    )
    # What the report headlines and what its counts count (n_treated / n_control are schools).
    diagnostics.update(headline_term=estimate.term, count_unit="schools")
    return result_for(context, [estimate], diagnostics, sample, warnings)


def figures(result: AnalysisResult) -> dict:
    from evaltool.report.plots_did import twfe_weights_figure

    return {"weights": twfe_weights_figure(result)}


DID_TWFE = Method(
    name="did_twfe",
    options=DidTwfeOptions,
    run=run,
    summary="Two-way fixed-effects DiD (school and year effects), SEs clustered by trust (design), negative weights.",
    figures=figures,
)
