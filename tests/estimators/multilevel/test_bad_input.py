"""Bad input: small subgroups skipped with the reason, unexpected codes listed, non-convergence, boundary fits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from ml_helpers import run_config
from scipy import optimize

from evaltool.data.simulate import SimulationSettings, simulate, write_simulation
from evaltool.errors import DataError
from evaltool.estimators.heterogeneity import subgroup_codes


@pytest.fixture(scope="module")
def small_study(tmp_path_factory):
    data = simulate(SimulationSettings(seed=5, n_schools=60, pupils_per_school=40))
    folder = tmp_path_factory.mktemp("small")
    write_simulation(data, folder)
    pupils = pd.read_parquet(folder / "pupils.parquet")
    pupils["fsm_code"] = np.where(pupils["disadvantaged"] == 1, "Y", "N")
    latest = pupils.index[pupils["year"] == pupils["year"].max()]  # the year analysed when years: is not set
    pupils.loc[latest[:3], "fsm_code"] = "9"
    pupils.loc[latest[3:5], "fsm_code"] = "unknown"
    pupils.to_parquet(folder / "pupils.parquet")
    return data, folder


def test_too_small_subgroup_is_skipped_with_reason_and_the_run_goes_on(small_study):
    _, folder = small_study
    run = run_config(folder, """
  - name: ml
    method: multilevel
    pupil_covariates: [ks2_score]
    heterogeneity: {by: [ethnicity, sen], min_schools: 25}
""", name="small.yaml")
    result = run.analyses[0]
    assert result.status == "ok", result.error
    table = result.diagnostics["subgroups"]
    skipped = table[table["status"] == "skipped"]
    assert len(skipped) > 0
    assert skipped["reason"].str.contains(r"treated and \d+ comparison schools .*min_schools is 25|reference level").all()
    assert result.estimate("treated").subgroup == "all"
    assert {e.subgroup for e in result.estimates} == {"all", *table.loc[table["status"] == "ok", "subgroup"]}


def test_too_few_pupils_names_min_pupils(small_study):
    _, folder = small_study
    run = run_config(folder, """
  - name: ml
    method: multilevel
    heterogeneity: {by: [sen], min_pupils: 100000}
""", name="few.yaml")
    table = run.analyses[0].diagnostics["subgroups"]
    assert (table["status"] == "skipped").all()
    assert table["reason"].str.contains(r"only \d+ pupils \(heterogeneity.min_pupils is 100000\)").all()
    assert "Subgroup 'sen=1' was not estimated: only" in " ".join(run.analyses[0].warnings)


def test_unexpected_subgroup_codes_are_listed(small_study):
    _, folder = small_study
    run = run_config(folder, """
  - name: ml
    method: multilevel
    heterogeneity: {by: [fsm_code], levels: {fsm_code: ["Y", "N"]}}
""", name="codes.yaml")
    result = run.analyses[0]
    assert result.status == "failed"
    assert "Subgroup column 'fsm_code' has codes not in heterogeneity.levels.fsm_code ['Y', 'N']" in result.error
    assert "'9' (3 pupils)" in result.error and "'unknown' (2 pupils)" in result.error


def test_subgroup_column_with_too_many_codes():
    values = pd.Series(np.arange(30))
    with pytest.raises(DataError, match=r"'ks2' has 30 distinct codes .* list the expected ones in heterogeneity.levels.ks2"):
        subgroup_codes(values, "ks2")


def test_reference_level_must_exist():
    with pytest.raises(DataError, match=r"heterogeneity.reference.band is 'top', .* codes found: \['high', 'low'\]"):
        subgroup_codes(pd.Series(["low", "high", "low"]), "band", reference="top")


def test_yes_no_columns_use_no_as_reference():
    codes, reference = subgroup_codes(pd.Series([1, 0, 1, 1]), "disadvantaged")
    assert reference == "0" and list(codes) == ["1", "0", "1", "1"]
    _, reference = subgroup_codes(pd.Series(["Yes", "No", "Yes"]), "eal")
    assert reference == "No"


def test_unknown_school_subgroup_is_listed(small_study):
    _, folder = small_study
    run = run_config(folder, """
  - name: did
    method: did_2x2
    pre_years: [2012, 2013]
    post_years: [2021, 2022, 2023]
    heterogeneity: {by: [disadvantged]}
""", name="unknown.yaml")
    result = run.analyses[0]
    assert result.status == "failed"
    assert "heterogeneity.by names ['disadvantged'], which are neither subgroups nor subgroup types" in result.error
    assert "'disadvantaged'" in result.error


def test_school_subgroup_with_too_few_schools_is_skipped(small_study):
    _, folder = small_study
    run = run_config(folder, """
  - name: did
    method: did_2x2
    pre_years: [2012, 2013]
    post_years: [2021, 2022, 2023]
    heterogeneity: {by: [disadvantaged, not_disadvantaged], compare: [[disadvantaged, not_disadvantaged]], min_schools: 500}
""", name="few_schools.yaml")
    result = run.analyses[0]
    assert result.status == "ok", result.error
    table = result.diagnostics["subgroups"]
    assert (table["status"] == "skipped").all()
    assert table["reason"].str.contains("heterogeneity.min_schools is 500").all()
    assert sum("was not estimated" in w for w in result.warnings) == len(table)
    assert [e.subgroup for e in result.estimates] == ["all"]


def test_heterogeneity_without_subgroup_file_is_a_warning(small_study, tmp_path):
    _, folder = small_study
    (tmp_path / "c.yaml").write_text(f"""
data: {{panel: {folder / 'school_panel.csv'}}}
columns: {{school: urn, outcomes: [attainment8]}}
analyses:
  - {{name: did, method: did_2x2, pre_years: [2012, 2013], post_years: [2022, 2023], heterogeneity: {{by: [disadvantaged]}}}}
""")
    from evaltool.config import load_config
    from evaltool.pipeline import run_analyses

    result = run_analyses(load_config(tmp_path / "c.yaml")).analyses[0]
    assert result.status == "ok"
    assert any("there is no data.subgroups file" in w for w in result.warnings)
    assert result.diagnostics["effect_size"]["level"] == "school"


def test_non_convergence_fails_the_analysis_with_the_optimiser_message(small_study, monkeypatch):
    _, folder = small_study
    real = optimize.minimize

    def failing(*args, **kwargs):
        out = real(*args, **{**kwargs, "options": {**kwargs["options"], "maxiter": 1}})
        out.success = False
        out.message = "STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT"
        return out

    monkeypatch.setattr("evaltool.estimators.multilevel.fastlmm.optimize.minimize", failing)
    run = run_config(folder, "  - {name: ml, method: multilevel}\n", name="conv.yaml")
    result = run.analyses[0]
    assert result.status == "failed" and result.estimates == []
    assert "did not converge (L-BFGS-B: " in result.error
    assert "TOTAL NO. OF ITERATIONS REACHED LIMIT" in result.error
    assert "No estimates are reported" in result.error


def test_boundary_fit_is_reported_as_such(tmp_path):
    rng = np.random.default_rng(4)
    school = np.repeat(np.arange(80), 10)
    year = np.tile(np.arange(2014, 2024), 80)
    join = np.where(np.arange(80) < 40, 2018, 0)
    y = 50 + 2.0 * ((join[school] > 0) & (year >= join[school])) + rng.normal(0, 1, school.size)
    y = y - pd.Series(y).groupby(school).transform("mean").to_numpy() + 50 + 2.0 * (join[school] > 0) * 0.6
    pd.DataFrame({"urn": 200000 + school, "year": year, "join_year": join[school], "attainment8": y}).to_csv(
        tmp_path / "p.csv", index=False)
    (tmp_path / "c.yaml").write_text("""
data: {panel: p.csv}
columns: {outcomes: [attainment8]}
analyses:
  - {name: growth, method: multilevel, data: panel}
""")
    from evaltool.config import load_config
    from evaltool.pipeline import run_analyses

    result = run_analyses(load_config(tmp_path / "c.yaml")).analyses[0]
    assert result.status == "ok", result.error
    assert result.diagnostics["model"]["boundary"] == ["Intercept"]
    assert any(w.startswith("Boundary fit: Intercept estimated at zero or singular") for w in result.warnings)
