"""Time of assembling England's raw files at national scale (run by hand: .venv/bin/python benchmarks/bench_ingest.py).

Target (issue #14): 10 years x 3,500 secondary schools of KS4 tables plus GIAS files for 25,000
establishments assemble in <= 5 s on the project's 2-core machine.  The files are written by the
simulator's DfE layout (``evaltool simulate --layout dfe``), with unrelated establishments added to the
GIAS extract to reach national size; only :func:`evaltool.data.dfe.assemble_sources` is timed (reading,
markers, URN chains, membership, trust sizes, subgroups, the data report).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd

from evaltool.config.sources import SourcesOptions
from evaltool.data.dfe import assemble_sources
from evaltool.data.simulate import SimulationSettings, simulate
from evaltool.data.simulate_dfe import write_dfe_layout


def main(schools: int = 3500, establishments: int = 25_000, repeats: int = 3) -> None:
    data = simulate(SimulationSettings(seed=1, n_schools=schools, pupils_per_school=20, pupil_years=(2019,)))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        first = write_dfe_layout(data, root, seed=1, extra_establishments=0)
        n_gias = len(pd.read_csv(root / first["sources"]["gias_establishments"], usecols=["URN"], encoding="cp1252"))
        written = write_dfe_layout(data, root, seed=1, extra_establishments=max(establishments - n_gias, 0))
        write_time = time.perf_counter() - start
        options = SourcesOptions(**written["sources"])
        tables = sorted((root / "dfe" / "ks4").glob("*.csv"))
        size = sum(p.stat().st_size for p in root.rglob("*.csv")) / 2**20
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            assembled = assemble_sources(options, root)
            times.append(time.perf_counter() - start)
    report = assembled.report
    n_est = max(establishments, n_gias)
    print(f"input: {len(tables)} KS4 tables, {schools:,} schools, GIAS {n_est:,} establishments, {size:.0f} MiB of CSV "
          f"(written in {write_time:.1f} s)")
    print(f"assembled: {len(assembled.panel):,} school-years, {assembled.panel['urn'].nunique():,} schools, "
          f"{len(assembled.subgroups):,} subgroup rows; {report['urn_merges']['n_chains']:,} URN chains merged")
    print(f"assemble_sources: median {statistics.median(times):.2f} s, min {min(times):.2f} s over {repeats} runs "
          "(target <= 5 s)")
    print(f"peak memory (max RSS): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    print(f"load average (1, 5, 15 min): {os.getloadavg()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schools", type=int, default=3500)
    parser.add_argument("--establishments", type=int, default=25_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    main(args.schools, args.establishments, args.repeats)
