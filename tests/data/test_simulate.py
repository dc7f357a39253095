"""Tests of the simulator: determinism, shapes, coherence, selection, trusts and the truth."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaltool.data.simulate import (
    DEPTH_ITEMS,
    ETHNIC_GROUPS,
    REGIONS,
    SUBGROUPS,
    SimulatedData,
    SimulationSettings,
    depth_scores,
    simulate,
    write_simulation,
)
from evaltool.errors import ConfigError

SMALL = {"seed": 11, "n_schools": 120}


@pytest.fixture(scope="module")
def small() -> SimulatedData:
    return simulate(**SMALL)


@pytest.fixture(scope="module")
def default() -> SimulatedData:
    return simulate()


@pytest.fixture(scope="module")
def no_effect() -> SimulatedData:
    return simulate(**SMALL, effect_scale=0.0)


def _effects(data: SimulatedData) -> pd.DataFrame:
    table = data.truth["school_year_effects"]
    return pd.DataFrame(table["data"], columns=table["columns"])


def _cohort_post_rows(data: SimulatedData) -> pd.DataFrame:
    """Observed school-years at or after joining, for trusts starting in the panel's cohorts."""
    panel = data.panel
    join_year = panel["join_year"]
    keep = join_year.isin(data.settings.cohorts).fillna(False) & (panel["year"] >= join_year).fillna(False)
    return panel.loc[keep.to_numpy(bool), ["urn", "year", "join_year", "trust_id"]]


# Determinism -----------------------------------------------------------------------------------------------------


def test_same_seed_gives_identical_data(small: SimulatedData) -> None:
    again = simulate(SimulationSettings(**SMALL))
    for name in ("panel", "subgroups", "pupils", "trusts"):
        pd.testing.assert_frame_equal(getattr(small, name), getattr(again, name))
    assert small.truth == again.truth


def test_different_seed_gives_different_data(small: SimulatedData) -> None:
    other = simulate(seed=12, n_schools=120)
    assert not small.panel["urn"].equals(other.panel["urn"])
    assert small.truth["att_overall"] != other.truth["att_overall"]


# Shapes, types and keys ------------------------------------------------------------------------------------------

PANEL_DTYPES = {
    "urn": "int64", "la_code": "int64", "region": "str", "year": "int64", "grading": "str",
    "attainment8": "float64", "ks2_prior": "float64", "fsm_pct": "float64", "eal_pct": "float64",
    "sen_pct": "float64", "cohort_size": "int64", "join_year": "Int64", "in_trust": "int64", "trust_id": "str",
}
SUBGROUP_DTYPES = {
    "urn": "int64", "year": "int64", "subgroup_type": "str", "subgroup": "str", "n_pupils": "int64",
    "attainment8": "float64",
}
PUPIL_DTYPES = {
    "pupil_id": "str", "urn": "int64", "year": "int64", "attainment8": "float64", "ks2_score": "int64",
    "prior_band": "str", "disadvantaged": "int64", "female": "int64", "eal": "int64", "sen": "int64",
    "ethnicity": "str",
}
TRUST_DTYPES = {
    "trust_id": "str", "collaboration_type": "str", "federation_form": "str", "n_schools": "int64",
    "start_year": "int64", **{item: "str" for items in DEPTH_ITEMS.values() for item in items},
}


def _assert_dtypes(frame: pd.DataFrame, expected: dict[str, str]) -> None:
    assert list(frame.columns) == list(expected)
    for column, dtype in expected.items():
        if dtype == "str":
            assert pd.api.types.is_string_dtype(frame[column]), column
        else:
            assert frame[column].dtype == pd.api.types.pandas_dtype(dtype), column


@pytest.mark.parametrize(
    ("table", "expected"),
    [("panel", PANEL_DTYPES), ("subgroups", SUBGROUP_DTYPES), ("pupils", PUPIL_DTYPES), ("trusts", TRUST_DTYPES)],
)
def test_columns_and_dtypes(small: SimulatedData, table: str, expected: dict[str, str]) -> None:
    _assert_dtypes(getattr(small, table), expected)


def test_keys_are_unique_and_ids_look_real(small: SimulatedData) -> None:
    panel, pupils = small.panel, small.pupils
    assert not panel.duplicated(["urn", "year"]).any()
    assert not small.subgroups.duplicated(["urn", "year", "subgroup"]).any()
    assert pupils["pupil_id"].is_unique
    assert pupils["pupil_id"].str.fullmatch(r"P\d{7,}").all()
    assert small.trusts["trust_id"].is_unique
    assert small.trusts["trust_id"].str.fullmatch(r"TR\d{4}").all()
    assert panel["urn"].nunique() == 120
    assert panel["urn"].between(100_000, 149_999).all()
    assert panel["la_code"].between(201, 938).all()
    assert not panel.drop_duplicates(["la_code", "region"])["la_code"].duplicated().any()
    assert set(panel["region"]) <= set(REGIONS)
    assert set(pupils["year"]) == set(small.settings.pupil_years)
    assert set(pupils["ethnicity"]) <= set(ETHNIC_GROUPS)


def test_grading_flags_the_years_without_exams(small: SimulatedData) -> None:
    grading = small.panel.groupby("year")["grading"].unique()
    assert list(grading[2020]) == ["centre_assessed"]
    assert list(grading[2021]) == ["teacher_assessed"]
    assert all(list(grading[year]) == ["exam"] for year in grading.index if year not in (2020, 2021))


def test_values_are_in_realistic_ranges(default: SimulatedData) -> None:
    panel, pupils = default.panel, default.pupils
    assert pupils["attainment8"].between(0, 90).all()
    assert pupils["ks2_score"].between(80, 120).all()
    assert panel["ks2_prior"].mean() == pytest.approx(104.5, abs=0.7)
    assert panel["fsm_pct"].mean() == pytest.approx(26, abs=3)
    assert panel["cohort_size"].mean() == pytest.approx(180, rel=0.1)
    assert panel.query("year == 2019")["attainment8"].mean() == pytest.approx(48, abs=4)
    by_year = panel.groupby("year")["attainment8"].mean()
    assert by_year[2020] > by_year[2019] + 2  # centre-assessed grades are inflated
    london = panel["region"] == "London"
    assert panel.loc[london, "eal_pct"].mean() > panel.loc[~london, "eal_pct"].mean() + 10
    assert np.corrcoef(panel.dropna()["ks2_prior"], panel.dropna()["fsm_pct"])[0, 1] < -0.2


# Coherence of the three tables -----------------------------------------------------------------------------------


def test_panel_is_the_mean_of_its_pupils(small: SimulatedData) -> None:
    pupils = small.pupils.assign(**{c: small.pupils[c] * 100.0 for c in ("disadvantaged", "eal", "sen")})
    means = pupils.groupby(["urn", "year"]).agg(
        attainment8=("attainment8", "mean"), ks2_prior=("ks2_score", "mean"), fsm_pct=("disadvantaged", "mean"),
        eal_pct=("eal", "mean"), sen_pct=("sen", "mean"), cohort_size=("pupil_id", "size"),
    )
    panel = small.panel.set_index(["urn", "year"]).loc[means.index]
    assert (panel["cohort_size"] == means["cohort_size"]).all()
    for column in ("attainment8", "ks2_prior", "fsm_pct", "eal_pct", "sen_pct"):
        present = panel[column].notna()
        np.testing.assert_allclose(panel.loc[present, column], means.loc[present, column], rtol=1e-12)


def test_subgroups_add_up_to_the_panel(small: SimulatedData) -> None:
    subgroups = small.subgroups.assign(total=lambda d: d["n_pupils"] * d["attainment8"])
    sums = subgroups.groupby(["urn", "year", "subgroup_type"])[["n_pupils", "total"]].sum()
    panel = small.panel.set_index(["urn", "year"])
    joined = sums.join(panel[["cohort_size", "attainment8"]], on=["urn", "year"])
    assert len(joined) == len(panel) * 5
    assert (joined["n_pupils"] == joined["cohort_size"]).all()
    present = joined["attainment8"].notna()
    np.testing.assert_allclose(
        (joined["total"] / joined["n_pupils"])[present], joined.loc[present, "attainment8"], rtol=1e-10
    )
    assert set(zip(small.subgroups["subgroup_type"], small.subgroups["subgroup"], strict=True)) <= set(SUBGROUPS)


def test_subgroups_match_pupils_and_keep_small_cells(small: SimulatedData) -> None:
    pupils = small.pupils
    disadvantaged = pupils[pupils["disadvantaged"] == 1].groupby(["urn", "year"])["attainment8"].agg(["mean", "size"])
    cells = small.subgroups.query("subgroup == 'disadvantaged'").set_index(["urn", "year"]).loc[disadvantaged.index]
    np.testing.assert_allclose(cells["attainment8"], disadvantaged["mean"], rtol=1e-12)
    assert (cells["n_pupils"] == disadvantaged["size"]).all()
    assert (small.subgroups["n_pupils"] >= 1).all()
    assert (small.subgroups["n_pupils"] < 5).any()


def test_in_trust_and_join_year_agree(small: SimulatedData) -> None:
    panel = small.panel
    expected = (panel["year"] >= panel["join_year"]).fillna(False).astype("int64")
    assert (panel["in_trust"] == expected).all()
    assert (panel["join_year"].isna() == panel["trust_id"].isna()).all()


def test_missing_values_and_unbalanced_schools(default: SimulatedData) -> None:
    panel = default.panel
    n_rows = len(panel)
    assert 0 < panel["attainment8"].isna().sum() < 3 * 0.01 * n_rows
    assert panel["cohort_size"].notna().all()
    years_per_school = panel.groupby("urn").size()
    assert (years_per_school < 12).sum() == round(0.05 * 400)


# Selection and trusts --------------------------------------------------------------------------------------------


def test_joiners_are_selected_on_observables(default: SimulatedData) -> None:
    first = default.panel.query("year == 2012")
    joiner = first["join_year"].isin(default.settings.cohorts).fillna(False).to_numpy(bool)
    never = first["join_year"].isna().to_numpy()
    assert first.loc[joiner, "ks2_prior"].mean() < first.loc[never, "ks2_prior"].mean() - 0.5
    assert first.loc[joiner, "fsm_pct"].mean() > first.loc[never, "fsm_pct"].mean() + 3
    share = default.panel.drop_duplicates("urn")["join_year"].isin(default.settings.cohorts).mean()
    assert share == pytest.approx(0.45, abs=0.08)


def test_trusts_have_two_to_nine_schools_that_join_together(default: SimulatedData) -> None:
    trusts = default.trusts.set_index("trust_id")
    members = default.panel.dropna(subset=["trust_id"]).groupby("trust_id").agg(
        n_schools=("urn", "nunique"), join_years=("join_year", "nunique"), join_year=("join_year", "first")
    )
    assert trusts["n_schools"].between(2, 9).all()
    assert (trusts["n_schools"] <= 4).mean() > 0.6
    pd.testing.assert_series_equal(members["n_schools"], trusts.loc[members.index, "n_schools"], check_dtype=False)
    assert (members["join_years"] == 1).all()
    assert (members["join_year"] == trusts.loc[members.index, "start_year"]).all()
    early = set(range(2009, 2012))
    assert set(trusts["start_year"]) <= set(default.settings.cohorts) | early
    items = [item for items in DEPTH_ITEMS.values() for item in items]
    assert set(np.unique(trusts[items].to_numpy())) <= {"yes", "no"}
    scores = depth_scores(default.trusts)
    depth = scores.filter(like="depth_").to_numpy()
    assert ((depth >= 0) & (depth <= 1)).all()
    hard = (default.trusts["federation_form"] == "hard").to_numpy()
    assert scores.loc[hard, "depth_organisation"].mean() > scores.loc[~hard, "depth_organisation"].mean()


# Truth -----------------------------------------------------------------------------------------------------------


def test_truth_is_consistent_with_school_year_effects(small: SimulatedData) -> None:
    truth = small.truth
    effects = _effects(small)
    treated = small.panel.loc[(small.panel["year"] >= small.panel["join_year"]).fillna(False).to_numpy(bool)]
    assert sorted(map(tuple, effects[["urn", "year"]].to_numpy())) == sorted(
        map(tuple, treated[["urn", "year"]].to_numpy())
    )
    post = _cohort_post_rows(small).merge(effects, on=["urn", "year"])
    assert truth["att_overall"]["school"] == pytest.approx(post["effect"].mean(), rel=1e-12)
    assert truth["att_overall"]["n_school_years"] == len(post)
    att_gt = pd.DataFrame(truth["att_gt"])
    assert np.average(att_gt["att_school"], weights=att_gt["n_schools"]) == pytest.approx(
        truth["att_overall"]["school"], rel=1e-12
    )
    by_event = post.assign(e=post["year"] - post["join_year"]).groupby("e")["effect"].mean()
    assert {str(k): v for k, v in by_event.items()} == pytest.approx(truth["att_by_event_time"], rel=1e-12)
    by_trust = post.groupby("trust_id")["effect"].mean()
    assert {t["trust_id"]: t["att_school"] for t in truth["att_by_trust"]} == pytest.approx(
        by_trust.to_dict(), rel=1e-12
    )
    assert set(att_gt["cohort"]) <= set(small.settings.cohorts)
    assert truth["att_overall"]["school"] > 0
    json.dumps(truth, allow_nan=False)


def test_truth_is_the_realised_effect_on_pupils(small: SimulatedData, no_effect: SimulatedData) -> None:
    difference = small.pupils[["urn", "year"]].assign(
        effect=small.pupils["attainment8"] - no_effect.pupils["attainment8"]
    )
    realised = difference.groupby(["urn", "year"])["effect"].mean().rename("realised").reset_index()
    merged = realised.merge(_effects(small), on=["urn", "year"], how="left").fillna({"effect": 0.0})
    np.testing.assert_allclose(merged["realised"], merged["effect"], atol=1e-12)
    assert (merged["effect"] > 0).any()


def test_effect_scale_zero_gives_no_effect_anywhere(small: SimulatedData, no_effect: SimulatedData) -> None:
    truth = no_effect.truth
    assert all(row[2] == 0.0 for row in truth["school_year_effects"]["data"])
    assert truth["att_overall"]["school"] == 0.0
    assert truth["att_overall"]["pupil"] == 0.0
    assert all(row["att_school"] == 0.0 for row in truth["att_gt"])
    assert all(v["att_school"] == 0.0 for v in truth["subgroups"].values() if v["att_school"] is not None)
    untreated = small.panel["in_trust"] == 0
    pd.testing.assert_frame_equal(small.panel[untreated], no_effect.panel[untreated])


def test_pretrend_changes_only_joiners_pre_period_outcomes(small: SimulatedData) -> None:
    trending = simulate(**SMALL, pretrend_slope=-0.8)
    panel, other = small.panel, trending.panel
    pre = (panel["join_year"].notna() & (panel["year"] < panel["join_year"])).fillna(False).to_numpy(bool)
    assert pre.sum() > 50
    pd.testing.assert_frame_equal(panel[~pre], other[~pre])
    pd.testing.assert_frame_equal(panel.drop(columns="attainment8"), other.drop(columns="attainment8"))
    shift = (other.loc[pre, "attainment8"] - panel.loc[pre, "attainment8"]).dropna()
    expected = (-0.8 * (panel.loc[pre, "year"] - panel.loc[pre, "join_year"])).loc[shift.index].astype(float)
    np.testing.assert_allclose(shift, expected, atol=0.1)
    assert trending.truth["school_year_effects"] == small.truth["school_year_effects"]
    assert trending.truth["att_overall"] == small.truth["att_overall"]


def test_subgroup_truth_reflects_the_extras(default: SimulatedData) -> None:
    truth = default.truth
    gaps = truth["subgroup_gaps"]
    assert gaps["disadvantaged_minus_not_disadvantaged"] == pytest.approx(1.5, abs=0.6)
    assert gaps["low_prior_minus_high_prior"] == pytest.approx(1.0, abs=0.6)
    assert gaps["eal_minus_not_eal"] == pytest.approx(0.5, abs=0.4)
    assert abs(gaps["girls_minus_boys"]) < 0.4
    assert truth["att_by_type"]["expertise"] > truth["att_by_type"]["cultural"]
    assert truth["att_by_federation_form"]["hard"] > truth["att_by_federation_form"]["soft"]
    assert "notes" in truth


# Writing ---------------------------------------------------------------------------------------------------------


def test_write_is_byte_identical_for_the_same_seed(tmp_path: Path, small: SimulatedData) -> None:
    first = write_simulation(small, tmp_path / "a")
    second = write_simulation(simulate(**SMALL), tmp_path / "b")
    assert [p.name for p in first] == [
        "school_panel.csv", "subgroup_panel.csv", "pupils.parquet", "trusts.csv", "truth.json"
    ]
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name


def test_written_files_round_and_leave_the_data_unchanged(tmp_path: Path, small: SimulatedData) -> None:
    before = small.panel.copy()
    paths = {p.name: p for p in write_simulation(small, tmp_path)}
    pd.testing.assert_frame_equal(small.panel, before)
    text = paths["school_panel.csv"].read_text()
    assert "\r" not in text
    panel = pd.read_csv(paths["school_panel.csv"])
    assert len(panel) == len(small.panel)
    assert panel["join_year"].isna().sum() == small.panel["join_year"].isna().sum()
    never = next(line for line in text.splitlines()[1:] if line.endswith(",0,"))
    assert re.search(r",,0,$", never)  # empty join_year and trust_id
    assert (panel["attainment8"].dropna() * 10 - (panel["attainment8"].dropna() * 10).round()).abs().max() < 1e-9
    pupils = pd.read_parquet(paths["pupils.parquet"])
    assert len(pupils) == len(small.pupils)
    assert json.loads(paths["truth.json"].read_text())["att_overall"] == small.truth["att_overall"]


def test_written_size_for_400_schools_is_small(tmp_path: Path, default: SimulatedData) -> None:
    paths = write_simulation(default, tmp_path)
    assert sum(p.stat().st_size for p in paths) < 10_000_000


# Settings --------------------------------------------------------------------------------------------------------


def test_invalid_settings_name_the_parameter() -> None:
    with pytest.raises(ConfigError, match=r"'n_schools' parameter of SimulationSettings .* Got -1"):
        SimulationSettings(n_schools=-1)
    with pytest.raises(ConfigError, match=r"'cohorts'"):
        SimulationSettings(cohorts=(2030,))
    with pytest.raises(ConfigError, match=r"Unknown simulation setting\(s\) 'n_school'"):
        simulate(n_school=10)


def test_overrides_replace_settings() -> None:
    data = simulate(SimulationSettings(seed=3), n_schools=30, cohorts=[2016, 2015], pupil_years=())
    assert data.settings.n_schools == 30
    assert data.settings.cohorts == (2015, 2016)
    assert data.pupils.empty
    _assert_dtypes(data.pupils, PUPIL_DTYPES)
