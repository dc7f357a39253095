"""Every option of the synthesis methods is documented in docs/configuration.md, and vice versa."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from evaltool.config.models import AnalysisBase
from evaltool.estimators.synthesis.method import MetaAnalysisOptions, TrustEffectsOptions

DOCS = Path(__file__).resolve().parents[3] / "docs" / "configuration.md"


@pytest.mark.parametrize("model,name", [(TrustEffectsOptions, "trust_effects"), (MetaAnalysisOptions, "meta_analysis")])
def test_every_key_documented(model, name):
    documented = set(re.findall(rf"^\| `{name}\.(\w+)` \|", DOCS.read_text(), flags=re.MULTILINE))
    keys = set(model.model_fields) - set(AnalysisBase.model_fields)
    assert documented == keys


def test_example_config_loads():
    from evaltool.config import load_config

    config = load_config(Path(__file__).resolve().parents[3] / "configs" / "synthesis_example.yaml")
    assert [a.method for a in config.analyses] == ["trust_effects", "meta_analysis"]
