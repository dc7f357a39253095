"""Write the notebooks of docs/notebooks/ from the cells below (stored without outputs).

Run ``.venv/bin/python docs/notebooks/make_notebooks.py`` after editing a notebook's cells here; the
notebooks are executed by ``tests/test_notebooks.py`` (see docs/notebooks/index.md), never at docs build.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

# The first code cell of every notebook: where the repository (configs/, sample_data/) is.
FIND_REPO = '''\
import os
from pathlib import Path


def find_repo() -> Path:
    """The evaltool repository: $EVALTOOL_REPO (set by tests/test_notebooks.py), else the nearest folder
    above the working directory that holds configs/ and sample_data/ (a notebook opened in docs/notebooks/)."""
    if os.environ.get("EVALTOOL_REPO"):
        return Path(os.environ["EVALTOOL_REPO"]).resolve()
    for folder in [Path.cwd(), *Path.cwd().parents]:
        if (folder / "configs").is_dir() and (folder / "sample_data").is_dir():
            return folder
    raise FileNotFoundError("Set EVALTOOL_REPO to the evaltool repository (the folder with configs/ and sample_data/).")


REPO = find_repo()
REPO'''

# Shared by the worked examples: the sample data as the sample config reads it.
LOAD_SAMPLE = """\
import json

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

import evaltool
from evaltool.results import TIDY_COLUMNS

# The 2020 and 2021 exams were cancelled (centre- and teacher-assessed grades): like the sample config
# (data.exclude_years), leave those years out.
EXCLUDED_YEARS = [2020, 2021]
SAMPLE = REPO / "sample_data"
panel_all = pd.read_csv(SAMPLE / "school_panel.csv")
panel = panel_all[~panel_all["year"].isin(EXCLUDED_YEARS)].reset_index(drop=True)
trusts = pd.read_csv(SAMPLE / "trusts.csv")
pupils = pd.read_parquet(SAMPLE / "pupils.parquet")
truth = json.loads((SAMPLE / "truth.json").read_text())

# The columns' roles, as in configs/federation_impact.yaml (columns:).
COLUMNS = dict(outcome="attainment8", unit="urn", time="year", cohort="join_year", trust="trust_id")
print(f"{panel['urn'].nunique()} schools, years {sorted(panel['year'].unique())}; {len(pupils):,} pupils; "
      f"{len(trusts)} trusts")"""

# The truth of the staggered DiD's estimands on the analysis years (simulated data only).
TRUTH_ESTIMANDS = """\
effects = pd.DataFrame(truth["school_year_effects"]["data"], columns=truth["school_year_effects"]["columns"])
cohorts = panel_all.drop_duplicates("urn")[["urn", "join_year"]]
effects = effects.merge(cohorts, on="urn")
effects = effects[effects["join_year"].isin(truth["settings"]["cohorts"])
                  & ~effects["year"].isin(EXCLUDED_YEARS)]
# ATT (simple): every joined school-year of the analysis years weighted equally.
truth_simple = effects["effect"].mean()
# ATT (cohort-weighted), the headline: each cohort's mean over its years since joining, weighted by its schools.
by_cohort = effects.groupby(["join_year", "year"])["effect"].mean().groupby("join_year").mean()
schools = effects.groupby("join_year")["urn"].nunique()
truth_cohort_weighted = (by_cohort * schools).sum() / schools.sum()
truth_table = pd.DataFrame({
    "truth": [truth["att_overall"]["school"], truth_simple, truth_cohort_weighted],
    "what it averages": ["truth.json att_overall.school: joined school-years, 2020-21 included",
                         "joined school-years of the analysis years (as ATT (simple))",
                         "cohort means over the analysis years, weighted by schools (as the headline)"],
}, index=["att_overall", "simple, analysis years", "cohort-weighted, analysis years"])
truth_table"""

TRUST_QUESTION = [
    new_markdown_cell(
        "# A trust's question: did joining our trust help?\n\n"
        "A trust analyst asks: *did Attainment 8 rise in our schools after they joined, compared with similar "
        "schools that never joined?* This notebook answers it on the committed sample data "
        "(`sample_data/`, simulated, so the true effects are known: see `sample_data/README.md`) for the "
        "largest trust in the sample, using the Python API:\n\n"
        "1. the trust's schools and when they joined;\n"
        "2. `evaltool.trust_effects`: one difference-in-differences estimate per trust (the trust's schools' "
        "change from the three years before joining to the first three years in the trust, minus the change in "
        "never-joined schools), with a randomisation p-value built for trusts of 2-9 schools;\n"
        "3. `evaltool.did_staggered` on every joining school, as context: the average effect of joining a trust "
        "in the sample;\n"
        "4. what the numbers do and do not say, and a check against the simulation's truth."
    ),
    new_code_cell(FIND_REPO),
    new_markdown_cell("Load the sample: the school × year panel, the trusts, and the pupils (2018 and 2019 exams, used "
                      "only to express effects as pupil-level effect sizes)."),
    new_code_cell(LOAD_SAMPLE),
    new_markdown_cell(
        "## 1. The trust\n\n"
        "Pick the trust with the most schools among those that joined within the data (so there are years "
        "before joining to compare with); ties go to the first trust id, so the choice is the same on every run."
    ),
    new_code_cell(
        'members = panel_all.dropna(subset=["trust_id"]).drop_duplicates("urn")\n'
        'first_year = panel["year"].min()\n'
        'sizes = (members[members["join_year"] > first_year]\n'
        '         .groupby("trust_id").agg(n_schools=("urn", "nunique"), joined=("join_year", "min"))\n'
        '         .sort_values(["n_schools"], ascending=False, kind="stable"))\n'
        "TRUST = sizes.index[0]\n"
        'sizes["joined"] = sizes["joined"].astype(int)\n'
        'print(f"Chosen trust: {TRUST} ({sizes.loc[TRUST, \'n_schools\']} schools, joined {sizes.loc[TRUST, \'joined\']})")\n'
        'trusts.set_index("trust_id").loc[TRUST, ["collaboration_type", "federation_form", "n_schools", "start_year"]]'
    ),
    new_markdown_cell("Its schools, the year each joined, and their mean Attainment 8 before and after joining (raw "
                      "means: nothing is compared yet)."),
    new_code_cell(
        'ours = panel[panel["trust_id"] == TRUST]\n'
        "before = ours[ours[\"year\"] < ours[\"join_year\"]].groupby(\"urn\")[\"attainment8\"].mean()\n"
        "after = ours[ours[\"year\"] >= ours[\"join_year\"]].groupby(\"urn\")[\"attainment8\"].mean()\n"
        'schools_table = (ours.drop_duplicates("urn").set_index("urn")[["la_code", "region", "join_year"]]\n'
        '                 .astype({"join_year": int}).assign(attainment8_before=before.round(1), attainment8_after=after.round(1)))\n'
        "schools_table"
    ),
    new_markdown_cell(
        "## 2. The trust's effect\n\n"
        "`trust_effects` compares each trust's schools with the never-joined schools over the same years: the "
        "mean Attainment 8 of event times 0-2 (the joining year and the two after) minus that of event times "
        "-3 to -1, for the trust's schools minus for the comparison schools. The **p-value** is randomisation "
        "inference: 999 placebo \"trusts\" of the same size are drawn from the trust's and the comparison "
        "schools, and p is the share of placebo effects at least as large (so the smallest possible p is "
        "1/1000). The **interval** assumes the trust's schools' changes vary as much as the comparison schools' "
        "do. Passing `pupils=` expresses effects as pupil-level effect sizes (Hedges' g, as the EEF reports)."
    ),
    new_code_cell(
        "per_trust = evaltool.trust_effects(\n"
        "    panel, **COLUMNS, trusts=trusts, pupils=pupils,\n"
        '    pre_window=[-3, -1], post_window=[0, 2], comparison="never_joined", min_schools=2, n_permutations=999,\n'
        ")\n"
        "print(per_trust.summary(max_rows=5))"
    ),
    new_markdown_cell("Our trust's row of the results table (`tidy()`, the rows of `results.csv`), and the two changes "
                      "behind it (`diagnostics[\"trusts\"]`)."),
    new_code_cell(
        "rows = per_trust.tidy()\n"
        'ours_row = rows[rows["term"] == TRUST]\n'
        'display(ours_row[["term", "estimate", "std_error", "ci_lower", "ci_upper", "p_value", "n_treated", "n_control",\n'
        '                  "effect_size", "effect_size_ci_lower", "effect_size_ci_upper", "inference"]].T)\n'
        'changes = per_trust.diagnostics["trusts"].set_index("trust").loc[TRUST]\n'
        'changes[["join_year", "treated_change", "comparison_change", "estimate", "p_value", "p_value_method"]]'
    ),
    new_code_cell(
        "row = ours_row.iloc[0]\n"
        "print(\n"
        "    f\"From the three years before joining to the first three years in the trust, Attainment 8 in {TRUST}'s \"\n"
        "    f\"{row.n_treated} schools changed by {changes.treated_change:+.1f} points, and in {row.n_control} \"\n"
        "    f\"never-joined schools by {changes.comparison_change:+.1f}: a difference of {row.estimate:+.1f} points \"\n"
        "    f\"(95% CI {row.ci_lower:.1f} to {row.ci_upper:.1f}; effect size {row.effect_size:.2f} SD of pupils' \"\n"
        "    f\"scores). Randomisation p-value {row.p_value:.3f}: {round(row.p_value * 1000) - 1} of 999 random groups of \"\n"
        "    f\"{row.n_treated} schools had a difference at least this large.\"\n"
        ")"
    ),
    new_markdown_cell(
        "Where our trust sits among all the trusts of the sample (the forest plot of `trust_effects`):"
    ),
    new_code_cell(
        'fig = per_trust.plot("forest")\n'
        "display(fig)\n"
        "plt.close(fig)"
    ),
    new_markdown_cell("How wide a trust's interval is, by the number of its schools:"),
    new_code_cell(
        'rows.assign(ci_width=rows["ci_upper"] - rows["ci_lower"]).groupby("n_treated")["ci_width"].agg(["count", "mean"])'
        '.round(2).rename_axis("schools in the trust")'
    ),
    new_markdown_cell(
        "**Reading this honestly.** One trust is a handful of schools, so its estimate is far less certain than "
        "the sample-wide one below:\n\n"
        "* the interval spans a couple of points of Attainment 8 even for the largest trust, and about twice that "
        "for a trust of two schools (table above); with 49 trusts, a few will look very good or very poor by "
        "chance alone;\n"
        "* the randomisation p-value says how unusual the trust's change is *among groups of schools of the same "
        "size*; it does not say the trust caused all of it: anything else that changed in these schools when they "
        "joined (a new head, a change of intake) is in the estimate too;\n"
        "* the comparison is with never-joined schools *in general*, not matched ones: `trust_effects` does not "
        "adjust for prior attainment or disadvantage, and schools that join differ on both (see the matched "
        "analysis in the evaluator's notebook, `02_staggered_evaluation.ipynb`);\n"
        "* the window is fixed (three years either side), so a trust whose effect builds up slowly is judged on "
        "its early years."
    ),
    new_markdown_cell(
        "## 3. Context: the effect of joining across the sample\n\n"
        "The staggered difference in differences (Callaway and Sant'Anna) compares each cohort of joining "
        "schools with never-joined schools over the same years, conditioning on prior attainment (KS2) and "
        "disadvantage (FSM), and averages the cohorts' effects. Standard errors are clustered by trust (a "
        "multiplier bootstrap, 199 draws here to keep the notebook quick; the sample config uses 999)."
    ),
    new_code_cell(
        "staggered = evaltool.did_staggered(\n"
        '    panel, **COLUMNS, covariates=["ks2_prior", "fsm_pct"], control="never_treated", pupils=pupils,\n'
        "    bootstrap_draws=199,\n"
        ")\n"
        "print(staggered.summary(max_rows=4))"
    ),
    new_markdown_cell("The effect by years since joining (event study of the group-time effects); years before joining "
                      "should be near zero if the comparison is fair."),
    new_code_cell(
        'fig = staggered.plot("event_study")\n'
        "display(fig)\n"
        "plt.close(fig)"
    ),
    new_code_cell(
        "headline = staggered.tidy().iloc[0]\n"
        'print(f"Across the sample: {headline.term} = {headline.estimate:.2f} points "\n'
        '      f"(95% CI {headline.ci_lower:.2f} to {headline.ci_upper:.2f}); {TRUST}: {row.estimate:.2f} "\n'
        '      f"(95% CI {row.ci_lower:.2f} to {row.ci_upper:.2f}).")'
    ),
    new_markdown_cell(
        "Our trust's estimate and the sample's average answer different questions: the trust's is its own "
        "schools over event times 0-2, unadjusted; the sample's is every joining school, adjusted for KS2 and "
        "FSM, over all years since joining (effects grow with time in the trust). An interval for the trust that "
        "overlaps the sample's says the trust's schools did about as well as the average joiner; it cannot rank "
        "the trust against others with any precision."
    ),
    new_markdown_cell(
        "## 4. Check against the truth (simulated data only)\n\n"
        "`truth.json` holds the simulation's true effects. Its `att_overall.school` averages every joined "
        "school-year, **2020 and 2021 included**; the headline here, `ATT (cohort-weighted)`, averages each "
        "cohort's effect over the analysis years (2020-21 left out) and weights cohorts by their schools. So the "
        "table below also computes the truth of exactly those estimands from `school_year_effects` (the effect "
        "of every joined school-year); the headline is checked against all three."
    ),
    new_code_cell(TRUTH_ESTIMANDS),
    new_markdown_cell("The truth of our trust's estimand: the mean true effect of its schools over event times 0-2 "
                      "(the years of those that are analysed)."),
    new_code_cell(
        'ours_effects = effects.merge(members[["urn", "trust_id"]], on="urn").query("trust_id == @TRUST")\n'
        'window = ours_effects[(ours_effects["year"] - ours_effects["join_year"]).between(0, 2)]\n'
        'truth_trust = window["effect"].mean()\n'
        'print(f"{TRUST}: estimate {row.estimate:.2f} (95% CI {row.ci_lower:.2f} to {row.ci_upper:.2f}), "\n'
        '      f"true effect over event times 0-2 {truth_trust:.2f}")'
    ),
    new_markdown_cell(
        "## Checks\n\n"
        "Both analyses ran; the headline interval covers the true overall effect (truth.json's `att_overall` "
        "and the truth of the headline's own estimand); our trust's estimate is finite with a positive standard "
        "error; the results tables have the fixed columns of `results.csv`."
    ),
    new_code_cell(
        "import math\n"
        "\n"
        'assert per_trust.status == "ok", per_trust.error\n'
        'assert staggered.status == "ok", staggered.error\n'
        'assert headline.term == staggered.diagnostics["headline_term"] == "ATT (cohort-weighted)"\n'
        "for name, value in truth_table[\"truth\"].items():\n"
        '    assert headline.ci_lower <= value <= headline.ci_upper, (name, value, headline.ci_lower, headline.ci_upper)\n'
        "assert len(ours_row) == 1, f\"{TRUST} has {len(ours_row)} rows in trust_effects\"\n"
        "assert math.isfinite(row.estimate) and row.std_error > 0, (row.estimate, row.std_error)\n"
        "assert 0 < row.p_value <= 1\n"
        "assert list(per_trust.tidy().columns) == list(TIDY_COLUMNS)\n"
        "assert list(staggered.tidy().columns) == list(TIDY_COLUMNS)"
    ),
]

STAGGERED_EVALUATION = [
    new_markdown_cell(
        "# An evaluation: staggered DiD with matching, subgroups and sensitivity checks\n\n"
        "An evaluator's version of the question *did joining a federation or multi-academy trust raise "
        "Attainment 8?*, on the committed sample data (`sample_data/`, simulated with known true effects), with "
        "the Python API:\n\n"
        "1. the headline: a staggered difference in differences (Callaway and Sant'Anna) against never-joined "
        "schools, with covariates, its event study and pre-trend test;\n"
        "2. matched DiD: each joining school matched to a similar never-joined school, with the balance table;\n"
        "3. for whom: effects by pupil subgroup (disadvantage, prior attainment) and the gaps between them;\n"
        "4. sensitivity: what can be checked today (placebo joining years, another comparison group, the TWFE "
        "estimate);\n"
        "5. a check against the simulation's truth."
    ),
    new_code_cell(FIND_REPO),
    new_code_cell(
        LOAD_SAMPLE
        + "\n"
        + "subgroups_all = pd.read_csv(SAMPLE / \"subgroup_panel.csv\")\n"
        + "subgroups = subgroups_all[~subgroups_all[\"year\"].isin(EXCLUDED_YEARS)].reset_index(drop=True)\n"
        + "COVARIATES = [\"ks2_prior\", \"fsm_pct\"]                                  # conditional parallel trends\n"
        + "MATCH_ON = [\"ks2_prior\", \"fsm_pct\", \"eal_pct\", \"sen_pct\", \"cohort_size\"]  # the propensity model"
    ),
    new_markdown_cell(
        "## 1. Staggered DiD\n\n"
        "Each cohort of joining schools (2014-2019) is compared with never-joined schools over the same years "
        "(`control=\"never_treated\"`, R did's name), doubly robust on KS2 prior attainment and FSM; standard "
        "errors clustered by trust with a multiplier bootstrap (199 draws here to keep the notebook quick; 999 "
        "in the sample config). The headline is the cohort-weighted ATT; the other aggregations follow."
    ),
    new_code_cell(
        "staggered = evaltool.did_staggered(\n"
        "    panel, **COLUMNS, covariates=COVARIATES, control=\"never_treated\", pupils=pupils, bootstrap_draws=199,\n"
        ")\n"
        "staggered"
    ),
    new_markdown_cell("The event study: effects by years since joining, with the years before joining as a check."),
    new_code_cell(
        "fig = staggered.plot(\"event_study\")\n"
        "display(fig)\n"
        "plt.close(fig)"
    ),
    new_markdown_cell(
        "**The pre-trend test** (`diagnostics[\"pretrend_test\"]`): are the pre-joining group-time effects "
        "jointly zero? evaltool's default reference is a small-sample F (each cohort's covariance is estimated "
        "from its own few schools); R did's asymptotic χ² p-value is reported too, and is known to over-reject "
        "here (see the configuration reference, `did_staggered.pretrend_reference`). A non-rejection is not "
        "proof of parallel trends: the test has limited power against small or gradual differences."
    ),
    new_code_cell(
        "pretrend = staggered.diagnostics[\"pretrend_test\"]\n"
        "pd.Series(pretrend)"
    ),
    new_markdown_cell(
        "## 2. Matched DiD\n\n"
        "Propensity-score matching on the baseline year (the year before joining), 1:1 within cohort with a "
        "caliper of 0.2 SD of the logit score, then the change in Attainment 8 from the baseline to event times "
        "0-2, treated minus matched comparison schools. Years 2020-21 are out of the data, so cohorts 2018 and "
        "2019 have fewer of those event times (the result's warning says so)."
    ),
    new_code_cell(
        "matched = evaltool.psm(\n"
        "    panel, **COLUMNS, covariates=MATCH_ON, did=True, event_times=[0, 1, 2], caliper=0.2, ratio=1, replace=False,\n"
        ")\n"
        "print(matched.summary())"
    ),
    new_markdown_cell(
        "The balance table (`diagnostics[\"balance\"]`): standardised mean differences before and after "
        "matching (|SMD| < 0.1 is good balance; What Works Clearinghouse: ≤ 0.05 satisfies, 0.05-0.25 "
        "satisfies with adjustment for that covariate, > 0.25 does not)."
    ),
    new_code_cell(
        "balance = matched.diagnostics[\"balance\"]\n"
        "balance[[\"covariate\", \"smd_before\", \"smd_after\", \"var_ratio_before\", \"var_ratio_after\", \"wwc_verdict\"]].round(3)"
    ),
    new_code_cell(
        "fig = matched.plot(\"love_plot\")\n"
        "display(fig)\n"
        "plt.close(fig)"
    ),
    new_markdown_cell(
        "## 3. For whom: pupil subgroups\n\n"
        "The same staggered DiD on the subgroup panel (`subgroups=`, with the columns' roles `subgroup=`, "
        "`subgroup_type=`, `pupil_count=` as in the sample config's `columns:`), by disadvantage and prior "
        "attainment, with the gaps disadvantaged − not disadvantaged and low − high prior attainment."
    ),
    new_code_cell(
        "SUBGROUPS_ASKED = [\"disadvantaged\", \"not_disadvantaged\", \"low_prior\", \"middle_prior\", \"high_prior\"]\n"
        "GAPS_ASKED = [[\"disadvantaged\", \"not_disadvantaged\"], [\"low_prior\", \"high_prior\"]]\n"
        "by_subgroup = evaltool.did_staggered(\n"
        "    panel, **COLUMNS, covariates=COVARIATES, control=\"never_treated\", bootstrap_draws=199,\n"
        "    subgroups=subgroups, subgroup=\"subgroup\", subgroup_type=\"subgroup_type\", pupil_count=\"n_pupils\",\n"
        "    heterogeneity={\"by\": [\"disadvantage\", \"prior_attainment\"], \"compare\": GAPS_ASKED},\n"
        ")\n"
        "subgroup_table = by_subgroup.diagnostics[\"subgroups\"]\n"
        "subgroup_table[[\"by\", \"subgroup\", \"kind\", \"estimate\", \"std_error\", \"ci_lower\", \"ci_upper\", \"p_holm\",\n"
        "                \"interaction_p_value\", \"n_treated\", \"n_control\", \"status\"]].round(3)"
    ),
    new_code_cell(
        "fig = by_subgroup.plot(\"subgroups_forest\")\n"
        "display(fig)\n"
        "plt.close(fig)"
    ),
    new_markdown_cell(
        "## 4. Sensitivity: what can be checked today\n\n"
        "* **Placebo joining years** (`placebo_shift`, default 2): joining years moved two years earlier, using "
        "only years before the real joining; an effect here would mean the comparison picks up something other "
        "than joining.\n"
        "* **Another comparison group**: not-yet-joined schools (`control=\"not_yet_treated\"`) instead of "
        "never-joined ones; schools that join later are arguably more like the joiners.\n"
        "* **TWFE**: the two-way fixed-effects coefficient, biased under staggered joining with growing effects "
        "(shown for comparison, not as an alternative estimate).\n"
        "* **Matched DiD** (section 2) as a design that compares like with like on observed covariates."
    ),
    new_code_cell(
        "placebo = pd.Series({shift: evaltool.did_staggered(\n"
        "    panel, **COLUMNS, covariates=COVARIATES, control=\"never_treated\", bootstrap_draws=199, placebo_shift=shift,\n"
        ").diagnostics[\"placebo_test\"] for shift in (2, 3)}).apply(pd.Series)\n"
        "placebo[[\"estimate\", \"std_error\", \"p_value\", \"cohorts\", \"note\"]]"
    ),
    new_code_cell(
        "not_yet = evaltool.did_staggered(\n"
        "    panel, **COLUMNS, covariates=COVARIATES, control=\"not_yet_treated\", bootstrap_draws=199,\n"
        ")\n"
        "twfe = evaltool.did_twfe(panel, **COLUMNS)\n"
        "specifications = {\n"
        "    \"staggered, never joined (headline)\": staggered,\n"
        "    \"staggered, not yet joined\": not_yet,\n"
        "    \"matched DiD, event times 0-2\": matched,\n"
        "    \"TWFE (biased under staggering)\": twfe,\n"
        "}\n"
        "comparison = pd.DataFrame([\n"
        "    {\"specification\": name, **result.tidy().iloc[0][[\"term\", \"estimate\", \"ci_lower\", \"ci_upper\", \"n_treated\",\n"
        "                                                     \"n_control\"]].to_dict()}\n"
        "    for name, result in specifications.items()\n"
        "]).set_index(\"specification\")\n"
        "comparison.round(3)"
    ),
    new_markdown_cell(
        "The estimates answer slightly different questions (matched DiD covers event times 0-2 only, where "
        "effects are still growing, and only matched joiners; TWFE weights school-years in a way that can be "
        "negative), so they are not expected to agree exactly; a sign change or a large gap between the two "
        "staggered comparisons would be the warning sign."
    ),
    new_markdown_cell(
        "### Formal sensitivity: how wrong would the assumption have to be?\n\n"
        "Every analysis carries a `sensitivity:` block (on by default; see the configuration reference). With "
        "`base_period=\"universal\"` the dynamic effects form an event study, and evaltool computes Rambachan & "
        "Roth (2023) bounds (smoothness: a pre-joining linear trend may continue and bend by up to M a year), the "
        "power of the pre-trend test against linear trends (Roth 2022) and the change into the year before "
        "joining; the matched design gets Rosenbaum bounds (hidden bias Γ); every effect size an E-value. The "
        "report gathers them in its \"How sure are we?\" section, in the words printed below."
    ),
    new_code_cell(
        "from evaltool.report.sensitivity import sensitivity_lines\n"
        "\n"
        "universal = evaltool.did_staggered(\n"
        "    panel, **COLUMNS, covariates=COVARIATES, control=\"never_treated\", pupils=pupils, bootstrap_draws=199,\n"
        "    base_period=\"universal\",\n"
        ")\n"
        "bounds = pd.DataFrame(universal.diagnostics[\"sensitivity\"][\"honest\"][\"smoothness\"][\"intervals\"])\n"
        "display(bounds.round(3))\n"
        "fig = universal.plot(\"sensitivity\")\n"
        "display(fig)\n"
        "plt.close(fig)\n"
        "for result in (universal, matched):\n"
        "    payload = result.to_dict()\n"
        "    for line in sensitivity_lines(payload, payload[\"estimates\"][0]):\n"
        "        print(\"-\", line)"
    ),
    new_markdown_cell(
        "## 5. Check against the truth (simulated data only)\n\n"
        "`truth.json`'s `att_overall.school` averages every joined school-year, **2020 and 2021 included**, "
        "while the headline averages each cohort's effect over the analysis years (2020-21 left out) weighted "
        "by its schools; the table also computes the truth of those estimands from `school_year_effects`. The "
        "subgroup truths (`subgroups`, `subgroup_gaps`) also average all years with school-years weighted "
        "equally, so they are close to, not exactly, the cohort-weighted subgroup estimands."
    ),
    new_code_cell(TRUTH_ESTIMANDS),
    new_code_cell(
        "headline = staggered.tidy().iloc[0]\n"
        "truth_subgroups = {name: truth[\"subgroups\"][name][\"att_school\"] for name in SUBGROUPS_ASKED}\n"
        "truth_subgroups |= {f\"{a} - {b}\": truth[\"subgroup_gaps\"][f\"{a}_minus_{b}\"] for a, b in GAPS_ASKED}\n"
        "subgroup_table.set_index(\"subgroup\")[[\"estimate\", \"ci_lower\", \"ci_upper\"]].assign(\n"
        "    truth=pd.Series(truth_subgroups)).round(3)"
    ),
    new_markdown_cell(
        "## Checks\n\n"
        "Every analysis ran; the headline interval covers the true overall effect (truth.json's `att_overall` "
        "and the truth of the headline's own estimand); matching left every covariate with |SMD| < 0.25 (the "
        "What Works Clearinghouse limit) and improved balance on the covariates that drive joining (prior "
        "attainment and disadvantage, |SMD| near 1 before); the pre-trend and placebo tests ran; the sensitivity bounds were computed; every "
        "subgroup and gap asked for has a row."
    ),
    new_code_cell(
        "import math\n"
        "\n"
        "results = {**specifications, \"by subgroup\": by_subgroup}\n"
        "for name, result in results.items():\n"
        "    assert result.status == \"ok\", (name, result.error)\n"
        "    assert list(result.tidy().columns) == list(TIDY_COLUMNS), name\n"
        "\n"
        "assert headline.term == staggered.diagnostics[\"headline_term\"] == \"ATT (cohort-weighted)\"\n"
        "for name, value in truth_table[\"truth\"].items():\n"
        "    assert headline.ci_lower <= value <= headline.ci_upper, (name, value, headline.ci_lower, headline.ci_upper)\n"
        "\n"
        "assert 0 <= pretrend[\"p_value\"] <= 1 and pretrend[\"df\"] > 0\n"
        "smooth = universal.diagnostics[\"sensitivity\"][\"honest\"][\"smoothness\"]\n"
        "assert smooth[\"available\"] and smooth[\"breakdown\"] is not None and smooth[\"breakdown\"] >= 0\n"
        "assert universal.estimates[0].estimate == staggered.estimates[0].estimate  # post-joining cells: same base year\n"
        "assert matched.diagnostics[\"sensitivity\"][\"rosenbaum\"][\"breakdown_gamma\"] > 1\n"
        "assert staggered.estimates[0].e_value >= 1\n"
        "assert placebo[\"p_value\"].between(0, 1).all()\n"
        "\n"
        "covariates = balance[balance[\"covariate\"] != \"distance\"].set_index(\"covariate\")\n"
        "assert set(covariates.index) == set(MATCH_ON)\n"
        "assert covariates[\"smd_after\"].abs().lt(0.25).all(), covariates[\"smd_after\"]\n"
        "assert covariates[\"smd_after\"].abs().max() < covariates[\"smd_before\"].abs().max()\n"
        "for covariate in (\"ks2_prior\", \"fsm_pct\"):\n"
        "    assert abs(covariates.loc[covariate, \"smd_after\"]) < abs(covariates.loc[covariate, \"smd_before\"]), covariate\n"
        "\n"
        "gaps = {f\"{a} - {b}\" for a, b in GAPS_ASKED}\n"
        "assert set(SUBGROUPS_ASKED) | gaps <= set(subgroup_table[\"subgroup\"]), subgroup_table[\"subgroup\"].tolist()\n"
        "assert (subgroup_table[\"status\"] == \"ok\").all()\n"
        "assert set(SUBGROUPS_ASKED) | gaps <= set(by_subgroup.tidy()[\"subgroup\"])\n"
        "for value in subgroup_table[\"estimate\"]:\n"
        "    assert math.isfinite(value)"
    ),
]

NOTEBOOKS = {
    "00_smoke.ipynb": [
        new_markdown_cell(
            "# Smoke test: a config run from Python\n\n"
            "Runs `configs/did_staggered_example.yaml` on the committed sample data with `evaltool.run`, the "
            "Python form of `evaltool run` (without `out=` nothing is written): every analysis of the config "
            "runs and the estimates come back as one tidy table, the rows of `results.csv`."
        ),
        new_code_cell(FIND_REPO),
        new_code_cell(
            "import evaltool\n"
            "\n"
            'run = evaltool.run(REPO / "configs" / "did_staggered_example.yaml")\n'
            "table = run.tidy()\n"
            'table[["analysis", "term", "estimate", "std_error", "ci_lower", "ci_upper", "n_treated"]].head(10)'
        ),
        new_markdown_cell("What the test checks: every analysis ran, and each has estimates in the table."),
        new_code_cell(
            'assert not run.failed, [(a.analysis, a.error) for a in run.failed]\n'
            "assert run.exit_code == 0\n"
            'assert set(table["analysis"]) == {analysis.analysis for analysis in run.analyses}\n'
            'assert table["std_error"].gt(0).all()'
        ),
    ],
    "01_trust_question.ipynb": TRUST_QUESTION,
    "02_staggered_evaluation.ipynb": STAGGERED_EVALUATION,
}


def main() -> None:
    for name, cells in NOTEBOOKS.items():
        for i, cell in enumerate(cells):
            cell["id"] = f"{Path(name).stem}-{i:02d}"  # stable ids: regenerating changes nothing
        notebook = new_notebook(
            cells=cells,
            metadata={
                "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                "language_info": {"name": "python"},
            },
        )
        nbformat.validate(notebook)
        nbformat.write(notebook, HERE / name)


if __name__ == "__main__":
    main()
