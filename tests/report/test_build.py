"""The report from a results folder: content, failures, rebuild, bad folders, well-known diagnostics."""

from __future__ import annotations

import json
import re
import shutil

import pandas as pd
import pytest
from click.testing import CliRunner

from evaltool.cli import main
from evaltool.errors import DataError
from evaltool.report.build import load_results, write_report
from evaltool.results import AnalysisResult, EffectEstimate, SampleReport

from .conftest import write_results_folder


@pytest.fixture(scope="module")
def sample_report(sample_run):
    return (sample_run / "report.html").read_text(encoding="utf-8"), (sample_run / "report.md").read_text(encoding="utf-8")


def test_every_run_writes_the_report(sample_run):
    for name in ("report.html", "report.md"):
        assert (sample_run / name).is_file()
    manifest = json.loads((sample_run / "manifest.json").read_text())
    assert {"report.html", "report.md"} <= set(manifest["files"])


def test_headline_answers_the_three_questions_first(sample_run, sample_report):
    html, markdown = sample_report
    payload = json.loads((sample_run / "results.json").read_text())
    est = payload["analyses"][0]["estimates"][0]
    answer = html.index('id="answer"')
    assert answer < html.index('id="analysis-did_2x2"')
    for question in ("Did joining help?", "For whom?", "How sure are we?"):
        assert answer < html.index(question) < html.index("All analyses")
        assert question in markdown
    # The headline numbers are the run's estimate, rounded for people.
    assert f"+{est['estimate']:.2f}" in html[answer:html.index("All analyses")]
    assert f"{est['ci_lower']:.2f} to {est['ci_upper']:.2f}" in markdown
    assert "Evidence security" in markdown and "padlocks" in markdown


def test_failures_are_shown_prominently(sample_report):
    html, markdown = sample_report
    assert re.search(r'class="failures".*1 of 2 analyses failed', html, re.S)
    assert html.index('class="failures"') < html.index('id="analysis-did_2x2"')
    assert "No treated schools with outcome data in both periods" in html
    assert "**1 of 2 analyses failed**" in markdown
    assert "did_empty" in markdown.split("## did_2x2:")[0]
    assert html.index('id="answer"') < html.index('class="failures"')
    assert "This analysis failed and produced no estimate" in markdown


def test_sample_and_exclusions_are_reported(sample_run, sample_report):
    _, markdown = sample_report
    payload = json.loads((sample_run / "results.json").read_text())
    for exclusion in payload["analyses"][0]["sample"]["exclusions"]:
        assert exclusion["reason"] in markdown
    assert "Schools in the joining group: **" in markdown


def test_html_is_self_contained(sample_report):
    html, _ = sample_report
    assert "<script" not in html.lower()
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/|<link\b|@import|url\(", html, re.I)
    sources = re.findall(r'\bsrc="([^"]*)"', html)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "<style>" in html


def test_method_figures_are_embedded_and_linked(sample_run, sample_report):
    html, markdown = sample_report
    assert (sample_run / "figures" / "did_2x2_trends.png").is_file()
    assert 'alt="Trends"' in html
    assert "![Trends](figures/did_2x2_trends.png)" in markdown


def test_rebuild_from_folder_gives_the_same_report(sample_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(sample_run, copy)
    (copy / "report.html").unlink()
    (copy / "report.md").unlink()
    result = CliRunner().invoke(main, ["report", str(copy)])
    assert result.exit_code == 0, result.output
    assert "report.html" in result.output
    assert (copy / "report.html").read_bytes() == (sample_run / "report.html").read_bytes()
    assert (copy / "report.md").read_bytes() == (sample_run / "report.md").read_bytes()


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: None, r"does not exist"),
        (lambda d: d.mkdir(), r"is not an evaltool output folder: it has no results.json"),
        (lambda d: (d.mkdir(), (d / "results.json").write_text("{oops")), r"is not valid JSON"),
        (lambda d: (d.mkdir(), (d / "results.json").write_text('{"rows": []}')), r"is not an evaltool results file"),
        (
            lambda d: (d.mkdir(), (d / "results.json").write_text('{"format": 0, "evaltool_version": "0.0.1", "analyses": []}')),
            r"written by evaltool 0\.0\.1 in results format 0; this evaltool \(.*\) reads format 1\. Rerun",
        ),
    ],
    ids=["missing", "not-evaltool", "bad-json", "not-results", "old-format"],
)
def test_bad_folders_give_clear_messages(tmp_path, setup, message):
    folder = tmp_path / "folder"
    setup(folder)
    with pytest.raises(DataError, match=message):
        load_results(folder)
    result = CliRunner().invoke(main, ["report", str(folder)])
    assert result.exit_code == 2
    assert re.search(message, result.output)
    assert "Traceback" not in result.output


# -- well-known diagnostics ---------------------------------------------------------------------------


def rich_result() -> AnalysisResult:
    sample = SampleReport(n_rows_in=1200, n_rows_used=1100, n_units_used=220)
    sample.exclude("no common support", 100, 20, stage="matching", changes_estimand=True, attrition=True)
    subgroups = pd.DataFrame(
        {"subgroup": ["disadvantaged", "not_disadvantaged"], "subgroup_type": ["disadvantage"] * 2,
         "estimate": [2.2, 0.8], "ci_lower": [0.9, -0.4], "ci_upper": [3.5, 2.0], "n_pupils": [400, 1200]}
    )
    diagnostics = {
        "headline_term": "ATT",
        "balance": pd.DataFrame({"covariate": ["ks2_prior", "fsm_pct"], "smd_before": [0.5, 0.3], "smd_after": [0.02, 0.12]}),
        "pretrend_test": {"statistic": 3.1, "df": 4, "p_value": 0.54},
        "event_study": pd.DataFrame({"event_time": [-2, -1, 0, 1], "estimate": [0.1, 0.0, 0.9, 1.8], "ci_lower": [-0.5, 0.0, 0.2, 1.0], "ci_upper": [0.7, 0.0, 1.6, 2.6]}),
        "subgroups": subgroups,
        "convergence": {"converged": False, "message": "iteration limit <reached>"},
        "overlap": {"share_treated_on_support": 0.91},
        "caliper_details": pd.DataFrame({"caliper": [0.2], "n_matched": [110]}),
    }
    estimates = [
        EffectEstimate.from_normal(term="first", estimand="ATT(g,t)", estimate=5.0, std_error=2.0, n_treated=40, n_control=400),
        EffectEstimate.from_normal(
            term="ATT", estimand="ATT", estimate=1.5, std_error=0.5, n_treated=110, n_control=110,
            effect_size=0.11, effect_size_ci_lower=0.04, effect_size_ci_upper=0.18,
        ),
    ]
    return AnalysisResult(analysis="matched", method="psm", outcome="attainment8", estimates=estimates, diagnostics=diagnostics, sample=sample, warnings=["balance <b>checked</b>"])


@pytest.fixture(scope="module")
def rich_report(tmp_path_factory):
    folder = write_results_folder(tmp_path_factory.mktemp("rich") / "out", [rich_result()])
    write_report(folder)
    return (folder / "report.html").read_text(encoding="utf-8"), (folder / "report.md").read_text(encoding="utf-8")


def test_headline_term_effect_size_and_months(rich_report):
    html, markdown = rich_report
    headline = markdown.split("## matched")[0]
    assert "+1.50" in headline and "+5.00" not in headline
    assert "+0.11" in headline
    assert "+2 months (+1 to +2)" in headline


def test_well_known_sections_render(rich_report):
    html, markdown = rich_report
    for text in ("### Baseline balance", "### Trends before joining", "### Effect by years since joining",
                 "### For whom: effect by pupil group", "### Overlap", "### Model convergence: did NOT converge",
                 "### Other diagnostics", "#### Caliper details"):
        assert text in markdown
    assert "| KS2 prior attainment (scaled score) | 0.50 | 0.02 | satisfies |" in markdown
    assert "| % disadvantaged pupils (FSM) | 0.30 | 0.12 | satisfies if adjusted for |" in markdown
    assert "p value: 0.540" in markdown
    assert "Largest estimated effect for disadvantaged pupils (+2.20 points)" in markdown
    assert "Effect by pupil group" in html and "data:image/png;base64," in html


def test_security_criteria_show_measured_values(rich_report):
    _, markdown = rich_report
    section = markdown.split("### Evidence security")[1].split("###")[0]
    assert "| Design | matched comparison group (e.g. propensity-score matching) | at most 3 padlocks |" in section
    assert "| Minimum detectable effect size | 0.10 | at most 5 padlocks |" in section
    assert "| Attrition (units lost from the design) | 8% | at most 5 padlocks |" in section
    assert "largest standardised difference 0.12 (satisfies if adjusted for)" in section
    assert "p = 0.540 (no evidence of different trends)" in section


def test_html_escapes_text_from_results(rich_report):
    html, _ = rich_report
    assert "balance &lt;b&gt;checked&lt;/b&gt;" in html
    assert "iteration limit &lt;reached&gt;" in html


def test_figures_go_to_the_longest_matching_analysis_name(tmp_path):
    results = [rich_result(), rich_result()]
    results[0].analysis, results[1].analysis = "did", "did_2x2"
    folder = write_results_folder(tmp_path / "out", results)
    (folder / "figures").mkdir()
    shutil.copy(__file__, folder / "figures" / "unrelated.txt")
    from matplotlib.figure import Figure

    from evaltool.report.figures import save_figure

    save_figure(Figure(), folder / "figures", "did_2x2_trends")
    save_figure(Figure(), folder / "figures", "did_effects")
    write_report(folder)
    markdown = (folder / "report.md").read_text()
    did, did_2x2 = markdown.split("## did_2x2:")[0].split("## did:")[1], markdown.split("## did_2x2:")[1]
    assert "figures/did_effects.png" in did and "did_2x2_trends" not in did
    assert "figures/did_2x2_trends.png" in did_2x2 and "did_effects" not in did_2x2


def test_long_estimate_lists_and_subgroups_of_several_terms(tmp_path):
    estimates = [
        EffectEstimate.from_normal(term=f"event_time={k}", estimand="dynamic", estimate=0.1 * k, std_error=0.3, n_treated=50, n_control=300)
        for k in range(20)
    ]
    estimates.insert(0, EffectEstimate.from_normal(term="ATT", estimand="ATT", estimate=1.0, std_error=0.3, n_treated=50, n_control=300))
    for term, shift in (("ATT", 0.0), ("interaction", 5.0)):
        for sub in ("girls", "boys"):
            estimates.append(EffectEstimate.from_normal(term=term, estimand="ATT", estimate=shift + (1.2 if sub == "girls" else 0.7), std_error=0.3, subgroup=sub, n_treated=60, n_control=200))
    result = AnalysisResult(analysis="long", method="did_staggered", outcome="attainment8", estimates=estimates,
                            diagnostics={"count_unit": "pupils"})
    folder = write_results_folder(tmp_path / "out", [result])
    write_report(folder)
    html, markdown = (folder / "report.html").read_text(), (folder / "report.md").read_text()
    assert "<summary>10 more estimates</summary>" in html
    assert markdown.count("| event_time=") == 20
    # The subgroup line uses the headline term (ATT) only, not the interaction terms.
    assert "Largest estimated effect for girls (+1.20 points), smallest for boys (+0.70 points)" in markdown
    assert "Pupils: joined / comparison" in markdown and "Pupils in the joining group: **50**" in markdown


def test_event_study_plot_is_drawn_from_the_table(tmp_path):
    folder = write_results_folder(tmp_path / "out", [rich_result()])
    write_report(folder)
    assert (folder / "figures" / "report" / "matched_event_study.png").is_file()
    assert "![Effect by years since joining](figures/report/matched_event_study.png)" in (folder / "report.md").read_text()


def test_runs_with_no_usable_estimate_still_report(tmp_path):
    empty = AnalysisResult(analysis="empty", method="did_2x2", outcome="attainment8")
    failed = AnalysisResult(analysis="broken", method="psm", status="failed", error="No comparison schools on common support; widen the caliper.")
    folder = write_results_folder(tmp_path / "out", [empty, failed])
    write_report(folder)
    markdown = (folder / "report.md").read_text()
    assert "**Did joining help?** No estimate. This analysis produced no estimate." in markdown
    assert "**1 of 2 analyses failed**" in markdown and "widen the caliper" in markdown
    only_failed = write_results_folder(tmp_path / "out2", [failed])
    write_report(only_failed)
    html = (only_failed / "report.html").read_text()
    assert "1 of 1 analyses failed" in html and 'id="answer"' not in html


def test_other_confidence_levels_are_labelled(tmp_path):
    est = EffectEstimate.from_normal(term="ATT", estimand="ATT", estimate=1.0, std_error=0.5, ci_level=0.9, n_treated=50, n_control=60)
    folder = write_results_folder(tmp_path / "out", [AnalysisResult(analysis="a90", method="did_2x2", outcome="attainment8", estimates=[est])])
    write_report(folder)
    markdown = (folder / "report.md").read_text()
    assert f"| {est.ci_lower:.2f} to {est.ci_upper:.2f} (90%) |" in markdown
    assert "90% confidence interval" in markdown


def test_cli_threshold_overrides_the_run(sample_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(sample_run, copy)
    result = CliRunner().invoke(main, ["report", str(copy), "--threshold", "1000"])
    assert result.exit_code == 0, result.output
    markdown = (copy / "report.md").read_text()
    assert "Counts of pupils or schools below 1000 are shown as **c**" in markdown
    assert "Schools in the joining group: **c**" in markdown


def test_threshold_must_be_positive(simulated):
    from evaltool.config import load_config
    from evaltool.errors import ConfigError

    from .conftest import write_config

    folder, _ = simulated
    with pytest.raises(ConfigError, match=r"output\.suppression_threshold"):
        load_config(write_config(folder, "  suppression_threshold: 0"))


def test_first_screen_combines_analyses(tmp_path):
    def single(name, estimate, method="did_2x2"):
        est = EffectEstimate.from_normal(term="ATT", estimand="ATT", estimate=estimate, std_error=0.5, n_treated=80, n_control=90)
        return AnalysisResult(analysis=name, method=method, outcome="attainment8", estimates=[est])

    folder = write_results_folder(tmp_path / "out", [single("main", 2.0), single("flat", 0.2), rich_result()])
    write_report(folder)
    markdown = (folder / "report.md").read_text()
    brief = markdown.split("## All analyses")[0]
    assert "Of the 3 analyses that ran, 2 found a clear positive effect, 1 was inconclusive (interval includes zero)." in brief
    # "For whom" comes from the first analysis with a subgroup breakdown, named.
    assert "Largest estimated effect for disadvantaged pupils (+2.20 points)" in brief
    assert "(from the analysis **matched**)" in brief
    assert "It compares 80 schools that joined with 90 comparison schools." in markdown


def test_markdown_tables_and_headings_are_separated(rich_report, sample_report):
    for _, markdown in (rich_report, sample_report):
        lines = markdown.splitlines()
        for before, line in zip(lines, lines[1:], strict=False):
            if line.startswith("|") and not before.startswith("|"):
                assert before == "", f"table starts without a blank line after: {before!r}"
            if line.startswith("#"):
                assert before == "", f"heading without a blank line before: {line!r}"


def test_markdown_neutralises_html_tags_from_results(rich_report):
    _, markdown = rich_report
    assert "balance \\<b>checked\\</b>" in markdown
    assert "iteration limit \\<reached>" in markdown
    from evaltool.report.build import _md_text

    assert _md_text("p < 0.001") == "p < 0.001"  # a "<" that opens no tag is left alone
