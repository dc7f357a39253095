"""Figures built from results (never from raw data), readable in greyscale.

Each function takes an :class:`~evaltool.results.AnalysisResult` and returns a
``matplotlib.figure.Figure`` built with the object API (no pyplot state, no
rcParams changes).
"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from evaltool.labels import label
from evaltool.results import AnalysisResult

#: Greyscale-safe styles: (colour, line style, marker).
SERIES_STYLES = {"treated": ("#000000", "-", "o"), "comparison": ("#777777", "--", "s")}


def _frame(value) -> pd.DataFrame:
    if isinstance(value, pd.DataFrame):
        return value
    return pd.DataFrame(value["data"], columns=value["columns"])


def group_trends_figure(result: AnalysisResult) -> Figure:
    """Mean outcome by year for joining and comparison schools, periods shaded."""
    yearly = _frame(result.diagnostics["yearly_means"])
    design = result.diagnostics["design"]
    fig = Figure(figsize=(7, 4), dpi=100)
    ax = fig.add_subplot()
    labels = {"treated": "Schools that joined", "comparison": "Comparison schools"}
    all_years = range(int(yearly["year"].min()), int(yearly["year"].max()) + 1)
    for group, (colour, style, marker) in SERIES_STYLES.items():
        # Reindexed on every year so excluded or missing years break the line instead of bridging it.
        part = yearly[yearly["group"] == group].set_index("year")["mean_outcome"].reindex(all_years)
        ax.plot(part.index, part.to_numpy(), color=colour, linestyle=style, marker=marker, label=labels[group])
    for years, shade, text in ((design["pre_years"], "#dddddd", "before"), (design["post_years"], "#bbbbbb", "after")):
        ax.axvspan(min(years) - 0.4, max(years) + 0.4, color=shade, alpha=0.5, linewidth=0)
        ax.text((min(years) + max(years)) / 2, 1.0, text, transform=ax.get_xaxis_transform(), ha="center", va="bottom")
    ax.set_xlabel("Academic year (summer exams)")
    ax.set_ylabel(f"Mean {label(result.outcome)}")
    ax.set_title("Outcome trends: schools that joined vs comparison schools", pad=16)
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig
