"""Output safety (#20): never delete a user's files, atomic writes that survive signals and faults, one run at a time."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from click.testing import CliRunner

from evaltool.cli import main
from evaltool.errors import OutputError
from evaltool.results import writer

ROOT = Path(__file__).resolve().parents[2]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_refused(result, *fragments):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output, result.output


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def no_partial(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if ".partial-" in p.name or p.name.endswith(".lock")]


# ------------------------------------------------------------- inputs are safe
def test_overwrite_cannot_remove_the_folder_that_holds_config_and_data(project):
    folder = project.parent
    before = snapshot(folder)
    assert_refused(invoke("run", project, "--out", folder, "--overwrite"), "holds the input", "--out")
    assert snapshot(folder) == before


def test_output_folder_dot_with_overwrite_in_the_config_is_refused(project):
    text = project.read_text()
    project.write_text(text + "\noutput:\n  folder: '.'\n  overwrite: true\n")
    before = snapshot(project.parent)
    assert_refused(invoke("run", project), "holds the input")
    assert snapshot(project.parent) == before


def test_output_cannot_be_a_parent_of_an_input(tmp_path, project):
    # The data sit two levels below the output folder.
    deep = tmp_path / "study" / "inputs"
    deep.mkdir(parents=True)
    (deep / "panel.csv").write_bytes((project.parent / "panel.csv").read_bytes())
    config = deep / "config.yaml"
    config.write_text(project.read_text())
    before = snapshot(tmp_path / "study")
    assert_refused(invoke("run", config, "--out", tmp_path / "study", "--overwrite"), "holds the input")
    assert snapshot(tmp_path / "study") == before


def test_overwrite_refuses_a_folder_with_foreign_files_and_names_the_file(project, tmp_path):
    out = tmp_path / "out"
    assert invoke("run", project, "--out", out).exit_code == 0
    (out / "figures" / "my_notes.txt").write_text("mine")
    assert_refused(invoke("run", project, "--out", out, "--overwrite"), "my_notes.txt", "not written by evaltool")
    assert (out / "figures" / "my_notes.txt").read_text() == "mine"
    (out / "figures" / "my_notes.txt").unlink()
    assert invoke("run", project, "--out", out, "--overwrite").exit_code == 0  # its own folder: replaced
    assert no_partial(tmp_path)


def test_overwrite_refuses_a_plain_user_folder(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.docx").write_text("years of work")
    with pytest.raises(OutputError, match="thesis.docx"):
        with writer.atomic_folder(out, overwrite=True) as tmp:
            (tmp / "a.txt").write_text("x")
    assert (out / "thesis.docx").read_text() == "years of work"
    assert no_partial(tmp_path)


def test_simulate_overwrite_replaces_only_its_own_folder(tmp_path):
    out = tmp_path / "data"
    assert invoke("simulate", "--schools", "30", "--out", out).exit_code == 0
    assert invoke("simulate", "--schools", "30", "--seed", "5", "--out", out, "--overwrite").exit_code == 0
    (out / "extra.csv").write_text("user")
    assert_refused(invoke("simulate", "--schools", "30", "--out", out, "--overwrite"), "extra.csv")
    assert (out / "extra.csv").exists()


def test_a_folder_that_appears_while_writing_is_not_touched(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(OutputError, match="appeared while the results were being written"):
        with writer.atomic_folder(out) as tmp:
            (tmp / "results.csv").write_text("x\n")
            out.mkdir()
            (out / "users_file.txt").write_text("keep me")
    assert (out / "users_file.txt").read_text() == "keep me"
    assert no_partial(tmp_path)


# ------------------------------------------------------------ signals, faults
SLOW_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from evaltool.results.writer import atomic_folder, output_lock
    out = Path(sys.argv[1])
    with output_lock(out):
        with atomic_folder(out) as tmp:
            (tmp / "results.csv").write_text("half")
            print("writing", flush=True)
            time.sleep(60)
    """
)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_writing_removes_the_partial_folder_and_the_lock(tmp_path, signum):
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, str(out)], stdout=subprocess.PIPE, cwd=ROOT)
    try:
        assert proc.stdout.readline().strip() == b"writing"
        assert [p for p in tmp_path.iterdir() if ".partial-" in p.name]
        proc.send_signal(signum)
        code = proc.wait(timeout=30)
    finally:
        proc.kill()
    assert code != 0
    assert not out.exists()
    assert no_partial(tmp_path), list(tmp_path.iterdir())


def test_a_second_concurrent_run_to_the_same_output_fails_clearly(project, tmp_path):
    out = tmp_path / "out"
    with writer.output_lock(out):
        assert_refused(
            invoke("run", project, "--out", out),
            f"Another evaltool run (process {os.getpid()}) is writing",
            ".out.lock",
            "the lock is stale: delete it",
        )
    assert not out.exists()
    assert invoke("run", project, "--out", out).exit_code == 0  # lock released


def test_a_stale_lock_of_a_dead_process_is_taken_over(project, tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / ".out.lock").write_text(f"{dead.pid}\n")
    assert invoke("run", project, "--out", tmp_path / "out").exit_code == 0
    assert not (tmp_path / ".out.lock").exists()


@pytest.mark.parametrize(
    ("code", "cause"),
    [(errno.ENOSPC, "no space left on the device"), (errno.EROFS, "read-only"), (errno.EACCES, "permission denied")],
)
def test_write_faults_end_with_exit_2_a_one_line_cause_and_no_folder(project, tmp_path, monkeypatch, code, cause):
    def failing(run, folder):
        (folder / "results.csv").write_text("partial")
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(writer, "write_results", failing)
    out = tmp_path / "out"
    result = invoke("run", project, "--out", out)
    assert_refused(result, cause, "Nothing was written")
    assert len(result.output.strip().splitlines()) == 1
    assert not out.exists()
    assert no_partial(tmp_path)


def test_an_unwritable_location_is_a_clear_error(project, tmp_path, monkeypatch):
    real_mkdir = Path.mkdir

    def refuse(self, *args, **kwargs):
        if self == tmp_path / "ro":
            raise OSError(errno.EROFS, "Read-only file system")
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", refuse)
    assert_refused(invoke("run", project, "--out", tmp_path / "ro" / "out"), "read-only")


# --------------------------------------------------------------- injection
def test_text_cells_that_a_spreadsheet_would_run_are_escaped_numbers_are_not():
    frame = pd.DataFrame(
        {
            "term": ["=HYPERLINK(\"http://x\")", "+1", "-cmd", "@SUM(A1)", "\tx", "\rx", "plain", None],
            "estimate": [-1.5, 2.0, -3.0, 0.0, 1.0, 1.0, 1.0, 1.0],
        }
    )
    safe = writer.csv_safe(frame)
    assert safe["term"].tolist()[:7] == ["'=HYPERLINK(\"http://x\")", "'+1", "'-cmd", "'@SUM(A1)", "'\tx", "'\rx", "plain"]
    assert pd.isna(safe["term"].iloc[7])
    assert safe["estimate"].tolist() == frame["estimate"].tolist()
    assert frame["term"].iloc[0].startswith("=")  # the caller's frame is unchanged


def test_results_csv_escapes_formula_text(tmp_path):
    tidy = pd.DataFrame({"analysis": ["a"], "term": ["=cmd|' /C calc'!A0"], "subgroup": ["@evil"], "estimate": [-2.5]})
    run = SimpleNamespace(tidy=lambda: tidy, to_dict=lambda: {"analyses": []})
    writer.write_results(run, tmp_path)
    text = (tmp_path / "results.csv").read_text()
    assert "'=cmd" in text and "'@evil" in text and ",-2.5" in text
    for line in text.splitlines()[1:]:
        assert not any(cell.startswith(("=", "+", "@")) for cell in line.split(","))


@pytest.mark.parametrize(
    "name", ["../../escape", "a/b", "x\x00y", "..", "naïve name", "\x1b[31mred", "tab\tand\nnewline", "<absolute>"]
)
def test_figure_file_names_from_user_text_stay_in_the_figures_folder(tmp_path, name):
    import re

    import matplotlib.pyplot as plt

    from evaltool.report.figures import save_figure

    # Deep enough that an unsanitised '../..' or absolute name still lands inside tmp_path.
    figures = tmp_path / "run" / "out" / "figures"
    name = str(tmp_path / "elsewhere" / "figure") if name == "<absolute>" else name
    fig = plt.figure()
    try:
        paths = save_figure(fig, figures, name)
    finally:
        plt.close(fig)
    for path in paths:
        assert path.parent == figures and path.exists()
        # Plain, visible names only: no separators, control characters, spaces or leading dot.
        assert re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*\.(png|svg)", path.name), path.name
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == sorted(p.name for p in paths)


# ------------------------------------------------ what counts as evaltool's own
def test_overwrite_cannot_replace_the_current_folder_or_its_parent(project, tmp_path, monkeypatch):
    out = tmp_path / "out"
    assert invoke("run", project, "--out", out).exit_code == 0  # an evaltool folder, replaceable as such
    before = snapshot(out)
    monkeypatch.chdir(out / "figures")
    assert_refused(invoke("run", project, "--out", out, "--overwrite"), "is the current folder or holds it")
    assert_refused(invoke("run", project, "--out", "..", "--overwrite"), "is the current folder or holds it")
    assert snapshot(out) == before


def test_overwrite_cannot_replace_a_folder_holding_an_analysis_input(project, tmp_path):
    # A meta-analysis of an earlier run's results.csv: the earlier output folder is now an input's folder.
    earlier = tmp_path / "earlier"
    assert invoke("run", project, "--out", earlier).exit_code == 0
    meta = (
        "  - name: pooled\n    method: meta_analysis\n"
        f"    effects_file: {earlier / 'results.csv'}\n"
        "    study_column: analysis\n    estimate_column: estimate\n    std_error_column: std_error\n"
    )
    project.write_text(project.read_text() + meta)
    before = snapshot(earlier)
    assert_refused(invoke("run", project, "--out", earlier, "--overwrite"), "holds the input", "results.csv")
    assert snapshot(earlier) == before


def test_output_given_as_a_link_to_the_data_folder_is_refused(project, tmp_path):
    link = tmp_path.parent / f"{tmp_path.name}-link"
    link.symlink_to(tmp_path, target_is_directory=True)
    try:
        before = snapshot(tmp_path)
        assert_refused(invoke("run", project, "--out", link, "--overwrite"), "holds the input")
        assert snapshot(tmp_path) == before
    finally:
        link.unlink()


@pytest.mark.parametrize(
    "manifest",
    [
        {"files": ["notes.txt"]},  # a "files" list alone is not evaltool's marker
        {"format": 1, "files": ["notes.txt"]},
        {"created_by": "someone", "evaltool_version": "1", "files": ["notes.txt"]},
    ],
)
def test_a_look_alike_manifest_does_not_make_a_folder_replaceable(tmp_path, manifest):
    import json

    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "manifest.json").write_text(json.dumps(manifest))
    (out / ".evaltool-output.json").write_text(json.dumps({k: v for k, v in manifest.items() if k != "format"}))
    with pytest.raises(OutputError, match="no evaltool manifest"):
        with writer.atomic_folder(out, overwrite=True) as tmp:
            (tmp / "a.txt").write_text("x")
    assert (out / "notes.txt").read_text() == "mine"
    assert no_partial(tmp_path)


def test_a_pipe_or_link_inside_an_evaltool_folder_is_foreign(project, tmp_path):
    out = tmp_path / "out"
    assert invoke("run", project, "--out", out).exit_code == 0
    os.mkfifo(out / "figures" / "pipe")
    assert_refused(invoke("run", project, "--out", out, "--overwrite"), "'figures/pipe' is not a regular file")
    (out / "figures" / "pipe").unlink()
    (out / "data").symlink_to(tmp_path, target_is_directory=True)
    assert_refused(invoke("run", project, "--out", out, "--overwrite"), "'data' is a symbolic link")
    assert (tmp_path / "panel.csv").exists()


def test_a_file_added_while_replacing_is_kept_with_the_old_results(tmp_path, monkeypatch):
    out = tmp_path / "out"
    with writer.atomic_folder(out) as tmp:
        (tmp / "results.csv").write_text("old\n")
    before = snapshot(out)
    real = writer.check_output_folder
    calls = []

    def check_then_user_writes(*args, **kwargs):
        real(*args, **kwargs)
        calls.append(1)
        if len(calls) == 2:  # the re-check just before the old folder is moved away
            (out / "draft.txt").write_text("typed just now")

    monkeypatch.setattr(writer, "check_output_folder", check_then_user_writes)
    with pytest.raises(OutputError, match="changed while the results were written.*draft.txt"):
        with writer.atomic_folder(out, overwrite=True) as tmp:
            (tmp / "results.csv").write_text("new\n")
    assert snapshot(out) == {**before, "draft.txt": b"typed just now"}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]


def test_an_empty_folder_that_appears_is_not_replaced_either(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(OutputError, match="appeared while the results were being written"):
        with writer.atomic_folder(out) as tmp:
            (tmp / "results.csv").write_text("x\n")
            out.mkdir()
            inode = out.stat().st_ino
    assert out.stat().st_ino == inode and not any(out.iterdir())
    assert no_partial(tmp_path)


def test_rename_noreplace_never_replaces_an_empty_folder(tmp_path):
    # os.rename(src, dst) would silently replace an empty dst folder (POSIX rename(2)).
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    (src / "a.txt").write_text("a")
    dst.mkdir()
    with pytest.raises(FileExistsError):
        writer.rename_noreplace(src, dst)
    assert (src / "a.txt").exists() and dst.is_dir() and not any(dst.iterdir())
    dst.rmdir()
    writer.rename_noreplace(src, dst)
    assert (dst / "a.txt").read_text() == "a" and not src.exists()


def test_report_rebuild_keeps_the_folder_replaceable(project, tmp_path):
    import json

    out = tmp_path / "out"
    assert invoke("run", project, "--out", out).exit_code == 0
    extra = out / "figures" / "report" / "new_figure.png"
    extra.parent.mkdir(parents=True, exist_ok=True)
    extra.write_bytes(b"png")
    writer.record_files(out, [extra])
    assert "figures/report/new_figure.png" in json.loads((out / "manifest.json").read_text())["files"]
    assert invoke("report", out).exit_code == 0
    assert invoke("run", project, "--out", out, "--overwrite").exit_code == 0


def test_csv_column_names_are_escaped_too():
    frame = pd.DataFrame({"=cmd": ["a"], "estimate": [-1.0]})
    assert list(writer.csv_safe(frame).columns) == ["'=cmd", "estimate"]
