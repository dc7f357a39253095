"""The report reads diagnostics the estimators really write (#19): end-to-end runs, no hand-made fixtures.

(a) a real multilevel run records ``count_unit: pupils``, and that key (not only a named pupil count) makes
the disclosure rules withhold the estimate of a small group of pupils; (b) a real run whose propensity logit
does not converge shows the "did not converge" section; (c) the report headlines ``headline_term``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaltool.config import load_config
from evaltool.data.simulate import SimulationSettings, simulate, write_simulation
from evaltool.estimators.psm import propensity
from evaltool.pipeline import execute
from evaltool.report.build import write_report
from evaltool.report.disclosure import SUPPRESSED, Disclosure
from evaltool.report.formatting import fmt_num
from evaltool.report.view import headline_estimate

COLUMNS = """
columns:
  school: urn
  year: year
  join_year: join_year
  trust: trust_id
  outcomes: [attainment8]
"""


def _run(
    root: Path, analyses: str, *, covariates: str = "[ks2_prior, fsm_pct]", pupils: bool = False,
    allow_failed: set[str] = frozenset(),
) -> Path:
    """Run a config of ``analyses`` on the data in ``root/data``; returns the output folder."""
    data = "data:\n  panel: data/school_panel.csv\n" + ("  pupils: data/pupils.parquet\n" if pupils else "")
    config = f"title: wiring\nseed: 3\n{data}{COLUMNS}  covariates: {covariates}\nanalyses:\n{analyses}"
    (root / "config.yaml").write_text(config, encoding="utf-8")
    run, out = execute(load_config(root / "config.yaml"), root / "out")
    unexpected = [(a.analysis, a.error) for a in run.failed if a.analysis not in allow_failed]
    assert unexpected == [], unexpected
    return out


def _payload(folder: Path) -> dict:
    return json.loads((folder / "results.json").read_text(encoding="utf-8"))


# ------------------------------------------------------------------ (a) pupil counts
@pytest.fixture(scope="module")
def multilevel_out(tmp_path_factory) -> Path:
    """A multilevel run (not for publication) whose ``eal=1`` subgroup has 6 pupils: 3 in trust schools, 3 not."""
    root = tmp_path_factory.mktemp("wiring_multilevel")
    data = simulate(SimulationSettings(seed=11, n_schools=60, pupils_per_school=20))
    pupils = data.pupils.copy()
    joined = data.panel.drop_duplicates("urn").set_index("urn")["join_year"]
    in_trust = pupils["urn"].map(joined).le(2019).fillna(False).astype(bool)
    year = pupils["year"] == 2019
    pupils["eal"] = 0
    pupils.loc[list(pupils.index[year & in_trust][:3]) + list(pupils.index[year & ~in_trust][:3]), "eal"] = 1
    write_simulation(dataclasses.replace(data, pupils=pupils), root / "data")
    analyses = """  - name: ml
    method: multilevel
    years: [2019]
    pupil_covariates: [ks2_score]
    heterogeneity:
      by: [eal]
      min_pupils: 1
      min_schools: 1
"""
    return _run(root, analyses, pupils=True)


def _eal1(analysis: dict) -> dict:
    return next(e for e in analysis["estimates"] if e.get("subgroup") == "eal=1")


def test_a_real_multilevel_run_records_that_its_counts_are_pupils(multilevel_out):
    analysis = _payload(multilevel_out)["analyses"][0]
    assert analysis["diagnostics"]["count_unit"] == "pupils"
    small = _eal1(analysis)
    assert (small["n_treated"], small["n_control"]) == (3, 3)  # the raw (unpublished) counts are pupils


def test_count_unit_is_what_withholds_the_small_pupil_group(multilevel_out):
    raw = _payload(multilevel_out)
    # Without a named pupil count (n_pupils_min, the subgroup table) the estimate counts of an analysis whose
    # count_unit is pupils are pupil counts: the 3 + 3 pupil subgroup is withheld ...
    stripped = copy.deepcopy(raw)
    analysis = stripped["analyses"][0]
    analysis["diagnostics"].pop("subgroups", None)
    for estimate in analysis["estimates"]:
        estimate.pop("n_pupils_min", None)
    safe = _eal1(Disclosure(10).payload(stripped)["analyses"][0])
    assert safe["estimate"] == safe["std_error"] == safe["ci_lower"] == safe["p_value"] == SUPPRESSED
    # ... and without count_unit the same counts would read as schools, whose estimates are public.
    analysis["diagnostics"].pop("count_unit")
    assert _eal1(Disclosure(10).payload(stripped)["analyses"][0])["estimate"] == _eal1(raw["analyses"][0])["estimate"]


def test_the_report_of_a_real_multilevel_run_withholds_and_counts_pupils(multilevel_out):
    markdown = (multilevel_out / "report.md").read_text(encoding="utf-8")
    assert int(re.search(r"(\d+) statistics withheld", markdown).group(1)) > 0
    assert re.search(r"It compares [\dc,]+ pupils that joined with [\dc,]+ comparison pupils", markdown), markdown[:3000]


def test_the_forest_plot_of_a_real_run_leaves_the_small_group_as_a_labelled_gap(multilevel_out):
    # Figures are drawn from the suppressed result even when the run is not for publication: the report embeds them.
    svg = (multilevel_out / "figures" / "ml_subgroups_forest.svg").read_text(encoding="utf-8")
    texts = re.findall(r"<!--(.*?)-->", svg, flags=re.S)  # matplotlib writes each text before its glyphs
    assert any("withheld: fewer than 10 pupils" in t for t in texts), texts


# ------------------------------------------------------------------ (b) convergence
@pytest.fixture(scope="module")
def unconverged_out(tmp_path_factory) -> Path:
    """PSM and IPW whose propensity logit is allowed a single Newton step, so it stops short of the maximum.

    (A separating covariate is no longer a way to get here: separation is now an error naming the covariate,
    tested below.)
    """
    root = tmp_path_factory.mktemp("wiring_unconverged")
    write_simulation(simulate(SimulationSettings(seed=2, n_schools=80, pupils_per_school=10)), root / "data")
    analyses = "  - name: psm\n    method: psm\n    replace: true\n  - name: ipw\n    method: ipw\n"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(propensity, "MAX_ITER", 1)
        return _run(root, analyses, allow_failed={"ipw"})


def test_a_fit_that_does_not_converge_shows_the_did_not_converge_section(unconverged_out):
    analysis = next(a for a in _payload(unconverged_out)["analyses"] if a["analysis"] == "psm")
    assert analysis["diagnostics"]["convergence"]["converged"] is False
    markdown = (unconverged_out / "report.md").read_text(encoding="utf-8")
    section = markdown.split("\n## psm: ")[1].split("\n## ")[0]
    assert "### Model convergence: did NOT converge" in section
    assert "The model did not converge: treat its estimates with caution" in section
    page = (unconverged_out / "report.html").read_text(encoding="utf-8")
    assert page.count('class="alarm">Model convergence: did NOT converge') == 1


def test_ipw_refuses_weights_from_an_unconverged_logit(unconverged_out):
    analysis = next(a for a in _payload(unconverged_out)["analyses"] if a["analysis"] == "ipw")
    assert analysis["status"] == "failed"
    assert "did not converge" in analysis["error"]


def test_a_separating_covariate_fails_the_analysis_naming_it(tmp_path):
    """``x`` is 1 for every joining school and half the never-joined ones: the logit's coefficient diverges."""
    write_simulation(simulate(SimulationSettings(seed=2, n_schools=80, pupils_per_school=10)), tmp_path / "data")
    path = tmp_path / "data" / "school_panel.csv"
    panel = pd.read_csv(path)
    never = panel.drop_duplicates("urn").loc[lambda d: d["join_year"].isna(), "urn"]
    panel["x"] = np.where(panel["urn"].isin(set(never.iloc[: len(never) // 2])), 0.0, 1.0)
    panel.to_csv(path, index=False)
    analyses = "  - name: psm\n    method: psm\n    replace: true\n  - name: ipw\n    method: ipw\n"
    out = _run(tmp_path, analyses, covariates="[ks2_prior, x]", allow_failed={"psm", "ipw"})
    for analysis in _payload(out)["analyses"]:
        assert analysis["status"] == "failed"
        assert "separation" in analysis["error"] and "x" in analysis["error"]


def test_a_fit_that_converged_says_so(multilevel_out):
    analysis = _payload(multilevel_out)["analyses"][0]
    assert analysis["diagnostics"]["convergence"]["converged"] is True
    markdown = (multilevel_out / "report.md").read_text(encoding="utf-8")
    assert "### Model convergence\n" in markdown and "did NOT converge" not in markdown


# ------------------------------------------------------------------ (c) headline_term
@pytest.fixture(scope="module")
def panel_out(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("wiring_headline")
    write_simulation(simulate(SimulationSettings(seed=4, n_schools=80, pupils_per_school=10)), root / "data")
    analyses = """  - name: staggered
    method: did_staggered
    bootstrap_draws: 0
    aggregations: [simple, dynamic]
  - name: event_study
    method: event_study
    window: [-3, 3]
    bin_endpoints: true
  - name: twfe
    method: did_twfe
"""
    return _run(root, analyses)


def _table_effect(markdown: str, name: str) -> str:
    """The Effect cell of an analysis in the report's "All analyses" table."""
    row = next(line for line in markdown.splitlines() if line.startswith(f"| {name} |"))
    return [c.strip() for c in row.strip("|").split("|")][3]


def test_every_analysis_names_its_headline_term(panel_out):
    for analysis in _payload(panel_out)["analyses"]:
        term = analysis["diagnostics"]["headline_term"]
        assert term in {e["term"] for e in analysis["estimates"]}, analysis["analysis"]
        assert analysis["diagnostics"]["count_unit"] == "schools"


def test_the_report_headlines_the_headline_term_whatever_the_row_order(panel_out, tmp_path):
    folder = tmp_path / "reordered"
    shutil.copytree(panel_out, folder)
    payload = _payload(folder)
    for analysis in payload["analyses"]:
        analysis["estimates"] = analysis["estimates"][::-1]  # the headline is no longer first
    (folder / "results.json").write_text(json.dumps(payload), encoding="utf-8")
    write_report(folder)
    markdown = (folder / "report.md").read_text(encoding="utf-8")
    defaults = []
    for analysis in payload["analyses"]:
        term = analysis["diagnostics"]["headline_term"]
        headline = next(e for e in analysis["estimates"] if e["term"] == term and e.get("subgroup", "all") == "all")
        assert _table_effect(markdown, analysis["analysis"]) == fmt_num(headline["estimate"], signed=True)
        unnamed = {**analysis, "diagnostics": {k: v for k, v in analysis["diagnostics"].items() if k != "headline_term"}}
        defaults.append(headline_estimate(unnamed)["term"] != term)
    assert any(defaults), "without headline_term the reordered rows would give the same headlines: a vacuous test"


def test_the_event_study_table_shows_what_the_method_writes(panel_out):
    # method: event_study writes its table with `att` and `std_error`; the report read only `estimate`/`ci_*`.
    analysis = next(a for a in _payload(panel_out)["analyses"] if a["analysis"] == "event_study")
    markdown = (panel_out / "report.md").read_text(encoding="utf-8")
    section = markdown.split("\n## event_study: ")[1].split("\n## ")[0]
    table = section.split("### Effect by years since joining")[1].split("\n\n")[1]
    rows = {r.split("|")[1].strip(): [c.strip() for c in r.split("|")[2:4]] for r in table.splitlines()[2:]}
    one = next(e for e in analysis["estimates"] if e["term"] == "event_time=1")
    assert rows["+1"][0] == fmt_num(one["estimate"], signed=True)
    assert all(effect != "–" and ci != "–" for effect, ci in rows.values()), rows
