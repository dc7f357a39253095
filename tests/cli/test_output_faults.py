"""Faults while a run writes (#20): signals, full or read-only disks, memory, a second run at once.

Each ends with a one-line message, the exit code the CLI promises, no ``.NAME.partial-*`` folder, no lock left
behind, and any earlier results untouched.  Tests run as root, where ``chmod`` does not stop writes, so the
faults are simulated by making the write call raise the ``OSError`` the system would.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import matplotlib.figure
import pytest
from click.testing import CliRunner

from evaltool.cli import main
from evaltool.results import writer

ROOT = Path(__file__).resolve().parents[2]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def leftovers(folder: Path) -> list[str]:
    """Temporary folders, moved-away old results and locks evaltool left beside its output."""
    return sorted(p.name for p in folder.iterdir() if any(s in p.name for s in (".partial-", ".old-", ".lock")))


def one_line(result) -> str:
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    return lines[0]


# A run whose writing stage stops after results.csv, until the test sends it a signal.
SLOW_RUN = textwrap.dedent(
    """
    import sys, time
    from evaltool.results import writer

    real = writer.write_results

    def slow(run, folder):
        real(run, folder)
        print("writing", flush=True)
        time.sleep(120)

    writer.write_results = slow
    from evaltool.cli import main
    main(["run", sys.argv[1], "--out", sys.argv[2]])
    """
)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 128 + signal.SIGTERM), (signal.SIGINT, 130)])
def test_a_signal_during_evaltool_run_removes_the_partial_folder_with_a_one_line_message(project, tmp_path, signum, code):
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_RUN, str(project), str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT
    )
    try:
        assert proc.stdout.readline().strip() == b"writing", proc.stderr.read1().decode()
        assert [p for p in tmp_path.iterdir() if ".partial-" in p.name]  # caught mid-write
        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == code, stderr.decode()
    lines = stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Interrupted"), stderr.decode()
    assert "no results folder was written" in lines[0]
    assert not out.exists()
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("code", "cause"),
    [
        (errno.ENOSPC, "no space left on the device"),
        (errno.EROFS, "the location is read-only"),
        (errno.EACCES, "permission denied"),
        (errno.EIO, "input/output error"),
    ],
)
def test_a_failed_figure_write_is_a_one_line_exit_2_and_leaves_nothing(project, tmp_path, monkeypatch, code, cause):
    def fail(self, *args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", fail)
    out = tmp_path / "out"
    result = invoke("run", project, "--out", out)
    assert result.exit_code == 2, result.output
    line = one_line(result)
    assert line == (
        f"Error: Cannot write the results to '{out}': {cause}. Nothing was written; free space or choose another "
        "folder with --out."
    )
    assert not out.exists()
    assert leftovers(tmp_path) == []


def test_a_fault_while_replacing_keeps_the_previous_results(project, tmp_path, monkeypatch):
    out = tmp_path / "out"
    assert invoke("run", project, "--out", out).exit_code == 0
    before = snapshot(out)
    real = writer.rename_noreplace

    def full_disk(src, dst):
        if ".partial-" in Path(src).name:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(src, dst)

    monkeypatch.setattr(writer, "rename_noreplace", full_disk)
    result = invoke("run", project, "--out", out, "--overwrite")
    assert result.exit_code == 2
    assert "no space left on the device" in one_line(result)
    assert snapshot(out) == before  # the earlier results are back in place, complete
    assert leftovers(tmp_path) == []


def test_out_of_memory_while_writing_exits_1_with_one_line_and_no_folder(project, tmp_path, monkeypatch):
    def exhausted(run, folder):
        (folder / "results.csv").write_text("partial")
        raise MemoryError

    monkeypatch.setattr(writer, "write_results", exhausted)
    out = tmp_path / "out"
    result = invoke("run", project, "--out", out)
    assert result.exit_code == 1
    assert one_line(result).startswith("Out of memory; no results folder was written.")
    assert not out.exists()
    assert leftovers(tmp_path) == []


HOLD_LOCK = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from evaltool.results.writer import output_lock
    with output_lock(Path(sys.argv[1])):
        print("locked", flush=True)
        time.sleep(120)
    """
)


def test_a_run_in_another_process_blocks_until_it_ends_even_if_killed(project, tmp_path):
    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(out)], stdout=subprocess.PIPE, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == b"locked"
        result = invoke("run", project, "--out", out)
        assert result.exit_code == 2
        line = one_line(result)
        assert f"Another evaltool run (process {holder.pid}) is writing to '{out}'" in line
        assert f"lock file '{tmp_path / '.out.lock'}'" in line and "stale" in line
        assert not out.exists()
        holder.send_signal(signal.SIGKILL)  # no clean-up at all: the lock file stays behind
        holder.wait(timeout=30)
    finally:
        holder.kill()
    assert (tmp_path / ".out.lock").exists()
    result = invoke("run", project, "--out", out)
    assert result.exit_code == 0, result.output  # a dead run's lock does not block
    assert leftovers(tmp_path) == []


def test_a_plotting_bug_costs_only_that_analysis_its_figures(project, tmp_path, monkeypatch):
    """A figure function that raises (not a write error) leaves a complete results folder and a warning."""
    import dataclasses

    from evaltool.estimators.registry import get_method

    def broken(result):
        raise ZeroDivisionError("a plotting bug")

    monkeypatch.setattr("evaltool.report.figures.get_method",
                        lambda name: dataclasses.replace(get_method(name), figures=broken))
    out = tmp_path / "out"
    result = invoke("run", project, "--out", out)
    assert result.exit_code == 0, result.output
    assert "Warning: The figures of analysis 'main' could not be drawn (ZeroDivisionError: a plotting bug)" in result.output
    assert (out / "results.csv").is_file() and (out / "report.html").is_file()
    assert list(out.glob("figures/main_*")) == []
