"""``method: did_twfe``: two-way fixed-effects DiD, with its negative-weight diagnostic.

``y_it = α_i + λ_t + β·D_it + X_it'γ + ε_it`` estimated with
:class:`linearmodels.PanelOLS` (school and year effects), standard errors
clustered by school, trust or local authority (optionally also by year:
two-way clustering).  Under staggered joining β is a weighted average of
school-year effects whose weights can be negative (de Chaisemartin &
D'Haultfœuille 2020, *AER* 110(9), Theorem 1); the diagnostics report those
weights, so users see why the staggered estimator differs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from linearmodels import PanelOLS
from pydantic import Field

from evaltool.config.models import AnalysisBase
from evaltool.errors import EstimationError
from evaltool.estimators.common import cluster_ids, design_problems, few_clusters_warning, result_for
from evaltool.estimators.inference import requested_levels
from evaltool.estimators.registry import Method, register
from evaltool.results import AnalysisResult, EffectEstimate, SampleReport

if TYPE_CHECKING:
    from evaltool.config import Config
    from evaltool.pipeline import AnalysisContext


class TwfeOptionsBase(AnalysisBase):
    """Keys shared by ``did_twfe`` and ``event_study``."""

    covariates: list[str] = Field(default_factory=list)
    """Time-varying covariates (from columns.covariates) added to the regression."""
    ci_level: float = Field(default=0.95, gt=0.5, lt=1.0)
    """Confidence level of the intervals."""

    def cross_check(self, config: Config) -> list[tuple[tuple, str]]:
        return design_problems(config, self.method, covariates=self.covariates, cluster=self.cluster)


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


def fit_panel_ols(
    data: pd.DataFrame,
    outcome: str,
    regressors: list[str],
    *,
    cluster: str,
    cluster_by_year: bool,
    regressor_labels: dict[str, str] | None = None,
) -> tuple[object, int, str, str]:
    """PanelOLS with school and year effects and clustered covariance.

    Returns
    -------
    fitted results, number of clusters (the smaller dimension under two-way clustering), description,
    and the name of that dimension.

    Raises
    ------
    EstimationError
        If the regressors are collinear with each other or with the fixed effects.
    """
    indexed = data.set_index(["school", "year"])
    schools = data["school"]
    school_rows = data.drop_duplicates("school").set_index("school")
    codes, n_clusters, note = cluster_ids(schools, school_rows, cluster)
    clusters = pd.DataFrame({"c1": codes.to_numpy()}, index=indexed.index)
    smallest = cluster
    if cluster_by_year:
        clusters["c2"] = pd.factorize(data["year"])[0]
        n_years = int(clusters["c2"].nunique())
        note += f" ({n_clusters}) and year ({n_years}), two-way"
        if n_years < n_clusters:
            n_clusters, smallest = n_years, "year"
    labels = regressor_labels or {}
    _check_rank(indexed, regressors, [labels.get(r, r) for r in regressors])
    model = PanelOLS(indexed[outcome], indexed[regressors], entity_effects=True, time_effects=True, drop_absorbed=False)
    fit = model.fit(cov_type="clustered", clusters=clusters)
    return fit, n_clusters, note, smallest


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
    cluster: str = "school",
    cluster_by_year: bool = False,
    ci_level: float = 0.95,
    stage: str = "did_twfe",
) -> tuple[EffectEstimate, dict, SampleReport, list[str]]:
    """Two-way fixed-effects DiD on a school × year frame with canonical columns.

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
    fit, n_clusters, note, smallest = fit_panel_ols(
        data, outcome, ["treated_now", *covariates], cluster=cluster, cluster_by_year=cluster_by_year,
        regressor_labels={"treated_now": "joined"},
    )
    if n_clusters < 30:
        warnings.append(few_clusters_warning(n_clusters, smallest))
    schools = data.drop_duplicates("school")
    joined = schools["join_year"].notna()
    estimate = EffectEstimate.from_normal(
        term="joined",
        estimand="TWFE coefficient (weighted average of school-year effects)",
        estimate=float(fit.params["treated_now"]),
        std_error=float(fit.std_errors["treated_now"]),
        ci_level=ci_level,
        df=n_clusters - 1,
        n_treated=int(joined.sum()),
        n_control=int((~joined).sum()),
        n_obs=int(fit.nobs),
        inference=f"cluster-robust by {note} ({n_clusters} clusters), t({n_clusters - 1})",
    )
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
            "cluster": note,
            "n_clusters": n_clusters,
            "n_cohorts": int(cohorts),
            "coefficients": pd.DataFrame(
                {"term": fit.params.index, "estimate": fit.params.to_numpy(), "std_error": fit.std_errors.to_numpy()}
            ),
        },
        "negative_weights": weights,
    }
    return estimate, diagnostics, sample, warnings


def run(context: AnalysisContext) -> AnalysisResult:
    spec: DidTwfeOptions = context.spec  # type: ignore[assignment]
    level, by_year, _ = requested_levels(spec, context.panel.frame)
    estimate, diagnostics, sample, warnings = fit_did_twfe(
        context.panel.frame,
        context.outcome,
        covariates=spec.covariates,
        cluster=level,
        cluster_by_year=by_year,
        ci_level=spec.ci_level,
        stage=spec.name,
    )
    return result_for(context, [estimate], diagnostics, sample, warnings)


def figures(result: AnalysisResult) -> dict:
    from evaltool.report.plots_did import twfe_weights_figure

    return {"weights": twfe_weights_figure(result)}


register(
    Method(
        name="did_twfe",
        options=DidTwfeOptions,
        run=run,
        summary="Two-way fixed-effects DiD (school and year effects), clustered SEs, negative-weight diagnostic.",
        figures=figures,
    )
)
