"""Canonical two-group, pre/post difference-in-differences on school means.

Treated schools joined between the pre and post periods; comparison schools
never joined (or, optionally, had not joined by the end of the post period).
Each school's outcome is averaged over the pre years and over the post years,
and the DiD is estimated by OLS of those means on ``treated``, ``post`` and
``treated × post`` with cluster-robust standard errors (``inference.cluster``:
by default the trust, each school outside a trust its own cluster; CR1 with
t(G − 1), as statsmodels' default ``use_correction``), or a wild cluster
bootstrap when clusters are few.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
import statsmodels.api as sm
from pydantic import Field, model_validator

from evaltool.config.inference import InferenceOptions
from evaltool.config.models import AnalysisBase, Year
from evaltool.diagnostics.balance import balance_table
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
from evaltool.estimators.did.sensitivity import placebo_power
from evaltool.estimators.inference import CORRECTIONS, inference_problems
from evaltool.estimators.wild_bootstrap import wild_cluster_bootstrap
from evaltool.results import AnalysisResult, EffectEstimate, SampleReport

if TYPE_CHECKING:
    from evaltool.config.root import Config
    from evaltool.estimators.context import AnalysisContext


class Did2x2Options(AnalysisBase):
    """Options of ``method: did_2x2``."""

    method: Literal["did_2x2"]
    pre_years: list[Year] = Field(min_length=1)
    """Years averaged as the 'before' period; every treated school joins after the last of them."""
    post_years: list[Year] = Field(min_length=1)
    """Years averaged as the 'after' period; every treated school has joined by the first of them."""
    comparison: Literal["never_joined", "not_yet_joined"] = "never_joined"
    """Comparison schools: 'never_joined', or 'not_yet_joined' (also schools joining after the last post year)."""
    ci_level: float = Field(default=0.95, gt=0.5, lt=1.0)
    """Confidence level of the intervals."""

    @model_validator(mode="after")
    def _periods_in_order(self) -> Did2x2Options:
        overlap = sorted(set(self.pre_years) & set(self.post_years))
        if overlap:
            raise ValueError(f"pre_years and post_years share {overlap}; a year can be in only one period")
        if max(self.pre_years) >= min(self.post_years):
            raise ValueError(
                f"did_2x2.pre_years and did_2x2.post_years: every pre year must come before every post year (last "
                f"pre year {max(self.pre_years)}, first post year {min(self.post_years)}); list the years before "
                "joining under pre_years and the years after under post_years"
            )
        return self

    def cross_check(self, config: Config) -> list[tuple[tuple, str]]:
        problems = design_problems(config, self.method)
        problems += inference_problems(config, self, levels=["school", "trust", "local_authority"],
                                       few_clusters=["wild_bootstrap"])
        excluded = sorted(set(config.data.exclude_years) & set(self.pre_years + self.post_years))
        if excluded:
            problems.append((("pre_years",), f"years {excluded} are also in data.exclude_years; remove them from one of the two"))
        return problems


def assign_groups(join_year: pd.Series, pre_end: int, post_start: int, post_end: int, comparison: str) -> pd.Series:
    """Label each school 'treated', 'comparison' or the reason it is left out.

    Treated: ``pre_end < join_year <= post_start``.  Comparison: never joined,
    plus (``not_yet_joined``) schools joining after ``post_end``.
    """
    never = join_year.isna()
    labels = pd.Series("comparison", index=join_year.index, dtype=object)
    labels[~never & (join_year <= pre_end)] = "joined before or during the pre period"
    labels[~never & (join_year > pre_end) & (join_year <= post_start)] = "treated"
    labels[~never & (join_year > post_start) & (join_year <= post_end)] = "joined during the post period"
    later = ~never & (join_year > post_end)
    if comparison == "never_joined":
        labels[later] = "joined after the post period (comparison is never_joined)"
    return labels


def fit_did_2x2(
    frame: pd.DataFrame,
    outcome: str,
    *,
    pre_years: list[int],
    post_years: list[int],
    comparison: str = "never_joined",
    cluster: str | DidClusters = "school",
    ci_level: float = 0.95,
    covariates: tuple[str, ...] | list[str] = (),
    inference: InferenceOptions | None = None,
    rng: np.random.Generator | None = None,
) -> tuple[EffectEstimate, dict, SampleReport, list[str]]:
    """Estimate the 2×2 DiD on a school × year frame with canonical columns.

    Parameters
    ----------
    cluster
        Cluster level (one of school, trust, local_authority, resolved from ``frame``) or resolved clusters.
    inference
        Correction and few-cluster method (its ``cluster`` is not read: see ``cluster``); default CR1 and
        ``few_clusters: none``.
    rng
        Generator of the wild cluster bootstrap weights (needed when it is used).

    Returns
    -------
    estimate, diagnostics, sample report, warnings

    Notes
    -----
    Besides the estimate, the diagnostics hold the baseline balance of the
    analysed schools (pre-period means of the outcome and ``covariates``:
    standardised differences and the WWC baseline-equivalence verdict) and,
    with two or more pre years, a placebo pre-trend test (see
    :func:`pretrend_placebo`).
    """
    sample = SampleReport(n_rows_in=len(frame))
    warnings: list[str] = []
    in_window = frame["year"].isin(pre_years + post_years)
    sample.exclude(
        "year not in pre_years or post_years (not part of this design)",
        int((~in_window).sum()),
        unit="schools",
        stage="design",
    )
    data = frame.loc[in_window]

    groups = assign_groups(
        data.groupby("school")["join_year"].first(), max(pre_years), min(post_years), max(post_years), comparison
    )
    for reason in sorted(set(groups) - {"treated", "comparison"}):
        schools = groups.index[groups == reason]
        sample.exclude(reason, int(data["school"].isin(schools).sum()), len(schools), stage="design")
    data = data.loc[data["school"].map(groups).isin(["treated", "comparison"])]

    missing = data[outcome].isna()
    sample.exclude(f"missing outcome '{outcome}'", int(missing.sum()), int(data.loc[missing, "school"].nunique()), stage="analysis",
                   attrition=True)
    data = data.loc[~missing].assign(post=lambda d: d["year"].isin(post_years).astype(float))

    means = data.groupby(["school", "post"], as_index=False).agg(y=(outcome, "mean"), n_years=(outcome, "size"))
    periods = means.groupby("school")["post"].nunique()
    incomplete = periods.index[periods < 2]
    if len(incomplete):
        rows = int(data["school"].isin(incomplete).sum())
        sample.exclude("no outcome in the pre or the post period", rows, len(incomplete), stage="analysis", attrition=True)
    means = means.loc[~means["school"].isin(incomplete)].copy()
    means["treated"] = (means["school"].map(groups) == "treated").astype(float)

    n_treated = int(means.loc[means["treated"] == 1, "school"].nunique())
    n_control = int(means.loc[means["treated"] == 0, "school"].nunique())
    if n_treated == 0 or n_control == 0:
        missing_group = "treated" if n_treated == 0 else "comparison"
        raise EstimationError(
            f"No {missing_group} schools with outcome data in both periods (pre {pre_years}, post {post_years}, "
            f"comparison {comparison}). Choose pre_years/post_years so that some schools join between them"
            + (", or use comparison: not_yet_joined" if missing_group == "comparison" else "")
            + ".",
            user_error=True,
        )

    school_rows = data.drop_duplicates("school").set_index("school")
    options = inference or InferenceOptions(few_clusters="none")
    if not isinstance(cluster, DidClusters):
        cluster = resolve_clusters(cluster, frame, two_way=False)
    ((_, clusters, n_clusters),) = cluster.row_codes(means)
    route, route_warnings = regression_route(options, cluster, n_clusters, cluster.levels[0])
    warnings += label_warnings(cluster) + route_warnings

    X = sm.add_constant(
        np.column_stack([means["treated"], means["post"], means["treated"] * means["post"]]), has_constant="add"
    )
    model = sm.OLS(means["y"].to_numpy(), X)
    # statsmodels' use_correction=True is CR1: G/(G-1)·(N-1)/(N-K), K = 4 coefficients.
    cov_kwds = {"groups": clusters, "use_correction": options.correction == "CR1"}
    fit = model.fit(cov_type="cluster", cov_kwds=cov_kwds, use_t=True)
    k_note = f"K = {X.shape[1]} coefficients (constant, treated, post, treated:post)"
    record = cluster.record(n_clusters, CORRECTIONS[options.correction], "cluster-robust", [k_note])
    estimate = EffectEstimate.from_normal(
        term="treated:post",
        estimand="ATT",
        estimate=float(fit.params[3]),
        std_error=float(fit.bse[3]),
        ci_level=ci_level,
        df=df_for(options.correction, n_clusters),
        n_treated=n_treated,
        n_control=n_control,
        n_obs=int(len(data.loc[data["school"].isin(means["school"])])),
    )
    if route == "wild_bootstrap":
        if rng is None:
            raise ValueError("fit_did_2x2: the wild cluster bootstrap needs rng (a numpy Generator)")
        boot = wild_cluster_bootstrap(means["y"].to_numpy(), X, np.array([0.0, 0.0, 0.0, 1.0]), clusters,
                                      n_draws=options.wild_bootstrap_draws, rng=rng, ci_level=ci_level)
        estimate = estimate.with_context(ci_lower=boot.ci_lower, ci_upper=boot.ci_upper, p_value=boot.p_value)
        record = cluster.record(n_clusters, CORRECTIONS[options.correction], boot.method,
                                [k_note, "the standard error is the cluster-robust one; the p-value and interval "
                                 "are the bootstrap's"])
    estimate = estimate.with_context(**record.row_fields())
    sample.n_rows_used = estimate.n_obs or 0
    sample.n_units_used = n_treated + n_control

    cell = means.groupby(["treated", "post"])["y"].mean()
    used_schools = set(means["school"])
    yearly = (
        frame.loc[frame["school"].isin(used_schools)]
        .assign(group=lambda d: np.where(d["school"].map(groups) == "treated", "treated", "comparison"))
        .groupby(["group", "year"])[outcome]
        .agg(["mean", "count"])
        .reset_index()
    )
    analysed = data.loc[data["school"].isin(means["school"])].assign(__y__=lambda d: d[outcome])
    treated_schools = means.loc[means["treated"] == 1, "school"].unique()
    diagnostics = {
        "balance": baseline_balance(analysed, outcome, list(covariates), pre_years, treated_schools),
        "design": {
            "pre_years": list(pre_years),
            "post_years": list(post_years),
            "comparison": comparison,
            "cluster": cluster.name,
            "n_clusters": n_clusters,
            "treated_cohorts": {
                int(k): int(v)
                for k, v in school_rows.loc[school_rows.index.isin(means.loc[means["treated"] == 1, "school"]), "join_year"]
                .value_counts()
                .sort_index()
                .items()
            },
        },
        "cell_means": {
            "treated_pre": float(cell.get((1.0, 0.0), np.nan)),
            "treated_post": float(cell.get((1.0, 1.0), np.nan)),
            "comparison_pre": float(cell.get((0.0, 0.0), np.nan)),
            "comparison_post": float(cell.get((0.0, 1.0), np.nan)),
        },
        "yearly_means": yearly.rename(columns={"mean": "mean_outcome", "count": "n_schools"}),
        "inference": record.to_dict(),
    }
    if len(pre_years) >= 2:
        diagnostics["pretrend_test"] = pretrend_placebo(
            analysed, pre_years, treated_schools,
            clusters_by_school(means["school"], pd.Series(clusters, index=means.index)),
            correction=options.correction,
        )
    return estimate, diagnostics, sample, warnings


def clusters_by_school(schools: pd.Series, codes: pd.Series) -> pd.Series:
    """Cluster code of each school (from the per-observation codes)."""
    return pd.Series(codes.to_numpy(), index=schools.to_numpy()).groupby(level=0).first()


def baseline_balance(
    data: pd.DataFrame, outcome: str, covariates: list[str], pre_years: list[int], treated: np.ndarray
) -> pd.DataFrame:
    """Balance of the analysed schools before joining: pre-period means of the outcome and covariates.

    Schools missing a covariate in every pre year are left out of that
    covariate's row only (its mean is undefined); ``n_treated``/``n_control``
    say how many schools each row rests on.  A covariate with fewer than two
    schools in either group has no row (a standardised difference needs a
    standard deviation in each group); its name is listed in the ``note``
    column of the outcome row.
    """
    columns = [outcome, *[c for c in covariates if c in data]]
    pre = data.loc[data["year"].isin(pre_years)].groupby("school")[columns].mean()
    is_treated = pre.index.isin(treated)
    rows = []
    unmeasured = []
    for column in columns:
        present = pre[column].notna().to_numpy()
        if (is_treated & present).sum() < 2 or (~is_treated & present).sum() < 2:
            unmeasured.append(column)
            continue
        table = balance_table(pre.loc[present, [column]], is_treated[present])
        table["n_treated"] = int((is_treated & present).sum())
        table["n_control"] = int((~is_treated & present).sum())
        rows.append(table)
    if not rows:
        return pd.DataFrame({"covariate": [], "smd": [], "note": []})
    out = pd.concat(rows, ignore_index=True).rename(columns={"smd_before": "smd"})
    out["note"] = ""
    if outcome not in unmeasured:
        out.loc[0, "covariate"] = f"{outcome} (before joining)"
    if unmeasured:
        out.loc[0, "note"] = f"not measured (fewer than 2 schools with values in a group): {', '.join(unmeasured)}"
    return out


def pretrend_placebo(
    data: pd.DataFrame, pre_years: list[int], treated: np.ndarray, clusters: pd.Series, *, correction: str = "CR1"
) -> dict:
    """Placebo DiD inside the pre period: last pre year against the earlier pre years.

    Notes
    -----
    Under parallel trends the treated schools' change from the mean of the
    earlier pre years to the last pre year equals the comparison schools'
    change (nobody has joined yet), so the placebo DiD estimates zero.  It is
    the coefficient on ``treated`` in an OLS of each school's change, with
    standard errors clustered and corrected as in the main estimate (always
    cluster-robust, also when the main estimate uses the wild bootstrap); the
    reported test is the Wald test (t²) of that coefficient, with ``df`` = 1.
    """
    earlier, last = pre_years[:-1], pre_years[-1]
    wide = data.loc[data["year"].isin(pre_years)].pivot_table(index="school", columns="year", values="__y__")
    change = (wide[last] - wide[earlier].mean(axis=1)).dropna()
    if change.empty:
        return {"test": "placebo DiD within the pre period", "statistic": None, "df": 0, "p_value": None,
                "note": "no school has the outcome in the last and an earlier pre year"}
    d = change.index.isin(treated).astype(float)
    groups = clusters.reindex(change.index).to_numpy()
    if d.min() == d.max():
        return {"test": "placebo DiD within the pre period", "statistic": None, "df": 0, "p_value": None,
                "note": "only one group has the outcome in the pre years"}
    codes, _ = pd.factorize(groups, sort=True)  # the clusters of these schools, coded 0 … G − 1
    cov_kwds = {"groups": codes, "use_correction": correction == "CR1"}
    fit = sm.OLS(change.to_numpy(), sm.add_constant(d)).fit(cov_type="cluster", cov_kwds=cov_kwds,
                                                             use_t=correction == "CR1")
    t = float(fit.tvalues[1])
    return {
        "test": f"placebo DiD within the pre period ({last} against {', '.join(map(str, earlier))})",
        "estimate": float(fit.params[1]),
        "std_error": float(fit.bse[1]),
        "statistic": t**2,
        "df": 1,
        "p_value": float(fit.pvalues[1]),
        "n_treated": int(d.sum()),
        "n_control": int((1 - d).sum()),
        "n_clusters": int(codes.max()) + 1,
        "se_correction": CORRECTIONS[correction],
        "note": "",
    }


def run(context: AnalysisContext) -> AnalysisResult:
    spec: Did2x2Options = context.spec  # type: ignore[assignment]
    frame = context.panel.frame
    estimate, diagnostics, sample, warnings = fit_did_2x2(
        frame,
        context.outcome,
        pre_years=spec.pre_years,
        post_years=spec.post_years,
        comparison=spec.comparison,
        cluster=resolve_clusters(spec.inference.levels, frame, config=context.config, two_way=False),
        ci_level=spec.ci_level,
        covariates=context.panel.covariates,
        inference=spec.inference,
        rng=context.rng,
    )
    # What the report headlines and what its counts count (n_treated / n_control are schools).
    diagnostics.update(headline_term=estimate.term, count_unit="schools")
    if spec.sensitivity.enabled and spec.sensitivity.pretrend_power and "pretrend_test" in diagnostics:
        diagnostics["sensitivity"] = {"pretrend_power": placebo_power(
            diagnostics["pretrend_test"], sorted(spec.pre_years), sorted(spec.post_years), spec.sensitivity.alpha)}
    return result_for(context, [estimate], diagnostics, sample, warnings)


def figures(result: AnalysisResult) -> dict:
    from evaltool.report.plots import group_trends_figure

    return {"trends": group_trends_figure(result)}


DID_2X2 = Method(
    name="did_2x2",
    options=Did2x2Options,
    run=run,
    summary="Two-group pre/post difference-in-differences on school means, SEs clustered by trust (design).",
    figures=figures,
)
