"""Per-trust effects with randomisation inference, and the meta-analysis, at national scale.

Run by hand:  .venv/bin/python benchmarks/bench_synthesis.py [n_schools] [n_permutations]
Prints timings and the machine load (`uptime`), never asserts.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from evaltool.data.simulate import simulate
from evaltool.estimators.synthesis.meta import fit_meta
from evaltool.estimators.synthesis.trust_effects import fit_trust_effects, randomisation_pvalue


def main() -> None:
    n_schools = int(sys.argv[1]) if len(sys.argv) > 1 else 3500
    n_perm = int(sys.argv[2]) if len(sys.argv) > 2 else 999
    t0 = time.perf_counter()
    data = simulate(seed=1, n_schools=n_schools)
    print(f"simulate({n_schools} schools): {time.perf_counter() - t0:.1f} s")
    frame = data.panel.rename(columns={"urn": "school", "trust_id": "trust"}).assign(
        school=lambda d: d["school"].astype(str), join_year=lambda d: d["join_year"].astype(float))
    t0 = time.perf_counter()
    result = fit_trust_effects(frame, "attainment8", rng=np.random.default_rng(1), n_permutations=n_perm)
    elapsed = time.perf_counter() - t0
    print(f"trust_effects: {len(result.estimates)} trusts ({len(result.skipped)} skipped), {n_perm} placebo "
          f"trusts each: {elapsed:.2f} s ({1000 * elapsed / max(len(result.estimates), 1):.1f} ms per trust)")

    rng = np.random.default_rng(2)
    changes = rng.normal(size=n_schools)
    t0 = time.perf_counter()
    randomisation_pvalue(changes, 5, 0.3, 9999, rng)
    print(f"one trust, 5 schools vs {n_schools - 5}, 9999 placebo trusts: {time.perf_counter() - t0:.3f} s")

    y = rng.normal(size=2000)
    se = rng.uniform(0.1, 1.0, size=2000)
    t0 = time.perf_counter()
    fit_meta(y, se, tau2_method="REML", knapp_hartung=True)
    print(f"REML meta-analysis of 2000 studies: {time.perf_counter() - t0:.3f} s")
    print("load:", os.popen("uptime").read().strip())


if __name__ == "__main__":
    main()
