"""Benchmark of method psm (run by hand; never in CI).

1. National scale: 1,000,000 units with 10 covariates; logistic propensity model, 1:1 nearest-neighbour
   matching without replacement on the logit with a 0.2 SD caliper, balance table before/after, ATT with
   pair-clustered SE, end to end.  Targets: ≤ 20 s and ≤ 4 GB peak memory (peak RSS of this process,
   ``resource.getrusage``; also the peak of Python/numpy allocations during the run, ``tracemalloc``).
2. Peer comparison on 20,000 units in the same run: the same pipeline against psmpy (PsmPy.logistic_ps +
   knn_matched without replacement, caliper 0.2) and causalinference (CausalModel.est_propensity +
   est_via_matching, with replacement; evaltool timed with replace=True for that pair).

psmpy's matching is quadratic or worse (a full k-NN table and Python list removals): at 20,000 units it
takes about 14 minutes on this machine, so a full run lasts about a quarter of an hour.

Usage::

    pip install --target /work/peer-psm --no-deps psmpy causalinference seaborn   # peers, not evaltool deps
    PYTHONPATH=. python benchmarks/bench_psm.py [--n 1000000] [--peer-n 20000] [--peer-path /work/peer-psm]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import tracemalloc

import numpy as np
import pandas as pd

from evaltool.diagnostics.balance import balance_table
from evaltool.estimators.psm.estimate import abadie_imbens, weighted_att
from evaltool.estimators.psm.matching import match
from evaltool.estimators.psm.propensity import fit_propensity


def make_data(n: int, p: int = 10, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    X[:, -2:] = (X[:, -2:] > 0.3).astype(float)  # two binary covariates
    coef = np.linspace(0.4, -0.3, p)
    treat = rng.random(n) < 1 / (1 + np.exp(-(-1.0 + X @ coef)))
    y = 2.0 * treat + X @ np.linspace(1.0, 0.1, p) + rng.normal(size=n)
    return pd.DataFrame(X, columns=[f"x{i}" for i in range(p)]), treat, y


def evaltool_pipeline(X: pd.DataFrame, treat: np.ndarray, y: np.ndarray, *, replace: bool = False) -> dict[str, float]:
    times: dict[str, float] = {}
    rng = np.random.default_rng(1)
    t0 = time.perf_counter()
    model = fit_propensity(X, treat, rng=rng)
    times["propensity"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    caliper = 0.2 * float(np.std(model.logit, ddof=1))
    result = match(treat, score=model.logit, caliper=caliper, replace=replace, rng=rng)
    times["matching"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    table = balance_table(X, treat, result.weights)
    times["balance"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if replace:
        fit = abadie_imbens(y, treat, model.logit, result.pair_treated, result.pair_control)
    else:
        fit = weighted_att(y, treat, result.weights, clusters=result.unit_subclass)
    times["att"] = time.perf_counter() - t0
    times["total"] = sum(times.values())
    times["att_estimate"] = fit.estimate
    times["att_se"] = fit.std_error
    times["n_pairs"] = result.n_pairs
    times["max_abs_smd_after"] = float(table["smd_after"].abs().max())
    return times


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB on Linux


def national(n: int) -> None:
    X, treat, y = make_data(n)
    # warm-up on small data: numba compiles (and caches) the greedy loop once per machine
    evaltool_pipeline(*make_data(2000, seed=9))
    tracemalloc.start()
    times = evaltool_pipeline(X, treat, y)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"\n== {n:,} units, 10 covariates, {int(treat.sum()):,} treated: 1:1 caliper 0.2 SD, without replacement ==")
    for key in ("propensity", "matching", "balance", "att", "total"):
        print(f"  {key:<11} {times[key]:7.2f} s")
    print(f"  pairs {int(times['n_pairs']):,}; ATT {times['att_estimate']:.4f} (SE {times['att_se']:.4f}, truth 2); "
          f"max |SMD| after {times['max_abs_smd_after']:.3f}")
    print(f"  peak traced allocations during the run {traced_peak / 1024**3:.2f} GB; "
          f"peak RSS of the process {peak_rss_gb():.2f} GB")


def peers(n: int, peer_path: str | None) -> None:
    if peer_path:
        sys.path.insert(0, peer_path)
    X, treat, y = make_data(n, seed=3)
    print(f"\n== peer comparison, {n:,} units ==")
    t0 = time.perf_counter()
    ours = evaltool_pipeline(X, treat, y)
    ours_time = time.perf_counter() - t0
    print(f"  evaltool (without replacement, caliper, balance, ATT) {ours_time:8.2f} s  ATT {ours['att_estimate']:.3f}")
    try:
        import matplotlib

        matplotlib.use("Agg")
        from psmpy import PsmPy

        frame = X.assign(treat=treat.astype(int), uid=np.arange(n))
        t0 = time.perf_counter()
        psm = PsmPy(frame, treatment="treat", indx="uid", exclude=[])
        psm.logistic_ps(balance=False)
        psm.kdtree_matched(matcher="propensity_logit", replacement=False, caliper=0.2, drop_unmatched=True)
        peer = time.perf_counter() - t0
        print(f"  psmpy 0.3 kdtree_matched (without replacement, caliper)  {peer:8.2f} s  -> evaltool is {peer / ours_time:.0f}x faster")
    except Exception as exc:  # a peer failing must not hide our own figures
        print(f"  psmpy: not run ({type(exc).__name__}: {exc})")
    t0 = time.perf_counter()
    ours_r = evaltool_pipeline(X, treat, y, replace=True)
    ours_r_time = time.perf_counter() - t0
    print(f"  evaltool (with replacement, AI SE)                    {ours_r_time:8.2f} s  ATT {ours_r['att_estimate']:.3f}")
    try:
        from causalinference import CausalModel

        t0 = time.perf_counter()
        cm = CausalModel(y, treat.astype(int), X.to_numpy())
        cm.est_propensity()
        cm.est_via_matching(matches=1)
        peer = time.perf_counter() - t0
        print(f"  causalinference est_via_matching (with replacement) {peer:8.2f} s  ATT {cm.estimates['matching']['att']:.3f}"
              f"  -> evaltool is {peer / ours_r_time:.0f}x faster")
    except Exception as exc:
        print(f"  causalinference: not run ({type(exc).__name__}: {exc})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--peer-n", type=int, default=20_000)
    parser.add_argument("--peer-path", default=os.environ.get("EVALTOOL_PEER_PATH", "/work/peer-psm"))
    args = parser.parse_args()
    print(f"load average: {os.getloadavg()}; cpus: {os.cpu_count()}")
    national(args.n)
    peers(args.peer_n, args.peer_path)


if __name__ == "__main__":
    main()
