"""Disclosure as a guarantee (#20): every shipped config, run for publication on data with cells of 3–9 pupils,
leaves no count under the threshold in any output file; the scanner itself is tested on planted leaks."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from evaltool.config import load_config
from evaltool.data.simulate import SimulationSettings, simulate, write_simulation
from evaltool.data.simulate_dfe import write_dfe_layout
from evaltool.pipeline import execute
from evaltool.report.disclosure import SUPPRESSED, is_count_name

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))
THRESHOLD = 10
#: Parts of results.json that are not about people: the disclosure record itself and the config echo; and
#: ``data.assembly``, the counts of published performance-table rows and GIAS register entries of sources:
#: (public, never pupils: evaltool.report.disclosure.PUBLIC_BLOCK), shown unsuppressed in its own report section.
NOT_PEOPLE = {"disclosure", "format", "seed", "assembly"}
ASSEMBLY_MD = re.compile(r"^### Data assembly.*?(?=^#)", re.S | re.M)
ASSEMBLY_HTML = re.compile(r'<div id="data-assembly".*?</div>', re.S)
#: Parts of manifest.json about the software and machine, not the data.
MANIFEST_MACHINE = {"packages", "platform", "timings_seconds"}
#: The scanner's own rules (written independently of the suppression's): a whole number, then at most five
#: whitespace-separated tokens within one clause (no ; : .), then a unit word ("only 4 joining and 3
#: never-joining schools"); and "n = 7".
#: Not counts: codes ("disadvantaged=0") and stated rules ("fewer than 2 matches").
UNITS = r"schools?|pupils?|students?|children|clusters?|trusts?|federations?|academies|rows?|observations?|cells?"
NEAR_UNIT = re.compile(rf"(?<![\w.,:=])(?<!than )(\d[\d,]*)(?![\w.:])(?=(?:\s+[^\s;:.]+){{0,5}}?\s+(?:{UNITS})\b)", re.I)
N_EQUALS = re.compile(r"\b[nN]\s*=\s*(\d[\d,]*)")


# ------------------------------------------------------------------ the scanner
def _small(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < THRESHOLD


def text_leaks(text: str, where: str) -> list[str]:
    """Numbers below the threshold written next to a unit word ("3 pupils", "only 0 joining and …", "n = 4")."""
    leaks = []
    for pattern, group in ((NEAR_UNIT, 1), (N_EQUALS, 1)):
        for match in pattern.finditer(text):
            if int(match.group(group).replace(",", "")) < THRESHOLD:
                start = max(match.start() - 40, 0)
                leaks.append(f"{where}: …{text[start:match.end() + 40]}…")
    return leaks


def json_leaks(value, where: str, name: str = "") -> list[str]:
    leaks: list[str] = []
    if isinstance(value, dict):
        if set(value) == {"columns", "data"} and isinstance(value["data"], list):
            columns = [str(c) for c in value["columns"]]
            for row in value["data"]:
                for column, cell in zip(columns, row, strict=False):
                    if is_count_name(column) and _small(cell):
                        leaks.append(f"{where}.{column} = {cell}")
                    elif isinstance(cell, str):
                        leaks += text_leaks(cell, f"{where}.{column}")
            return leaks
        for key, item in value.items():
            if str(key) in NOT_PEOPLE:
                continue
            leaks += json_leaks(item, f"{where}.{key}", str(key))
        return leaks
    if isinstance(value, list):
        for i, item in enumerate(value):
            leaks += json_leaks(item, f"{where}[{i}]", name)
        return leaks
    if isinstance(value, str):
        return text_leaks(value, where)
    if name and is_count_name(name) and _small(value):
        return [f"{where} = {value}"]
    return []


def csv_leaks(path: Path) -> list[str]:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    leaks = []
    for column in [c for c in frame.columns if is_count_name(c)]:
        numbers = pd.to_numeric(frame[column].where(frame[column].ne(SUPPRESSED)), errors="coerce")
        for i in frame.index[numbers.lt(THRESHOLD).fillna(False)]:
            leaks.append(f"{path.name} row {i + 2} {column} = {frame.at[i, column]}")
    if "n_pupils_min" in frame:  # a small group of pupils: its estimate is withheld too
        hidden = frame["n_pupils_min"].eq(SUPPRESSED) & frame["estimate"].ne(SUPPRESSED)
        leaks += [f"{path.name} row {i + 2}: estimate of a group of < {THRESHOLD} pupils" for i in frame.index[hidden]]
    return leaks


def markdown_table_leaks(text: str, where: str) -> list[str]:
    """Cells of columns headed like a count (n, schools, pupils …) in Markdown tables."""
    leaks = []
    header: list[str] | None = None
    for line in text.splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = [re.sub(r"\W+", "_", c.lower()).strip("_") for c in cells]
            continue
        if set("".join(cells)) <= set("-: "):
            continue
        for head, cell in zip(header, cells, strict=False):
            counting = is_count_name(head) or re.search(r"(^|_)(pupils|schools|trusts)$", head)
            if counting and re.fullmatch(r"\d+", cell.replace(",", "")) and int(cell.replace(",", "")) < THRESHOLD:
                leaks.append(f"{where}: column '{head}' = {cell}")
    return leaks


def svg_texts(svg: str) -> list[str]:
    """Every text of an SVG figure, one string per text element.

    Matplotlib draws glyphs as paths (``svg.fonttype: path``, the default) and writes each text string in the
    XML comment before its glyphs; with ``svg.fonttype: none`` it writes ``<text>`` elements instead.
    """
    found = re.findall(r"<!--(.*?)-->", svg, flags=re.S) + re.findall(r"<text[^>]*>(.*?)</text>", svg, flags=re.S)
    return [html.unescape(re.sub(r"<[^>]+>", " ", t)).strip() for t in found]


def scan_folder(folder: Path) -> list[str]:
    """Every count below the threshold found in an output folder (empty when the outputs are safe)."""
    leaks = csv_leaks(folder / "results.csv")
    payload = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    leaks += json_leaks(payload, "results.json")
    markdown = ASSEMBLY_MD.sub("", (folder / "report.md").read_text(encoding="utf-8"))
    prose = [line for line in markdown.splitlines() if not line.startswith("|")]  # tables: checked by column below
    leaks += [leak for line in prose for leak in text_leaks(line, "report.md")]
    leaks += markdown_table_leaks(markdown, "report.md")
    page = (folder / "report.html").read_text(encoding="utf-8")
    page = ASSEMBLY_HTML.sub(" ", re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S))
    page = re.sub(r"data:image/[^\"']+", " ", page)
    # Each element's text on its own line: table cells side by side are not one sentence.
    for line in html.unescape(re.sub(r"<[^>]+>", "\n", page)).splitlines():
        leaks += text_leaks(line, "report.html")
    for svg in sorted((folder / "figures").rglob("*.svg")):
        for text in svg_texts(svg.read_text(encoding="utf-8")):
            leaks += text_leaks(text, svg.name)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    # All of it (config echo, inputs, analyses, files) but the software and machine facts.
    leaks += json_leaks({k: v for k, v in manifest.items() if k not in MANIFEST_MACHINE}, "manifest.json")
    return leaks


# ------------------------------------------------------------------ the scanner can fail
def _matplotlib_svg(path: Path, text: str) -> None:
    """An SVG written by matplotlib as evaltool writes figures, with ``text`` drawn in it (and axis ticks)."""
    from matplotlib.figure import Figure

    from evaltool.report.figures import save_figure

    fig = Figure()
    ax = fig.add_subplot()
    ax.text(0.1, 0.5, text)
    ax.set_ylabel("schools")  # beside tick labels 0.0 … 1.0: each text is read on its own, not as "1.0 schools"
    save_figure(fig, path.parent, path.stem)


def test_scanner_finds_planted_leaks(tmp_path):
    pd.DataFrame({"analysis": ["a"], "n_treated": [3], "n_obs": ["c"], "estimate": [1.0]}).to_csv(tmp_path / "results.csv", index=False)
    payload = {"analyses": [{"warnings": ["only 0 joining and c never-joining schools"], "sample": {"n_rows_in": 4},
                             "diagnostics": {"t": {"columns": ["year", "n_pupils"], "data": [[2019, 6]]}}}]}
    (tmp_path / "results.json").write_text(json.dumps(payload))
    (tmp_path / "report.md").write_text("Effect for 7 pupils.\n\n| trust | schools |\n|---|---|\n| T1 | 4 |\n")
    (tmp_path / "report.html").write_text("<p>n = 5</p><img src='data:image/png;base64,AAAA 3 pupils'>")
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "f.svg").write_text("<svg><text>2 schools</text></svg>")
    _matplotlib_svg(tmp_path / "figures" / "report" / "g.svg", "skipped: only 3 joining and 40 never-joining schools")
    (tmp_path / "manifest.json").write_text(json.dumps({"analyses": [{"name": "a", "note": "n = 8"}]}))
    leaks = scan_folder(tmp_path)
    joined = "\n".join(leaks)
    for expected in ("n_treated = 3", "only 0 joining", "n_rows_in = 4", "n_pupils = 6", "7 pupils", "'schools' = 4",
                     "n = 5", "2 schools", "g.svg: …skipped: only 3 joining",
                     "manifest.json.analyses[0].note"):
        assert expected in joined, joined
    assert "AAAA" not in joined  # embedded images are not text


def test_scanner_passes_a_clean_folder(tmp_path):
    pd.DataFrame({"analysis": ["a"], "n_treated": ["c"], "n_pupils_min": ["c"], "estimate": ["c"]}).to_csv(tmp_path / "results.csv", index=False)
    (tmp_path / "results.json").write_text(json.dumps({"analyses": [{"warnings": ["c schools and 12 pupils"]}], "disclosure": {"n_withheld": 3}}))
    (tmp_path / "report.md").write_text("Based on 120 schools.\n")
    (tmp_path / "report.html").write_text("<p>2019: 40 pupils</p>")
    (tmp_path / "figures").mkdir()
    _matplotlib_svg(tmp_path / "figures" / "f.svg", "skipped: only c joining and 40 never-joining schools")
    (tmp_path / "manifest.json").write_text("{}")
    assert scan_folder(tmp_path) == []


# ------------------------------------------------------------------ the guarantee
@pytest.fixture(scope="module")
def small_cell_data(tmp_path_factory) -> Path:
    """Simulated data whose subgroup cells hold 1–9 pupils for most small subgroups (EAL, SEN, prior bands)."""
    root = tmp_path_factory.mktemp("small_cells")
    data = simulate(SimulationSettings(seed=5, n_schools=150, pupils_per_school=30))
    cells = data.subgroups["n_pupils"]
    assert ((cells >= 3) & (cells <= 9)).sum() > 1000  # the premise: many cells of 3–9 pupils
    write_simulation(data, root / "sample_data")
    write_dfe_layout(data, root / "sample_data", seed=5)  # for configs/federation_impact_dfe.yaml
    return root


@pytest.mark.slow
@pytest.mark.parametrize("config_path", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_shipped_config_for_publication_leaks_no_small_count(small_cell_data, config_path):
    configs = small_cell_data / "configs"
    configs.mkdir(exist_ok=True)
    text = config_path.read_text(encoding="utf-8")
    assert "\noutput:\n" in text
    text = text.replace("\noutput:\n", f"\noutput:\n  publication: true\n  suppression_threshold: {THRESHOLD}\n")
    target = configs / config_path.name
    target.write_text(text, encoding="utf-8")
    out = small_cell_data / "out" / config_path.stem
    run, folder = execute(load_config(target), out)
    assert [a.analysis for a in run.analyses if a.status == "ok"], "nothing ran: the scan would be vacuous"
    # Every method says what its counts count (the disclosure rules read it), and names a headline that exists.
    for result in (a for a in run.analyses if a.status == "ok"):
        assert result.diagnostics.get("count_unit") in ("pupils", "school-years", "schools", "studies"), result.analysis
        term = result.diagnostics.get("headline_term")
        assert term is None or term in {e.term for e in result.estimates}, result.analysis
    leaks = scan_folder(folder)
    assert not leaks, f"{len(leaks)} small counts leaked:\n" + "\n".join(leaks[:30])
