"""Config limits (#20): hostile YAML is refused quickly with exit 2; values are range-checked; keys are named."""

from __future__ import annotations

import resource
import time

import pytest
from click.testing import CliRunner

from evaltool.cli import main
from evaltool.config.loader import MAX_CONFIG_BYTES, parse_config
from evaltool.errors import ConfigError
from tests.conftest import CONFIG_TEMPLATE

BILLION_LAUGHS = "".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n',
        *[f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)],
    ]
)


def validate(tmp_path, text: str):
    (tmp_path / "config.yaml").write_text(text)
    return CliRunner().invoke(main, ["validate", str(tmp_path / "config.yaml")])


def assert_refused(result, *fragments):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output, result.output


def test_billion_laughs_is_refused_fast_without_memory_growth(tmp_path):
    assert len(BILLION_LAUGHS) < 700
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    assert_refused(validate(tmp_path, BILLION_LAUGHS), "more than 50,000 values", "aliases")
    assert time.perf_counter() - start < 5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KiB: far below the 5 GB seen


def test_deeply_nested_lists_are_refused_with_exit_2(tmp_path):
    assert_refused(validate(tmp_path, "title: " + "[" * 5000 + "]" * 5000 + "\n"), "nested more than", "levels deep")


def test_a_huge_file_is_refused_before_reading(tmp_path):
    assert_refused(validate(tmp_path, "# " + "x" * (MAX_CONFIG_BYTES + 10) + "\n"), "at most", "bytes")


def test_ordinary_anchors_still_work():
    text = CONFIG_TEMPLATE.replace("pre_years: [2013, 2014]", "pre_years: &pre [2013, 2014]")
    assert parse_config(text).analyses[0].pre_years == [2013, 2014]


@pytest.mark.parametrize(("value", "message"), [("true", "valid integer"), ("-1", "greater than or equal to 0"), ("1.5", "valid integer"), ("'7'", "valid integer")])
def test_seed_must_be_a_non_negative_whole_number(tmp_path, value, message):
    assert_refused(validate(tmp_path, CONFIG_TEMPLATE.replace("seed: 7", f"seed: {value}")), "seed (config.yaml:2:1)", message)


def test_long_analysis_names_are_refused():
    with pytest.raises(ConfigError, match=r"analyses\[0\]\.name .*at most 64 characters.*\(301 characters\)"):
        parse_config(CONFIG_TEMPLATE.replace("name: main", "name: m" + "x" * 300))


def test_school_and_year_on_the_same_column_names_both_keys_and_the_fix():
    with pytest.raises(ConfigError, match=r"columns\.school and columns\.year both name the column 'urn'.*correct"):
        parse_config(CONFIG_TEMPLATE.replace("  year: year", "  year: urn"))


def test_post_years_before_pre_years_names_both_keys_and_the_fix():
    text = CONFIG_TEMPLATE.replace("pre_years: [2013, 2014]", "pre_years: [2017, 2018]").replace(
        "post_years: [2017, 2018]", "post_years: [2013, 2014]"
    )
    with pytest.raises(ConfigError, match=r"did_2x2\.pre_years and did_2x2\.post_years.*list the years before joining"):
        parse_config(text)


def test_an_outcome_not_in_columns_outcomes_says_how_to_fix_it():
    text = CONFIG_TEMPLATE.replace("    method: did_2x2\n", "    method: did_2x2\n    outcome: progress8\n")
    with pytest.raises(ConfigError, match=r"analyses\[0\]\.outcome .*add it to columns\.outcomes or correct the name"):
        parse_config(text)


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("post_years: [2017, 2018]", "post_years: [2017, 2218]", "post_years[1]"),
        ("  outcomes: [att8]", "  outcomes: [att8]\noutput:\n  suppression_threshold: 100000", "output.suppression_threshold"),
        ("post_years: [2017, 2018]", "post_years: [2017, 2018]\n    heterogeneity: {by: [x], min_pupils: 10000000}", "min_pupils"),
    ],
)
def test_numeric_keys_are_range_checked(old, new, key):
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        parse_config(CONFIG_TEMPLATE.replace(old, new))


@pytest.mark.parametrize("name", ["__import__('os')", "a/b", "x;y"])
def test_moderator_names_must_be_plain_words(name):
    text = CONFIG_TEMPLATE + f"""  - name: te
    method: trust_effects
  - name: syn
    method: meta_analysis
    source: te
    moderators: ["{name}"]
"""
    text = text.replace("  local_authority: la", "  local_authority: la\n  trust: trust")
    with pytest.raises(ConfigError, match=r"moderators\[0\]"):
        parse_config(text)
