"""The command line: exit codes, messages without tracebacks, no partial output."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from evaltool.cli import main
from tests.conftest import CONFIG_TEMPLATE


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_user_error(result, *fragments):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.output.startswith("Error: ")
    for fragment in fragments:
        assert fragment in result.output, result.output


def test_run_writes_the_three_files(project, tmp_path):
    out = tmp_path / "out"
    result = invoke("run", project, "--out", out)
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} == {"results.csv", "results.json", "manifest.json", "figures", "report.html", "report.md"}
    tidy = pd.read_csv(out / "results.csv")
    expected = {"analysis", "method", "outcome", "estimand", "term", "subgroup", "estimate", "std_error",
                "ci_lower", "ci_upper", "p_value", "n_treated", "n_control", "n_obs"}
    assert expected <= set(tidy.columns)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 7
    assert len(manifest["config"]["sha256"]) == 64
    assert set(manifest["inputs"]) == {"data.panel"}
    assert "analysis:main" in manifest["timings_seconds"]
    assert manifest["packages"]["numpy"]
    results = json.loads((out / "results.json").read_text())
    assert results["analyses"][0]["status"] == "ok"
    assert results["analyses"][0]["sample"]["exclusions"]


def test_reruns_are_byte_identical(project, tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    assert invoke("run", project, "--out", first).exit_code == 0
    assert invoke("run", project, "--out", second).exit_code == 0
    for name in ("results.csv", "results.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_shuffled_rows_give_identical_results(project, tmp_path, panel_frame):
    assert invoke("run", project, "--out", tmp_path / "a").exit_code == 0
    panel_frame.sample(frac=1, random_state=3).to_csv(project.parent / "panel.csv", index=False)
    assert invoke("run", project, "--out", tmp_path / "b").exit_code == 0
    assert (tmp_path / "a" / "results.csv").read_bytes() == (tmp_path / "b" / "results.csv").read_bytes()


def test_existing_output_folder_is_refused_then_overwritten(project, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    assert_user_error(invoke("run", project, "--out", out), "already exists", "--overwrite")
    assert (out / "keep.txt").exists()
    # --overwrite replaces only evaltool's own output folders: a user's file is never deleted (#20).
    assert_user_error(invoke("run", project, "--out", out, "--overwrite"), "keep.txt", "not written by evaltool")
    assert (out / "keep.txt").read_text() == "x"
    (out / "keep.txt").unlink()
    out.rmdir()
    assert invoke("run", project, "--out", out).exit_code == 0
    first = (out / "manifest.json").read_bytes()
    result = invoke("run", project, "--out", out, "--overwrite")
    assert result.exit_code == 0, result.output
    assert (out / "results.csv").exists() and (out / "manifest.json").read_bytes() != b""
    assert first  # the earlier run's folder was replaced, not merged
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]


def no_output(tmp_path):
    return not (tmp_path / "out").exists() and not [p for p in tmp_path.iterdir() if ".partial" in p.name]


def test_missing_file(project, tmp_path):
    (project.parent / "panel.csv").unlink()
    assert_user_error(invoke("run", project, "--out", tmp_path / "out"), "data.panel does not exist")
    assert no_output(tmp_path)


def test_wrong_delimiter(project, tmp_path, panel_frame):
    panel_frame.to_csv(project.parent / "panel.csv", index=False, sep="\t")
    assert_user_error(invoke("run", project, "--out", tmp_path / "out"), "data.panel.delimiter: '\\t'")
    assert no_output(tmp_path)


def test_missing_mapped_column(project, tmp_path, panel_frame):
    panel_frame.drop(columns=["fsm"]).to_csv(project.parent / "panel.csv", index=False)
    assert_user_error(invoke("run", project, "--out", tmp_path / "out"), "'fsm' (covariate), mapped by columns.covariates[0]")
    assert no_output(tmp_path)


def test_duplicate_rows(project, tmp_path, panel_frame):
    pd.concat([panel_frame, panel_frame.head(2)]).to_csv(project.parent / "panel.csv", index=False)
    assert_user_error(invoke("run", project, "--out", tmp_path / "out"), "share a urn × year")
    assert no_output(tmp_path)


def test_non_numeric_outcome(project, tmp_path, panel_frame):
    panel_frame.astype({"att8": object}).assign(att8=lambda d: d["att8"].where(d.index != 9, "n/k")).to_csv(
        project.parent / "panel.csv", index=False
    )
    assert_user_error(invoke("run", project, "--out", tmp_path / "out"), "Column 'att8' (outcome)", "'n/k'")
    assert no_output(tmp_path)


def test_join_year_varying(project, tmp_path, panel_frame):
    frame = panel_frame.copy()
    frame.loc[(frame["join_year"] == 2018) & (frame["year"] == 2012), "join_year"] = 2019
    frame.to_csv(project.parent / "panel.csv", index=False)
    assert_user_error(invoke("run", project, "--out", tmp_path / "out"), "must be the same in every row of a school")
    assert no_output(tmp_path)


def test_typo_key(project, tmp_path):
    project.write_text(CONFIG_TEMPLATE.replace("pre_years", "pre_yeras"))
    assert_user_error(
        invoke("run", project, "--out", tmp_path / "out"), "analyses[0].pre_yeras (config.yaml:16:5)", "did you mean 'pre_years'"
    )
    assert no_output(tmp_path)


def test_unknown_method(project, tmp_path):
    project.write_text(CONFIG_TEMPLATE.replace("did_2x2", "synthetic_control"))
    assert_user_error(invoke("run", project, "--out", tmp_path / "out"), "unknown method 'synthetic_control'", "available methods")
    assert no_output(tmp_path)


def test_estimation_failure_is_reported_and_others_run(project, tmp_path):
    extra = "\n  - name: impossible\n    method: did_2x2\n    pre_years: [2012]\n    post_years: [2013]\n"
    project.write_text(CONFIG_TEMPLATE + extra)
    result = invoke("run", project, "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert "impossible (did_2x2): FAILED: No treated schools" in result.output
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [a["status"] for a in data["analyses"]] == ["ok", "failed"]


def test_validate_prints_summary_without_estimating(project, tmp_path):
    result = invoke("validate", project)
    assert result.exit_code == 0, result.output
    assert "120 schools" in result.output
    assert "joining cohorts" in result.output and "2016:" in result.output
    assert "never joined:" in result.output
    assert "flagged:" in result.output
    assert not (project.parent / "results").exists()


def test_validate_reports_errors(project):
    project.write_text(CONFIG_TEMPLATE.replace("seed: 7", "seed: x"))
    assert_user_error(invoke("validate", project), "seed (config.yaml:2:1)")


def test_schema_is_json_with_methods():
    result = invoke("schema")
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert "analyses" in schema["properties"]
    assert "did_2x2" in json.dumps(schema)


def test_debug_shows_traceback(project, tmp_path):
    (project.parent / "panel.csv").unlink()
    result = CliRunner().invoke(main, ["--debug", "run", str(project), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2


@pytest.mark.parametrize("command", ["run", "validate"])
def test_missing_config(tmp_path, command):
    assert_user_error(invoke(command, tmp_path / "none.yaml"), "does not exist")
