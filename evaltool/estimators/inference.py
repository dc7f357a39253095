"""Cluster levels resolved from the data, and the inference record every estimate carries.

An analysis's ``inference:`` options (:class:`evaltool.config.inference.InferenceOptions`)
say how its standard errors should be computed; this module turns them into
cluster codes for the analysis sample and into an :class:`Inference` record
that is written on every results row (``cluster``, ``n_clusters``,
``se_correction``, ``se_method`` and the sentence in ``inference``).  A
request that cannot be honoured raises; it is never silently changed.

Cluster labels of a school
--------------------------
* ``school``: each school is its own cluster.
* ``trust``: the school's trust.  A school whose trust is blank in some years
  (typically before it joined) takes the trust recorded in its other years
  (counted in ``filled_rows``).  A school recorded in more than one trust
  links those trusts into one cluster (the coarsest partition in which every
  trust and every school lies in one cluster: connected components of the
  school–trust graph), because its errors are correlated with both; counted
  in ``n_schools_changed``.  Schools never in a trust are their own cluster.
* ``local_authority``: must be constant within a school (an error otherwise).
* ``design``: ``trust`` when ``columns.trust`` is mapped (joining is shared
  by a trust's schools), otherwise ``school`` with a warning saying so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from evaltool.errors import DataError, EstimationError

if TYPE_CHECKING:
    from evaltool.config.inference import InferenceOptions
    from evaltool.config.root import Config

#: Why ``cluster: design`` means the trust (shown in the report and docs).
DESIGN_REASON = (
    "joining is decided for all schools of a trust together, so their outcomes share shocks; the trust is the "
    "cluster, and each school outside a trust is its own cluster"
)
NO_TRUST_REASON = (
    "columns.trust is not mapped, so the level at which joining is shared is unknown; clustered by school, which "
    "understates the uncertainty if schools of one trust share shocks. Map columns.trust"
)

CORRECTIONS = {
    "CR1": "CR1: G/(G-1)·(N-1)/(N-K), t(G-1)",
    "none": "none: normal intervals",
}


@dataclass(frozen=True)
class Inference:
    """How one estimate's uncertainty was computed (written on its results row).

    Attributes
    ----------
    cluster
        Cluster level(s) used, e.g. ``"trust"``, ``"trust × year"``, ``"school"``, ``"matched set"``; ``""``
        when the method does not cluster (then ``method`` says what it does).
    n_clusters
        Number of clusters (the smaller dimension under two-way clustering).
    correction
        Small-sample correction and reference distribution, e.g. ``"CR1: G/(G-1)·(N-1)/(N-K), t(G-1)"``.
    method
        ``"cluster-robust"``, ``"wild cluster bootstrap (WCR, Webb, 9999 draws)"``, ``"multiplier bootstrap"``,
        ``"randomisation inference"``, ``"model-based"`` …
    reason
        Why this level (the design default's reason, or "requested").
    notes
        Counts a reader should know (blank trust ids filled, schools in two trusts …).
    """

    cluster: str
    n_clusters: int | None
    correction: str
    method: str
    reason: str = ""
    notes: tuple[str, ...] = ()

    def sentence(self) -> str:
        """One line for the ``inference`` column and the report."""
        if self.cluster:
            clusters = f" ({self.n_clusters} clusters)" if self.n_clusters is not None else ""
            head = f"{self.method} by {self.cluster}{clusters}"
        else:
            head = self.method
        return f"{head}; correction {self.correction}" if self.correction else head

    def row_fields(self) -> dict[str, Any]:
        """The fields of :class:`~evaltool.results.EffectEstimate` this record fills."""
        return {
            "inference": self.sentence(),
            "cluster": self.cluster,
            "n_clusters": self.n_clusters,
            "se_correction": self.correction,
            "se_method": self.method,
        }

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "notes": list(self.notes), "sentence": self.sentence()}


@dataclass(frozen=True)
class ClusterLabels:
    """One cluster label per school, with what had to be resolved to get them.

    ``labels`` is indexed by school id (strings); schools with no value at the
    level have a label of their own (``"school:<id>"``).
    """

    level: str
    labels: pd.Series
    filled_rows: int = 0
    filled_schools: int = 0
    n_schools_changed: int = 0
    n_own_cluster: int = 0
    examples_changed: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def codes_for(self, schools: pd.Series | np.ndarray) -> tuple[np.ndarray, int]:
        """Integer cluster codes (0..G-1, sorted labels) for a sequence of school ids, and G."""
        keys = pd.Series(np.asarray(schools)).astype(str)
        mapped = keys.map(self.labels)
        if mapped.isna().any():
            missing = keys[mapped.isna()].unique()[:3].tolist()
            raise EstimationError(f"internal: no cluster label for school(s) {missing} at level {self.level}")
        codes, uniques = pd.factorize(mapped, sort=True)
        return codes.astype(np.int64), len(uniques)


def design_level(requested: str, config: Config | None, *, has_trust: bool | None = None) -> tuple[str, str]:
    """The cluster level a request stands for, and the reason.

    ``design`` is ``trust`` when the trust column is mapped, else ``school``;
    any other level is returned as requested.
    """
    if requested != "design":
        return requested, "requested in the config"
    if has_trust is None:
        has_trust = config is not None and config.columns.trust is not None
    return ("trust", DESIGN_REASON) if has_trust else ("school", NO_TRUST_REASON)


def school_cluster_labels(frame: pd.DataFrame, level: str, *, key: str = "inference.cluster") -> ClusterLabels:
    """Resolve one cluster label per school from a school × year frame with canonical columns.

    Parameters
    ----------
    frame
        Rows with ``school`` and, unless ``level`` is ``school``, the ``level`` column.
    level
        ``"school"``, ``"trust"`` or ``"local_authority"``.
    key
        Config key named in messages.

    Raises
    ------
    DataError
        The level's column is missing, or a local authority varies within a school.
    """
    school = frame["school"].astype(str)
    schools = pd.Index(school.unique()).sort_values()
    if level == "school":
        return ClusterLabels(level=level, labels=pd.Series(schools, index=schools))
    if level not in frame.columns:
        raise DataError(
            f"{key}: clustering by {level.replace('_', ' ')} needs columns.{level}; map that column in the config "
            "or choose another cluster level."
        )
    value = frame[level].astype("string").str.strip()
    value = value.mask(value.eq(""), pd.NA)
    has = value.notna().to_numpy()
    pairs = pd.DataFrame({"school": school.to_numpy()[has], "value": value.to_numpy()[has]}).drop_duplicates()
    per_school = pairs.groupby("school")["value"].nunique()
    changed = per_school.index[per_school > 1]
    if level == "local_authority" and len(changed):
        raise DataError(
            f"{key}: the local authority differs between years of {len(changed)} school(s) (e.g. "
            f"{', '.join(map(str, changed[:3]))}); it must be constant within a school to cluster by it. Correct "
            "columns.local_authority or cluster by trust or school."
        )
    labelled = pd.Index(pairs["school"].unique())
    filled_mask = ~has & school.isin(labelled).to_numpy()
    labels = _linked_labels(pairs, schools)
    own = int((~schools.isin(labelled)).sum())
    notes = []
    if filled_mask.any():
        notes.append(
            f"{int(filled_mask.sum())} school-years with a blank {level.replace('_', ' ')} took the school's "
            f"{level.replace('_', ' ')} from its other years ({school[filled_mask].nunique()} schools)"
        )
    if len(changed):
        notes.append(
            f"{len(changed)} schools were recorded in more than one trust; each such school links its trusts into "
            "one cluster"
        )
    if own:
        notes.append(f"each school without a {level.replace('_', ' ')} is its own cluster ({own} such schools in the "
                     "data; the analysed sample's count of clusters is on each estimate)")
    return ClusterLabels(
        level=level,
        labels=labels,
        filled_rows=int(filled_mask.sum()),
        filled_schools=int(school[filled_mask].nunique()),
        n_schools_changed=len(changed),
        n_own_cluster=own,
        examples_changed=tuple(map(str, changed[:5])),
        notes=tuple(notes),
    )


def _linked_labels(pairs: pd.DataFrame, schools: pd.Index) -> pd.Series:
    """Label of each school: its (linked) group of values, or its own id when it has none.

    Connected components of the bipartite school–value graph, so that a school
    seen with two values joins them.  (scipy's graph routine: no Python loop
    over schools.)
    """
    school_code = schools.get_indexer(pairs["school"])
    value_code, values = pd.factorize(pairs["value"], sort=True)
    n_s, n_v = len(schools), len(values)
    graph = coo_matrix(
        (np.ones(len(pairs)), (school_code, n_s + value_code)), shape=(n_s + n_v, n_s + n_v)
    )
    _, component = connected_components(graph, directed=False)
    has_value = np.zeros(n_s, dtype=bool)
    has_value[school_code] = True
    # Name a component by its smallest value, so labels read as trust ids.
    first_value = pd.Series(np.asarray(values)[value_code]).groupby(component[n_s + value_code]).min()
    comp = component[:n_s]
    label = np.where(has_value, pd.Series(comp).map(first_value).to_numpy(dtype=object), "school:" + schools.astype(str))
    return pd.Series(label, index=schools)


def check_cluster_count(n_clusters: int, level: str, *, key: str = "inference.cluster") -> None:
    """Fail when fewer than two clusters: no cluster-robust variance exists."""
    if n_clusters < 2:
        raise EstimationError(
            f"{key}: the analysis sample has {n_clusters} {level.replace('_', ' ')} cluster; cluster-robust "
            "standard errors need at least 2 (in practice 30 or more). Cluster at a finer level (e.g. "
            "inference.cluster: school) or widen the sample.",
            user_error=True,
        )


def few_clusters_route(
    options: InferenceOptions, n_clusters: int, available: Sequence[str], *, level: str = ""
) -> tuple[str, list[str]]:
    """Which variance method to use given the number of clusters, and warnings to report.

    Parameters
    ----------
    options
        The analysis's inference options.
    n_clusters
        Clusters in the sample (the smaller dimension for two-way clustering).
    available
        The few-cluster methods this estimator implements (``"wild_bootstrap"``, ``"randomisation"``).
    level
        Cluster level named in the warning (e.g. ``"local_authority"``; the smaller dimension of a two-way).

    Returns
    -------
    ``"cluster-robust"`` or one of ``available``, and warnings.

    Raises
    ------
    EstimationError
        A few-cluster method was asked for that this estimator does not have.
    """
    few = n_clusters < options.few_clusters_below
    warnings: list[str] = []
    choice = options.few_clusters
    if choice in ("wild_bootstrap", "randomisation"):
        if choice not in available:
            have = ", ".join(f"'{a}'" for a in available) or "none"
            raise EstimationError(
                f"inference.few_clusters: '{choice}' is not available for this method (available: {have}); "
                "choose one of those, 'auto' or 'none'.",
                user_error=True,
            )
        if not few:
            warnings.append(
                f"inference.few_clusters: {choice.replace('_', ' ')} was requested with {n_clusters} clusters "
                f"(at least {options.few_clusters_below}); it is used, although cluster-robust standard errors "
                "would be reliable here."
            )
        return choice, warnings
    if choice == "auto" and few and available:
        return available[0], warnings
    if few:
        warnings.append(
            f"Only {n_clusters} {level.replace('_', ' ') + ' ' if level else ''}clusters: cluster-robust standard errors are unreliable below about "
            f"{options.few_clusters_below} clusters (typically too small, so intervals are too narrow)"
            + (". Set inference.few_clusters: auto to use a few-cluster method." if available else
               "; this method has no few-cluster alternative, so read its intervals as too narrow.")
        )
    return "cluster-robust", warnings


def inference_problems(
    config: Config, spec: Any, *, levels: Sequence[str], few_clusters: Sequence[str] = (), two_way: bool = False
) -> list[tuple[tuple, str]]:
    """Config checks of an analysis's ``inference:`` block (for an options model's ``cross_check``).

    Parameters
    ----------
    levels
        Cluster levels the method supports (``design`` is always allowed).
    few_clusters
        Few-cluster methods the method implements.
    two_way
        Whether the method supports two-way clustering.
    """
    options: InferenceOptions = spec.inference
    problems: list[tuple[tuple, str]] = []
    requested = options.levels
    if len(requested) == 2 and not two_way:
        problems.append(
            (("inference", "cluster"), f"{spec.method} does not support two-way clustering; choose one level of "
             f"{', '.join(['design', *levels])}")
        )
    for level in requested:
        if level != "design" and level not in levels and not (two_way and level == "year"):
            problems.append(
                (("inference", "cluster"), f"{spec.method} cannot cluster by '{level}'; choose one of "
                 f"{', '.join(['design', *levels])}")
            )
        if level in ("trust", "local_authority") and getattr(config.columns, level) is None:
            problems.append(
                (("inference", "cluster"), f"clustering by {level} needs columns.{level}; map that column or use "
                 "cluster: school")
            )
    if options.few_clusters in ("wild_bootstrap", "randomisation") and options.few_clusters not in few_clusters:
        have = ", ".join(f"'{a}'" for a in few_clusters) or "none"
        problems.append(
            (("inference", "few_clusters"), f"'{options.few_clusters}' is not available for {spec.method} "
             f"(available: {have}); use 'auto' or 'none'")
        )
    return problems


def requested_levels(spec: Any, frame: pd.DataFrame) -> tuple[str, bool, str]:
    """The one-way level an analysis asks for (``design`` resolved), whether it adds year, and the reason.

    For methods whose only two-way option is ``[level, year]``; ``design`` is the trust when ``frame`` has
    a ``trust`` column with any value (columns.trust mapped), else the school.
    """
    levels = spec.inference.levels
    by_year = "year" in levels and len(levels) == 2
    level = next((lv for lv in levels if lv != "year"), "school") if by_year else levels[0]
    has_trust = "trust" in frame.columns and bool(frame["trust"].notna().any())
    resolved, reason = design_level(level, None, has_trust=has_trust)
    return resolved, by_year, reason


def linked_clusters(*labels: np.ndarray | pd.Series) -> tuple[np.ndarray, int]:
    """Cluster codes of the coarsest partition in which rows sharing any label are in one cluster.

    Each argument gives one label per row (missing: ``None``/NaN, or a negative integer); two rows are
    linked when they share a value of any of them, and clusters are the connected components (scipy's
    graph routine, no Python loop over rows).  E.g. matched units linked by matched set, by school (a
    comparison school used in several cohorts) and by trust.

    Returns
    -------
    codes (0..G−1, in order of first appearance of the sorted components), G
    """
    n = len(labels[0])
    rows, cols, offset = [], [], n
    for values in labels:
        series = pd.Series(np.asarray(values, dtype=object))
        valid = series.notna().to_numpy(copy=True)
        if pd.api.types.is_integer_dtype(np.asarray(values).dtype):
            valid = valid & (np.asarray(values) >= 0)
        codes, uniques = pd.factorize(series[valid], sort=True)
        rows.append(np.flatnonzero(valid))
        cols.append(offset + codes)
        offset += len(uniques)
    r, c = np.concatenate(rows), np.concatenate(cols)
    graph = coo_matrix((np.ones(len(r)), (r, c)), shape=(offset, offset))
    _, component = connected_components(graph, directed=False)
    codes, uniques = pd.factorize(component[:n], sort=True)
    return codes.astype(np.int64), len(uniques)
