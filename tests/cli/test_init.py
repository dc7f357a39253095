"""`evaltool init`: a config scaffolded from the files a user has, which validates after review."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml
from click.testing import CliRunner

from evaltool.cli import main
from evaltool.config import load_config
from evaltool.config.scaffold import recognise, scaffold_config

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"


def test_tidy_sample_files_give_a_config_that_validates(tmp_path):
    for name in ("school_panel.csv", "subgroup_panel.csv", "trusts.csv", "README.md"):
        shutil.copy(SAMPLE / name, tmp_path / name)
    result = CliRunner().invoke(main, ["init", *sorted(str(p) for p in tmp_path.iterdir()), "--base", str(tmp_path)])
    assert result.exit_code == 0, result.output
    text = result.output
    assert "REVIEW" in text and "README.md" in text  # guesses and the unrecognised file are marked for review
    parsed = yaml.safe_load(text)
    assert parsed["data"] == {"panel": "school_panel.csv", "subgroups": "subgroup_panel.csv", "trusts": "trusts.csv"}
    assert parsed["columns"]["school"] == "urn" and parsed["columns"]["trust"] == "trust_id"
    assert parsed["columns"]["outcomes"] == ["attainment8"]
    assert "ks2_prior" in parsed["columns"]["covariates"]
    (tmp_path / "evaluation.yaml").write_text(text, encoding="utf-8")
    config = load_config(tmp_path / "evaluation.yaml")
    assert config.analyses[0].method == "did_staggered"


def test_raw_dfe_and_gias_files_are_recognised_from_their_headers(tmp_path):
    dfe = tmp_path / "dfe"
    dfe.mkdir()
    for year in ("2017-2018", "2018-2019"):
        (dfe / f"{year}_england_ks4final.csv").write_text("URN,SCHNAME,LEA,ATT8SCR\n100001,A,201,45.1\n", encoding="cp1252")
    (tmp_path / "academiesmatmembership.csv").write_text(
        "Group UID,Group Name,URN,Date Joined Group,Date Left Group\n", encoding="cp1252")
    (tmp_path / "links.csv").write_text("URN,LinkURN,LinkName,LinkType,LinkEstablishedDate\n", encoding="cp1252")
    found = recognise(sorted(dfe.iterdir()) + [tmp_path / "academiesmatmembership.csv", tmp_path / "links.csv"])
    assert len(found.tables["ks4_table"]) == 2 and set(found.gias) == {"gias_membership", "gias_links"}
    text = scaffold_config(sorted(dfe.iterdir()) + [tmp_path / "academiesmatmembership.csv", tmp_path / "links.csv"],
                           tmp_path)
    parsed = yaml.safe_load(text)
    assert parsed["sources"]["performance_tables"] == ["dfe/*england_ks4final.csv"]  # one glob for the years
    assert parsed["sources"]["gias_membership"] == "academiesmatmembership.csv"
    assert "# gias_establishments: CHANGE_ME" in text  # the missing file is named for review


def test_nothing_recognisable_is_a_clear_error(tmp_path):
    (tmp_path / "notes.txt").write_text("", encoding="utf-8")
    result = CliRunner().invoke(main, ["init", str(tmp_path / "notes.txt")])
    assert result.exit_code == 2
    assert "None of the files" in result.output and "URN, ATT8SCR" in result.output
