"""trust_effects and meta_analysis rows state their inference; cluster options they cannot honour are errors (#19)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from evaltool.config import load_config
from evaltool.data.simulate import write_simulation
from evaltool.errors import ConfigError
from evaltool.pipeline import run_analyses

BASE = {
    "seed": 7,
    "data": {"panel": "data/school_panel.csv", "trusts": "data/trusts.csv"},
    "columns": {"school": "urn", "year": "year", "join_year": "join_year", "trust": "trust_id",
                "outcomes": ["attainment8"]},
}
TRUST = {"name": "trusts", "method": "trust_effects", "n_permutations": 199}
META = {"name": "synthesis", "method": "meta_analysis", "source": "trusts"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory, sim_tools) -> Path:
    folder = tmp_path_factory.mktemp("sim")
    write_simulation(sim_tools.simulated(seed=3, n_schools=400), folder / "data")
    return folder


def _config(folder: Path, analyses: list[dict]) -> Path:
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump({**BASE, "analyses": analyses}, sort_keys=False))
    return path


@pytest.mark.parametrize("analysis", [TRUST, META], ids=["trust_effects", "meta_analysis"])
@pytest.mark.parametrize("level", ["school", "trust"])
def test_a_cluster_level_is_a_config_error_naming_the_key(folder, analysis, level):
    bad = {**analysis, "inference": {"cluster": level}}
    analyses = [bad] if analysis is TRUST else [TRUST, bad]
    with pytest.raises(ConfigError, match=rf"inference\.cluster.*{analysis['method']} cannot cluster by '{level}'"):
        load_config(_config(folder, analyses))


@pytest.mark.parametrize("analysis", [TRUST, META], ids=["trust_effects", "meta_analysis"])
def test_a_cluster_correction_is_a_config_error(folder, analysis):
    bad = {**analysis, "inference": {"correction": "none"}}
    analyses = [bad] if analysis is TRUST else [TRUST, bad]
    with pytest.raises(ConfigError, match=r"inference\.correction.*does not cluster.*remove inference\.correction"):
        load_config(_config(folder, analyses))


def test_rows_state_randomisation_and_knapp_hartung_inference(folder):
    run = run_analyses(load_config(_config(folder, [TRUST, {**META, "moderators": ["federation_form"]}])))
    trusts, meta = run.analyses
    assert trusts.status == "ok" and meta.status == "ok", (trusts.error, meta.error)
    for e in trusts.estimates:
        assert e.cluster == "" and e.n_clusters is None
        assert e.se_method.startswith("randomisation inference (199 placebo trusts) for p")
        assert e.se_correction.startswith(f"t({e.n_control - 1})")
    k = len(trusts.estimates)
    pooled = meta.estimates[0]
    assert pooled.n_obs == k and pooled.cluster == ""
    assert pooled.se_correction == f"Knapp-Hartung t({k - 1})"
    assert pooled.se_method.startswith("random-effects meta-analysis")
    # the meta-regression's coefficient rows: t(k − p) with p = 2 (intercept and federation_form)
    moderators = [e for e in meta.estimates if e.term.startswith("moderator:")]
    assert moderators and all(e.se_correction == f"Knapp-Hartung t({k - 2})" for e in moderators)
