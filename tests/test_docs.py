"""docs/configuration.md and the config models agree: every key documented, no stale keys."""

from __future__ import annotations

import re
from pathlib import Path

from evaltool.config.schema import documented_keys

DOCS = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


def documented_in_markdown() -> set[str]:
    rows = re.findall(r"^\|\s*`([^`]+)`\s*\|", DOCS.read_text(encoding="utf-8"), flags=re.M)
    return set(rows)


def test_every_model_key_is_documented():
    in_docs = documented_in_markdown()
    missing = [key for group in documented_keys().values() for key in group if key not in in_docs]
    assert not missing, f"keys missing from docs/configuration.md: {missing}"


def test_every_documented_key_exists():
    in_models = {key for group in documented_keys().values() for key in group}
    stale = sorted(in_docs for in_docs in documented_in_markdown() if in_docs not in in_models)
    assert not stale, f"docs/configuration.md documents keys that do not exist: {stale}"
