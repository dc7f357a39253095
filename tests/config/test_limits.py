"""Config limits (#20): hostile YAML is refused quickly with exit 2; values are range-checked; keys are named."""

from __future__ import annotations

import resource
import time
import typing

import annotated_types
import pytest
from click.testing import CliRunner
from pydantic import BaseModel

from evaltool.cli import main
from evaltool.config.loader import MAX_CONFIG_BYTES, config_model, parse_config
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
    start = time.process_time()  # CPU time of this process: not inflated by other jobs on the machine
    assert_refused(validate(tmp_path, BILLION_LAUGHS), "more than 50,000 values", "aliases")
    assert time.process_time() - start < 1
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


def test_every_numeric_key_of_every_model_has_a_lower_and_an_upper_bound():
    bounded = (annotated_types.Ge, annotated_types.Gt, annotated_types.Le, annotated_types.Lt)

    def numbers(annotation):
        return [annotation] if annotation in (int, float) else [n for a in typing.get_args(annotation) for n in numbers(a)]

    def bounds(field, annotation):
        found = list(field.metadata)
        stack = [annotation]
        while stack:
            for arg in typing.get_args(stack.pop()):
                found += [m for m in getattr(arg, "metadata", []) if isinstance(m, bounded)]
                stack.append(arg)
        return {type(m).__name__[0] for m in found if isinstance(m, bounded)}  # 'G' (lower), 'L' (upper)

    def models(annotation):
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return [annotation]
        return [m for a in typing.get_args(annotation) for m in models(a)]

    unbounded, todo, seen = [], [config_model()], set()
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, field in model.model_fields.items():
            if numbers(field.annotation) and bounds(field, field.annotation) != {"G", "L"}:
                unbounded.append(f"{model.__name__}.{name}")
            todo += models(field.annotation)
    assert len(seen) > 10  # every method's options were visited
    assert not unbounded, f"numeric keys without a range: {unbounded}"


def test_a_number_too_long_to_read_is_a_config_error_naming_the_key(tmp_path):
    assert_refused(validate(tmp_path, CONFIG_TEMPLATE.replace("seed: 7", "seed: " + "9" * 5000)), "seed (config.yaml:2:", "cannot be read")


def test_a_control_character_in_the_config_is_a_config_error(tmp_path):
    assert_refused(validate(tmp_path, CONFIG_TEMPLATE.replace("Test evaluation", "Test\x00")), "not valid YAML", "#x0000")


def test_keys_beside_a_merge_key_override_the_merged_ones():
    text = CONFIG_TEMPLATE.replace("  - name: main\n", "  - &main\n    name: main\n") + (
        "  - <<: *main\n    name: later\n    post_years: [2019]\n"
    )
    first, second = parse_config(text).analyses
    assert (second.name, second.pre_years, second.post_years) == ("later", [2013, 2014], [2019])
    assert (first.name, first.post_years) == ("main", [2017, 2018])


def test_keys_written_twice_in_one_block_are_still_refused():
    text = CONFIG_TEMPLATE.replace("    pre_years: [2013, 2014]\n", "    pre_years: [2013, 2014]\n    pre_years: [2012]\n")
    with pytest.raises(ConfigError, match=r"analyses\[0\]\.pre_years \(<config>:17:5\): key 'pre_years' appears twice"):
        parse_config(text)


def test_a_merge_that_includes_its_own_block_is_refused(tmp_path):
    assert_refused(validate(tmp_path, "a: &a {b: 1, <<: *a}\n"), "merge key (<<) includes the block")


def test_a_billion_laughs_through_merge_keys_is_refused(tmp_path):
    text = "a: &a {x: 1, y: 2, z: 3}\n" + "".join(
        f"{c}: &{c} {{<<: [{', '.join([f'*{p}'] * 9)}]}}\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    start = time.process_time()
    assert_refused(validate(tmp_path, text), "more than 50,000 values")
    assert time.process_time() - start < 1


def test_config_years_outside_data_year_range_name_the_key_and_the_fix():
    text = CONFIG_TEMPLATE.replace("  panel: panel.csv", "  panel: panel.csv\n  year_range: [2000, 2050]\n  exclude_years: [1995]")
    text = text.replace("post_years: [2017, 2018]", "post_years: [2017, 2099]")
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    message = str(caught.value)
    assert "data.exclude_years[0] (<config>:6:19): the year 1995 is outside data.year_range [2000, 2050]" in message
    assert "analyses[0].post_years[1] (<config>:19:24): the year 2099 is outside data.year_range" in message
    assert "widen data.year_range" in message


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("[2050, 1990]", r"data\.year_range \(<config>:5:3\): must be \[first, last\] with first ≤ last"),
        ("[1990]", r"data\.year_range \(<config>:5:3\): value 2 of the list is missing"),
        ("[1800, 2000]", r"data\.year_range\[0\] \(<config>:5:16\): Input should be greater than or equal to 1900"),
    ],
)
def test_data_year_range_must_be_first_and_last_plausible_years(value, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(CONFIG_TEMPLATE.replace("  panel: panel.csv", f"  panel: panel.csv\n  year_range: {value}"))
