"""Build ``report.html`` and ``report.md`` from a saved results folder.

The report is made only from what the run wrote (``results.json``,
``manifest.json`` and ``figures/``), never by re-estimating, so
``evaltool report OUTPUT_DIR`` rebuilds it at any time.  The flow is:

1. :func:`load_results` reads and checks the folder (clear errors for a folder
   that is not an evaltool output or has an incompatible results format);
2. :func:`~evaltool.report.disclosure.Disclosure` suppresses small counts in
   the whole payload;
3. :func:`build_view` turns the payload into plain rows and sentences
   (:mod:`evaltool.report.view`);
4. Jinja2 templates render the HTML (autoescaped, self-contained) and the
   Markdown.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from evaltool._version import __version__
from evaltool.errors import DataError
from evaltool.report.disclosure import DEFAULT_THRESHOLD, Disclosure
from evaltool.report.view import build_view

#: Formats of results.json this version can read.
SUPPORTED_FORMATS = frozenset({1})
REPORT_FILES = ("report.html", "report.md")


def load_results(folder: Path) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Read ``results.json`` (and ``manifest.json`` if present) from an output folder.

    Raises
    ------
    DataError
        If the folder does not exist, is not an evaltool output folder, or
        holds results in a format this version cannot read.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"The results folder '{folder}' does not exist. Give the folder written by `evaltool run`.")
    path = folder / "results.json"
    if not path.is_file():
        raise DataError(
            f"'{folder}' is not an evaltool output folder: it has no results.json. Give the folder written by "
            "`evaltool run CONFIG --out FOLDER` (it holds results.json, results.csv, manifest.json and figures/)."
        )
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"'{path}' is not valid JSON ({exc}); it was not written by evaltool or is damaged.") from None
    if not isinstance(payload, dict) or "format" not in payload or "analyses" not in payload:
        raise DataError(
            f"'{path}' is not an evaltool results file (no 'format' or 'analyses' key). Give the folder written by "
            "`evaltool run`."
        )
    fmt, version = payload.get("format"), payload.get("evaltool_version", "unknown")
    if fmt not in SUPPORTED_FORMATS:
        raise DataError(
            f"'{path}' was written by evaltool {version} in results format {fmt!r}; this evaltool ({__version__}) "
            f"reads format {', '.join(str(f) for f in sorted(SUPPORTED_FORMATS))}. Rerun the analysis with this "
            f"version (`evaltool run CONFIG`), or rebuild the report with evaltool {version}."
        )
    manifest = None
    manifest_path = folder / "manifest.json"
    if manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            manifest = None
    return payload, manifest


def configured_output(manifest: dict | None) -> dict[str, Any]:
    """The ``output`` block of the validated config recorded in the manifest (empty if unknown)."""
    try:
        return dict(manifest["config"]["validated"]["output"])  # type: ignore[index]
    except (KeyError, TypeError):
        return {}


def _environment(*, markdown: bool = False) -> Environment:
    """Jinja2 environment: HTML autoescaped; Markdown with raw HTML tags in values neutralised."""
    env = Environment(
        loader=PackageLoader("evaltool.report", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=True, default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=_md_text if markdown else None,
    )
    env.filters["md"] = _md_cell
    return env


HTML_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")


def _md_text(value: Any) -> Any:
    """Backslash-escape ``<`` that would open an HTML tag when the Markdown is converted (CommonMark §2.4)."""
    return HTML_TAG_START.sub(r"\\<", value) if isinstance(value, str) else value


def _md_cell(value: Any) -> str:
    """Text safe inside a Markdown table cell (pipes escaped, no line breaks)."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def render(view: dict[str, Any]) -> tuple[str, str]:
    """Render the view as (HTML, Markdown)."""
    html = _environment().get_template("report.html.j2").render(report=view)
    markdown = _environment(markdown=True).get_template("report.md.j2").render(report=view)
    return html, markdown


def write_report(
    results_dir: Path, *, threshold: int | None = None, publication: bool | None = None
) -> list[Path]:
    """Write ``report.html``, ``report.md`` and the report's own figures into ``results_dir``.

    Parameters
    ----------
    results_dir
        An output folder written by ``evaltool run``.
    threshold
        Small-number threshold; by default the run's
        ``output.suppression_threshold`` (from ``manifest.json``), else
        :data:`~evaltool.report.disclosure.DEFAULT_THRESHOLD`.
    publication
        Whether the output is for publication (shown in the report); by
        default the run's ``output.publication``.

    Returns
    -------
    The files written.
    """
    folder = Path(results_dir)
    payload, manifest = load_results(folder)
    output = configured_output(manifest)
    threshold = int(threshold if threshold is not None else output.get("suppression_threshold", DEFAULT_THRESHOLD))
    publication = bool(publication if publication is not None else output.get("publication", False))
    control = Disclosure(threshold)
    safe = control.payload(payload)
    view, report_figures = build_view(safe, payload, manifest, folder, publication=publication)
    written: list[Path] = []
    figure_dir = folder / "figures" / "report"
    if report_figures:
        from evaltool.report.figures import save_figure

        for stem, fig in report_figures.items():
            written.extend(save_figure(fig, figure_dir, stem))
    html, markdown = render(view)
    for name, text in zip(REPORT_FILES, (html, markdown), strict=True):
        (folder / name).write_text(text, encoding="utf-8")
        written.append(folder / name)
    return written
