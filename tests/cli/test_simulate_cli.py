"""`evaltool simulate` writes a coherent data set that `evaltool validate` accepts."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from evaltool.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_simulate_then_validate(tmp_path):
    out = tmp_path / "data"
    result = CliRunner().invoke(main, ["simulate", "--seed", "3", "--schools", "60", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} == {
        "school_panel.csv", "subgroup_panel.csv", "pupils.parquet", "trusts.csv", "truth.json",
        ".evaltool-output.json",  # the marker that lets --overwrite replace this folder and nothing else (#20)
    }
    truth = json.loads((out / "truth.json").read_text())
    assert truth["settings"]["seed"] == 3
    config = (ROOT / "configs" / "federation_impact.yaml").read_text().replace("../sample_data/", "data/")
    (tmp_path / "config.yaml").write_text(config)
    result = CliRunner().invoke(main, ["validate", str(tmp_path / "config.yaml")])
    assert result.exit_code == 0, result.output
    assert "60 schools" in result.output


def test_simulate_refuses_existing_folder(tmp_path):
    result = CliRunner().invoke(main, ["simulate", "--schools", "30", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "already exists" in result.output


def test_simulate_is_reproducible(tmp_path):
    for name in ("a", "b"):
        assert CliRunner().invoke(main, ["simulate", "--seed", "9", "--schools", "40", "--out", str(tmp_path / name)]).exit_code == 0
    for file in ("school_panel.csv", "subgroup_panel.csv", "trusts.csv", "truth.json", "pupils.parquet"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes(), file
