"""Loading and validating the school panel."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evaltool.config import load_config
from evaltool.data import load_study
from evaltool.errors import DataError
from tests.conftest import CONFIG_TEMPLATE, write_config


def load(project):
    return load_study(load_config(project))


def test_panel_has_canonical_columns_and_types(project, panel_frame):
    study = load(project)
    frame = study.panel.frame
    assert {"school", "year", "join_year", "treated", "local_authority", "att8", "fsm"} <= set(frame.columns)
    assert frame["school"].dtype == "string"
    assert frame["year"].dtype == "int64"
    assert frame["join_year"].dtype == float
    assert len(frame) == len(panel_frame)
    assert frame[["school", "year"]].duplicated().sum() == 0


def test_summary_counts_cohorts_and_flags(project, panel_frame):
    summary = load(project).panel.summary()
    joins = panel_frame.drop_duplicates("urn")["join_year"]
    assert summary["n_schools"] == panel_frame["urn"].nunique()
    assert summary["n_never_joined"] == int(joins.isna().sum())
    assert summary["cohorts"] == {2016: int((joins == 2016).sum()), 2018: int((joins == 2018).sum())}
    assert summary["n_joined_before_data"] == int((joins == 2011).sum())
    assert summary["missing"] == {}


def test_caller_data_unchanged(project, panel_frame):
    before = panel_frame.copy()
    load(project)
    pd.testing.assert_frame_equal(panel_frame, before)


def test_exclude_years_counted(tmp_path, panel_frame):
    panel_frame.to_csv(tmp_path / "panel.csv", index=False)
    config = write_config(tmp_path, CONFIG_TEMPLATE.replace("  panel: panel.csv", "  panel: panel.csv\n  exclude_years: [2019]"))
    study = load_study(load_config(config))
    (exclusion,) = study.panel.report.exclusions
    assert exclusion.n_rows == int((panel_frame["year"] == 2019).sum())
    assert "exclude_years" in exclusion.reason
    assert 2019 not in study.panel.years


def test_missing_ids_are_counted_not_silent(tmp_path, panel_frame):
    frame = panel_frame.astype({"urn": "object"})
    frame.loc[[0, 1, 2], "urn"] = None
    frame.to_csv(tmp_path / "panel.csv", index=False)
    config = write_config(tmp_path, CONFIG_TEMPLATE)
    study = load_study(load_config(config))
    reasons = {e.reason: e.n_rows for e in study.panel.report.exclusions}
    assert reasons == {"missing school id": 3}
    assert len(study.panel.frame) == len(panel_frame) - 3


def test_gss_markers_read_as_missing_and_counted(tmp_path, panel_frame):
    frame = panel_frame.astype({"att8": "object"})
    frame.loc[[0, 5], "att8"] = "c"
    frame.loc[7, "att8"] = "x"
    frame.to_csv(tmp_path / "panel.csv", index=False)
    study = load_study(load_config(write_config(tmp_path, CONFIG_TEMPLATE)))
    assert study.panel.markers == {"att8": {"c": 2, "x": 1}}
    assert study.panel.missing == {"att8": 3}


@pytest.mark.parametrize(
    ("value", "expected"),
    [("2018/19", 2019), ("2018-19", 2019), ("201819", 2019), ("2019", 2019)],
)
def test_year_formats(tmp_path, panel_frame, value, expected):
    frame = panel_frame.astype({"year": "object"})
    first = frame["urn"] == frame["urn"].iloc[0]
    frame.loc[first & (frame["year"] == 2019), "year"] = value
    frame.to_csv(tmp_path / "panel.csv", index=False)
    study = load_study(load_config(write_config(tmp_path, CONFIG_TEMPLATE)))
    assert expected in set(study.panel.frame["year"])


def test_join_year_zero_means_never(tmp_path, panel_frame):
    frame = panel_frame.copy()
    frame["join_year"] = frame["join_year"].fillna(0)
    frame.to_csv(tmp_path / "panel.csv", index=False)
    study = load_study(load_config(write_config(tmp_path, CONFIG_TEMPLATE)))
    assert study.panel.summary()["n_never_joined"] == int(panel_frame.drop_duplicates("urn")["join_year"].isna().sum())


# ---------------------------------------------------------------- bad input
def test_duplicate_school_years(tmp_path, panel_frame):
    frame = pd.concat([panel_frame, panel_frame.iloc[[3]]])
    frame.to_csv(tmp_path / "panel.csv", index=False)
    with pytest.raises(DataError, match=r"2 rows that share a urn × year .*e\.g\. urn="):
        load_study(load_config(write_config(tmp_path, CONFIG_TEMPLATE)))


def test_non_numeric_outcome(tmp_path, panel_frame):
    frame = panel_frame.astype({"att8": "object"})
    frame.loc[4, "att8"] = "forty"
    frame.to_csv(tmp_path / "panel.csv", index=False)
    with pytest.raises(DataError, match=r"Column 'att8' \(outcome\) .* must be numeric; found text in 1 row, e\.g\. 'forty'"):
        load_study(load_config(write_config(tmp_path, CONFIG_TEMPLATE)))


def test_join_year_varying_within_school(tmp_path, panel_frame):
    frame = panel_frame.copy()
    school = frame.loc[frame["join_year"] == 2016, "urn"].iloc[0]
    frame.loc[(frame["urn"] == school) & (frame["year"] == 2019), "join_year"] = 2017
    frame.loc[(frame["urn"] == school) & (frame["year"] == 2016), "in_trust"] = 1
    frame.to_csv(tmp_path / "panel.csv", index=False)
    with pytest.raises(DataError, match=rf"must be the same in every row of a school; it varies in 1 school \(school {school}: 2016, 2017\)"):
        load_study(load_config(write_config(tmp_path, CONFIG_TEMPLATE)))


def test_join_year_text(tmp_path, panel_frame):
    frame = panel_frame.astype({"join_year": "object"})
    frame.loc[frame["join_year"] == 2016, "join_year"] = "Sept 2015"
    frame.to_csv(tmp_path / "panel.csv", index=False)
    with pytest.raises(DataError, match=r"'join_year' \(join year\) .* must be a year .* or empty; found text in \d+ rows, e\.g\. 'Sept 2015'"):
        load_study(load_config(write_config(tmp_path, CONFIG_TEMPLATE)))


def test_treated_inconsistent_with_join_year(tmp_path, panel_frame):
    frame = panel_frame.copy()
    frame.loc[frame["join_year"].isna(), "in_trust"] = np.where(frame.loc[frame["join_year"].isna(), "year"] == 2019, 1, 0)
    frame.to_csv(tmp_path / "panel.csv", index=False)
    with pytest.raises(DataError, match=r"'in_trust' \(treated indicator\) .* disagrees with 'join_year'.*join_year=empty"):
        load_study(load_config(write_config(tmp_path, CONFIG_TEMPLATE)))


def test_missing_mapped_column_names_key_and_line(tmp_path, panel_frame):
    panel_frame.rename(columns={"att8": "attainment8"}).to_csv(tmp_path / "panel.csv", index=False)
    with pytest.raises(DataError) as info:
        load_study(load_config(write_config(tmp_path, CONFIG_TEMPLATE)))
    message = str(info.value)
    assert "'att8' (outcome), mapped by columns.outcomes[0] (config.yaml:11:" in message
    assert "did you mean 'attainment8'" in message


def test_missing_file(tmp_path):
    config = write_config(tmp_path, CONFIG_TEMPLATE)
    (tmp_path / "panel_2019.csv").write_text("x\n1\n")
    with pytest.raises(DataError, match=r"data.panel does not exist: .*panel.csv'.*did you mean .*panel_2019.csv"):
        load_study(load_config(config))


def test_wrong_delimiter(tmp_path, panel_frame):
    panel_frame.to_csv(tmp_path / "panel.csv", index=False, sep=";")
    with pytest.raises(DataError, match=r"looks delimited by ';'. Set data.panel.delimiter: ';'"):
        load_study(load_config(write_config(tmp_path, CONFIG_TEMPLATE)))


def test_declared_delimiter_works(tmp_path, panel_frame):
    panel_frame.to_csv(tmp_path / "panel.csv", index=False, sep=";")
    text = CONFIG_TEMPLATE.replace("  panel: panel.csv", "  panel:\n    path: panel.csv\n    delimiter: ';'")
    study = load_study(load_config(write_config(tmp_path, text)))
    assert len(study.panel.frame) == len(panel_frame)


@pytest.mark.parametrize("fmt", ["parquet", "stata"])
def test_parquet_and_stata_give_the_same_panel(tmp_path, panel_frame, fmt):
    panel_frame.to_csv(tmp_path / "panel.csv", index=False)
    reference = load_study(load_config(write_config(tmp_path, CONFIG_TEMPLATE))).panel.frame
    frame = panel_frame.assign(trust=panel_frame["trust"].astype(str))
    if fmt == "parquet":
        frame.to_parquet(tmp_path / "panel.parquet")
        name = "panel.parquet"
    else:
        frame.astype({"join_year": float}).to_stata(tmp_path / "panel.dta", write_index=False)
        name = "panel.dta"
    other = load_study(load_config(write_config(tmp_path, CONFIG_TEMPLATE.replace("panel.csv", name), "other.yaml"))).panel.frame
    pd.testing.assert_frame_equal(reference, other, check_dtype=False)
