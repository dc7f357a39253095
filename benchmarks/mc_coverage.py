"""Monte Carlo coverage of 95% intervals with trust-level shocks: default (design) vs school-only clustering.

Run by hand (it takes minutes): ``.venv/bin/python benchmarks/mc_coverage.py --reps 200``.  Prints, for each
method and clustering, the replications, coverage with its Clopper–Pearson and Wilson 95% intervals, bias, mean
SE and the SD of the estimates.  did_staggered runs with analytic SEs (``bootstrap_draws: 0``) to save time.

Data-generating process (one replication)
-----------------------------------------
``schools`` schools over ten years (2012–2021).  Trusts of ``trust_size`` schools; a share of them join in one
year each (2015–2018, the whole trust together, chosen at random, independent of the school effects); the
other schools never join and are in no trust.  Outcome ``y_it = a_i + λ_t + v_{g(i),t} + τ·D_it + e_it`` with
``a_i ~ N(0, 3²)``, ``λ_t`` a common trend, ``e_it ~ N(0, 1)`` and a trust × year shock ``v_gt ~ N(0, 1.5²)``
shared by the schools of a trust (zero outside trusts).  The effect ``τ = 2`` is constant, so every method's
estimand is ``τ`` (TWFE is unbiased here).  Because the shock is shared within a trust, clustering by school
treats correlated schools as independent and under-covers.

Pupils (``multilevel_pupils``): ``pupils_per_school`` pupils per school in the last year (2021, when every
joiner has joined), ``y_p = 50 + a_i/3 + λ_t + v_{g(i),t} + τ·D_i + u_p`` with ``u_p ~ N(0, 3²)``, drawn after
the panel (the panel draws do not depend on them).  A cross-section does not difference out the school effect,
so it is scaled to sd 1 there: the trust shock is then most of the between-school variance, as in the panel's
changes, and school-only clustering visibly under-covers.

Every analysis runs with ``sensitivity: {enabled: false}``: coverage does not depend on it, and the bounds,
placebo years and power would multiply the time of each replication.  Joining is independent of ``a_i``, so the treated
coefficient is unbiased for ``τ``, the treated pupils' average effect.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from evaltool.config.loader import parse_config
from evaltool.data import load_study
from evaltool.pipeline import run_analyses

TAU = 2.0
YEARS = np.arange(2012, 2022)
PUPIL_YEAR = 2021
PUPIL_SD = 3.0
PUPIL_SCHOOL_SCALE = 1 / 3  # the pupils' school effect is a_i/3 (sd 1)

CONFIG = """
title: coverage
seed: {seed}
data:
  panel: panel.csv
  pupils: pupils.csv
columns:
  school: urn
  year: year
  join_year: join_year
  trust: trust_id
  outcomes: [y]
analyses:
  - name: did_2x2
    method: did_2x2
    pre_years: [2012, 2013, 2014]
    post_years: [2019, 2020, 2021]
    inference: {{cluster: {cluster}}}
    sensitivity: {{enabled: false}}
  - name: did_twfe
    method: did_twfe
    inference: {{cluster: {cluster}}}
    sensitivity: {{enabled: false}}
  - name: did_staggered
    method: did_staggered
    bootstrap_draws: 0
    placebo_shift: null
    aggregations: [simple]
    inference: {{cluster: {cluster}}}
    sensitivity: {{enabled: false}}
  - name: psm_did
    method: psm
    covariates: []
    match_on_baseline_outcome: true
    event_times: [0, 1, 2]
    did: true
    caliper: null
    inference: {{cluster: {cluster}}}
    sensitivity: {{enabled: false}}
  - name: multilevel_panel
    method: multilevel
    data: panel
    inference: {{cluster: {cluster}}}
    sensitivity: {{enabled: false}}
  - name: multilevel_pupils
    method: multilevel
    years: [2021]
    inference: {{cluster: {cluster}}}
    sensitivity: {{enabled: false}}
"""


def simulate_panel(
    rng: np.random.Generator, schools: int, trust_size: int, share_joining: float, pupils_per_school: int = 0
) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """School × year panel of one replication; with ``pupils_per_school`` also the pupils of 2021."""
    n_trusts = int(round(schools * share_joining / trust_size))
    in_trust = n_trusts * trust_size
    trust = np.full(schools, -1)
    trust[:in_trust] = np.repeat(np.arange(n_trusts), trust_size)
    join_of_trust = rng.integers(2015, 2019, size=n_trusts)
    join = np.where(trust >= 0, join_of_trust[np.maximum(trust, 0)], np.nan)
    a = rng.normal(0, 3, size=schools)
    lam = 0.3 * (YEARS - YEARS[0])
    shock = rng.normal(0, 1.5, size=(n_trusts, len(YEARS)))
    school = np.repeat(np.arange(schools), len(YEARS))
    year = np.tile(YEARS, schools)
    t = np.tile(np.arange(len(YEARS)), schools)
    tr = trust[school]
    treated = ~np.isnan(join[school]) & (year >= np.nan_to_num(join[school], nan=9999))
    v = np.where(tr >= 0, shock[np.maximum(tr, 0), t], 0.0)
    y = 50 + a[school] + lam[t] + v + TAU * treated + rng.normal(0, 1, size=len(school))
    panel = pd.DataFrame({
        "urn": school + 100000, "year": year, "y": y,
        "join_year": join[school], "trust_id": np.where(tr >= 0, "T" + tr.astype(str), ""),
    })
    if not pupils_per_school:
        return panel
    j = int(np.searchsorted(YEARS, PUPIL_YEAR))
    pupil_school = np.repeat(np.arange(schools), pupils_per_school)
    joined = ~np.isnan(join[pupil_school]) & (join[pupil_school] <= PUPIL_YEAR)
    pupil_trust = trust[pupil_school]
    shock_p = np.where(pupil_trust >= 0, shock[np.maximum(pupil_trust, 0), j], 0.0)
    y_p = (50 + PUPIL_SCHOOL_SCALE * a[pupil_school] + lam[j] + shock_p + TAU * joined
           + rng.normal(0, PUPIL_SD, size=pupil_school.size))
    pupils = pd.DataFrame({"pupil_id": np.arange(pupil_school.size), "urn": pupil_school + 100000,
                           "year": PUPIL_YEAR, "y": y_p})
    return panel, pupils


def config_text(analyses: tuple[str, ...] | None = None) -> str:
    """CONFIG with only the named analyses (all when ``None``)."""
    if analyses is None:
        return CONFIG
    head, *blocks = CONFIG.split("  - name: ")
    unknown = set(analyses) - {b.split("\n")[0] for b in blocks}
    if unknown:
        raise ValueError(f"Unknown analyses {sorted(unknown)}; CONFIG has {[b.split(chr(10))[0] for b in blocks]}.")
    return head + "".join(f"  - name: {b}" for b in blocks if b.split("\n")[0] in analyses)


def run(
    reps: int, schools: int, trust_size: int, share_joining: float, seed: int, pupils_per_school: int = 8,
    analyses: tuple[str, ...] | None = None,
) -> pd.DataFrame:
    """One row per replication, analysis and clustering (``design`` and ``school``) of the analyses in CONFIG."""
    template = config_text(analyses)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for rep in range(reps):
            rng = np.random.default_rng([seed, rep])
            panel, pupils = simulate_panel(rng, schools, trust_size, share_joining, pupils_per_school)
            panel.to_csv(folder / "panel.csv", index=False)
            pupils.to_csv(folder / "pupils.csv", index=False)
            study = None
            for cluster in ("design", "school"):
                config = parse_config(template.format(seed=seed + rep, cluster=cluster), source=folder / "config.yaml")
                study = study if study is not None else load_study(config)  # the same data for both clusterings
                for result in run_analyses(config, study).analyses:
                    if result.status != "ok":
                        rows.append({"rep": rep, "method": result.analysis, "clustering": cluster, "failed": result.error})
                        continue
                    e = result.estimates[0]
                    rows.append({"rep": rep, "method": result.analysis, "clustering": cluster, "estimate": e.estimate,
                                 "se": e.std_error, "covers": e.ci_lower <= TAU <= e.ci_upper,
                                 "n_clusters": e.n_clusters, "cluster": e.cluster})
    return pd.DataFrame(rows)


def summarise(draws: pd.DataFrame) -> pd.DataFrame:
    out = []
    for (method, clustering), g in draws.groupby(["method", "clustering"], sort=False):
        ok = g.dropna(subset=["estimate"]) if "estimate" in g else g.iloc[0:0]
        k, n = int(ok["covers"].sum()), len(ok)
        low = stats.beta.ppf(0.025, k, n - k + 1) if k > 0 else 0.0
        high = stats.beta.ppf(0.975, k + 1, n - k) if k < n else 1.0
        wilson = proportion_confint(k, n, alpha=0.05, method="wilson") if n else (np.nan, np.nan)
        out.append({
            "method": method, "clustering": clustering, "reps": n, "failed": len(g) - n,
            "coverage": k / n if n else np.nan, "ci_low": low, "ci_high": high,
            "wilson_low": wilson[0], "wilson_high": wilson[1],
            "bias": ok["estimate"].mean() - TAU, "mean_se": ok["se"].mean(), "sd_estimate": ok["estimate"].std(),
            "mean_clusters": ok["n_clusters"].mean(),
        })
    return pd.DataFrame(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--schools", type=int, default=300)
    parser.add_argument("--trust-size", type=int, default=4)
    parser.add_argument("--share-joining", type=float, default=0.4)
    parser.add_argument("--seed", type=int, default=20261207)
    parser.add_argument("--pupils-per-school", type=int, default=8)
    args = parser.parse_args()
    start = time.perf_counter()
    draws = run(args.reps, args.schools, args.trust_size, args.share_joining, args.seed, args.pupils_per_school)
    table = summarise(draws)
    with pd.option_context("display.width", 160, "display.max_columns", 20, "display.float_format", "{:.3f}".format):
        print(table.to_string(index=False))
    print(f"\n{args.reps} replications, {args.schools} schools, trusts of {args.trust_size}; "
          f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
