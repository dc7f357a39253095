"""Monte Carlo coverage with trust-level shocks (#19): did_2x2 and the pupil-level multilevel treatment effect.

The data-generating process and the driver are those of ``benchmarks/mc_coverage.py``: trusts of four schools
join together in 2015-2018, a trust × year shock (sd 1.5) is shared by a trust's schools and pupils, the effect
is a constant 2 (so TWFE is unbiased and the multilevel treated coefficient targets the treated pupils' average
effect).  Each replication runs the same data through the public path (``parse_config`` + ``run_analyses``)
twice: ``inference: {cluster: design}`` (the default) and ``{cluster: school}``.  did_staggered and matched DiD
(PSM) are in ``test_coverage_trust_shocks.py``; did_twfe (about 0.6 s a fit, 4 minutes for 200 replications of
both clusterings) and the panel multilevel model are in the benchmark only, which runs every method (figures in
#19's closing note).  This file: about 0.9 s of CPU a replication, 3 minutes.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from scipy import stats

ROOT = Path(__file__).resolve().parents[2]
REPS = 200
SEED = 20261208  # not the benchmark's default, so these replications are not those of the other coverage test
METHODS = ("did_2x2", "multilevel_pupils")
#: Acceptance band for the default's coverage: the central 95% of Binomial(200, 0.95)/200, i.e. where a method
#: whose true coverage is the nominal 95% lands in 95% of seeds (the issue's 93-97% target plus sampling error).
BAND = tuple(stats.binom.ppf([0.025, 0.975], REPS, 0.95) / REPS)
#: School-only clustering must cover at least this much less (one binomial SD of 200 replications ≈ 0.015).
MARGIN = 0.04


def load_driver():
    spec = importlib.util.spec_from_file_location("mc_coverage", ROOT / "benchmarks" / "mc_coverage.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def table():
    driver = load_driver()
    draws = driver.run(REPS, 300, 4, 0.4, SEED, pupils_per_school=8, analyses=METHODS)
    return driver.summarise(draws).set_index(["method", "clustering"])


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_default_inference_covers_and_school_clustering_under_covers(table, method):
    design, school = table.loc[(method, "design")], table.loc[(method, "school")]
    assert design["reps"] == REPS and design["failed"] == 0 and school["failed"] == 0
    assert BAND[0] <= design["coverage"] <= BAND[1], design.to_dict()
    assert school["coverage"] <= design["coverage"] - MARGIN, (design.to_dict(), school.to_dict())
    assert school["ci_high"] < 0.95, school.to_dict()  # school-only clustering rejects nominal coverage
    assert abs(design["bias"]) < 3 * design["sd_estimate"] / REPS**0.5, design.to_dict()  # unbiased for τ = 2
