"""Figures of propensity-score methods: love plot and propensity-score overlap.

Built from the result's diagnostics with the matplotlib object API (no pyplot
state, no rcParams changes), readable in greyscale.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from evaltool.diagnostics.balance import WWC_ADJUST, WWC_SATISFIES
from evaltool.labels import label
from evaltool.results import AnalysisResult


def _frame(value) -> pd.DataFrame:
    if isinstance(value, pd.DataFrame):
        return value
    return pd.DataFrame(value["data"], columns=value["columns"])


def love_plot(result: AnalysisResult) -> Figure:
    """Absolute standardised mean differences before and after matching/weighting, WWC thresholds marked."""
    table = _frame(result.diagnostics["balance"])
    fig = Figure(figsize=(7, 0.35 * len(table) + 1.6), dpi=100)
    ax = fig.add_subplot()
    rows = np.arange(len(table))[::-1]
    ax.scatter(table["smd_before"].abs(), rows, marker="o", facecolors="white", edgecolors="#000000", label="Before")
    ax.scatter(table["smd_after"].abs(), rows, marker="s", color="#000000", label="After")
    for x, style in ((WWC_SATISFIES, ":"), (WWC_ADJUST, "--")):
        ax.axvline(x, color="#777777", linestyle=style, linewidth=1)
    ax.set_yticks(rows, [label(c) for c in table["covariate"]])
    ax.set_xlabel("|Standardised mean difference| (treated SD); lines: WWC 0.05 and 0.25")
    ax.set_title("Covariate balance before and after")
    ax.legend(frameon=False, loc="lower right")
    fig.tight_layout()
    return fig


def overlap_plot(result: AnalysisResult) -> Figure:
    """Histograms of the propensity score by group: all units, and the matched/weighted sample (with its weights)."""
    scores = _frame(result.diagnostics["propensity_scores"])
    fig = Figure(figsize=(8, 3.6), dpi=100)
    bins = np.linspace(0, 1, 41)
    for i, (title, subset) in enumerate((("All units", scores), ("Matched / weighted units", scores[scores["matched"] == 1]))):
        ax = fig.add_subplot(1, 2, i + 1)
        for group, colour, group_name in ((1, "#000000", "Joined"), (0, "#999999", "Comparison")):
            part = subset[subset["treated"] == group]
            weights = part["weight"] if i == 1 and "weight" in part else None
            ax.hist(part["score"], bins=bins, weights=weights, density=True, histtype="step" if group else "stepfilled",
                    color=colour, label=group_name)
        ax.set_title(title)
        ax.set_xlabel("Propensity score")
    fig.axes[0].set_ylabel("Density")
    fig.axes[0].legend(frameon=False)
    fig.tight_layout()
    return fig
