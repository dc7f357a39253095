"""Save every analysis's figures as PNG and SVG."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

from evaltool.errors import FigureWarning
from evaltool.estimators.registry import get_method
from evaltool.report.disclosure import DEFAULT_THRESHOLD, withhold_small_groups

if TYPE_CHECKING:
    from evaltool.results import AnalysisResult
    from evaltool.results.run import RunResult

#: No dates or software versions in files, so reruns give identical bytes.
PNG_METADATA = {"Software": None}
SVG_METADATA = {"Date": None, "Creator": None}


def safe_stem(text: str) -> str:
    """A file name stem from user-derived text: letters, digits, '_', '-' and '.' only, never a path."""
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", str(text)).strip(".") or "figure"
    return stem[:150]


def save_figure(fig, folder: Path, stem: str) -> list[Path]:
    """Write ``stem.png`` and ``stem.svg`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = safe_stem(stem)
    png, svg = folder / f"{stem}.png", folder / f"{stem}.svg"
    # A fixed salt makes SVG element ids stable (scoped: the global rcParams are restored).
    with matplotlib.rc_context({"svg.hashsalt": "evaltool"}):
        fig.savefig(png, format="png", metadata=PNG_METADATA)
        fig.savefig(svg, format="svg", metadata=SVG_METADATA)
    return [png, svg]


def analysis_figures(result: AnalysisResult, threshold: int = DEFAULT_THRESHOLD) -> dict[str, Any]:
    """The figures of one successful analysis, by name, drawn from its disclosure-controlled result.

    Groups of fewer than ``threshold`` pupils are not drawn (:func:`~evaltool.report.disclosure.withhold_small_groups`).
    """
    method = get_method(result.method)
    result = withhold_small_groups(result, threshold)
    figures: dict[str, Any] = {}
    try:
        figures.update(method.figures(result) if method.figures is not None else {})
        if result.diagnostics.get("subgroups") is not None:
            from evaltool.report.plots_subgroups import forest_figure

            figures["subgroups_forest"] = forest_figure(result)
    except Exception as exc:  # a plotting bug must not cost the run its results (writing errors are not caught here)
        warnings.warn(
            f"The figures of analysis '{result.analysis}' could not be drawn ({type(exc).__name__}: {exc}); the "
            "results and the report are complete without them. This is a bug in evaltool; please report it.",
            FigureWarning, stacklevel=2,
        )
    return figures


def save_figures(run: RunResult, folder: Path, threshold: int = DEFAULT_THRESHOLD) -> dict[str, list[str]]:
    """Render the figures of every successful analysis; returns file names per analysis.

    Every figure is drawn from the disclosure-controlled result, whatever ``output.publication`` says
    (:func:`~evaltool.report.disclosure.withhold_small_groups`, the rules of results.json): statistics of
    groups of fewer than ``threshold`` pupils are not drawn and counts in figure text become ``c``, because
    the report, which always suppresses, embeds these figures.
    """
    written: dict[str, list[str]] = {}
    for result in run.analyses:
        if result.status != "ok":
            continue
        for name, fig in analysis_figures(result, threshold).items():
            paths = save_figure(fig, folder, f"{result.analysis}_{name}")
            written.setdefault(result.analysis, []).extend(p.name for p in paths)
    return written
