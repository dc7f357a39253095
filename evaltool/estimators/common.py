"""Small helpers shared by estimators (clusters, warnings)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from evaltool.results import AnalysisResult, EffectEstimate, SampleReport

if TYPE_CHECKING:
    from evaltool.config.root import Config
    from evaltool.estimators.context import AnalysisContext

Problem = tuple[tuple, str]


def cluster_ids(schools: pd.Series, school_rows: pd.DataFrame, cluster: str) -> tuple[pd.Series, int, str]:
    """Integer cluster codes for each row of ``schools``.

    Parameters
    ----------
    schools
        School id of each observation.
    school_rows
        One row per school (indexed by school) holding the cluster column.
    cluster
        ``"school"``, ``"trust"`` or ``"local_authority"``.  Schools with no
        value (e.g. comparison schools outside any trust) form their own
        cluster.

    Returns
    -------
    codes, number of clusters, description for the results
    """
    if cluster == "school":
        labels = schools.astype(str)
        note = "school"
    else:
        by_school = school_rows[cluster]
        labels = schools.map(by_school).astype("string")
        own = labels.isna()
        labels = labels.where(~own, "__school__" + schools.astype(str))
        note = cluster.replace("_", " ") + (" (schools without one are their own cluster)" if own.any() else "")
    codes, uniques = pd.factorize(labels, sort=True)
    return pd.Series(codes, index=schools.index), len(uniques), note


def few_clusters_warning(n_clusters: int, cluster: str) -> str:
    """The message shown when cluster-robust SEs rest on fewer than 30 clusters."""
    return (
        f"Only {n_clusters} {cluster.replace('_', ' ')} clusters: cluster-robust standard errors are unreliable below "
        "about 30 clusters (typically too small, so confidence intervals are too narrow). Cluster at a finer level, "
        "or use a few-cluster method (wild cluster bootstrap or randomisation inference)."
    )


def result_for(
    context: AnalysisContext,
    estimates: list[EffectEstimate],
    diagnostics: dict,
    sample: SampleReport,
    warnings: list[str],
) -> AnalysisResult:
    """The :class:`AnalysisResult` of an analysis, each estimate labelled with its method and outcome."""
    spec = context.spec
    return AnalysisResult(
        analysis=spec.name,
        method=spec.method,
        outcome=context.outcome,
        estimates=[e.with_context(method=spec.method, outcome=context.outcome) for e in estimates],
        diagnostics=diagnostics,
        sample=sample,
        warnings=warnings,
    )


def design_problems(
    config: Config,
    method: str,
    *,
    covariates: list[str] | tuple[str, ...] = (),
    covariates_key: str = "covariates",
    cluster: str | None = None,
) -> list[Problem]:
    """The config checks every school-panel method shares (for an options model's ``cross_check``).

    A join year must be mapped; the method's covariates must be listed in
    ``columns.covariates``; clustering by trust or local authority needs that
    column mapped.  Each problem is ``(key path within the analysis, message)``.
    """
    problems: list[Problem] = []
    if config.columns.join_year is None:
        problems.append((("method",), f"{method} needs columns.join_year (the year each school joined)"))
    unknown = [c for c in covariates if c not in config.columns.covariates]
    if unknown:
        problems.append(
            ((covariates_key,), f"{unknown} are not in columns.covariates {config.columns.covariates}; add them there first")
        )
    if cluster in ("trust", "local_authority") and getattr(config.columns, cluster) is None:
        problems.append(
            (("cluster",), f"clustering by {cluster} needs columns.{cluster}; map that column or use cluster: school")
        )
    return problems
