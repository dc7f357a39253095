"""Cluster dimensions of the DiD methods, resolved for the data, and their inference records.

Each analysis's ``inference.cluster`` names one level or two (two-way clustering); ``design`` is the
trust when ``columns.trust`` is mapped (see :mod:`evaltool.estimators.inference`).  School-level
dimensions (school, trust, local authority) are resolved once per school from the whole panel with
:func:`~evaltool.estimators.inference.school_cluster_labels` (blank trust ids filled from the school's
other years, schools recorded in two trusts linking them), so a school's cluster does not depend on
which of its rows an analysis happens to use.  ``year`` is a dimension of its own (two-way only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from evaltool.errors import EstimationError
from evaltool.estimators.inference import (
    ClusterLabels,
    Inference,
    check_cluster_count,
    design_level,
    few_clusters_route,
    school_cluster_labels,
)

if TYPE_CHECKING:
    from evaltool.config.inference import InferenceOptions
    from evaltool.config.root import Config

KEY = "inference.cluster"
#: School-level dimensions the DiD methods can cluster by.
SCHOOL_LEVELS = ("school", "trust", "local_authority")


@dataclass(frozen=True)
class DidClusters:
    """Resolved cluster dimensions: one or two of school, trust, local authority and year.

    Attributes
    ----------
    levels
        Resolved levels (``design`` replaced), e.g. ``("trust",)`` or ``("trust", "year")``.
    labels
        Cluster labels per school of each school-level dimension.
    reason
        Why this clustering (the design default's reason, or "requested in the config").
    """

    levels: tuple[str, ...]
    labels: dict[str, ClusterLabels]
    reason: str

    @property
    def two_way(self) -> bool:
        return len(self.levels) == 2

    @property
    def name(self) -> str:
        """``"trust"``, ``"trust × year"`` …"""
        return " × ".join(level.replace("_", " ") for level in self.levels)

    @property
    def notes(self) -> tuple[str, ...]:
        """What resolving the labels involved (blanks filled, schools in two trusts, own clusters)."""
        return tuple(note for labels in self.labels.values() for note in labels.notes)

    def school_level(self) -> str:
        """The (first) school-level dimension: the one that nests the school effects."""
        return next(level for level in self.levels if level in self.labels)

    def row_codes(self, rows: pd.DataFrame) -> list[tuple[str, np.ndarray, int]]:
        """``(level, code of each row, number of clusters)`` per dimension, for rows with ``school`` and ``year``.

        Raises
        ------
        EstimationError
            A dimension has fewer than two clusters in these rows (no cluster-robust variance exists).
        """
        out = []
        for level in self.levels:
            if level == "year":
                codes, uniques = pd.factorize(rows["year"], sort=True)
                codes, n = codes.astype(np.int64), len(uniques)
            else:
                codes, n = self.labels[level].codes_for(rows["school"])
            check_cluster_count(n, level, key=KEY)
            out.append((level, codes, n))
        return out

    def record(self, n_clusters: int, correction: str, method: str, extra_notes: Sequence[str] = ()) -> Inference:
        """The :class:`Inference` of an estimate computed with these clusters."""
        return Inference(
            cluster=self.name,
            n_clusters=int(n_clusters),
            correction=correction,
            method=method,
            reason=self.reason,
            notes=(*self.notes, *extra_notes),
        )


def resolve_clusters(
    levels: str | Sequence[str], frame: pd.DataFrame, *, config: Config | None = None, two_way: bool = True
) -> DidClusters:
    """Resolve requested levels against the data.

    Parameters
    ----------
    levels
        One level or two (``design``, ``school``, ``trust``, ``local_authority``, ``year``; library use may
        name any school-level column of ``frame``).
    frame
        The school × year panel the labels are read from (the whole panel, not one analysis's years).
    config
        Resolves ``design`` (the trust when ``columns.trust`` is mapped); without it, ``design`` is the
        trust when ``frame`` has trust ids.
    two_way
        Whether the method supports two dimensions.

    Raises
    ------
    EstimationError
        A level the DiD methods cannot use, two levels when only one is supported, or two levels that
        resolve to the same one.
    DataError
        The level's column is missing, or a local authority varies within a school.
    """
    requested = (levels,) if isinstance(levels, str) else tuple(levels)
    if len(requested) == 2 and not two_way:
        raise EstimationError(f"{KEY}: this method supports one cluster level, got {list(requested)}; choose one.",
                              user_error=True)
    has_trust = None if config is not None else bool("trust" in frame.columns and frame["trust"].notna().any())
    resolved: list[str] = []
    reasons: list[str] = []
    for level in requested:
        if level == "matched_set":
            raise EstimationError(f"{KEY}: matched_set is a level of method psm only; choose design, school, trust "
                                  "or local_authority.", user_error=True)
        level_, reason = design_level(level, config, has_trust=has_trust)
        resolved.append(level_)
        reasons.append(reason)
    if len(resolved) == 2 and resolved[0] == resolved[1]:
        raise EstimationError(f"{KEY}: {list(requested)} both mean '{resolved[0]}'; two-way clustering needs two "
                              "different levels.", user_error=True)
    if resolved.count("year") == len(resolved):
        raise EstimationError(f"{KEY}: year can only be the second dimension of a two-way clustering (e.g. "
                              "[design, year]); schools are correlated over years.", user_error=True)
    labels = {level: school_cluster_labels(frame, level, key=KEY) for level in resolved if level != "year"}
    reason = next((r for r, lv in zip(reasons, requested, strict=True) if lv == "design"), reasons[0])
    return DidClusters(levels=tuple(resolved), labels=labels, reason=reason)


def regression_route(
    options: InferenceOptions, clusters: DidClusters, n_clusters: int, level: str
) -> tuple[str, list[str]]:
    """``"cluster-robust"`` or ``"wild_bootstrap"`` for a regression method, and the warnings to report.

    ``n_clusters`` and ``level``: the (smaller) dimension's number of clusters and its level.

    The wild cluster bootstrap is implemented for one-way clustering only; asking for it under two-way
    clustering is an error (never a silent change).
    """
    if clusters.two_way:
        if options.few_clusters == "wild_bootstrap":
            raise EstimationError(
                f"inference.few_clusters: the wild cluster bootstrap is implemented for one-way clustering, but "
                f"inference.cluster is two-way ({clusters.name}). Cluster by one level, or set few_clusters: auto "
                "or none (cluster-robust SEs with a warning when clusters are few).",
                user_error=True,
            )
        return few_clusters_route(options, n_clusters, (), level=level)
    return few_clusters_route(options, n_clusters, ("wild_bootstrap",), level=level)


def label_warnings(clusters: DidClusters) -> list[str]:
    """Warnings for what resolving the cluster labels changed (blanks filled, trusts linked)."""
    out = []
    for level, labels in clusters.labels.items():
        name = level.replace("_", " ")
        if labels.filled_rows:
            out.append(
                f"Clustering by {name}: {labels.filled_rows} school-years with a blank {name} took the school's "
                f"{name} from its other years ({labels.filled_schools} schools), so those schools are clustered "
                f"with their {name} in every year."
            )
        if labels.n_schools_changed:
            out.append(
                f"Clustering by {name}: {labels.n_schools_changed} schools are recorded in more than one {name} "
                f"(e.g. {', '.join(labels.examples_changed[:3])}); each links its {name}s into one cluster."
            )
    return out


def df_for(correction: str, n_clusters: int) -> int | None:
    """Degrees of freedom of the reference t distribution: G − 1 under CR1, none (normal) otherwise."""
    return n_clusters - 1 if correction == "CR1" else None
