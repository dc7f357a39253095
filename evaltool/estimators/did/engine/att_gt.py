"""Callaway & Sant'Anna (2021) group-time average treatment effects, ATT(g, t).

The library entry point is :func:`att_gt`; aggregate its result with
:func:`evaltool.estimators.did.engine.aggregate.aggregate` and bootstrap with
:mod:`evaltool.estimators.did.engine.bootstrap`.  The frame needs the canonical
columns ``school``, ``year`` and ``join_year`` (NaN = never joined), the
outcome and any covariates.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import numpy as np
import pandas as pd

from evaltool.errors import EstimationError
from evaltool.estimators.did.engine import twoperiod
from evaltool.estimators.did.engine.blocks import CellPlan, CohortBlocks, unconditional_blocks
from evaltool.estimators.did.engine.panel_arrays import NEVER, PanelArrays, balance, panel_arrays
from evaltool.estimators.did.engine.sums import cluster_sum, schools_are_clusters
from evaltool.estimators.inference import ClusterLabels
from evaltool.estimators.rank import check_rank
from evaltool.results import SampleReport

ControlGroup = Literal["never_joined", "not_yet_joined"]
EstMethod = Literal["dr", "ipw", "reg"]
BasePeriod = Literal["varying", "universal"]
Unbalanced = Literal["balance", "available_pairs"]
CovariateYear = Literal["before_base", "base"]


@dataclass(frozen=True)
class GroupTimeResult:
    """Group-time ATTs with their influence functions.

    Attributes
    ----------
    cells
        One row per (cohort, year): ``cohort``, ``year``, ``base_year``,
        ``event_time`` (year − cohort), ``post`` (year ≥ cohort), ``att``,
        ``std_error`` (analytic, clustered), ``n_treated``, ``n_control``.
    arrays
        The unit × period arrays used (after balancing, if any).
    cohort_share
        Share of all analysed schools in each cohort (``pg`` in R ``did``).
    options
        The estimation options, for the record.
    sample
        Exclusions made by the estimator.
    warnings
        Messages for the reader (dropped cohorts, few clusters …).
    dense_influence
        Influence functions of the cells as a schools × cells matrix (covariates, or schools missing years).
    blocks
        Otherwise (unconditional estimator, every school observed every year): the influence functions of
        the whole :attr:`basis` in cohort-block form (:class:`~evaltool.estimators.did.engine.blocks.CohortBlocks`),
        from which covariances and bootstrap draws come without forming the schools × cells matrix.

    Notes
    -----
    Influence functions are scaled so that the variance of a linear combination ``a`` of the ATTs is
    ``Σ_c (Σ_{i∈c} ψ_i a)² / n²`` (clusters ``c``).
    """

    cells: pd.DataFrame
    arrays: PanelArrays
    cohort_share: dict[float, float]
    options: dict
    sample: SampleReport = field(default_factory=SampleReport)
    warnings: list[str] = field(default_factory=list)
    dense_influence: np.ndarray | None = field(default=None, repr=False)
    blocks: CohortBlocks | None = field(default=None, repr=False)

    @property
    def n_units(self) -> int:
        return self.arrays.n_units

    @property
    def n_cells(self) -> int:
        return len(self.cells)

    @property
    def n_basis(self) -> int:
        """Number of :attr:`basis` columns: the cells, then one per cohort share."""
        return self.n_cells + len(self.cohort_share)

    @cached_property
    def influence(self) -> np.ndarray:
        """Influence functions of the cells, shape ``(n_units, n_cells)``."""
        if self.dense_influence is not None:
            return self.dense_influence
        return self.basis[:, : self.n_cells]

    @cached_property
    def cohort_matrix(self) -> np.ndarray:
        """Centred cohort indicators ``1{G_i = g} − p_g``, shape ``(n_units, n_cohorts)`` (cohorts as in ``cohort_share``)."""
        cohorts = np.array(list(self.cohort_share))
        shares = np.array(list(self.cohort_share.values()))
        return (self.arrays.cohort[:, None] == cohorts[None, :]).astype(float) - shares[None, :]

    @cached_property
    def basis(self) -> np.ndarray:
        """``[influence | cohort_matrix]``: every aggregation's influence function is a combination of these columns."""
        if self.blocks is not None:
            return self.blocks.dense()
        return np.column_stack([self.influence, self.cohort_matrix])

    @cached_property
    def schools_are_clusters(self) -> bool:
        """Whether every school is its own cluster (the default clustering)."""
        return schools_are_clusters(self.arrays.clusters, self.arrays.n_clusters)

    @cached_property
    def basis_cov(self) -> np.ndarray:
        """Analytic clustered covariance of the basis columns, ``Σ_c S_c'S_c / n²`` (``S_c``: cluster sums)."""
        if self.blocks is not None and self.schools_are_clusters:
            cross = self.blocks.cross()
        else:
            sums = self.cluster_sums()
            cross = sums.T @ sums
        return cross / self.n_units**2

    def combine(self, coef: np.ndarray) -> np.ndarray:
        """Point estimates of linear combinations ``coef`` (rows: basis columns) of the ATT(g, t)."""
        att = np.nan_to_num(self.cells["att"].to_numpy(), nan=0.0)
        return att @ coef[: len(att)]

    def std_errors(self, coef: np.ndarray) -> np.ndarray:
        """Analytic clustered standard errors of the combinations ``coef`` of the basis."""
        variance = (coef * (self.basis_cov @ coef)).sum(axis=0)
        return np.sqrt(np.maximum(variance, 0.0))

    def cluster_sums(self, columns: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Sums of basis columns within clusters, shape ``(n_clusters, k)``."""
        if self.blocks is not None:
            return self.blocks.cluster_sums(self.arrays.clusters, self.arrays.n_clusters)[:, columns]
        return cluster_sum(self.basis[:, columns], self.arrays.clusters, self.arrays.n_clusters)

    def vcov(self, cells: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Analytic (cluster-robust) covariance of the ATTs of ``cells`` (indices or a mask over cells)."""
        index = np.arange(self.n_cells)[cells]
        return self.basis_cov[np.ix_(index, index)]

    def cross_by_group(self, group: np.ndarray, n_groups: int, cells: np.ndarray) -> list[np.ndarray]:
        """``Σ_{c∈h} S_c'S_c / n²`` for each group ``h`` of clusters, over the ``cells`` given.

        ``group``: each cluster's group (``0 … n_groups − 1``; ``-1`` for none).
        """
        index = np.arange(self.n_cells)[cells]
        if self.blocks is not None and self.schools_are_clusters:
            # A school's cluster is the school: when every group is a union of whole cohort blocks, its cross
            # product is the sum of those blocks' (no schools × cells matrix needed).
            picks = _whole_blocks(group, n_groups, self.arrays.cohort_index[1], len(self.blocks.rows))
            if picks is not None:
                return [self.blocks.cross(index, pick) / self.n_units**2 for pick in picks]
        sums = self.cluster_sums(index)
        return [sums[group == h].T @ sums[group == h] / self.n_units**2 for h in range(n_groups)]

    def cohort_square_sums(self, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``Σ_i ψ_ik²`` over each cohort's schools for the ``cells`` given, and each school's cohort code.

        Cohorts in sorted order (never joined last), as ``np.unique(arrays.cohort)``.
        """
        index = np.arange(self.n_cells)[cells]
        _, code = self.arrays.cohort_index
        if self.blocks is not None:
            return self.blocks.square_sums(index), code
        psi2 = self.influence[:, index] ** 2
        onehot = np.eye(code.max() + 1)[code]
        return onehot.T @ psi2, code


def _whole_blocks(group: np.ndarray, n_groups: int, block: np.ndarray, n_blocks: int) -> np.ndarray | None:
    """Which blocks each group of schools covers (``(n_groups, n_blocks)`` masks), or ``None`` if a block is split.

    ``group``: each school's group (``-1`` for none); ``block``: each school's block.
    """
    pairs = np.bincount(block * (n_groups + 1) + (group + 1), minlength=n_blocks * (n_groups + 1))
    counts = pairs.reshape(n_blocks, n_groups + 1)  # schools of each block in each group (none first)
    if ((counts > 0).sum(axis=1) > 1).any():
        return None
    return (counts[:, 1:] > 0).T


def is_control(cohort: np.ndarray, g: float, year, base, control_group: str, anticipation: int) -> np.ndarray:
    """Whether schools of ``cohort`` are comparisons for cell (g, year) with base year ``base`` (broadcasts).

    Never joined, or (``not_yet_joined``) joining after ``max(year, base) + anticipation`` and not in ``g``.
    """
    never = cohort == NEVER
    if control_group == "never_joined":
        return never & np.ones_like(np.asarray(year), dtype=bool)
    return never | ((cohort > np.maximum(year, base) + anticipation) & (cohort != g))


def _base_periods(periods: np.ndarray, cohort: float, anticipation: int, base_period: str) -> tuple[np.ndarray, np.ndarray]:
    """Years ``t`` estimated for a cohort and the base year of each (R ``did`` conventions)."""
    last_pre = periods[periods + anticipation < cohort]
    universal = last_pre[-1]
    if base_period == "varying":
        years = periods[1:]
        base = np.where(years < cohort, periods[:-1], universal)
    else:
        years = periods
        base = np.full(len(years), universal)
    return years, base


def att_gt(
    frame: pd.DataFrame | PanelArrays,
    outcome: str = "",
    *,
    control_group: ControlGroup = "never_joined",
    anticipation: int = 0,
    covariates: tuple[str, ...] | list[str] = (),
    est_method: EstMethod = "dr",
    base_period: BasePeriod = "varying",
    unbalanced: Unbalanced = "balance",
    covariate_year: CovariateYear = "before_base",
    cluster: str | ClusterLabels = "school",
    stage: str = "did_staggered",
    warn_few_clusters: bool = True,
) -> GroupTimeResult:
    r"""Estimate every ATT(g, t) with its influence function.

    Parameters
    ----------
    frame
        School × year frame with canonical columns (or prepared :class:`PanelArrays`).
    outcome
        Outcome column.
    control_group
        ``"never_joined"``: schools that never join (within the data);
        ``"not_yet_joined"``: also schools that join after ``max(t, base) + anticipation``.
    anticipation
        Years before joining in which schools may already react; the base
        period of cohort ``g`` is the last year before ``g − anticipation``.
    covariates
        Covariates for conditional parallel trends, taken from the year given by ``covariate_year``.
    est_method
        ``"dr"`` (doubly robust), ``"ipw"`` or ``"reg"`` (outcome regression).
        Without covariates all give the unconditional estimator.
    base_period
        ``"varying"`` (pre-period cells compare consecutive years, as R ``did``'s
        default) or ``"universal"`` (every cell compares with ``g − anticipation − 1``).
    unbalanced
        ``"balance"``: keep only schools with the outcome (and covariates) in
        every year, reporting the others (R ``did``'s default);
        ``"available_pairs"``: each cell uses the schools observed in both of its years.
    covariate_year
        Year of the covariates of each cell: ``"before_base"`` (default), the panel year before the cell's
        base year (the base year itself when the panel has no earlier year), or ``"base"``, the base year
        (R ``did``; ``DRDID`` is given the base-period rows).  See Notes.
    cluster
        Clustering level of the influence functions: ``school``, ``trust`` or ``local_authority`` (resolved
        from ``frame``), or labels resolved beforehand (see :func:`.panel_arrays.panel_arrays`).
    stage
        Name recorded with the exclusions.
    warn_few_clusters
        Warn when fewer than 30 clusters remain (callers that choose a few-cluster route warn themselves).

    Returns
    -------
    GroupTimeResult

    Raises
    ------
    EstimationError
        No usable cohort, no comparison schools (e.g. no never-joined schools
        with ``control_group="never_joined"``), a single cohort with no
        never-joined schools, or collinear covariates; each message names the
        option to change.

    Notes
    -----
    For cohort :math:`g` and year :math:`t` with base year :math:`b`,

    .. math:: ATT(g,t) = E[Y_t - Y_b \mid G=g] - E[Y_t - Y_b \mid C],

    with :math:`C` the comparison group (covariate-adjusted by outcome
    regression, IPW or DR; Callaway & Sant'Anna 2021, *J. Econometrics*
    225(2), eqs. 2.6–2.8).  Each cell's influence function is scaled by
    :math:`n / n_{gt}` and placed in the rows of the cell's schools, so that
    covariances between cells and aggregations follow from sums over schools
    (clusters).  Without covariates on a fully observed panel every cell comes from cohort-block means and
    the influence functions are kept in cohort-block form (:mod:`.blocks`; ``result.blocks``); without
    covariates but with missing years all cells of a cohort are computed at once (schools × cells
    matrices); with covariates the loop runs over cells, each vectorised over schools.

    Covariates before the base year.  School-year covariates such as the cohort's mean KS2 or FSM share
    describe the same pupils as the base-year outcome, so their sampling noise moves :math:`Y_b` too:
    :math:`\Delta Y` regresses to the mean given :math:`X_b`, differently for joiners and comparisons
    when joiners are selected on those characteristics, and conditional parallel trends given
    :math:`X_b` fail even when unconditional ones hold (Daw & Hatfield 2018, *Health Services Research*
    53(6), on matching in DiD).  Values from the year before the base year do not share that noise.  On
    ``evaltool simulate`` data (400 schools, KS2 and FSM, DR) the base-year choice is biased by about
    −0.1 point per cell; ``before_base`` removes it (``tests/estimators/did/test_staggered_covariate_year.py``).
    With time-invariant covariates both choices give identical estimates.
    """
    sample = SampleReport()
    warnings: list[str] = []
    covariates = tuple(covariates)
    if est_method not in twoperiod.ESTIMATORS:
        raise EstimationError(f"est_method must be one of 'dr', 'ipw', 'reg'; got {est_method!r}.", user_error=True)
    if control_group not in ("never_joined", "not_yet_joined"):
        raise EstimationError(
            f"control_group must be 'never_joined' or 'not_yet_joined'; got {control_group!r}.", user_error=True
        )
    if covariate_year not in ("before_base", "base"):
        raise EstimationError(
            f"covariate_year must be 'before_base' or 'base'; got {covariate_year!r}.", user_error=True
        )
    arrays = frame if isinstance(frame, PanelArrays) else panel_arrays(frame, outcome, covariates=covariates, cluster=cluster)
    sample.n_rows_in = int((~np.isnan(arrays.y)).sum())
    arrays = _drop_unusable_cohorts(arrays, anticipation, sample, warnings, stage)
    if unbalanced == "balance":
        arrays = balance(arrays, sample, stage=stage)
    arrays, controls_only = _check_design(arrays, control_group, anticipation, sample, warnings, stage,
                                          warn_few_clusters)
    if covariates:
        _check_collinear(arrays)

    periods = arrays.periods
    cohort = arrays.cohort
    observed = ~np.isnan(arrays.y)
    if covariates:
        observed &= ~np.isnan(arrays.x).any(axis=2)
    cohorts = np.array([g for g in arrays.cohort_index[0] if np.isfinite(g) and g not in controls_only])
    period_index = {int(p): j for j, p in enumerate(periods)}
    max_year = periods[-1] if not controls_only else min(controls_only) - anticipation - 1
    specs: list[tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []  # (g, years, bases, jt, jb)
    for g in cohorts:
        years, bases = _base_periods(periods, g, anticipation, base_period)
        keep = years <= max_year
        years, bases = years[keep], bases[keep]
        jt = np.array([period_index[int(t)] for t in years], dtype=int)
        jb = np.array([period_index[int(b)] for b in bases], dtype=int)
        specs.append((g, years, bases, jt, jb))
    block_cohorts, code = arrays.cohort_index
    shares = np.bincount(code, minlength=len(block_cohorts))[np.searchsorted(block_cohorts, cohorts)] / len(cohort)
    cohort_share = {float(g): float(p) for g, p in zip(cohorts, shares, strict=True)}

    blocks = None
    dense = None
    if not covariates and observed.all():
        blocks, att, n1, n0 = _block_cells(arrays, specs, cohorts, shares, control_group, anticipation)
    else:
        estimator = twoperiod.ESTIMATORS[est_method] if covariates else None
        dense, att, n1, n0, std_error = _dense_cells(
            arrays, observed, specs, estimator, control_group, anticipation, covariate_year
        )
    years = np.concatenate([s[1] for s in specs]).astype(int)
    cohort_of_cell = np.concatenate([np.full(len(s[1]), s[0]) for s in specs])
    cells = pd.DataFrame(
        {
            "cohort": cohort_of_cell,
            "year": years,
            "base_year": np.concatenate([s[2] for s in specs]).astype(int),
            "event_time": (years - cohort_of_cell).astype(int),
            "post": years >= cohort_of_cell,
            "att": att,
            "n_treated": n1.astype(int),
            "n_control": n0.astype(int),
        }
    )
    empty = np.flatnonzero(np.isnan(att))
    if len(empty):
        warnings.append(
            f"{len(empty)} group-time cells have no joining or no comparison schools observed in both years and are "
            f"left out (e.g. cohort {cohort_of_cell[empty[0]]:.0f}, year {years[empty[0]]})."
        )
    result = GroupTimeResult(
        cells=cells,
        dense_influence=dense,
        blocks=blocks,
        arrays=arrays,
        cohort_share=cohort_share,
        options={
            "control_group": control_group,
            "anticipation": int(anticipation),
            "covariates": list(covariates),
            "est_method": est_method if covariates else "unconditional",
            "covariate_year": covariate_year if covariates else None,
            "cells_covariates_at_base": _cells_covariates_at_base(specs, att) if covariates and covariate_year == "before_base" else 0,
            "base_period": base_period,
            "unbalanced": unbalanced,
            "cluster": arrays.cluster_note,
            "n_clusters": arrays.n_clusters,
        },
        sample=sample,
        warnings=warnings,
    )
    if blocks is not None:
        std_error = np.sqrt(np.diag(result.basis_cov)[: len(cells)])
    # In place (the result holds this frame), after ``att``.
    cells.insert(6, "std_error", np.where(np.isnan(att), np.nan, std_error))
    return result


def _block_cells(
    arrays: PanelArrays, specs: list, cohorts: np.ndarray, shares: np.ndarray, control_group: str, anticipation: int
) -> tuple[CohortBlocks, np.ndarray, np.ndarray, np.ndarray]:
    """Unconditional cells on a fully observed panel, influence in cohort-block form (see :mod:`.blocks`)."""
    block_cohorts = arrays.cohort_index[0]
    g, years, bases, jt, jb = (np.concatenate([np.broadcast_to(spec[i], spec[1].shape) for spec in specs]) for i in range(5))
    control = is_control(block_cohorts[None, :], g[:, None], years[:, None], bases[:, None], control_group, anticipation)
    plan = CellPlan(cohort=g, jt=jt.astype(int), jb=jb.astype(int), control=control)
    return unconditional_blocks(arrays.y, arrays.cohort_index, plan, cohorts, shares)


def _dense_cells(
    arrays: PanelArrays,
    observed: np.ndarray,
    specs: list,
    estimator,
    control_group: str,
    anticipation: int,
    covariate_year: CovariateYear = "before_base",
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cells with covariates or missing years: influence as a schools × cells matrix.

    Returns the influence matrix, ATTs, joining and comparison counts, and analytic clustered SEs.
    """
    cohort = arrays.cohort
    n = arrays.n_units
    blocks: list[tuple[np.ndarray | slice, np.ndarray]] = []  # (schools, their influence in the cohort's cells)
    atts, n1s, n0s = [], [], []
    covariate_seen = ~np.isnan(arrays.x).any(axis=2) if estimator is not None else None
    block_cohorts, cohort_code = arrays.cohort_index
    for g, years, bases, jt, jb in specs:
        if estimator is None:
            # Only the cohort's schools and its possible comparisons enter its cells: work on those rows (the
            # others' influence is zero; sums over the rows are the same, zeros left out).
            involved = (block_cohorts == g) | is_control(
                block_cohorts[:, None], g, years[None, :], bases[None, :], control_group, anticipation
            ).any(axis=1)
            units = np.flatnonzero(involved[cohort_code])
        else:
            units = slice(None)
        unit_cohort, unit_observed, unit_y = cohort[units], observed[units], arrays.y[units]
        both = unit_observed[:, jt] & unit_observed[:, jb]
        jx = _covariate_periods(jb, covariate_year)
        if estimator is not None:
            both &= covariate_seen[units][:, jx]
        treat = (unit_cohort == g)[:, None] & both
        ctrl = is_control(unit_cohort[:, None], g, years[None, :], bases[None, :], control_group, anticipation) & both
        n1, n0 = treat.sum(axis=0), ctrl.sum(axis=0)
        block = np.zeros((len(unit_cohort), len(years)))
        att = np.full(len(years), np.nan)
        att[years == bases] = 0.0
        estimable = (years != bases) & (n1 > 0) & (n0 > 0)
        if estimator is None:
            # Unconditional: every cell of the cohort at once (difference in mean changes; see twoperiod.unconditional).
            dy = np.where(both, unit_y[:, jt] - unit_y[:, jb], 0.0)
            with np.errstate(invalid="ignore", divide="ignore"):
                m1 = (dy * treat).sum(axis=0) / n1
                m0 = (dy * ctrl).sum(axis=0) / n0
                p1 = n1 / (n1 + n0)
                inf = treat * (dy - m1) / p1 - ctrl * (dy - m0) / (1 - p1)
            att[estimable] = (m1 - m0)[estimable]
            block[:, estimable] = (inf * (n / (n1 + n0)))[:, estimable]
        else:
            for k in np.flatnonzero(estimable):
                cell = treat[:, k] | ctrl[:, k]
                dy = arrays.y[cell, jt[k]] - arrays.y[cell, jb[k]]
                x = np.column_stack([np.ones(cell.sum()), arrays.x[cell, jx[k], :]])
                _check_cell_rank(x, treat[cell, k], estimator, arrays.covariates,
                                 (g, years[k], bases[k], arrays.periods[jx[k]]))
                att[k], inf_k = estimator(dy, treat[cell, k], x)
                block[cell, k] = inf_k * (n / (n1[k] + n0[k]))
        atts.append(att)
        n1s.append(n1)
        n0s.append(n0)
        blocks.append((units, block))

    influence = np.zeros((n, sum(block.shape[1] for _, block in blocks)))
    start = 0
    for units, block in blocks:
        influence[units, start : start + block.shape[1]] = block
        start += block.shape[1]
    if schools_are_clusters(arrays.clusters, arrays.n_clusters):
        # Σ_i ψ_i² over each block's own schools: the other rows of the column are zeros, so this is the same sum.
        std_error = np.concatenate([np.sqrt((block**2).sum(axis=0)) / n for _, block in blocks] or [[]])
    else:
        sums = cluster_sum(influence, arrays.clusters, arrays.n_clusters)
        std_error = np.sqrt((sums**2).sum(axis=0)) / n
    return influence, *(np.concatenate(parts or [[]]) for parts in (atts, n1s, n0s)), std_error


def _cells_covariates_at_base(specs: list, att: np.ndarray) -> int:
    """Estimated cells (base year ≠ year) whose base year is the panel's first, so covariates fall back to it."""
    jt, jb = (np.concatenate([spec[i] for spec in specs] or [[]]) for i in (3, 4))
    return int(np.sum((jb == 0) & (jt != jb) & np.isfinite(att)))


def _covariate_periods(jb: np.ndarray, covariate_year: CovariateYear) -> np.ndarray:
    """Period index of each cell's covariates: the base year's, or the panel year before it where there is one."""
    if covariate_year == "base":
        return jb
    return np.where(jb > 0, jb - 1, jb)


def _check_cell_rank(x: np.ndarray, treat: np.ndarray, estimator, covariates, where: tuple) -> None:
    """Raise a message naming the cell and the covariates when a cell's regression or logit design is singular.

    The outcome regression (``reg``, ``dr``) is fitted among the cell's comparison schools, the propensity
    logit (``ipw``, ``dr``) on all its schools; a covariate constant among the comparisons of one cell (all
    years stacked may vary) makes the first singular but not the second.
    """
    g, year, base, covariate_year = (int(v) for v in where)
    names = ["(Intercept)", *covariates]
    cell = f"cohort {g}, year {year} (base year {base}, covariates from {covariate_year})"
    if estimator is not twoperiod.ipw:
        among = check_rank(x[~treat], names)
        if not among.full:
            offending = among.describe()
            fix = ("use est_method: ipw (no regression among the comparison schools)"
                   if check_rank(x, names).full else "")
            raise EstimationError(
                f"Group-time cell {cell}: the outcome regression among its {int((~treat).sum())} comparison schools "
                f"has a singular design (rank {among.rank} < {among.n_columns}): {offending}. Drop "
                f"{', '.join(c for c in among.collinear if c != '(Intercept)') or 'a covariate'} from covariates"
                + (f", or {fix}." if fix else "."),
                user_error=True,
            )
    if estimator is not twoperiod.regression:
        whole = check_rank(x, names)
        if not whole.full:
            raise EstimationError(
                f"Group-time cell {cell}: the propensity logit on its {len(x)} schools has a singular design "
                f"(rank {whole.rank} < {whole.n_columns}): {whole.describe()}. Drop "
                f"{', '.join(c for c in whole.collinear if c != '(Intercept)') or 'a covariate'} from covariates.",
                user_error=True,
            )


def _drop_unusable_cohorts(
    arrays: PanelArrays, anticipation: int, sample: SampleReport, warnings: list[str], stage: str
) -> PanelArrays:
    """Drop cohorts with no year before ``g − anticipation`` (joined before the data or in its first year)."""
    first = arrays.periods[0]
    early = np.isfinite(arrays.cohort) & (arrays.cohort <= first + anticipation)
    if early.any():
        bad = sorted({int(g) for g in arrays.cohort[early]})
        shown = ", ".join(map(str, bad[:8])) + (" …" if len(bad) > 8 else "")
        sample.exclude(
            f"joined in or before the first year ({first}) + anticipation: no pre-joining year to compare with",
            int((~np.isnan(arrays.y[early])).sum()),
            int(early.sum()),
            stage=stage,
            detail=f"cohorts {shown}",
        )
        warnings.append(
            f"Cohorts {shown} have no year before joining in the data (first year {first}, anticipation {anticipation}); "
            f"their {int(early.sum())} schools are excluded."
        )
    late = np.isfinite(arrays.cohort) & (arrays.cohort - anticipation > arrays.periods[-1])
    cohort = arrays.cohort.copy()
    if late.any():
        cohort[late] = NEVER
        sample.exclude(
            f"joined after the last year ({arrays.periods[-1]}): used as never joined within the data",
            0,
            int(late.sum()),
            stage=stage,
        )
    kept = dataclasses.replace(arrays, cohort=cohort)
    return kept.subset(~early) if early.any() else kept


def _check_design(
    arrays: PanelArrays, control_group: str, anticipation: int, sample: SampleReport, warnings: list[str], stage: str,
    warn_few_clusters: bool = True,
) -> tuple[PanelArrays, set]:
    cohort = arrays.cohort
    finite = np.unique(cohort[np.isfinite(cohort)])
    n_never = int((cohort == NEVER).sum())
    if len(finite) == 0:
        raise EstimationError(
            "No school joins during the data years, so there is no cohort to estimate an effect for. "
            "Check columns.join_year and data.exclude_years.",
            user_error=True,
        )
    if control_group == "never_joined" and n_never == 0:
        raise EstimationError(
            "comparison: never_joined was requested but no school in the analysis sample never joined. "
            "Set comparison: not_yet_joined to compare with schools that join later.",
            user_error=True,
        )
    controls_only: set = set()
    if len(finite) == 1 and n_never > 0:
        warnings.append(
            f"All joining schools joined in {int(finite[0])}: there is no staggering, so each ATT(g,t) is a 2x2 "
            "comparison with the comparison schools (method: did_2x2 or did_twfe give the same kind of estimate)."
        )
    if n_never == 0:
        if len(finite) == 1:
            raise EstimationError(
                f"Every school joined in the same year ({int(finite[0])}) and none never joined, so the staggered "
                "estimator has no comparison group (it degenerates). Use method: did_2x2 with a comparison group, "
                "or add never-joined schools.",
                user_error=True,
            )
        last = float(finite[-1])
        controls_only = {last}
        warnings.append(
            f"No never-joined schools: the last cohort ({int(last)}) serves only as the comparison group and years from "
            f"{int(last - anticipation)} on are not estimated (as R did with control_group = 'notyettreated')."
        )
        sample.exclude(
            f"last cohort {int(last)} used only as comparison (no never-joined schools)",
            0,
            int((cohort == last).sum()),
            stage=stage,
            changes_estimand=True,
        )
    if warn_few_clusters and arrays.n_clusters < 30:
        from evaltool.estimators.common import few_clusters_warning

        warnings.append(few_clusters_warning(arrays.n_clusters, arrays.cluster_note.split(" (")[0].replace(" ", "_")))
    return arrays, controls_only


def _check_collinear(arrays: PanelArrays) -> None:
    x = arrays.x.reshape(-1, arrays.x.shape[2])
    x = x[~np.isnan(x).any(axis=1)]
    design = np.column_stack([np.ones(len(x)), x])
    rank = np.linalg.matrix_rank(design)
    if rank < design.shape[1]:
        names = list(arrays.covariates)
        constant = [names[j] for j in range(len(names)) if np.ptp(x[:, j]) == 0]
        detail = f" ({', '.join(constant)} constant)" if constant else ""
        raise EstimationError(
            f"The covariates {names} are collinear{detail}: the design has rank {rank} < {design.shape[1]}. "
            "Remove a redundant covariate from the analysis's covariates.",
            user_error=True,
        )
