"""The ``inference:`` block every analysis has: how its standard errors are computed.

Like linearmodels' covariance classes, inference is an explicit, validated
object rather than a default hidden in each estimator.  ``cluster: design``
(the default) clusters at the level at which treatment is shared: joining a
trust is one decision for all of its schools, so their errors are correlated
and the trust is the cluster; schools outside any trust (the never-joined
comparison schools) are each their own cluster.  See
:mod:`evaltool.estimators.inference` for how each level is resolved.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ClusterLevel = Literal["design", "school", "trust", "local_authority", "matched_set", "year"]
#: Levels a two-way clustering may combine.
TWO_WAY_LEVELS = ("design", "school", "trust", "local_authority", "year")


class InferenceOptions(BaseModel):
    """How an analysis computes its standard errors (the ``inference:`` block of any analysis).

    ``cluster`` is one level or two (two-way clustering, Cameron, Gelbach & Miller 2011).
    The analysis-level key ``cluster:`` is accepted as a shorthand for ``inference.cluster``.
    """

    # Same settings as config.models.ConfigModel (that module imports this one).
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    cluster: ClusterLevel | tuple[ClusterLevel, ClusterLevel] = "design"
    """Cluster level: 'design' (default: the trust for schools in one, each other school its own cluster), 'school', 'trust', 'local_authority', 'matched_set' (psm), or two levels for two-way clustering, e.g. [trust, year]."""
    correction: Literal["CR1", "none"] = "CR1"
    """Small-sample correction: 'CR1' (G/(G-1)·(N-1)/(N-K) with t(G-1) intervals, as Stata and R's sandwich) or 'none' (normal intervals, no factor)."""
    few_clusters: Literal["auto", "wild_bootstrap", "randomisation", "none"] = "auto"
    """Method when clusters are few: 'auto' (the method's few-cluster route below few_clusters_below clusters), 'wild_bootstrap' (wild cluster bootstrap, always), 'randomisation' (randomisation inference, where the method has it) or 'none' (cluster-robust SEs with a warning)."""
    few_clusters_below: int = Field(default=30, ge=2, le=10_000)
    """Number of clusters below which clusters count as few (default 30)."""
    wild_bootstrap_draws: int = Field(default=9999, ge=99, le=100_000)
    """Draws of the wild cluster bootstrap (Webb six-point weights)."""

    @model_validator(mode="after")
    def _two_way(self) -> InferenceOptions:
        if isinstance(self.cluster, tuple):
            first, second = self.cluster
            if first == second:
                raise ValueError(f"two-way clustering needs two different levels (got [{first}, {second}])")
            bad = [level for level in self.cluster if level not in TWO_WAY_LEVELS]
            if bad:
                raise ValueError(
                    f"two-way clustering combines two of {', '.join(TWO_WAY_LEVELS)}; {bad} cannot be one of them"
                )
        return self

    @property
    def levels(self) -> tuple[str, ...]:
        """The cluster level(s) as a tuple (one entry, or two for two-way clustering)."""
        return self.cluster if isinstance(self.cluster, tuple) else (self.cluster,)


def move_cluster_shorthand(data: Any) -> Any:
    """Accept an analysis-level ``cluster:`` (and ``cluster_by_year: true``) as ``inference.cluster``.

    Raises ``ValueError`` (a config error at that key) when both ``cluster`` and ``inference.cluster`` are given.
    """
    if not isinstance(data, dict) or ("cluster" not in data and "cluster_by_year" not in data):
        return data
    data = dict(data)
    inference = data.get("inference")
    inference = dict(inference) if isinstance(inference, dict) else ({} if inference is None else inference)
    if not isinstance(inference, dict):
        return data  # pydantic reports the wrong type of inference:
    cluster = data.pop("cluster", None)
    by_year = data.pop("cluster_by_year", None)
    if cluster is not None and "cluster" in inference:
        raise ValueError("give the cluster level once: either 'cluster:' or 'inference.cluster:', not both")
    if cluster is not None:
        inference["cluster"] = cluster
    if by_year:
        level = inference.get("cluster", "design")
        if isinstance(level, (list, tuple)):
            raise ValueError("cluster_by_year: true cannot be combined with a two-way inference.cluster")
        inference["cluster"] = [level, "year"]
    elif by_year is not None and not isinstance(by_year, bool):
        raise ValueError(f"cluster_by_year must be true or false (got {by_year!r})")
    data["inference"] = inference
    return data
