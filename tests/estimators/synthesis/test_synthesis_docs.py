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
    documented = set(re.findall(rf"^\| `{name}\.(\w+)[.`]", DOCS.read_text(), flags=re.MULTILINE))
    keys = set(model.model_fields) - set(AnalysisBase.model_fields)
    assert documented == keys


def test_example_config_loads():
    from evaltool.config import load_config

    config = load_config(Path(__file__).resolve().parents[3] / "configs" / "synthesis_example.yaml")
    assert [a.method for a in config.analyses] == ["trust_effects", "meta_analysis"] * 2


def test_example_config_runs_on_sample_data(tmp_path):
    # the four review questions on the committed sample data: overall effect, types, characteristics, gap by type
    from evaltool.config import load_config
    from evaltool.pipeline import run_analyses

    root = Path(__file__).resolve().parents[3]
    if not (root / "sample_data" / "school_panel.csv").exists():
        pytest.skip("sample_data not present")
    result = run_analyses(load_config(root / "configs" / "synthesis_example.yaml"))
    assert all(a.status == "ok" for a in result.analyses), [a.error for a in result.analyses]
    trusts, synthesis, gap_trusts, gap_by_type = result.analyses
    assert len(trusts.estimates) >= 20
    assert synthesis.estimate("pooled").ci_lower > 0
    tests = synthesis.diagnostics["meta_regression"]["moderator_tests"]["moderator"].tolist()
    assert tests == ["collaboration_type", "federation_form", "depth_organisation", "depth_penetration",
                     "depth_joint_investment", "n_schools"]
    assert "meta_regression" in gap_by_type.diagnostics
