"""Small-number suppression: unit rules, published results, and a whole report on small subgroups."""

from __future__ import annotations

import copy
import json
import re

import pandas as pd
import pytest

from evaltool.config import load_config
from evaltool.pipeline import execute
from evaltool.report.build import write_report
from evaltool.report.charts import figure_texts
from evaltool.report.disclosure import DEFAULT_THRESHOLD, SUPPRESSED, Disclosure, suppress_tidy
from evaltool.report.view import build_view

from .conftest import subgroup_result, write_config, write_results_folder


def test_default_threshold_is_the_ons_ten_rule():
    assert DEFAULT_THRESHOLD == 10


def test_counts_below_threshold_become_c_and_statistics_are_withheld():
    # Estimates counting pupils (an analysis with count_unit: pupils): a small group withholds the statistics.
    control = Disclosure(10, pupil_estimates=True)
    record = {"term": "x", "estimate": 2.5, "ci_lower": 1.0, "ci_upper": 4.0, "n_treated": 7, "n_control": 40, "year": 2019}
    out = control.apply(record)
    assert out["n_treated"] == SUPPRESSED and out["n_control"] == 40
    assert out["estimate"] == out["ci_lower"] == out["ci_upper"] == SUPPRESSED
    assert out["year"] == 2019 and out["term"] == "x"
    assert "fewer than 10 pupils" in out["withheld"]
    assert record["n_treated"] == 7  # the caller's data is unchanged
    # A record with a small pupil count, whatever the analysis counts.
    out = Disclosure(10).apply({"estimate": 2.5, "n_pupils": 6})
    assert out == {"estimate": SUPPRESSED, "n_pupils": SUPPRESSED, "withheld": out["withheld"]}


def test_small_school_counts_are_suppressed_but_school_level_estimates_shown():
    # An effect for a trust of 7 schools rests on hundreds of pupils: the count is hidden, the estimate is not.
    out = Disclosure(10).apply({"term": "TR0001", "estimate": 2.5, "ci_lower": 1.0, "n_treated": 7, "n_control": 40})
    assert out == {"term": "TR0001", "estimate": 2.5, "ci_lower": 1.0, "n_treated": SUPPRESSED, "n_control": 40}


def test_large_counts_and_non_person_counts_are_kept():
    out = Disclosure(10).apply({"n_schools": 10, "n_years": 3, "estimate": 1.0})
    assert out == {"n_schools": 10, "n_years": 3, "estimate": 1.0}


def test_zero_is_suppressed_and_threshold_is_configurable():
    assert Disclosure(10).apply({"n": 0}) == {"n": SUPPRESSED}
    assert Disclosure(5).apply({"n": 7}) == {"n": 7}
    assert Disclosure(20).apply({"n": 12}) == {"n": SUPPRESSED}


def test_tables_rows_and_count_dictionaries():
    table = {"columns": ["subgroup", "estimate", "n_pupils"], "data": [["eal", 2.0, 6], ["girls", 1.0, 300]]}
    out = Disclosure(10).apply(table)
    assert out["data"] == [["eal", SUPPRESSED, SUPPRESSED], ["girls", 1.0, 300]]
    # One hidden cohort would be the published total minus the others: the smallest other is hidden too.
    cohorts = Disclosure(10).apply({"2015": 4, "2016": 30, "2017": 50}, "treated_cohorts")
    assert cohorts == {"2015": SUPPRESSED, "2016": SUPPRESSED, "2017": 50}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("only 7 clusters; use more", "only c clusters; use more"),
        ("3 treated schools were dropped", "c treated schools were dropped"),
        ("12 schools, n = 4", "12 schools, n = c"),
        ("pre years 2012 and 2013, 1,250 pupils", "pre years 2012 and 2013, 1,250 pupils"),
    ],
)
def test_counts_in_text(text, expected):
    assert Disclosure(10).text(text) == expected


def test_secondary_suppression_of_the_total():
    analysis = {
        "analysis": "a",
        "estimates": [],
        "sample": {"n_rows_in": 500, "n_rows_used": 480, "exclusions": [{"reason": "r", "n_rows": 3, "stage": "analysis"}, {"reason": "s", "n_rows": 17, "stage": "analysis"}]},
    }
    out = Disclosure(10).payload({"analyses": [analysis]})
    sample = out["analyses"][0]["sample"]
    # Without hiding the total, 500 − 480 − 17 would reveal the suppressed 3.
    assert sample["n_rows_in"] == SUPPRESSED and sample["exclusions"][0]["n_rows"] == SUPPRESSED
    assert sample["exclusions"][1]["n_rows"] == 17 and sample["n_rows_used"] == 480


def test_suppress_tidy_for_publication():
    frame = pd.DataFrame(
        {"analysis": ["a", "a"], "subgroup": ["eal", "all"], "estimate": [1.5, 2.0], "ci_lower": [0.1, 1.0],
         "n_treated": pd.array([8, 120], dtype="Int64"), "n_control": pd.array([50, 300], dtype="Int64")}
    )
    out = suppress_tidy(frame, 10)
    assert out.loc[0, ["estimate", "ci_lower", "n_treated"]].tolist() == [SUPPRESSED] * 3
    assert out.loc[0, "n_control"] == 50
    assert out.loc[1].tolist() == ["a", "all", 2.0, 1.0, 120, 300]
    assert frame.loc[0, "n_treated"] == 8  # input unchanged


# -- the whole report on data with small subgroups ---------------------------------------------------


def _integer_cells(html: str, markdown: str) -> list[int]:
    """Every table cell (HTML and Markdown) whose whole text is an integer."""
    cells = re.findall(r"<t[dh][^>]*>\s*([^<]*?)\s*</t[dh]>", html)
    for line in markdown.splitlines():
        if line.startswith("|"):
            cells.extend(c.strip() for c in line.strip("|").split("|"))
    return [int(c.replace(",", "")) for c in cells if re.fullmatch(r"\d[\d,]*", c)]


def _small_numbers_in_words(text: str, threshold: int) -> list[str]:
    pattern = r"(?<![\d.,\w])(\d+)\s+(?:[A-Za-z\-]+\s+){0,3}?(?:schools?|pupils?|clusters?)\b|\bn = (\d+)"
    return [m.group(0) for m in re.finditer(pattern, text) if int(m.group(1) or m.group(2)) < threshold]


@pytest.fixture(scope="module")
def small_groups(simulated, tmp_path_factory):
    """Subgroup results for the joining school with the smallest pupil groups in 2019, against four others."""
    _, data = simulated
    panel, subgroups = data.panel, data.subgroups
    joined_urns = panel.loc[panel["join_year"].le(2017), "urn"].astype(str).unique()
    cells = subgroups.loc[subgroups["year"].eq(2019) & subgroups["urn"].astype(str).isin(joined_urns)]
    joined = cells.groupby(cells["urn"].astype(str))["n_pupils"].min().nsmallest(1).index.tolist()
    never = panel.loc[panel["join_year"].isna(), "urn"].astype(str).drop_duplicates().head(4).tolist()
    result = subgroup_result(subgroups, treated=joined, comparison=never, year=2019)
    folder = write_results_folder(tmp_path_factory.mktemp("small") / "out", [result], data={"panel": {"n_schools": 7, "cohorts": {"2017": 3}}})
    return folder, result


def test_the_data_really_has_small_cells(small_groups):
    _, result = small_groups
    small = [e for e in result.estimates if min(e.n_treated, e.n_control) < 10]
    assert len(small) >= 1 and any(min(e.n_treated, e.n_control) >= 10 for e in result.estimates)


def test_no_count_below_threshold_in_report_files_or_figure_labels(small_groups):
    folder, result = small_groups
    write_report(folder)
    html = (folder / "report.html").read_text(encoding="utf-8")
    markdown = (folder / "report.md").read_text(encoding="utf-8")
    threshold = 10
    ints = _integer_cells(html, markdown)
    assert ints, "the report has count cells"
    assert all(v >= threshold for v in ints), sorted(v for v in ints if v < threshold)
    visible = re.sub(r"<[^>]+>|data:image/png;base64,[A-Za-z0-9+/=]+", " | ", html)
    assert _small_numbers_in_words(visible, threshold) == []
    assert _small_numbers_in_words(markdown, threshold) == []
    assert "only c schools joined; c pupils had no prior attainment" in markdown
    assert "Values shown as c: statistics withheld: based on fewer than 10 pupils" in markdown
    # The small subgroups' estimates are withheld, the others shown.
    withheld = {e.subgroup for e in result.estimates if min(e.n_treated, e.n_control) < threshold}
    for subgroup in withheld:
        assert f"{e_estimate(result, subgroup):+.2f}".replace("-", "−") not in markdown
    # Figure labels: the report's own figures are built from the suppressed rows.
    payload = json.loads((folder / "results.json").read_text())
    safe = Disclosure(threshold).payload(payload)
    _, figures = build_view(safe, payload, None, folder, publication=False)
    texts = [t for fig in figures.values() for t in figure_texts(fig)]
    assert any("n = c" in t for t in texts) and any("withheld" in t for t in texts)
    assert _small_numbers_in_words(" ".join(texts), threshold) == []
    assert (folder / "figures" / "report" / "by_group_subgroups.svg").is_file()


def e_estimate(result, subgroup):
    return next(e.estimate for e in result.estimates if e.subgroup == subgroup)


def test_publication_suppresses_results_csv_and_json(simulated, tmp_path):
    folder, _ = simulated
    config = load_config(write_config(folder, "  publication: true\n  suppression_threshold: 100"))
    _, out = execute(config, tmp_path / "published")
    tidy = pd.read_csv(out / "results.csv", dtype=str)
    counts = tidy[["n_treated", "n_control", "n_obs"]].to_numpy().ravel()
    assert all(v == SUPPRESSED or int(v) >= 100 for v in counts)
    payload = json.loads((out / "results.json").read_text())
    assert payload["disclosure"]["threshold"] == 100
    flat = json.dumps(payload["analyses"])
    for match in re.finditer(r'"(n_rows|n_units|n_treated|n_control)": (\d+)', flat):
        assert int(match.group(2)) >= 100
    # The report rebuilds from the published (already suppressed) folder.
    write_report(out)
    assert "suppressed the same way" in (out / "report.md").read_text()


def test_payload_is_not_modified(small_groups):
    folder, _ = small_groups
    payload = json.loads((folder / "results.json").read_text())
    before = copy.deepcopy(payload)
    Disclosure(10).payload(payload)
    assert payload == before
