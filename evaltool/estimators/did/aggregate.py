"""Aggregations of group-time ATTs: simple, group (cohort), dynamic (event time), calendar.

Each aggregation is a weighted average of ATT(g, t) with weights that depend
on the estimated cohort shares; its influence function adds the estimation
effect of those weights (Callaway & Sant'Anna 2021, Section 4 and Appendix;
R ``did::aggte``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from evaltool.errors import EstimationError
from evaltool.estimators.did.staggered import GroupTimeResult

Kind = Literal["simple", "group", "dynamic", "calendar"]
KINDS: tuple[str, ...] = ("simple", "group", "dynamic", "calendar")


@dataclass(frozen=True)
class Aggregate:
    """An aggregation of group-time ATTs.

    Attributes
    ----------
    kind
        ``simple``, ``group``, ``dynamic`` or ``calendar``.
    table
        One row per element (``label`` = cohort, event time or year) with
        ``att`` and analytic ``std_error``; empty for ``simple``.
    overall_att, overall_se
        The overall summary parameter and its analytic standard error.
    influence
        Influence functions of the elements, shape ``(n_units, len(table))``.
    overall_influence
        Influence function of the overall parameter, shape ``(n_units,)``.
    """

    kind: str
    table: pd.DataFrame
    overall_att: float
    overall_se: float
    influence: np.ndarray
    overall_influence: np.ndarray


def _weight_influence(result: GroupTimeResult, cells: np.ndarray) -> np.ndarray:
    r"""Influence function of the normalised cohort-share weights of ``cells`` (R ``did``'s ``wif``).

    Notes
    -----
    With :math:`\hat p_k` the share of schools in the cohort of cell :math:`k` and :math:`S=\sum_k \hat p_k`,
    :math:`\psi^w_{ik} = (1\{G_i=g_k\} - \hat p_k)/S - \hat p_k \sum_l (1\{G_i=g_l\} - \hat p_l)/S^2`.
    """
    cohorts = result.cells["cohort"].to_numpy()[cells]
    shares = np.array([result.cohort_share[float(g)] for g in cohorts])
    member = (result.arrays.cohort[:, None] == cohorts[None, :]).astype(float) - shares[None, :]
    total = shares.sum()
    return member / total - np.outer(member.sum(axis=1), shares / total**2)


def _weighted(result: GroupTimeResult, cells: np.ndarray, *, share_weights: bool = True) -> tuple[float, np.ndarray]:
    """ATT and influence function of a cohort-share-weighted (or plain) mean of ``cells``."""
    att = result.cells["att"].to_numpy()[cells]
    if share_weights:
        shares = np.array([result.cohort_share[float(g)] for g in result.cells["cohort"].to_numpy()[cells]])
        weights = shares / shares.sum()
        inf = result.influence[:, cells] @ weights + _weight_influence(result, cells) @ att
    else:
        weights = np.full(len(cells), 1 / len(cells))
        inf = result.influence[:, cells] @ weights
    return float(att @ weights), inf


def _se(result: GroupTimeResult, inf: np.ndarray) -> np.ndarray:
    sums = result.cluster_sums(inf)
    return np.sqrt((sums**2).sum(axis=0)) / result.n_units


def aggregate(
    result: GroupTimeResult, kind: Kind = "group", *, min_e: float = -np.inf, max_e: float = np.inf
) -> Aggregate:
    """Aggregate group-time ATTs.

    Parameters
    ----------
    result
        Output of :func:`~evaltool.estimators.did.staggered.att_gt`.
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

    labels: list = []
    atts: list[float] = []
    infs: list[np.ndarray] = []
    if kind == "simple":
        overall, overall_inf = _weighted(result, np.flatnonzero(post))
    elif kind == "group":
        groups = [gg for gg in sorted(set(g[post]))]
        for gg in groups:
            att, inf = _weighted(result, np.flatnonzero(post & (g == gg)), share_weights=False)
            labels.append(int(gg))
            atts.append(att)
            infs.append(inf)
        shares = np.array([result.cohort_share[float(gg)] for gg in groups])
        weights = shares / shares.sum()
        member = (result.arrays.cohort[:, None] == np.array(groups)[None, :]).astype(float) - shares[None, :]
        wif = member / shares.sum() - np.outer(member.sum(axis=1), shares / shares.sum() ** 2)
        overall = float(np.array(atts) @ weights)
        overall_inf = np.column_stack(infs) @ weights + wif @ np.array(atts)
    elif kind == "dynamic":
        for ee in sorted(set(e[window])):
            att, inf = _weighted(result, np.flatnonzero(window & (e == ee)))
            labels.append(int(ee))
            atts.append(att)
            infs.append(inf)
        nonneg = np.array(labels) >= 0
        overall = float(np.mean(np.array(atts)[nonneg]))
        overall_inf = np.column_stack(infs)[:, nonneg].mean(axis=1)
    else:
        for tt in sorted(set(t[post])):
            att, inf = _weighted(result, np.flatnonzero(post & (t == tt)))
            labels.append(int(tt))
            atts.append(att)
            infs.append(inf)
        overall = float(np.mean(atts))
        overall_inf = np.column_stack(infs).mean(axis=1)

    influence = np.column_stack(infs) if infs else np.zeros((result.n_units, 0))
    label_name = {"simple": "label", "group": "cohort", "dynamic": "event_time", "calendar": "year"}[kind]
    table = pd.DataFrame({label_name: labels, "att": atts, "std_error": _se(result, influence) if infs else []})
    return Aggregate(
        kind=kind,
        table=table,
        overall_att=overall,
        overall_se=float(_se(result, overall_inf)[0]),
        influence=influence,
        overall_influence=overall_inf,
    )
