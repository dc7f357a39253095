"""Regenerate mpdta_twfe_statsmodels.json: TWFE and event study on mpdta by dummy-variable OLS (statsmodels).

    PYTHONPATH=. python tests/reference/make_mpdta_twfe.py
"""

import json

import numpy as np
import pandas as pd
import statsmodels
import statsmodels.formula.api as smf


def main() -> None:
    df = pd.read_csv("tests/reference/mpdta.csv")
    df["joined"] = ((df["first.treat"] > 0) & (df["year"] >= df["first.treat"])).astype(float)
    plain = smf.ols("lemp ~ joined + C(countyreal) + C(year)", data=df).fit(
        cov_type="cluster", cov_kwds={"groups": df["countyreal"]}
    )
    event = np.where(df["first.treat"] > 0, df["year"] - df["first.treat"], np.nan)
    window = range(-4, 4)
    names = []
    for k in window:
        if k == -1:
            continue
        name = f"e_{k + 10}"
        df[name] = (event == k).astype(float)
        names.append(name)
    es = smf.ols("lemp ~ " + " + ".join(names) + " + C(countyreal) + C(year)", data=df).fit(
        cov_type="cluster", cov_kwds={"groups": df["countyreal"]}
    )
    out = {
        "statsmodels": statsmodels.__version__,
        "twfe": {"estimate": plain.params["joined"], "std_error": plain.bse["joined"]},
        "event_study": {
            "event_time": [k for k in window if k != -1],
            "estimate": [es.params[n] for n in names],
            "std_error": [es.bse[n] for n in names],
        },
    }
    with open("tests/reference/mpdta_twfe_statsmodels.json", "w") as handle:
        json.dump(out, handle, indent=1)


if __name__ == "__main__":
    main()
