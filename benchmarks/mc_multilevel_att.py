"""Monte Carlo: does the multilevel treated coefficient on 2019 pupils cover the treated pupils' ATT?

Each replication simulates ``evaltool simulate`` data (default settings, seed = replication) and runs
``method: multilevel`` on 2019 pupils twice through the pipeline:

* ``before``: the model as it was (``estimand: conditional``, ``school_covariates_at: exam_year``), SEs by
  school (``inference: {cluster: school}``, close to the model-based SEs of before);
* ``after``: the defaults (``estimand: att``, ``school_covariates_at: baseline``, ``cluster: design`` = trust);
* ``after_by_school``: the defaults with SEs clustered by school.

The simulator has no trust-level shocks in untreated outcomes (only effects differ between trusts), so on its
data trust clustering is conservative for the treated pupils' (sample) average effect; it is the default
because real trusts share shocks (see docs/configuration.md, Inference).

The truth is the mean true effect of the treated pupils of 2019 in the analysed sample
(``tests/estimators/multilevel/ml_helpers.pupil_truth``).  Usage::

    .venv/bin/python benchmarks/mc_multilevel_att.py --reps 20 --start 1 --out mc_ml.csv

(about 10 s a replication on one core).  Summaries: bias, its Monte Carlo SE, coverage with a Wilson interval.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "estimators" / "multilevel"))

from ml_helpers import pupil_truth, run_config  # noqa: E402

from evaltool.data.simulate import simulate, write_simulation  # noqa: E402

MODEL = """
    years: [2019]
    pupil_covariates: [ks2_score, disadvantaged, sen, female, eal]
    school_covariates: [ks2_prior, fsm_pct]
"""
ANALYSES = (
    "  - name: before\n    method: multilevel\n    estimand: conditional\n    school_covariates_at: exam_year\n"
    "    inference: {cluster: school}" + MODEL
    + "  - name: after\n    method: multilevel" + MODEL
    + "  - name: after_by_school\n    method: multilevel\n    inference: {cluster: school}" + MODEL
)


def replicate(seed: int) -> list[dict]:
    data = simulate(seed=seed)
    with tempfile.TemporaryDirectory() as folder:
        write_simulation(data, Path(folder))
        run = run_config(Path(folder), ANALYSES)
    truth = pupil_truth(data, 2019)
    att = float(truth["true_effect"].mean())
    rows = []
    for result in run.analyses:
        e = result.estimates[0]
        rows.append({"seed": seed, "analysis": result.analysis, "att": att, "estimate": e.estimate,
                     "std_error": e.std_error, "ci_lower": e.ci_lower, "ci_upper": e.ci_upper,
                     "cluster": e.cluster, "n_clusters": e.n_clusters})
    return rows


def wilson(hits: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    p = hits / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return centre - half, centre + half


def summarise(draws: pd.DataFrame) -> pd.DataFrame:
    draws = draws.drop_duplicates(["seed", "analysis"], keep="last")  # runs appended with overlapping seeds
    draws = draws.assign(error=draws["estimate"] - draws["att"],
                         covers=(draws["ci_lower"] <= draws["att"]) & (draws["att"] <= draws["ci_upper"]))
    out = []
    for name, d in draws.groupby("analysis", sort=False):
        low, high = wilson(int(d["covers"].sum()), len(d))
        out.append({"analysis": name, "reps": len(d), "bias": d["error"].mean(),
                    "bias_mcse": d["error"].std(ddof=1) / np.sqrt(len(d)), "sd_estimate_minus_att": d["error"].std(ddof=1),
                    "mean_se": d["std_error"].mean(), "coverage": d["covers"].mean(), "coverage_low": low,
                    "coverage_high": high})
    return pd.DataFrame(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--start", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="CSV of the draws (appended to if it exists)")
    args = parser.parse_args()
    rows = []
    for seed in range(args.start, args.start + args.reps):
        run_rows = replicate(seed)
        rows += run_rows
        if args.out is not None:
            pd.DataFrame(rows[-len(run_rows):]).to_csv(args.out, mode="a", header=not args.out.exists(), index=False)
    draws = pd.read_csv(args.out) if args.out is not None else pd.DataFrame(rows)
    print(summarise(draws).to_string(index=False))


if __name__ == "__main__":
    main()
