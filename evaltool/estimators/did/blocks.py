"""Influence functions of the unconditional group-time ATTs in cohort-block form.

Without covariates, and with every school observed in every year, the influence function of every
ATT(g, t) and of every cohort share is linear in a school's outcomes within its cohort block: for a
school ``i`` of block ``b`` (the schools of one cohort, or the never-joined schools),

.. math:: \\psi_i = [\\Delta\\tilde Y_i, 1]\\, C_b,

with :math:`\\Delta\\tilde Y_i` the school's year-on-year changes in outcome minus its block's mean changes
and :math:`C_b` a small years × columns matrix (every cell compares two years, so only changes enter).
Everything the estimator needs from the influence functions then follows from sums of
:math:`[\\Delta\\tilde Y, 1]` over schools, years wide instead of cells wide:

- the clustered covariance :math:`\\sum_c S_c^\\top S_c = \\sum_b C_b^\\top G_b C_b` when schools are the
  clusters (:math:`G_b` the block's Gram matrix), or the cluster sums :math:`S = \\sum_b Z_b C_b` otherwise;
- each bootstrap draw :math:`\\sum_i v_i \\psi_i = \\sum_b (\\sum_i v_i [\\tilde Y_i, 1])\\, C_b`.

Working with centred changes rather than levels keeps the sums well conditioned: the large, persistent
differences in level between schools never enter, so nothing cancels (the bootstrap forms its products in
single precision, :mod:`.bootstrap`).
Written by hand: no library exposes the Callaway–Sant'Anna influence functions in this factored form.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class CohortBlocks:
    """Influence functions ``ψ_i = design_i · coef[b]`` for the schools ``rows[b]`` of each cohort block ``b``.

    Attributes
    ----------
    cohorts
        Cohort of each block (sorted; ``inf`` = never joined), every cohort present in the arrays.
    rows
        Row indices (into the panel arrays) of each block's schools.
    design
        ``[ΔỸ, 1]`` of each block's schools: year-on-year changes centred on the block's mean changes, then ones.
    coef
        Shape ``(blocks, years, columns)``: rows for the ``years − 1`` changes, then the ones.
    n_units
        Number of schools (rows of the dense influence matrix).
    """

    cohorts: np.ndarray
    rows: tuple[np.ndarray, ...]
    design: tuple[np.ndarray, ...]
    coef: np.ndarray
    n_units: int

    @property
    def n_columns(self) -> int:
        return int(self.coef.shape[2])

    def dense(self) -> np.ndarray:
        """The influence matrix, shape ``(n_units, columns)`` (for checks and the general code paths)."""
        out = np.zeros((self.n_units, self.n_columns))
        for rows, design, coef in zip(self.rows, self.design, self.coef, strict=True):
            out[rows] = design @ coef
        return out

    @cached_property
    def block_cross(self) -> np.ndarray:
        """``Σ_{i∈b} ψ_i'ψ_i = C_b' G_b C_b`` per block, shape ``(blocks, columns, columns)``."""
        return np.stack([coef.T @ (design.T @ design) @ coef for design, coef in zip(self.design, self.coef, strict=True)])

    def cluster_parts(self, clusters: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per block: the clusters holding its schools and the sums of ``[ΔỸ, 1]`` over them, ``(members, Z_b)``."""
        from evaltool.estimators.did.staggered import cluster_sum

        parts = []
        for rows, design in zip(self.rows, self.design, strict=True):
            members, inverse = np.unique(clusters[rows], return_inverse=True)
            parts.append((members, cluster_sum(design, inverse, len(members))))
        return parts

    def cluster_sums(self, clusters: np.ndarray, n_clusters: int) -> np.ndarray:
        """Influence sums within clusters, shape ``(n_clusters, columns)``."""
        out = np.zeros((n_clusters, self.n_columns))
        for (members, sums), coef in zip(self.cluster_parts(clusters), self.coef, strict=True):
            out[members] += sums @ coef
        return out


def unconditional_blocks(
    y: np.ndarray,
    cohort: np.ndarray,
    cells: list[tuple[float, int, int, np.ndarray]],
    cohorts: np.ndarray,
    shares: np.ndarray,
) -> tuple[CohortBlocks, np.ndarray, np.ndarray, np.ndarray]:
    r"""Group-time ATTs without covariates on a fully observed panel, with their influence in block form.

    Parameters
    ----------
    y
        Outcomes, schools × years, no missing values.
    cohort
        Cohort of each school (``inf`` = never joined).
    cells
        Per cell: ``(g, year column, base column, comparison blocks)`` with the comparison blocks a boolean
        vector over the sorted unique cohorts of ``cohort``.
    cohorts, shares
        Cohorts with a share column in the basis and their shares of all schools.

    Returns
    -------
    blocks, att, n_treated, n_control
        ``att`` is NaN for a cell without joining or comparison schools and 0 for a cell whose year is its
        base year (as the dense engine).

    Notes
    -----
    For cell :math:`k` of cohort :math:`g` with comparison blocks :math:`\mathcal C_k`, the ATT is the mean
    change of block :math:`g` minus the school-weighted mean change of the comparison blocks,
    :math:`m_{1k} - m_{0k}`; the influence function (scaled by :math:`n/n_{gt}`, as the dense engine) is
    :math:`(n/n_1)(\Delta Y_i - m_{1k})` for the joining schools and :math:`-(n/n_0)(\Delta Y_i - m_{0k})` for
    the comparison schools, which is :math:`[\tilde Y_i, 1]` times a column with :math:`\pm n/n_\cdot` in
    the year and base rows and :math:`-(n/n_0)(\Delta\bar Y_b - m_{0k})` in the ones row, then written on
    year-on-year changes (:func:`levels_to_changes`).
    """
    n, n_years = y.shape
    block_cohorts, code = np.unique(cohort, return_inverse=True)
    order = np.argsort(code, kind="stable")
    bounds = np.searchsorted(code[order], np.arange(len(block_cohorts) + 1))
    rows = tuple(order[bounds[b] : bounds[b + 1]] for b in range(len(block_cohorts)))
    size = np.diff(bounds).astype(float)
    means = np.stack([y[r].mean(axis=0) for r in rows])  # blocks × years
    design = tuple(np.column_stack([np.diff(y[r] - means[b], axis=1), np.ones(len(r))]) for b, r in enumerate(rows))

    n_cells = len(cells)
    coef = np.zeros((len(block_cohorts), n_years + 1, n_cells + len(cohorts)))
    att = np.full(n_cells, np.nan)
    n1 = np.zeros(n_cells, dtype=int)
    n0 = np.zeros(n_cells, dtype=int)
    for k, (g, jt, jb, control) in enumerate(cells):  # one small vector step per cell (cells, not schools)
        b1 = int(np.searchsorted(block_cohorts, g))
        n1[k], n0[k] = int(size[b1]), int(size[control].sum())
        if jt == jb:
            att[k] = 0.0
            continue
        if n1[k] == 0 or n0[k] == 0:
            continue
        change = means[:, jt] - means[:, jb]  # per block
        m1 = change[b1]
        m0 = float(size[control] @ change[control]) / n0[k]
        att[k] = m1 - m0
        coef[b1, jt, k], coef[b1, jb, k] = n / n1[k], -n / n1[k]
        coef[control, jt, k], coef[control, jb, k] = -n / n0[k], n / n0[k]
        coef[control, n_years, k] = -(n / n0[k]) * (change[control] - m0)
    # Cohort-share columns: 1{G_i = g} − p_g, constant within a block.
    coef[:, n_years, n_cells:] = (block_cohorts[:, None] == cohorts[None, :]) - shares[None, :]
    blocks = CohortBlocks(cohorts=block_cohorts, rows=rows, design=design, coef=levels_to_changes(coef), n_units=n)
    return blocks, att, n1, n0


def levels_to_changes(coef: np.ndarray) -> np.ndarray:
    """Coefficients on ``[Ỹ_1 … Ỹ_T, 1]`` → on ``[ΔỸ_2 … ΔỸ_T, 1]``, for year rows that sum to zero.

    ``Σ_m c_m Y_m = Σ_j ΔY_j Σ_{m≥j} c_m`` when ``Σ_m c_m = 0`` (each cell is ``Y_t − Y_base``, times a scale).
    """
    years = coef[:, :-1]
    tail = np.cumsum(years[:, ::-1], axis=1)[:, ::-1]  # Σ_{m≥j} c_m; its first row is the (zero) total
    return np.concatenate([tail[:, 1:], coef[:, -1:]], axis=1)
