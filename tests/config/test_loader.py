"""Config loading: valid configs, and every error names the key and its YAML line."""

from __future__ import annotations

import pytest

from evaltool.config import load_config, parse_config
from evaltool.errors import ConfigError
from tests.conftest import CONFIG_TEMPLATE


def test_valid_config_loads(project):
    config = load_config(project)
    assert config.title == "Test evaluation"
    assert config.seed == 7
    assert config.columns.outcomes == ["att8"]
    assert config.analyses[0].method == "did_2x2"
    assert config.analyses[0].pre_years == [2013, 2014]
    assert config.resolve(config.data.panel.path) == project.parent / "panel.csv"


def test_data_source_accepts_string_or_mapping():
    text = CONFIG_TEMPLATE.replace("  panel: panel.csv", "  panel:\n    path: panel.txt\n    delimiter: ';'")
    config = parse_config(text)
    assert config.data.panel.delimiter == ";"
    assert config.data.panel.resolved_format() == "csv"


def test_unknown_key_is_reported_with_suggestion_and_line():
    text = CONFIG_TEMPLATE.replace("    post_years: [2017, 2018]", "    post_years: [2017, 2018]\n    comparsion: never_joined")
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    message = str(info.value)
    assert "analyses[0].comparsion" in message
    assert "did you mean 'comparison'" in message
    assert ":18:5" in message  # line 18, column 5 of the YAML


def test_unknown_top_level_key():
    with pytest.raises(ConfigError, match=r"unknown key 'colums' \(did you mean 'columns'\?\)"):
        parse_config(CONFIG_TEMPLATE.replace("columns:", "colums:"))


def test_unknown_method_lists_methods():
    with pytest.raises(ConfigError) as info:
        parse_config(CONFIG_TEMPLATE.replace("method: did_2x2", "method: did2x2"))
    message = str(info.value)
    assert "analyses[0].method" in message
    assert "unknown method 'did2x2'" in message
    assert "did you mean 'did_2x2'" in message
    assert ":15:5" in message


def test_wrong_literal_value_names_allowed_values():
    text = CONFIG_TEMPLATE.replace("    post_years: [2017, 2018]", "    post_years: [2017, 2018]\n    comparison: never")
    with pytest.raises(ConfigError, match=r"analyses\[0\]\.comparison \(config\.yaml|<config>"):
        parse_config(text)
    with pytest.raises(ConfigError, match="'never_joined' or 'not_yet_joined'"):
        parse_config(text)


def test_missing_required_key():
    text = CONFIG_TEMPLATE.replace("    pre_years: [2013, 2014]\n", "")
    with pytest.raises(ConfigError, match=r"analyses\[0\]\.pre_years .*required key is missing"):
        parse_config(text)


def test_all_problems_are_collected():
    text = CONFIG_TEMPLATE.replace("seed: 7", "seed: seven").replace("colums", "x").replace("title:", "titel:")
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    message = str(info.value)
    assert "has 2 problems" in message
    assert "seed" in message and "titel" in message


def test_pre_years_must_precede_post_years():
    text = CONFIG_TEMPLATE.replace("pre_years: [2013, 2014]", "pre_years: [2013, 2019]")
    with pytest.raises(ConfigError, match="every pre year must come before every post year"):
        parse_config(text)
    text = CONFIG_TEMPLATE.replace("pre_years: [2013, 2014]", "pre_years: [2013, 2017]")
    with pytest.raises(ConfigError, match=r"share \[2017\]"):
        parse_config(text)


def test_duplicate_analysis_names():
    extra = "\n  - name: main\n    method: did_2x2\n    pre_years: [2012]\n    post_years: [2019]\n"
    with pytest.raises(ConfigError, match=r"analyses\[1\]\.name .*already used"):
        parse_config(CONFIG_TEMPLATE + extra)


def test_outcome_must_be_mapped():
    text = CONFIG_TEMPLATE.replace("    method: did_2x2", "    method: did_2x2\n    outcome: att9")
    with pytest.raises(ConfigError, match=r"outcome 'att9' is not listed in columns.outcomes .*did you mean 'att8'"):
        parse_config(text)


def test_cluster_needs_mapped_column():
    text = CONFIG_TEMPLATE.replace("    post_years: [2017, 2018]", "    post_years: [2017, 2018]\n    cluster: trust")
    # The shorthand cluster: is inference.cluster; the message names that key with the line the user wrote.
    with pytest.raises(ConfigError, match=r"analyses\[0\]\.inference\.cluster \(<config>:14:5\): .*needs columns.trust"):
        parse_config(text)


def test_duplicate_yaml_key():
    with pytest.raises(ConfigError, match="key 'seed' appears twice"):
        parse_config(CONFIG_TEMPLATE + "seed: 8\n")


def test_invalid_yaml_reports_line():
    with pytest.raises(ConfigError, match=r"<config>:\d+:\d+: not valid YAML"):
        parse_config("title: [unclosed\nseed: 1\n")


def test_empty_and_non_mapping_config():
    with pytest.raises(ConfigError, match="is empty"):
        parse_config("")
    with pytest.raises(ConfigError, match="must be a mapping"):
        parse_config("- a\n- b\n")


def test_yaml_tags_are_not_executed():
    # safe loading: python-specific tags are refused, never run
    with pytest.raises(ConfigError, match="not valid YAML"):
        parse_config("title: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        parse_config("title: !!python/name:os.system\n")


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_column_mapped_twice():
    text = CONFIG_TEMPLATE.replace("  local_authority: la", "  local_authority: urn")
    with pytest.raises(ConfigError, match=r"columns\.school and columns\.local_authority both name the column 'urn'.*correct"):
        parse_config(text)


def test_config_is_immutable(project):
    config = load_config(project)
    with pytest.raises(Exception, match="frozen"):
        config.seed = 3
