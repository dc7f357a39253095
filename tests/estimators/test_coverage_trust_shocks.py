"""Monte Carlo coverage with trust-level shocks (#19): the default inference covers, school-only clustering does not.

The data-generating process and the driver are those of ``benchmarks/mc_coverage.py`` (trust × year shocks, a
constant effect of 2); the benchmark runs all five methods with 400 replications (figures in the closing note
of #19); this test runs the two fastest with 200 (did_twfe, at 0.6 s a fit, and did_2x2 and multilevel are in the
benchmark only).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REPS = 200
#: A 99% binomial band around 0.95 for 200 replications: 0.95 ± 2.58·sqrt(0.95·0.05/200) ≈ [0.910, 0.990].
BAND = (0.91, 0.99)


def load_driver():
    spec = importlib.util.spec_from_file_location("mc_coverage", ROOT / "benchmarks" / "mc_coverage.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    keep = ("did_staggered", "psm_did")
    head, *blocks = module.CONFIG.split("  - name: ")
    module.CONFIG = head + "".join(f"  - name: {b}" for b in blocks if b.split("\n")[0] in keep)
    return module


@pytest.fixture(scope="module")
def table():
    driver = load_driver()
    return driver.summarise(driver.run(REPS, 300, 4, 0.4, 20261207)).set_index(["method", "clustering"])


@pytest.mark.slow
@pytest.mark.parametrize("method", ["did_staggered", "psm_did"])
def test_default_inference_covers_and_school_clustering_under_covers(table, method):
    design, school = table.loc[(method, "design")], table.loc[(method, "school")]
    assert design["reps"] == REPS and design["failed"] == 0
    assert BAND[0] <= design["coverage"] <= BAND[1], design.to_dict()
    assert school["coverage"] < design["coverage"] - 0.08, (design.to_dict(), school.to_dict())
    assert school["mean_se"] < design["mean_se"]  # the same estimates, narrower (wrong) intervals
