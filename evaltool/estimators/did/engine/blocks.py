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
differences in level between schools never enter, so nothing cancels when the bootstrap adds thousands of
rows per draw (:mod:`._multiplier`).
Written by hand: no library exposes the Callaway–Sant'Anna influence functions in this factored form.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numba import njit

from evaltool.estimators.did.engine._multiplier import GROUP
from evaltool.estimators.did.engine.sums import cluster_sum


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
    storage, offsets
        When set, the designs are views of ``storage`` starting at ``offsets`` (multiples of eight), with zero
        rows in between and zero columns after: the padded layout of the compiled bootstrap, shared instead
        of copied.
    """

    cohorts: np.ndarray
    rows: tuple[np.ndarray, ...]
    design: tuple[np.ndarray, ...]
    coef: np.ndarray
    n_units: int
    storage: np.ndarray | None = None
    offsets: np.ndarray | None = None

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
    def grams(self) -> np.ndarray:
        """``G_b = Σ_{i∈b} [ΔỸ_i, 1]'[ΔỸ_i, 1]`` per block, shape ``(blocks, years, years)``."""
        return np.stack([design.T @ design for design in self.design])

    def cross(self, columns: np.ndarray | slice = slice(None), blocks: np.ndarray | None = None) -> np.ndarray:
        """``Σ_b Σ_{i∈b} ψ_i'ψ_i = Σ_b C_b' G_b C_b`` over the ``columns`` given, summed over ``blocks`` (a mask;
        default all)."""
        coef = self.coef[:, :, columns]
        chosen = range(len(coef)) if blocks is None else np.flatnonzero(blocks)
        out = np.zeros((coef.shape[2], coef.shape[2]))
        for b in chosen:  # one small product per block (a dozen)
            out += coef[b].T @ (self.grams[b] @ coef[b])
        return out

    def square_sums(self, columns: np.ndarray | slice = slice(None)) -> np.ndarray:
        """``Σ_{i∈b} ψ_ik²`` per block and column, shape ``(blocks, columns)``: the diagonals of ``C_b' G_b C_b``."""
        coef = self.coef[:, :, columns]
        return np.einsum("bvk,bvk->bk", coef, self.grams @ coef)

    def cluster_parts(self, clusters: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per block: the clusters holding its schools and the sums of ``[ΔỸ, 1]`` over them, ``(members, Z_b)``."""
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
    cohort_index: tuple[np.ndarray, np.ndarray],
    cells: CellPlan,
    cohorts: np.ndarray,
    shares: np.ndarray,
) -> tuple[CohortBlocks, np.ndarray, np.ndarray, np.ndarray]:
    r"""Group-time ATTs without covariates on a fully observed panel, with their influence in block form.

    Parameters
    ----------
    y
        Outcomes, schools × years, no missing values.
    cohort_index
        Sorted cohorts (``inf`` = never joined) and the code of each school's cohort among them.
    cells
        The cells: cohort, year and base-year columns, and comparison blocks.
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
    block_cohorts, code = cohort_index
    # Schools in block order (stable; numpy radix-sorts 16-bit codes, and there are a few dozen cohorts at most).
    order = np.argsort(code.astype(np.int16 if len(block_cohorts) < 2**15 else np.int64), kind="stable")
    bounds = np.searchsorted(code[order], np.arange(len(block_cohorts) + 1))
    size = np.diff(bounds)
    # [ΔỸ, 1] of every school, block after block, each block starting at a multiple of eight rows, with zero
    # rows between and zero columns after: the layout the compiled bootstrap reads (:mod:`._multiplier`),
    # built once, in one compiled pass over the outcomes.
    start = np.concatenate([[0], np.cumsum(size + (-size) % GROUP)])
    storage = np.zeros((int(start[-1]), -(-n_years // 8) * 8))  # columns padded to a multiple of eight
    means = np.zeros((len(block_cohorts), n_years))
    _fill_changes(np.ascontiguousarray(y, dtype=np.float64), order, bounds, start, storage, means)
    designs = [storage[start[b] : start[b] + size[b], :n_years] for b in range(len(block_cohorts))]

    k = np.arange(len(cells.jt))
    treated = np.searchsorted(block_cohorts, cells.cohort)
    n1 = size[treated]
    n0 = cells.control.astype(np.int64) @ size
    change = means[:, cells.jt] - means[:, cells.jb]  # blocks × cells
    m1 = change[treated, k]
    with np.errstate(invalid="ignore", divide="ignore"):
        m0 = (cells.control * change.T) @ size / n0
    same = cells.jt == cells.jb
    ok = ~same & (n1 > 0) & (n0 > 0)
    att = np.where(same, 0.0, np.where(ok, m1 - m0, np.nan))

    coef = np.zeros((len(block_cohorts), n_years + 1, len(k) + len(cohorts)))
    kt = k[ok]
    coef[treated[kt], cells.jt[kt], kt] = n / n1[kt]
    coef[treated[kt], cells.jb[kt], kt] = -n / n1[kt]
    kc, bc = np.nonzero(cells.control & ok[:, None])  # (cell, comparison block) pairs
    coef[bc, cells.jt[kc], kc] = -n / n0[kc]
    coef[bc, cells.jb[kc], kc] = n / n0[kc]
    coef[bc, n_years, kc] = -(n / n0[kc]) * (change[bc, kc] - m0[kc])
    # Cohort-share columns: 1{G_i = g} − p_g, constant within a block.
    coef[:, n_years, len(k) :] = (block_cohorts[:, None] == cohorts[None, :]) - shares[None, :]
    rows = tuple(order[lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:], strict=True))
    blocks = CohortBlocks(
        cohorts=block_cohorts, rows=rows, design=tuple(designs), coef=levels_to_changes(coef), n_units=n,
        storage=storage, offsets=start[:-1],
    )
    return blocks, att, n1, n0


@njit(cache=True, nogil=True)
def _fill_changes(
    y: np.ndarray, order: np.ndarray, bounds: np.ndarray, start: np.ndarray, storage: np.ndarray, means: np.ndarray
) -> None:
    """Block means of the outcomes (into ``means``) and every school's ``[ΔỸ, 1]`` (into ``storage``).

    School ``order[bounds[b] + r]`` is row ``r`` of block ``b``, written at row ``start[b] + r`` of ``storage``.
    Written by hand (numba): with numpy this is a gather, a mean, a difference and a centring per block,
    each a pass over a fresh copy of the block's outcomes.
    """
    n_years = y.shape[1]
    for b in range(len(bounds) - 1):
        size = bounds[b + 1] - bounds[b]
        if size == 0:
            continue
        for r in range(bounds[b], bounds[b + 1]):
            for j in range(n_years):
                means[b, j] += y[order[r], j]
        for j in range(n_years):
            means[b, j] /= size
        for r in range(size):
            i = order[bounds[b] + r]
            row = start[b] + r
            for j in range(n_years - 1):
                storage[row, j] = (y[i, j + 1] - y[i, j]) - (means[b, j + 1] - means[b, j])
            storage[row, n_years - 1] = 1.0


@dataclass(frozen=True)
class CellPlan:
    """The group-time cells to estimate, one entry per cell.

    Attributes
    ----------
    cohort
        Joining cohort ``g``.
    jt, jb
        Column (year index) of the cell's year and of its base year.
    control
        Comparison blocks of each cell, shape ``(cells, blocks)`` over the sorted unique cohorts.
    """

    cohort: np.ndarray
    jt: np.ndarray
    jb: np.ndarray
    control: np.ndarray


def levels_to_changes(coef: np.ndarray) -> np.ndarray:
    """Coefficients on ``[Ỹ_1 … Ỹ_T, 1]`` → on ``[ΔỸ_2 … ΔỸ_T, 1]``, for year rows that sum to zero.

    ``Σ_m c_m Y_m = Σ_j ΔY_j Σ_{m≥j} c_m`` when ``Σ_m c_m = 0`` (each cell is ``Y_t − Y_base``, times a scale).
    """
    years = coef[:, :-1]
    tail = np.cumsum(years[:, ::-1], axis=1)[:, ::-1]  # Σ_{m≥j} c_m; its first row is the (zero) total
    return np.concatenate([tail[:, 1:], coef[:, -1:]], axis=1)
