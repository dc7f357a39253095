"""Sums of columns within clusters (the building block of every cluster-robust covariance of the engines)."""

from __future__ import annotations

import numpy as np


def cluster_sum(columns: np.ndarray, clusters: np.ndarray, n_clusters: int) -> np.ndarray:
    """Column sums of ``columns`` within each cluster (sorted-array reduction, no loop over rows)."""
    columns = np.asarray(columns, dtype=float)
    if columns.ndim == 1:
        columns = columns[:, None]
    if schools_are_clusters(clusters, n_clusters):
        return columns
    order = np.argsort(clusters, kind="stable")
    starts = np.searchsorted(clusters[order], np.arange(n_clusters))
    return np.add.reduceat(columns[order], starts, axis=0)


def schools_are_clusters(clusters: np.ndarray, n_clusters: int) -> bool:
    """Whether every unit is its own cluster, coded in row order (cluster sums are then the rows themselves)."""
    return n_clusters == len(clusters) and np.array_equal(clusters, np.arange(len(clusters)))
