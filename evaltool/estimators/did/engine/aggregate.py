"""Aggregations of group-time ATTs: simple, group (cohort), dynamic (event time), calendar.

Each aggregation is a weighted average of ATT(g, t) with weights that depend
on the estimated cohort shares; its influence function adds the estimation
effect of those weights (Callaway & Sant'Anna 2021, Section 4 and Appendix;
R ``did::aggte``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from evaltool.errors import EstimationError
from evaltool.estimators.did.engine.att_gt import GroupTimeResult

Kind = Literal["simple", "group", "dynamic", "calendar"]
KINDS: tuple[str, ...] = ("simple", "group", "dynamic", "calendar")


@dataclass(frozen=True)
class Aggregate:
    """An aggregation of group-time ATTs.

    Every influence function here is a linear combination of the cells' influence functions and of the
    centred cohort indicators (the estimation effect of the cohort-share weights), so it is stored as
    coefficients on :attr:`GroupTimeResult.basis`; the bootstrap then perturbs the basis once for all
    aggregations.

    Attributes
    ----------
    kind
        ``simple``, ``group``, ``dynamic`` or ``calendar``.
    table
        One row per element (``cohort``, ``event_time`` or ``year``) with ``att`` and analytic
        ``std_error``; empty for ``simple``.
    overall_att, overall_se
        The overall summary parameter and its analytic standard error.
    coef
        Shape ``(n_basis, len(table) + 1)``: influence functions of the elements, then of the overall
        parameter, as combinations of the basis columns.
    result
        The group-time result aggregated.
    """

    kind: str
    table: pd.DataFrame
    overall_att: float
    overall_se: float
    coef: np.ndarray
    result: GroupTimeResult = field(repr=False)

    @property
    def influence(self) -> np.ndarray:
        """Influence functions of the elements, shape ``(n_units, len(table))``."""
        return self.result.basis @ self.coef[:, :-1]

    def covariance(self) -> np.ndarray:
        """Analytic (cluster-robust) covariance of the elements, shape ``(len(table), len(table))``."""
        element = self.coef[:, :-1]
        return element.T @ (self.result.basis_cov @ element)

    @property
    def overall_influence(self) -> np.ndarray:
        """Influence function of the overall parameter, shape ``(n_units,)``."""
        return self.result.basis @ self.coef[:, -1]


def _positions(values: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Index in ``values`` (distinct, any order) of each of ``targets`` (all present)."""
    order = np.argsort(values)
    return order[np.searchsorted(values[order], targets)]


class _Combiner:
    r"""Builds basis coefficients of cohort-share-weighted means of cells.

    Notes
    -----
    For cells :math:`k\in S` with cohort shares :math:`\hat p_k`, :math:`T=\sum_S \hat p_k`, the weighted mean
    :math:`\sum_S \hat p_k\,ATT_k/T` has influence function
    :math:`\sum_S (\hat p_k/T)\psi_k + \sum_S ATT_k\,\psi^w_k` where the weight part (R ``did``'s ``wif``) is
    :math:`\psi^w_k = M_{c(k)}/T - \hat p_k \sum_{l\in S} M_{c(l)}/T^2` with :math:`M_c = 1\{G=c\} - \hat p_c`.
    """

    def __init__(self, result: GroupTimeResult) -> None:
        cells = result.cells
        self.n_cells = len(cells)
        self.cohorts = np.array(list(result.cohort_share))
        self.cell_cohort = _positions(self.cohorts, cells["cohort"].to_numpy())
        self.share = np.array(list(result.cohort_share.values()))
        self.att = cells["att"].to_numpy()
        self.size = self.n_cells + len(self.cohorts)
        self.onehot = np.eye(len(self.cohorts))[self.cell_cohort]  # cells × cohorts

    def plain_means(self, member: np.ndarray) -> np.ndarray:
        """Coefficients of the plain means of each column's cells (``member``: cells × means, boolean)."""
        coef = np.zeros((self.size, member.shape[1]))
        coef[: self.n_cells] = member / member.sum(axis=0)
        return coef

    def share_weighted(self, member: np.ndarray) -> np.ndarray:
        """Coefficients of the cohort-share-weighted means of each column's cells (``member``: cells × means)."""
        weights = member * self.share[self.cell_cohort][:, None]
        total = weights.sum(axis=0)
        coef = np.zeros((self.size, member.shape[1]))
        coef[: self.n_cells] = weights / total
        att = np.where(member, self.att[:, None], 0.0)
        coef[self.n_cells :] = self._weight_part(att, member, weights, total)
        return coef

    def share_weighted_elements(self, element_coefs: np.ndarray, values: np.ndarray, cohort_of: np.ndarray) -> np.ndarray:
        """Share-weighted mean of elements (one per cohort) that are themselves combinations of the basis."""
        weights = self.share[cohort_of][:, None]  # elements × one mean
        total = weights.sum(axis=0)
        coef = element_coefs @ (weights[:, 0] / total[0])
        onehot = np.eye(len(self.cohorts))[cohort_of]
        member = np.ones(weights.shape, dtype=bool)
        coef[self.n_cells :] += self._weight_part(values[:, None], member, weights, total, onehot)[:, 0]
        return coef

    def _weight_part(
        self, values: np.ndarray, member: np.ndarray, weights: np.ndarray, total: np.ndarray, onehot: np.ndarray | None = None
    ) -> np.ndarray:
        """``Σ_S ATT_k ψ^w_k`` on the cohort columns (cohorts × means; see the class notes).

        Items (rows) are the cells, or the elements given with ``onehot`` (each item's cohort); per mean
        (column): ``values`` the items' ATTs (0 outside the mean), ``member`` whether they are in it,
        ``weights`` their shares (0 outside), ``total`` the sum of the shares.
        """
        onehot = self.onehot if onehot is None else onehot
        weighted_att = (weights * values).sum(axis=0)  # Σ_S p_k ATT_k per mean
        count = onehot.T @ member  # items of each cohort in each mean
        return (onehot.T @ values) / total - count * weighted_att / total**2


def aggregate(
    result: GroupTimeResult, kind: Kind = "group", *, min_e: float = -np.inf, max_e: float = np.inf
) -> Aggregate:
    """Aggregate group-time ATTs.

    Parameters
    ----------
    result
        Output of :func:`~evaltool.estimators.did.engine.att_gt.att_gt`.
    kind
        ``"simple"``: cohort-share-weighted mean of every post-joining ATT(g, t);
        ``"group"``: mean over post-joining years per cohort, then cohort-share weighted;
        ``"dynamic"``: cohort-share-weighted mean per event time ``e = t − g``, overall = mean over ``e ≥ 0``;
        ``"calendar"``: cohort-share-weighted mean of joined cohorts per year, overall = mean over years.
    min_e, max_e
        Event-time window: cells with ``t − g`` outside it are left out (as R ``aggte``).

    Returns
    -------
    Aggregate
    """
    if kind not in KINDS:
        raise EstimationError(f"aggregation must be one of {', '.join(KINDS)}; got {kind!r}.", user_error=True)
    cells = result.cells
    valid = np.isfinite(cells["att"].to_numpy())
    g = cells["cohort"].to_numpy()
    t = cells["year"].to_numpy()
    e = cells["event_time"].to_numpy()
    window = (e >= min_e) & (e <= max_e) & valid
    post = (g <= t) & window
    if not post.any():
        raise EstimationError("No post-joining group-time ATT is estimable, so nothing can be aggregated.", user_error=True)

    comb = _Combiner(result)
    att = comb.att
    labels: list[int] = []
    element = np.zeros((comb.size, 0))
    if kind == "simple":
        overall = comb.share_weighted(post[:, None])[:, 0]
    elif kind == "group":
        groups = np.unique(g[post])
        labels = [int(gg) for gg in groups]
        member = post[:, None] & (g[:, None] == groups[None, :])  # cells × cohorts
        element = comb.plain_means(member)
        values = (np.where(member, att[:, None], 0.0)).sum(axis=0) / member.sum(axis=0)
        overall = comb.share_weighted_elements(element, values, _positions(comb.cohorts, groups))
    else:
        label_of = e if kind == "dynamic" else t
        keep = window if kind == "dynamic" else post
        levels = np.unique(label_of[keep])
        labels = [int(level) for level in levels]
        element = comb.share_weighted(keep[:, None] & (label_of[:, None] == levels[None, :]))
        chosen = levels >= 0 if kind == "dynamic" else np.ones(len(levels), bool)
        overall = element[:, chosen].mean(axis=1)
    coefs = list(element.T)

    coef = np.column_stack([*coefs, overall])
    atts = result.combine(coef)
    se = result.std_errors(coef)
    label_name = {"simple": "label", "group": "cohort", "dynamic": "event_time", "calendar": "year"}[kind]
    table = pd.DataFrame({label_name: labels, "att": atts[:-1], "std_error": se[:-1]})
    return Aggregate(kind=kind, table=table, overall_att=float(atts[-1]), overall_se=float(se[-1]), coef=coef, result=result)
