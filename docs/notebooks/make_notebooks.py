"""Write the notebooks of docs/notebooks/ from the cells below (stored without outputs).

Run ``.venv/bin/python docs/notebooks/make_notebooks.py`` after editing a notebook's cells here; the
notebooks are executed by ``tests/test_notebooks.py`` (see docs/notebooks/index.md), never at docs build.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

# The first code cell of every notebook: where the repository (configs/, sample_data/) is.
FIND_REPO = '''\
import os
from pathlib import Path


def find_repo() -> Path:
    """The evaltool repository: $EVALTOOL_REPO (set by tests/test_notebooks.py), else the nearest folder
    above the working directory that holds configs/ and sample_data/ (a notebook opened in docs/notebooks/)."""
    if os.environ.get("EVALTOOL_REPO"):
        return Path(os.environ["EVALTOOL_REPO"]).resolve()
    for folder in [Path.cwd(), *Path.cwd().parents]:
        if (folder / "configs").is_dir() and (folder / "sample_data").is_dir():
            return folder
    raise FileNotFoundError("Set EVALTOOL_REPO to the evaltool repository (the folder with configs/ and sample_data/).")


REPO = find_repo()
REPO'''

NOTEBOOKS = {
    "00_smoke.ipynb": [
        new_markdown_cell(
            "# Smoke test: a staggered DiD run from Python\n\n"
            "Runs `configs/did_staggered_example.yaml` on the committed sample data the way `evaltool run` "
            "does, without the command line and without writing an output folder: the config is loaded and "
            "validated, every analysis is run, and the estimates come back as one tidy table (the rows of "
            "`results.csv`)."
        ),
        new_code_cell(FIND_REPO),
        new_markdown_cell("Load and validate the config (every problem is reported with its key and YAML line)."),
        new_code_cell(
            "from evaltool.config import load_config\n"
            "from evaltool.pipeline import run_analyses\n"
            "\n"
            'config = load_config(REPO / "configs" / "did_staggered_example.yaml")\n'
            "[(analysis.name, analysis.method) for analysis in config.analyses]"
        ),
        new_markdown_cell(
            "Load the data and run every analysis (about ten seconds: the headline analysis draws 999 "
            "multiplier-bootstrap samples)."
        ),
        new_code_cell(
            "run = run_analyses(config)\n"
            "table = run.tidy()\n"
            'table[["analysis", "term", "estimate", "std_error", "ci_lower", "ci_upper", "n_treated"]].head(10)'
        ),
        new_markdown_cell("What the test checks: every analysis ran, and each has estimates in the table."),
        new_code_cell(
            'assert not run.failed, [(a.analysis, a.error) for a in run.failed]\n'
            "assert len(table) > 0\n"
            'assert set(table["analysis"]) == {analysis.name for analysis in config.analyses}\n'
            'assert table["std_error"].gt(0).all()'
        ),
    ],
}


def main() -> None:
    for name, cells in NOTEBOOKS.items():
        for i, cell in enumerate(cells):
            cell["id"] = f"{Path(name).stem}-{i:02d}"  # stable ids: regenerating changes nothing
        notebook = new_notebook(
            cells=cells,
            metadata={
                "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                "language_info": {"name": "python"},
            },
        )
        nbformat.validate(notebook)
        nbformat.write(notebook, HERE / name)


if __name__ == "__main__":
    main()
