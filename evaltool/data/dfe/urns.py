"""URN chains: one school identity across the new URNs of academy conversion (and other re-registrations).

Rule
----
The predecessor → successor links form a directed graph whose weakly connected components are
classified:

- **chain**: every URN has at most one predecessor and one successor, no cycle and no amalgamation or
  split link type. Its URNs are merged into one identity, named by the latest URN (the one without a
  successor); chains of any length.
- **cycle**: the links lead back to a URN already in the chain (a data error in the extract). Not
  merged; each URN stays its own school; listed in the report.
- **branching**: an amalgamation (a URN with several predecessors), a split (several successors), or a
  link typed ``… - amalgamated`` / ``… - Split School`` / ``… - merged``. Not merged, since no single
  school continues; listed in the report with the reason.

Components are found with :func:`scipy.sparse.csgraph.connected_components` (cycles from its strongly
connected components) and chains are ordered by pointer jumping, so the work is vectorised.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


@dataclass
class Identities:
    """URN → identity for the URNs of merged chains; URNs not listed are their own identity."""

    mapping: pd.DataFrame  # urn, identity, position (0 = earliest URN of the chain)
    report: dict[str, Any]


def resolve_chains(edges: pd.DataFrame, relevant: pd.Index | None = None) -> Identities:
    """Merge one-to-one predecessor → successor chains (see the module's rule).

    Parameters
    ----------
    edges
        ``pred, succ, branching`` (one row per distinct pair, as from :func:`~evaltool.data.dfe.gias.read_links`).
    relevant
        URNs of the performance tables: chains, cycles and branchings touching one of them are listed in
        the report (all are counted).
    """
    empty_report: dict[str, Any] = {
        "urn_merges": {"n_chains": 0, "n_urns_merged": 0, "longest_chain": 0, "chains": [], "n_chains_in_links": 0},
        "branching": [],
        "cycles": [],
        "rule": RULE,
    }
    if edges.empty:
        return Identities(pd.DataFrame({"urn": [], "identity": [], "position": []}), empty_report)
    codes, nodes = pd.factorize(pd.concat([edges["pred"], edges["succ"]], ignore_index=True), sort=True)
    nodes = np.asarray(nodes, dtype=object)
    m, n = len(edges), len(nodes)
    pred, succ = codes[:m], codes[m:]
    graph = coo_matrix((np.ones(m), (pred, succ)), shape=(n, n)).tocsr()
    n_comp, labels = connected_components(graph, directed=True, connection="weak")
    _, strong = connected_components(graph, directed=True, connection="strong")
    in_cycle = np.bincount(strong, minlength=n)[strong] > 1

    indeg = np.bincount(succ, minlength=n)
    outdeg = np.bincount(pred, minlength=n)
    size = np.bincount(labels, minlength=n_comp)
    n_edges = np.bincount(labels[pred], minlength=n_comp)
    max_in = np.zeros(n_comp, dtype=int)
    max_out = np.zeros(n_comp, dtype=int)
    np.maximum.at(max_in, labels, indeg)
    np.maximum.at(max_out, labels, outdeg)
    branch_link = np.bincount(labels[pred], weights=edges["branching"].to_numpy(dtype=float), minlength=n_comp) > 0
    has_cycle = np.bincount(labels, weights=in_cycle.astype(float), minlength=n_comp) > 0
    is_chain = ~has_cycle & (max_in <= 1) & (max_out <= 1) & (n_edges == size - 1) & ~branch_link
    is_branching = ~has_cycle & ~is_chain

    # order each chain: pointer jumping to its last URN, counting the steps
    chain_edge = is_chain[labels[pred]]
    nxt = np.arange(n)
    nxt[pred[chain_edge]] = succ[chain_edge]
    dist = (nxt != np.arange(n)).astype(int)
    while True:
        jumped = nxt[nxt]
        if np.array_equal(jumped, nxt):
            break
        dist = dist + dist[nxt]
        nxt = jumped
    on_chain = is_chain[labels]
    position = size[labels] - 1 - dist
    mapping = pd.DataFrame(
        {"urn": nodes[on_chain], "identity": nodes[nxt[on_chain]], "position": position[on_chain]}
    ).reset_index(drop=True)

    touches = np.ones(n_comp, dtype=bool)
    if relevant is not None:
        hit = np.isin(nodes, np.asarray(relevant, dtype=object))
        touches = np.bincount(labels, weights=hit.astype(float), minlength=n_comp) > 0
    frame = pd.DataFrame({"urn": nodes, "label": labels, "order": position, "indeg": indeg, "outdeg": outdeg})
    chains = _listing(frame, is_chain & touches, by_order=True)
    report = {
        "urn_merges": {
            "n_chains": int((is_chain & touches).sum()),
            "n_urns_merged": int(size[is_chain & touches].sum()),
            "longest_chain": int(size[is_chain & touches].max()) if (is_chain & touches).any() else 0,
            "chains": [{"urn": urns[-1], "urns": urns} for urns in chains],
            "n_chains_in_links": int(is_chain.sum()),
        },
        "branching": _branching(frame, edges, labels[pred], is_branching & touches),
        "cycles": [{"urns": urns, "reason": "the links lead back to a URN of the chain"}
                   for urns in _listing(frame, has_cycle & touches, by_order=False)],
        "rule": RULE,
    }
    return Identities(mapping, report)


RULE = (
    "One-to-one predecessor→successor links are merged into one school identity named by the latest URN; "
    "components with a cycle, an amalgamation (several predecessors), a split (several successors) or an "
    "amalgamated/split/merged link type are not merged: each URN stays its own school and the component is listed."
)


def _listing(frame: pd.DataFrame, chosen: np.ndarray, *, by_order: bool) -> list[list[str]]:
    picked = frame[chosen[frame["label"].to_numpy()]]
    if picked.empty:
        return []
    picked = picked.sort_values(["label", "order"] if by_order else ["label", "urn"], kind="stable")
    return [list(group) for group in picked.groupby("label", sort=True)["urn"].agg(list)]


def _branching(frame: pd.DataFrame, edges: pd.DataFrame, edge_labels: np.ndarray, chosen: np.ndarray) -> list[dict]:
    picked = frame[chosen[frame["label"].to_numpy()]]
    if picked.empty:
        return []
    out = []
    kinds = edges.assign(label=edge_labels)
    kinds = kinds[kinds["branching"].to_numpy() & chosen[edge_labels]].groupby("label")["link_type"].agg(
        lambda values: sorted(set(values))
    )
    for label, group in picked.sort_values("urn").groupby("label", sort=True):  # one per listed component
        reasons = [
            f"amalgamation: {u} has {d} predecessors" for u, d in zip(group["urn"], group["indeg"], strict=True) if d > 1
        ]
        reasons += [f"split: {u} has {d} successors" for u, d in zip(group["urn"], group["outdeg"], strict=True) if d > 1]
        reasons += [f"link type '{k}'" for k in kinds.get(label, [])]
        out.append({"urns": list(group["urn"]), "reason": "; ".join(reasons)})
    return out
