"""Subgroup and pupil files load alongside the panel, with school attributes from the panel."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from evaltool.config import load_config
from evaltool.data import load_study
from evaltool.errors import DataError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def study():
    return load_study(load_config(ROOT / "configs" / "federation_impact.yaml"))


def test_subgroup_panel_takes_join_year_from_school_panel(study):
    sub = study.subgroups.frame
    assert {"school", "year", "subgroup", "subgroup_type", "pupil_count", "attainment8", "join_year", "trust"} <= set(sub)
    schools = study.panel.schools()
    merged = sub.drop_duplicates("school").set_index("school")["join_year"]
    pd.testing.assert_series_equal(merged.sort_index(), schools.loc[merged.index, "join_year"].sort_index(), check_names=False)
    assert not sub.duplicated(["school", "year", "subgroup"]).any()


def test_excluded_years_counted_in_every_file(study):
    assert 2020 not in study.panel.years and 2020 not in set(study.subgroups.frame["year"])
    assert any("exclude_years" in e.reason for e in study.subgroups.report.exclusions)


def test_pupils_have_canonical_keys(study):
    assert {"school", "year", "attainment8", "disadvantaged"} <= set(study.pupils.columns)
    assert set(study.pupils["year"].unique()) == {2018, 2019}


def test_unknown_subgroup_schools_are_counted(tmp_path):
    config_text = (ROOT / "configs" / "federation_impact.yaml").read_text().replace("../sample_data/", str(ROOT / "sample_data") + "/")
    sub = pd.read_csv(ROOT / "sample_data" / "subgroup_panel.csv")
    extra = sub.head(3).assign(urn=999999)
    pd.concat([sub, extra]).to_csv(tmp_path / "sub.csv", index=False)
    config_text = config_text.replace(str(ROOT / "sample_data" / "subgroup_panel.csv"), str(tmp_path / "sub.csv"))
    (tmp_path / "c.yaml").write_text(config_text)
    study = load_study(load_config(tmp_path / "c.yaml"))
    reasons = {e.reason: e.n_rows for e in study.subgroups.report.exclusions}
    assert reasons["school not in the school panel"] == 3


def test_subgroups_need_subgroup_column(tmp_path):
    config_text = (ROOT / "configs" / "federation_impact.yaml").read_text().replace("../sample_data/", str(ROOT / "sample_data") + "/")
    config_text = config_text.replace("  subgroup: subgroup\n", "")
    (tmp_path / "c.yaml").write_text(config_text)
    with pytest.raises(DataError, match="columns.subgroup is not set"):
        load_study(load_config(tmp_path / "c.yaml"))
