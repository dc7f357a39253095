"""Regenerate the inputs of honestdid_medicaid.json (run by hand; needs moderndid, which evaltool installs).

    python tests/reference/make_honestdid_medicaid.py

The event study is the HonestDiD README's TWFE on the Medicaid-expansion data (``ehec_data``, shipped with
moderndid as ``moderndid.core.data.load_ehec``): years < 2016, the 2015 cohort dropped, D = 1 for the 2014
cohort, ``fixest::feols(dins ~ i(year, D, ref = 2013) | stfips + year, cluster = "stfips")``.  The covariance
is CR1 as fixest computes it by default: (n - 1) / (n - K) * G / (G - 1) with K = 7 event-time coefficients
+ 7 non-nested year effects (state effects are nested in the state clusters).  Only ``betahat`` and
``sigma`` are written; the expected intervals in the JSON are the published ones (see honestdid_medicaid.md).
"""

import json
from pathlib import Path

import numpy as np
from moderndid.core.data import load_ehec

OUT = Path(__file__).with_name("honestdid_medicaid.json")


def main() -> None:
    df = load_ehec().to_pandas()
    d = df[(df.year < 2016) & (df.yexp2.isna() | (df.yexp2 != 2015))].copy()
    d["D"] = (d.yexp2 == 2014).astype(float)
    years = sorted(d.year.unique())
    event_years = [y for y in years if y != 2013]
    x = np.column_stack([(d.D * (d.year == y)).to_numpy() for y in event_years])

    def within(v: np.ndarray) -> np.ndarray:  # balanced panel: two-way demeaning is exact
        s = d.assign(v=v)
        return (v - s.groupby("stfips").v.transform("mean") - s.groupby("year").v.transform("mean") + v.mean()).to_numpy()

    xd = np.column_stack([within(x[:, j]) for j in range(x.shape[1])])
    yd = within(d.dins.to_numpy())
    beta = np.linalg.lstsq(xd, yd, rcond=None)[0]
    resid = yd - xd @ beta
    bread = np.linalg.inv(xd.T @ xd)
    clusters = d.stfips.to_numpy()
    scores = np.array([xd[clusters == g].T @ resid[clusters == g] for g in np.unique(clusters)])
    n, n_clusters, k = len(yd), len(scores), x.shape[1] + len(years) - 1
    sigma = bread @ (scores.T @ scores) @ bread * (n - 1) / (n - k) * n_clusters / (n_clusters - 1)

    data = json.loads(OUT.read_text()) if OUT.exists() else {}
    data["inputs"] = {
        "event_years": [int(y) for y in event_years], "num_pre": 5, "num_post": 2,
        "betahat": beta.tolist(), "sigma": sigma.tolist(), "n_obs": int(n), "n_clusters": int(n_clusters),
    }
    OUT.write_text(json.dumps(data, indent=1) + "\n")


if __name__ == "__main__":
    main()
