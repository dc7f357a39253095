"""Forest plots of per-trust (per-study) effects, readable in greyscale.

Built with the matplotlib object API (no pyplot state, no rcParams changes).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Polygon
from scipy import stats

from evaltool.labels import label


def forest_figure(
    studies: pd.DataFrame,
    outcome: str,
    *,
    pooled: dict | None = None,
    heterogeneity: dict | None = None,
    title: str = "Effects by study",
    ci_level: float = 0.95,
) -> Figure:
    """Forest plot ordered by effect, with the pooled diamond and prediction interval.

    Parameters
    ----------
    studies
        Columns ``study``, ``estimate`` and either ``ci_lower``/``ci_upper`` or
        ``std_error`` (then a normal ``ci_level`` interval is drawn).
    pooled
        ``estimate``, ``ci_lower``, ``ci_upper``, ``prediction_lower``,
        ``prediction_upper`` of the random-effects mean (optional).
    heterogeneity
        ``tau2``, ``I2_percent``, ``Q``, ``Q_df``, ``Q_p_value`` shown under the plot.
    """
    data = studies.sort_values("estimate", kind="stable").reset_index(drop=True)
    if "ci_lower" not in data:
        crit = stats.norm.ppf(0.5 + ci_level / 2)
        data = data.assign(ci_lower=data["estimate"] - crit * data["std_error"],
                           ci_upper=data["estimate"] + crit * data["std_error"])
    k = len(data)
    extra = 2 if pooled else 0
    fig = Figure(figsize=(7.5, 2.4 + 0.28 * (k + extra)), dpi=100)
    ax = fig.add_subplot()
    rows = np.arange(k)[::-1] + extra
    ax.hlines(rows, data["ci_lower"], data["ci_upper"], color="#000000", linewidth=1.2,
              label=f"{int(round(ci_level * 100))}% confidence interval")
    sizes = 25.0
    if "weight_percent" in data:
        sizes = 10 + 6 * np.sqrt(data["weight_percent"].to_numpy())
    ax.scatter(data["estimate"], rows, marker="s", s=sizes, color="#000000", zorder=3, label="Estimate")
    labels = list(data["study"].astype(str))
    ticks = list(rows)
    if pooled:
        y = 0.6
        est, low, high = pooled["estimate"], pooled["ci_lower"], pooled["ci_upper"]
        ax.add_patch(Polygon([[low, y], [est, y + 0.3], [high, y], [est, y - 0.3]], closed=True,
                             facecolor="#666666", edgecolor="#000000", label="Pooled mean (confidence interval)"))
        ax.hlines(y, pooled["prediction_lower"], pooled["prediction_upper"], color="#000000", linestyle=":",
                  linewidth=1.5, label="Prediction interval (likely effect of a new trust)")
        ticks.append(y)
        labels.append("Random-effects mean")
    ax.axvline(0.0, color="#888888", linestyle="--", linewidth=1, label="No effect")
    ax.set_yticks(ticks, labels)
    ax.set_ylim(-0.2, k + extra)
    xlabel = f"Effect on {label(outcome)} (difference in points)"
    if heterogeneity:
        xlabel += (
            f"\nBetween-trust variance tau² = {heterogeneity['tau2']:.3g}; I² = {heterogeneity['I2_percent']:.0f}%; "
            f"Q = {heterogeneity['Q']:.2f} on {heterogeneity['Q_df']} df, p = {heterogeneity['Q_p_value']:.3g}"
        )
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    height = fig.get_figheight()
    fig.legend(*ax.get_legend_handles_labels(), frameon=False, fontsize=8, loc="lower center", ncol=2)
    fig.tight_layout(rect=(0, 0.75 / height, 1, 1))
    return fig
