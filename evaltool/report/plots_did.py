"""Event-study and group-time figures for the difference-in-differences methods.

Built from results (never raw data) with the Figure object API, readable in
greyscale: black = after joining, grey = before joining; the thick bar is the
pointwise confidence interval, the thin wide band the simultaneous (uniform)
band when one was computed.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from evaltool.labels import label
from evaltool.report.plots import _frame
from evaltool.results import AnalysisResult

PRE, POST = "#888888", "#000000"


def _z(level: float) -> float:
    from scipy import stats

    return float(stats.norm.ppf(0.5 + level / 2))


def _event_axes(ax: Axes, x: np.ndarray, est: np.ndarray, se: np.ndarray, crit: np.ndarray | float, level: float, post: np.ndarray) -> None:
    z = _z(level)
    crit = np.broadcast_to(np.asarray(crit, dtype=float), est.shape)
    has_band = np.isfinite(crit).any()
    for mask, colour, period in ((~post, PRE, "before joining"), (post, POST, "after joining")):
        if not mask.any():
            continue
        if has_band:
            ax.errorbar(
                x[mask], est[mask], yerr=crit[mask] * se[mask], fmt="none", ecolor=colour, elinewidth=0.8, capsize=4, alpha=0.8
            )
        ax.errorbar(x[mask], est[mask], yerr=z * se[mask], fmt="o", color=colour, ecolor=colour, elinewidth=2.2, capsize=0, label=period)
    ax.axhline(0, color="#444444", linewidth=0.8)
    ax.grid(axis="y", color="#eeeeee")
    ax.set_axisbelow(True)


def event_time_figure(table: pd.DataFrame, *, level: float, outcome: str, title: str, reference: int | None = None) -> Figure:
    """Estimates by event time with pointwise intervals and (if present) uniform bands."""
    fig = Figure(figsize=(7.5, 4.2), dpi=100)
    ax = fig.add_subplot()
    x = table["event_time"].to_numpy(dtype=float)
    crit = table["critical_value"].to_numpy(dtype=float) if "critical_value" in table else np.nan
    _event_axes(ax, x, table["att"].to_numpy(float), table["std_error"].to_numpy(float), crit, level, x >= 0)
    if reference is not None:
        ax.plot([reference], [0.0], marker="D", color=PRE, linestyle="none", label=f"reference ({reference})")
    ax.axvline(-0.5, color="#444444", linestyle=":", linewidth=1)
    ax.set_xlabel("Years since joining (0 = first year in the collaboration)")
    ax.set_ylabel(f"Effect on {label(outcome)}")
    band = " and simultaneous band (thin)" if np.isfinite(np.asarray(crit, dtype=float)).any() else ""
    ax.set_title(f"{title}\n{int(level * 100)}% pointwise interval (thick){band}", fontsize=10)
    ax.legend(frameon=False, loc="best")
    fig.tight_layout()
    return fig


def dynamic_figure(result: AnalysisResult) -> Figure:
    """Callaway–Sant'Anna dynamic (event-time) aggregation."""
    table = _frame(result.diagnostics["aggregations"]["dynamic"])
    level = result.estimates[0].ci_level if result.estimates else 0.95
    return event_time_figure(table, level=level, outcome=result.outcome, title="Effect by years since joining (Callaway-Sant'Anna)")


def event_study_figure(result: AnalysisResult) -> Figure:
    """TWFE event study: leads and lags with the reference period marked."""
    table = _frame(result.diagnostics["event_study"])
    level = result.estimates[0].ci_level if result.estimates else 0.95
    return event_time_figure(
        table, level=level, outcome=result.outcome, title="Event study (two-way fixed effects)", reference=result.diagnostics["design"]["reference"]
    )


def group_time_figure(result: AnalysisResult) -> Figure:
    """One panel per joining cohort: ATT(g, t) by year."""
    cells = _frame(result.diagnostics["group_time"])
    cells = cells[cells["att"].notna() & (cells["year"] != cells["base_year"])]
    cohorts = sorted(cells["cohort"].unique())
    ncol = min(3, max(1, len(cohorts)))
    nrow = math.ceil(len(cohorts) / ncol) if cohorts else 1
    fig = Figure(figsize=(3.4 * ncol, 2.6 * nrow + 0.6), dpi=100)
    level = result.estimates[0].ci_level if result.estimates else 0.95
    axes = fig.subplots(nrow, ncol, squeeze=False, sharey=True)
    for ax, g in zip(axes.ravel(), cohorts, strict=False):
        part = cells[cells["cohort"] == g]
        x = part["year"].to_numpy(float)
        _event_axes(
            ax, x, part["att"].to_numpy(float), part["std_error"].to_numpy(float),
            part["critical_value"].to_numpy(float), level, x >= g,
        )
        ax.axvline(g - 0.5, color="#444444", linestyle=":", linewidth=1)
        ax.set_title(f"Joined in {int(g)}", fontsize=9)
        ax.tick_params(labelsize=8)
    for ax in axes.ravel()[len(cohorts):]:
        ax.set_visible(False)
    fig.suptitle(f"Group-time effects on {result.outcome.replace('_', ' ')} by joining cohort", fontsize=10)
    fig.tight_layout()
    return fig


def twfe_weights_figure(result: AnalysisResult) -> Figure:
    """Total de Chaisemartin–D'Haultfœuille weight of the TWFE coefficient by years since joining."""
    weights = result.diagnostics["negative_weights"]
    table = _frame(weights["weights_by_event_time"]) if "weights_by_event_time" in weights else pd.DataFrame()
    fig = Figure(figsize=(7.5, 4.0), dpi=100)
    ax = fig.add_subplot()
    if len(table):
        x = table["event_time"].to_numpy(float)
        w = table["total_weight"].to_numpy(float)
        ax.bar(x, w, color=np.where(w < 0, "#000000", "#999999"), width=0.7)
    ax.axhline(0, color="#444444", linewidth=0.8)
    ax.set_xlabel("Years since joining")
    ax.set_ylabel("Share of the TWFE coefficient")
    share = weights.get("share_negative", 0.0) or 0.0
    ax.set_title(
        "Weights of joined school-years in the two-way fixed-effects estimate\n"
        f"black = negative weight ({share:.0%} of joined school-years, sum {weights.get('sum_negative', 0.0):.3f})",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def sensitivity_figures(result: AnalysisResult) -> dict[str, Figure]:
    """``{"sensitivity": figure}`` when the analysis computed Rambachan-Roth bounds, else empty (for ``figures``)."""
    fig = sensitivity_figure(result)
    return {"sensitivity": fig} if fig is not None else {}


def sensitivity_figure(result: AnalysisResult) -> Figure | None:
    """Rambachan-Roth sensitivity plot: the robust interval at each M̄ (or M) beside the original interval.

    One panel per restriction computed (``diagnostics.sensitivity.honest``); ``None`` when none was.  As
    HonestDiD's ``createSensitivityPlot``: the original interval first (grey), then the robust intervals, with
    the breakdown value marked.
    """
    block = (result.diagnostics.get("sensitivity") or {}).get("honest") or {}
    panels = [(name, b) for name, b in block.items() if isinstance(b, dict) and b.get("available")]
    if not panels:
        return None
    fig = Figure(figsize=(4.2 * len(panels), 3.4))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, bounds) in zip(axes, panels, strict=True):
        rows = [r for r in bounds.get("intervals", []) if r.get("lb") is not None and r.get("ub") is not None]
        symbol = "M̄" if name == "relative_magnitudes" else "M"
        labels = ["original"] + [f"{r['m']:.3g}" for r in rows]
        lows = [bounds["original"]["lb"], *(r["lb"] for r in rows)]
        highs = [bounds["original"]["ub"], *(r["ub"] for r in rows)]
        x = np.arange(len(labels))
        colours = [PRE] + [POST] * len(rows)
        for xi, lo, hi, colour in zip(x, lows, highs, colours, strict=True):
            ax.plot([xi, xi], [lo, hi], color=colour, linewidth=2.2, solid_capstyle="butt")
        ax.axhline(0.0, color="#444444", linewidth=0.8, linestyle=":")
        ax.set_xticks(x, labels, rotation=45 if len(labels) > 6 else 0, fontsize=8)
        ax.set_xlabel(f"{symbol} ({name.replace('_', ' ')})")
        ax.set_ylabel("Robust confidence interval")
        if bounds.get("breakdown") is not None:
            ax.set_title(f"breakdown {symbol} = {bounds['breakdown']:.3g}"
                         + (" (beyond grid)" if bounds.get("breakdown_status") == "beyond_grid" else ""), fontsize=9)
        ax.spines[["top", "right"]].set_visible(False)
    fig.suptitle(f"Sensitivity to violations of parallel trends ({result.analysis})", fontsize=10)
    fig.tight_layout()
    return fig
