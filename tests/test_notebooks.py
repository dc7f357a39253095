"""Every notebook of docs/notebooks/ runs from top to bottom without an error, its own asserts included.

How a notebook is run (documented in docs/notebooks/index.md):

* each notebook is copied into a fresh temporary folder and executed there (that folder is the working
  directory, so whatever a notebook writes stays out of the repository);
* the environment variable ``EVALTOOL_REPO`` holds the repository root, so the notebook reads
  ``$EVALTOOL_REPO/configs/...`` and ``$EVALTOOL_REPO/sample_data/...`` (its first cell falls back to the
  nearest folder above the working directory with ``configs/`` and ``sample_data/`` when run by hand);
* the kernel is ``python3`` pointing at this interpreter (``sys.executable``, i.e. the venv that has
  evaltool installed), through a kernelspec written into the temporary ``JUPYTER_PATH``, so a system-wide
  ``python3`` kernel of another Python is never picked up;
* each cell may take at most 300 s; an error in any cell (an ``AssertionError`` of the notebook's own
  checks included) fails the test with the notebook, cell number and error.

The docs build (mkdocs-jupyter, ``execute: false``) never executes notebooks; this test does.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO / "docs" / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT = 300  # seconds per cell

nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed (pip install -e '.[docs]')")
nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed (pip install -e '.[docs]')")
pytest.importorskip("ipykernel", reason="ipykernel is not installed (pip install -e '.[docs]')")


def _params() -> list:
    if not NOTEBOOKS:
        return [pytest.param(None, id="no-notebooks")]
    return [pytest.param(path, id=path.stem) for path in NOTEBOOKS]


def _skip_if_none(path: Path | None) -> Path:
    if path is None:
        pytest.skip(f"no notebooks in {NOTEBOOK_DIR.relative_to(REPO)}/ to execute")
    return path


def _code_sources(notebook) -> list[str]:
    return [cell.source for cell in notebook.cells if cell.cell_type == "code"]


@pytest.fixture
def kernel_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``python3`` kernelspec for this interpreter, first on ``JUPYTER_PATH``; returns the working dir."""
    spec_dir = tmp_path / "jupyter" / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (evaltool tests)",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("EVALTOOL_REPO", str(REPO))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # quiet the debugger's frozen-modules note
    work = tmp_path / "work"
    work.mkdir()
    return work


@pytest.mark.parametrize("path", _params())
def test_notebook_is_stored_without_outputs(path: Path | None) -> None:
    path = _skip_if_none(path)
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    with_outputs = [i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code" and (cell.outputs or cell.execution_count)]
    assert not with_outputs, f"{path.name}: code cells {with_outputs} are stored with outputs; clear them (or rerun make_notebooks.py)"
    assert any("assert" in source for source in _code_sources(notebook)), (
        f"{path.name} checks nothing: end it with a cell of assert statements on its results"
    )


# Not marked slow: each notebook takes 10-25 s (mark them slow if one comes to take over 60 s).
@pytest.mark.parametrize("path", _params())
def test_notebook_executes_without_errors(path: Path | None, kernel_env: Path) -> None:
    path = _skip_if_none(path)
    copy = kernel_env / path.name
    shutil.copyfile(path, copy)
    notebook = nbformat.read(copy, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(kernel_env)}},
    )
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as exc:
        pytest.fail(f"{path.name}: a cell raised {exc.ename}: {exc.evalue}\n{exc}", pytrace=False)
    except nbclient.exceptions.CellTimeoutError as exc:
        pytest.fail(f"{path.name}: a cell ran longer than {CELL_TIMEOUT} s: {exc}", pytrace=False)
    errors = [
        (i, output.get("ename"), output.get("evalue"))
        for i, cell in enumerate(notebook.cells)
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "error"
    ]
    assert not errors, f"{path.name}: error outputs in cells {errors}"
    unexecuted = [i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code" and cell.source.strip() and cell.execution_count is None]
    assert not unexecuted, f"{path.name}: code cells {unexecuted} were not executed"
