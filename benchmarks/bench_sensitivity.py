"""Cost of the sensitivity block for the national-scale staggered DiD (#15).

Run by hand (not a test): ``.venv/bin/python benchmarks/bench_sensitivity.py``.

The data of ``bench_did.py`` (25,000 schools x 15 years, 10 joining cohorts; 999 multiplier-bootstrap draws,
``base_period: universal``) are fitted three ways, each ``--repeats`` times after one warm-up fit (imports,
moderndid's and cvxpy's first solve): the sensitivity block off; the default block (smoothness bounds by FLCI on
HonestDiD's data-driven M grid, and the pre-trend power); and relative-magnitudes bounds on an M̄ grid of
``--mbar-points`` values (hybrid C-LF).  Prints the median time of each and the time each adds to the fit.
Target (issue 15): the sensitivity block adds at most 2 s.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from pathlib import Path

import numpy as np

from evaltool.config.sensitivity import SensitivityOptions
from evaltool.estimators.did.method_staggered import DidStaggeredOptions, fit_did_staggered

HERE = Path(__file__).resolve().parent


def bench_did_data(n_schools: int, n_years: int, n_cohorts: int, seed: int):
    spec = importlib.util.spec_from_file_location("bench_did", HERE / "bench_did.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    data = module.make_data(n_schools, n_years, n_cohorts, seed)
    frame = data.rename(columns={"id": "school", "g": "join_year"})
    frame["join_year"] = frame["join_year"].replace(0, np.nan)
    return frame


def timed(frame, options: DidStaggeredOptions, repeats: int) -> tuple[float, dict]:
    times, diagnostics = [], {}
    for _ in range(repeats):
        t0 = time.perf_counter()
        _, diagnostics, _, _ = fit_did_staggered(frame, "y", options=options, rng=np.random.default_rng(1))
        times.append(time.perf_counter() - t0)
    return statistics.median(times), diagnostics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schools", type=int, default=25_000)
    parser.add_argument("--years", type=int, default=15)
    parser.add_argument("--cohorts", type=int, default=10)
    parser.add_argument("--draws", type=int, default=999)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mbar-points", type=int, default=10)
    parser.add_argument("--skip-mbar", action="store_true", help="Skip the relative-magnitudes run (minutes).")
    args = parser.parse_args()
    frame = bench_did_data(args.schools, args.years, args.cohorts, seed=7)
    base = {"name": "bench", "method": "did_staggered", "bootstrap_draws": args.draws, "placebo_shift": None,
            "base_period": "universal"}
    variants = {
        "off": SensitivityOptions(enabled=False),
        "default (smoothness FLCI + pre-trend power)": SensitivityOptions(),
    }
    if not args.skip_mbar:
        grid = list(np.linspace(0, 2, args.mbar_points))
        variants[f"relative magnitudes, {args.mbar_points}-value M̄ grid (C-LF)"] = SensitivityOptions(
            restrictions=["relative_magnitudes"], mbar=grid, pretrend_power=False)
    fit_did_staggered(frame, "y", options=DidStaggeredOptions(**base), rng=np.random.default_rng(1))  # warm-up
    results = {}
    for label, sensitivity in variants.items():
        options = DidStaggeredOptions(**base, sensitivity=sensitivity)
        repeats = args.repeats if "relative" not in label else 1
        results[label], diagnostics = timed(frame, options, repeats)
        block = diagnostics.get("sensitivity", {})
        detail = {k: (v.get("breakdown"), v.get("breakdown_status")) for k, v in block.get("honest", {}).items()
                  if v.get("available")}
        print(f"{label:<58} {results[label]:7.2f} s   {detail}")
    off = results["off"]
    for label, seconds in results.items():
        if label != "off":
            print(f"  adds {seconds - off:+.2f} s: {label}")
    print(f"\n{args.schools:,} schools x {args.years} years, {args.cohorts} cohorts, {args.draws} draws; "
          f"median of {args.repeats} fits after a warm-up (relative magnitudes: one fit)")


if __name__ == "__main__":
    main()
