"""Regenerate mpdta_moderndid.json with moderndid 0.2.0 (run by hand in a venv that has moderndid).

    python tests/reference/make_mpdta_moderndid.py
"""

import json
import warnings

import pandas as pd
from moderndid import aggte, att_gt

warnings.filterwarnings("ignore")
SPECS = [(None, "dr"), ("~lpop", "dr"), ("~lpop", "ipw"), ("~lpop", "reg")]


def main() -> None:
    df = pd.read_csv("tests/reference/mpdta.csv")
    out = {}
    for control in ["nevertreated", "notyettreated"]:
        for formula, method in SPECS:
            for anticipation in [0, 1]:
                if anticipation == 1 and formula is not None and method != "dr":
                    continue
                fit = att_gt(
                    df, yname="lemp", tname="year", idname="countyreal", gname="first.treat", xformla=formula,
                    est_method=method, control_group=control, anticipation=anticipation, boot=False,
                )
                entry = {
                    "cohort": [float(v) for v in fit.groups],
                    "t": [float(v) for v in fit.times],
                    "att": [float(v) for v in fit.att_gt],
                    "se": [float(v) for v in fit.se_gt],
                }
                for kind in ["simple", "group", "dynamic", "calendar"]:
                    agg = aggte(fit, type=kind, boot=False)
                    entry[kind] = {
                        "overall_att": float(agg.overall_att),
                        "overall_se": float(agg.overall_se),
                        "egt": None if agg.event_times is None else [float(v) for v in agg.event_times],
                        "att": None if agg.att_by_event is None else [float(v) for v in agg.att_by_event],
                        "se": None if agg.se_by_event is None else [float(v) for v in agg.se_by_event],
                    }
                out[f"{control}|{formula or 'none'}|{method}|{anticipation}"] = entry
    with open("tests/reference/mpdta_moderndid.json", "w") as handle:
        json.dump(out, handle, indent=1)


if __name__ == "__main__":
    main()
