"""Rank checks before a solve: which columns of a design are collinear, named for the error message.

Every regression or logit solve in the estimators (a staggered-DiD cell's outcome regression or
propensity logit, the PSM / IPW propensity model) checks its design here first, so that a rank-deficient
design stops with a message naming the covariates instead of numpy's "Singular matrix".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Columns whose weight in a null vector of the (column-scaled) design exceeds this take part in a dependency.
INVOLVED = 1e-6


@dataclass(frozen=True)
class RankCheck:
    """The rank of a design and the columns in its linear dependencies.

    Attributes
    ----------
    rank, n_columns
        Numerical rank and number of columns.
    collinear
        Names of the columns that take part in a linear dependency (empty at full rank).
    constant
        Names among ``collinear`` that are constant (collinear with the intercept).
    """

    rank: int
    n_columns: int
    collinear: tuple[str, ...]
    constant: tuple[str, ...]

    @property
    def full(self) -> bool:
        return self.rank == self.n_columns

    def describe(self, intercept: str = "(Intercept)") -> str:
        """Plain-language list of the offending covariates, e.g. ``"ks2 (constant); fsm, fsm_pct (collinear)"``."""
        constant = [c for c in self.constant if c != intercept]
        others = [c for c in self.collinear if c != intercept and c not in constant]
        parts = []
        if constant:
            parts.append(f"{', '.join(constant)} (constant)")
        if others:
            parts.append(f"{', '.join(others)} (collinear)")
        return "; ".join(parts) or "the intercept and the covariates together"


def check_rank(design: np.ndarray, names: Sequence[str]) -> RankCheck:
    """Numerical rank of ``design`` and the names of the columns in its null space.

    Notes
    -----
    Columns are scaled to unit length first, so the rank does not depend on units (pupils' scores in
    points or in SDs).  The threshold is numpy's ``matrix_rank`` default on the scaled matrix,
    :math:`\\sigma_{max} \\max(n, k) \\varepsilon`.  The columns involved are those with weight above
    :data:`INVOLVED` in a right singular vector of a singular value at or below the threshold.
    """
    design = np.asarray(design, dtype=float)
    n, k = design.shape
    names = [str(name) for name in names]
    if n == 0:
        return RankCheck(0, k, tuple(names), ())
    norms = np.linalg.norm(design, axis=0)
    scaled = design / np.where(norms > 0, norms, 1.0)
    _, s, vt = np.linalg.svd(scaled, full_matrices=n < k)
    tol = (s.max() if s.size else 0.0) * max(n, k) * np.finfo(float).eps
    rank = int((s > tol).sum())
    if rank == k:
        return RankCheck(rank, k, (), ())
    null = vt[rank:]
    involved = np.flatnonzero((np.abs(null) > INVOLVED).any(axis=0) | (norms == 0))
    spread = np.ptp(design, axis=0) if n else np.zeros(k)
    constant = tuple(names[j] for j in involved if spread[j] == 0)
    return RankCheck(rank, k, tuple(names[j] for j in involved), constant)
