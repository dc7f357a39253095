"""Fixtures of the DfE/GIAS ingestion tests (the files themselves are in dfe_files.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.data.dfe.dfe_files import write_layout


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, dict]:
    """The standard fixture's files in tmp_path, and their ``sources:`` mapping."""
    return tmp_path, write_layout(tmp_path)
