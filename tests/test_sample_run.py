"""End to end on simulated data with known truth: the 2×2 DiD recovers it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaltool.config import load_config
from evaltool.data.simulate import SimulationSettings, simulate, write_simulation
from evaltool.pipeline import execute

ROOT = Path(__file__).resolve().parents[1]
PRE, POST = [2012, 2013], [2022, 2023]


def true_2x2_att(panel: pd.DataFrame, truth: dict) -> float:
    """The estimand of did_2x2: mean over treated schools of their mean effect in the post years.

    Treated schools joined in (2013, 2022] and have the outcome in both periods; each school's
    effect is averaged over the post years in which its outcome is observed.
    """
    effects = pd.DataFrame(truth["school_year_effects"]["data"], columns=truth["school_year_effects"]["columns"])
    observed = panel.dropna(subset=["attainment8"])
    joined = observed["join_year"].astype(float)
    treated = observed[(joined > max(PRE)) & (joined <= min(POST))]
    has_pre = set(treated.loc[treated["year"].isin(PRE), "urn"])
    post_rows = treated[treated["year"].isin(POST) & treated["urn"].isin(has_pre)]
    merged = post_rows[["urn", "year"]].merge(effects, on=["urn", "year"], how="left")
    assert merged["effect"].notna().all()
    return float(merged.groupby("urn")["effect"].mean().mean())


def run_sample(tmp_path: Path, config_path: Path) -> pd.DataFrame:
    _, out = execute(load_config(config_path), tmp_path / "out")
    return pd.read_csv(out / "results.csv")


def test_sample_config_recovers_truth(tmp_path):
    config = ROOT / "configs" / "federation_impact.yaml"
    results = run_sample(tmp_path, config)
    row = results[results["analysis"] == "did_2x2"].iloc[0]
    truth = json.loads((ROOT / "sample_data" / "truth.json").read_text())
    panel = pd.read_csv(ROOT / "sample_data" / "school_panel.csv")
    true_att = true_2x2_att(panel, truth)
    assert row["ci_lower"] <= true_att <= row["ci_upper"], (row["estimate"], true_att)
    assert {"results.csv", "results.json", "manifest.json"} <= {p.name for p in (tmp_path / "out").iterdir()}


@pytest.mark.parametrize("seed", [11, 12, 13, 14])
def test_2x2_recovers_truth_across_seeds(tmp_path, seed):
    data = simulate(SimulationSettings(seed=seed, n_schools=300))
    write_simulation(data, tmp_path)
    config = (ROOT / "configs" / "federation_impact.yaml").read_text().replace("../sample_data/", "")
    (tmp_path / "config.yaml").write_text(config)
    results = run_sample(tmp_path, tmp_path / "config.yaml")
    row = results[results["analysis"] == "did_2x2"].iloc[0]
    true_att = true_2x2_att(pd.read_csv(tmp_path / "school_panel.csv"), data.truth)
    assert abs(row["estimate"] - true_att) < 4 * row["std_error"]
    assert row["ci_lower"] <= true_att <= row["ci_upper"]


def test_2x2_finds_no_effect_when_there_is_none(tmp_path):
    data = simulate(SimulationSettings(seed=5, n_schools=300, effect_scale=0.0))
    write_simulation(data, tmp_path)
    config = (ROOT / "configs" / "federation_impact.yaml").read_text().replace("../sample_data/", "")
    (tmp_path / "config.yaml").write_text(config)
    results = run_sample(tmp_path, tmp_path / "config.yaml")
    rows = results[(results["analysis"] == "did_2x2") & (results["term"] == "treated:post") & (results["subgroup"] == "all")]
    assert len(rows) == 1
    row = rows.iloc[0]
    assert row["method"] == "did_2x2"
    assert row["ci_lower"] <= 0 <= row["ci_upper"]
    assert np.isfinite(row["p_value"]) and row["p_value"] > 0.05
    assert row["se_method"] and row["cluster"] and row["n_clusters"] > 1
