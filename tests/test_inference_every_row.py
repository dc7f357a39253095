"""Every results row of the sample evaluation states its inference (#19 Done-when)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evaltool.config import load_config
from evaltool.pipeline import run_analyses

ROOT = Path(__file__).resolve().parents[1]
#: Methods whose units are independent by design (per-trust randomisation inference, meta-analysis of studies).
UNCLUSTERED = {"trust_effects", "meta_analysis"}


@pytest.fixture(scope="module")
def tidy():
    run = run_analyses(load_config(ROOT / "configs" / "federation_impact.yaml"))
    assert not run.failed, [(a.analysis, a.error) for a in run.failed]
    return run.tidy()


def test_every_row_with_a_standard_error_names_its_variance_method(tidy):
    with_se = tidy[np.isfinite(tidy["std_error"].astype(float))]
    missing = with_se[with_se["se_method"].fillna("").eq("") | with_se["se_correction"].fillna("").eq("")]
    assert missing.empty, missing[["analysis", "term", "subgroup"]].to_string()


def test_clustered_methods_state_the_cluster_and_count_and_default_to_the_trust(tidy):
    clustered = tidy[~tidy["method"].isin(UNCLUSTERED)]
    assert clustered["cluster"].fillna("").ne("").all(), clustered.loc[clustered["cluster"].fillna("").eq(""), ["analysis", "term"]]
    assert clustered["n_clusters"].notna().all()
    headline = clustered.groupby("analysis").first()
    assert headline["cluster"].str.startswith("trust").all(), headline["cluster"]

