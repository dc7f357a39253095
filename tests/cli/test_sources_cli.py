"""A config with ``sources:`` end to end: its validation, ``evaltool ingest``, ``run`` and the raw files' safety.

The assembly rules themselves are tested in ``tests/data/dfe`` and the round trip in
``tests/data/test_simulate_dfe.py``; here: what a user of the CLI sees, and that no raw file is ever
overwritten or deleted.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from evaltool.cli import main
from evaltool.data.simulate import SimulationSettings, simulate
from evaltool.data.simulate_dfe import write_dfe_layout

ANALYSES = [{"name": "twfe", "method": "did_twfe"}]


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """80 simulated schools as DfE tables and GIAS extracts in ``root/dfe``, and their ``sources:`` mapping."""
    root = tmp_path_factory.mktemp("raw")
    written = write_dfe_layout(simulate(SimulationSettings(seed=9, n_schools=80)), root, seed=9)
    return root, written["sources"]


def _write(folder: Path, name: str, body: dict) -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(body, sort_keys=False), encoding="utf-8")
    return path


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def invoke(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


def _line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


# -- the config --------------------------------------------------------------------------------------------


def test_sources_alone_validates_with_the_preset_columns(raw: tuple[Path, dict]) -> None:
    root, sources = raw
    config = _write(root, "only_sources.yaml", {"sources": sources, "analyses": ANALYSES})
    result = invoke("validate", config)
    assert result.exit_code == 0, result.output
    assert "School panel: assembled from sources:" in result.output
    assert "URN chains merged:" in result.output and "markers read as missing:" in result.output


@pytest.mark.parametrize(
    ("extra", "message", "anchor"),
    [
        ({"data": {"panel": "panel.csv"}}, "data.panel and sources: both give the school panel", "sources:"),
        ({"data": {"subgroups": "sub.csv"}}, "data.subgroups and sources: both give the subgroup panel", "sources:"),
    ],
)
def test_sources_with_a_panel_file_is_refused_with_its_line(raw, extra, message, anchor) -> None:
    root, sources = raw
    config = _write(root, "both.yaml", {"sources": sources, **extra, "analyses": ANALYSES})
    result = invoke("validate", config)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert "both.yaml:" in result.output  # the YAML position is named


def test_neither_panel_nor_sources_is_refused(tmp_path: Path) -> None:
    config = _write(tmp_path, "none.yaml", {"columns": {"school": "urn", "year": "year", "outcomes": ["a8"]},
                                            "analyses": ANALYSES})
    result = invoke("validate", config)
    assert result.exit_code == 2
    assert "no school panel" in result.output and "sources:" in result.output


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("preset", "ks3", "sources.preset"),
        ("join_cutoff", "13-40", "sources.join_cutoff"),
        ("movers", "keep", "sources.movers"),
        ("gias_linkz", "x.csv", "sources.gias_linkz"),
    ],
)
def test_a_bad_sources_key_is_named_with_its_line(raw, key, value, expected) -> None:
    root, sources = raw
    config = _write(root, "bad.yaml", {"sources": {**sources, key: value}, "analyses": ANALYSES})
    result = invoke("validate", config)
    assert result.exit_code == 2, result.output
    assert expected in result.output, result.output
    assert f"bad.yaml:{_line_of(config, f'{key}:')}" in result.output, result.output
    assert "Traceback" not in result.output


# -- ingest ------------------------------------------------------------------------------------------------


def test_ingest_writes_the_panel_and_its_report_and_never_overwrites(raw: tuple[Path, dict], tmp_path: Path) -> None:
    root, sources = raw
    config = _write(root, "ingest.yaml", {"sources": sources, "analyses": ANALYSES})
    out = tmp_path / "panel.parquet"
    result = invoke("ingest", config, "--out", out)
    assert result.exit_code == 0, result.output
    panel = pd.read_parquet(out)
    assert {"urn", "source_urn", "urns", "year", "join_year", "trust_id", "trust_size", "academy"} <= set(panel.columns)
    assert not panel.duplicated(["urn", "year"]).any()
    assert panel["urn"].nunique() == 80 and not panel["year"].isin([2020, 2021]).any()
    report = json.loads((tmp_path / "panel.report.json").read_text())
    assert {"files", "steps", "markers", "exclusions", "urn_merges"} <= set(report)
    assert (tmp_path / "panel.subgroups.parquet").exists() and (tmp_path / "panel.trusts.csv").exists()
    before = _hashes(tmp_path)
    again = invoke("ingest", config, "--out", out)
    assert again.exit_code == 2 and "--overwrite" in again.output
    assert _hashes(tmp_path) == before
    assert invoke("ingest", config, "--out", out, "--overwrite").exit_code == 0
    # the written panel is a data.panel for a later config (no re-assembly)
    later = _write(tmp_path, "later.yaml", {
        "data": {"panel": "panel.parquet"},
        "columns": {"school": "urn", "year": "year", "join_year": "join_year", "trust": "trust_id",
                    "local_authority": "la_code", "outcomes": ["attainment8"]},
        "analyses": ANALYSES,
    })
    assert invoke("validate", later).exit_code == 0


def test_ingest_refuses_to_write_onto_a_raw_file(raw: tuple[Path, dict], tmp_path: Path) -> None:
    root, sources = raw
    config = _write(root, "onto.yaml", {"sources": sources, "analyses": ANALYSES})
    target = next((root / "dfe" / "ks4").glob("*.csv"))
    before = target.read_bytes()
    result = invoke("ingest", config, "--out", target.with_suffix(".csv"), "--overwrite")
    assert result.exit_code == 2 and "input" in result.output, result.output
    assert target.read_bytes() == before
    assert invoke("ingest", config, "--out", tmp_path / "panel.txt").exit_code == 2


def test_ingest_needs_a_sources_block(tmp_path: Path) -> None:
    pd.DataFrame({"urn": [100001, 100001], "year": [2018, 2019], "a8": [40.0, 41.0]}).to_csv(tmp_path / "p.csv",
                                                                                            index=False)
    config = _write(tmp_path, "tidy.yaml", {"data": {"panel": "p.csv"},
                                            "columns": {"school": "urn", "year": "year", "outcomes": ["a8"]},
                                            "analyses": ANALYSES})
    result = invoke("ingest", config, "--out", tmp_path / "out.parquet")
    assert result.exit_code == 2 and "sources" in result.output and "Traceback" not in result.output


# -- run ---------------------------------------------------------------------------------------------------


def test_run_from_sources_reports_the_assembly(raw: tuple[Path, dict], tmp_path: Path) -> None:
    root, sources = raw
    config = _write(root, "run.yaml", {"sources": sources, "analyses": ANALYSES})
    out = tmp_path / "results"
    result = invoke("run", config, "--out", out)
    assert result.exit_code == 0, result.output
    assembly = json.loads((out / "results.json").read_text())["data"]["assembly"]
    assert assembly["urn_merges"]["n_chains"] > 0 and assembly["markers"]
    assert any(x["reason"].startswith("summary row") for x in assembly["exclusions"])
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "### Data assembly (from the DfE and GIAS files)" in report
    assert "| SUPP | suppressed |" in report
    manifest = json.loads((out / "manifest.json").read_text())
    hashed = [entry["path"] for entry in manifest["inputs"].values() if entry.get("sha256")]
    assert sum("ks4final" in path for path in hashed) == 10  # every raw file is a hashed input
    assert sum("/gias/" in path for path in hashed) == 3


def test_run_never_writes_over_or_deletes_the_raw_files(raw: tuple[Path, dict]) -> None:
    root, sources = raw
    config = _write(root, "danger.yaml", {"sources": sources, "analyses": ANALYSES})
    before = _hashes(root / "dfe")
    for out in (root / "dfe", root / "dfe" / "ks4"):
        result = invoke("run", config, "--out", out, "--overwrite")
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
    assert _hashes(root / "dfe") == before
