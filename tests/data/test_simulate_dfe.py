"""The simulator's DfE layout: what it writes, that it is reproducible, and that assembling it gives back the data.

The round trip is the check that matters: the tidy panel and the raw files are the same simulated schools,
so ``sources:`` (URN chains, markers, membership dates, movers, the COVID gap) must reproduce the tidy
panel exactly, and an analysis run from the raw files must give the tidy panel's estimates, which cover
the simulation's known truth.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from evaltool.cli import main
from evaltool.config.sources import SourcesOptions
from evaltool.data.dfe import assemble_sources
from evaltool.data.simulate import SimulationSettings, simulate, write_simulation
from evaltool.data.simulate_dfe import write_dfe_layout

COVARIATES = ["ks2_prior", "fsm_pct", "eal_pct", "sen_pct", "cohort_size"]


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, object]:
    """200 schools, one cohort joining after the COVID gap (2022), written tidy and in the DfE layout."""
    root = tmp_path_factory.mktemp("dfe_layout")
    data = simulate(SimulationSettings(seed=7, n_schools=200, cohorts=(2015, 2016, 2017, 2018, 2022)))
    write_simulation(data, root)
    written = write_dfe_layout(data, root, seed=7)
    return root, written, data


def _censored(frame: pd.DataFrame, censored: dict[str, int]) -> pd.DataFrame:
    """The tidy rows kept under ``movers: censor``: a mover's rows before its first exam year out."""
    cut = frame["urn"].astype(str).map(censored)
    return frame[cut.isna() | (frame["year"] < cut)]


def test_layout_has_the_published_files_and_their_quirks(layout: tuple[Path, dict, object]) -> None:
    root, written, _ = layout
    tables = sorted(p.name for p in (root / "dfe" / "ks4").iterdir())
    assert "2018-2019_england_ks4final.csv" in tables and "2021-2022_england_ks4final.csv" in tables
    assert not any(name.startswith(("2019-2020", "2020-2021")) for name in tables)  # the COVID gap
    with pytest.raises(UnicodeDecodeError):  # Windows-1252 (’ is byte 0x92), as GIAS publishes
        next((root / "dfe" / "gias").glob("edubasealldata*")).read_bytes().decode("utf-8")
    text = (root / "dfe" / "ks4" / "2015-2016_england_ks4final.csv").read_bytes().decode("cp1252")
    assert "\r\n" in text and "\r\n,ENGLAND," in text  # CRLF and the national total row without a URN
    assert "%" in text.splitlines()[1]  # percentages with a % sign up to 2016
    table = pd.read_csv(root / "dfe" / "ks4" / "2014-2015_england_ks4final.csv", encoding="cp1252", dtype=str,
                        keep_default_na=False)
    assert set(table["P8MEA"]) == {"NA", ""}  # Progress 8 began in 2016 ("" on the ENGLAND row)
    every = pd.concat(
        [pd.read_csv(p, encoding="cp1252", dtype=str, keep_default_na=False) for p in (root / "dfe" / "ks4").iterdir()]
    )
    markers = set(every["ATT8SCR"]) | set(every["KS2APS"]) | set(every["ATT8SCR_FSM6CLA1A"])
    assert {"SUPP", "NE"} <= markers and markers & {"NA", "..", "x", "z", "LOW"}
    counts = written["counts"]
    assert counts["three_urn_chains"] >= 1 and counts["lone_converters"] >= 1
    assert counts["movers"] == {"left": 1, "moved": 1, "rejoined": 1}
    links = pd.read_csv(next((root / "dfe" / "gias").glob("links_*")), encoding="cp1252", dtype=str)
    pairs = set(zip(links["URN"], links["LinkURN"], links["LinkType"], strict=True))
    assert all((b, a, "Predecessor") in pairs for a, b, kind in pairs if kind == "Successor")  # both ends
    membership = pd.read_csv(next((root / "dfe" / "gias").glob("academiesmat*")), encoding="cp1252", dtype=str)
    assert membership["Date Joined Group"].str.fullmatch(r"\d{2}/\d{2}/\d{4}").all()  # day-first
    assert {"Multi-academy trust", "Single-academy trust"} == set(membership["Group Type"])


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    data = simulate(SimulationSettings(seed=3, n_schools=60))
    first = write_dfe_layout(data, tmp_path / "a", seed=3)
    second = write_dfe_layout(data, tmp_path / "b", seed=3)
    other = write_dfe_layout(data, tmp_path / "c", seed=4)
    for a, b in zip(first["files"], second["files"], strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name
    changed = [a.name for a, c in zip(first["files"], other["files"], strict=True) if a.read_bytes() != c.read_bytes()]
    assert changed  # the layout's own draws follow its seed


def test_assembling_the_raw_files_gives_back_the_tidy_panel(layout: tuple[Path, dict, object]) -> None:
    root, written, data = layout
    assembled = assemble_sources(SourcesOptions(**written["sources"]), root)
    tidy = _censored(pd.read_csv(root / "school_panel.csv"), written["censored"])
    tidy = tidy[~tidy["year"].isin([2020, 2021])].assign(urn=lambda f: f["urn"].astype(str))
    got = assembled.panel.assign(urn=assembled.panel["urn"].astype(str))
    merged = tidy.merge(got, on=["urn", "year"], how="outer", suffixes=("_tidy", "_raw"), indicator=True)
    assert (merged["_merge"] == "both").all(), merged.loc[merged["_merge"] != "both", ["urn", "year", "_merge"]]
    for column in ["attainment8", *COVARIATES, "join_year"]:
        np.testing.assert_array_equal(
            merged[f"{column}_tidy"].astype(float).to_numpy(), merged[f"{column}_raw"].astype(float).to_numpy(), column
        )
    # the schools' earlier URNs are kept, and every URN change of the layout was merged
    changes = written["urn_changes"]
    urns = got.drop_duplicates("urn").set_index("urn")["urns"].str.split(";")
    assert all(str(old) in urns[str(new)] for new, old in zip(changes["urn"], changes["old_urn"], strict=True))
    assert assembled.report["urn_merges"]["longest_chain"] == 3
    assert assembled.report["movers"]["schools"] == 3
    assert assembled.report["longer_baseline"]["by_join_year"] == {
        "2022": int(data.panel.loc[data.panel["join_year"] == 2022, "urn"].nunique())
    }
    # trusts: the GIAS Group UID of the tidy trust of each school
    uids = pd.read_csv(root / "dfe" / "trusts.csv", dtype=str).set_index("group_id")["trust_id"]
    tidy_trust = tidy.dropna(subset=["trust_id"]).drop_duplicates("urn").set_index("urn")["trust_id"]
    raw_trust = got.drop_duplicates("urn").set_index("urn")["trust_id"]
    expected = tidy_trust.str.replace("TR", "TR0", regex=False).map(uids)
    assert (raw_trust.reindex(expected.index) == expected).all()
    # subgroups: the preset's breakdowns, same values
    sub = _censored(pd.read_csv(root / "subgroup_panel.csv"), written["censored"])
    sub = sub[sub["subgroup_type"] != "sen"].assign(urn=lambda f: f["urn"].astype(str))
    sub = sub[~sub["year"].isin([2020, 2021])]
    raw_sub = assembled.subgroups.assign(urn=assembled.subgroups["urn"].astype(str))
    both = sub.merge(raw_sub, on=["urn", "year", "subgroup"], suffixes=("_tidy", "_raw"))
    assert len(both) == len(sub)
    np.testing.assert_array_equal(both["attainment8_tidy"].to_numpy(), both["attainment8_raw"].astype(float).to_numpy())


def _config(root: Path, name: str, data: dict, sources: dict | None) -> Path:
    config = {
        "title": name,
        "seed": 11,
        "data": data,
        "columns": {"covariates": COVARIATES},
        "analyses": [
            {"name": "staggered", "method": "did_staggered", "comparison": "never_joined", "bootstrap_draws": 199},
            {"name": "twfe", "method": "did_twfe"},
            {"name": "pupils", "method": "multilevel", "years": [2019], "pupil_covariates": ["ks2_score"]},
        ],
    }
    if sources is None:
        config["columns"] = {
            "school": "urn", "year": "year", "join_year": "join_year", "trust": "trust_id",
            "local_authority": "la_code", "outcomes": ["attainment8"], "covariates": COVARIATES,
        }
    else:
        config["sources"] = sources
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def test_run_from_raw_files_gives_the_tidy_estimates_and_covers_the_truth(layout: tuple[Path, dict, object]) -> None:
    root, written, data = layout
    _censored(pd.read_csv(root / "school_panel.csv"), written["censored"]).to_csv(root / "cut.csv", index=False)
    tidy = _config(root, "tidy", {"panel": "cut.csv", "pupils": "pupils.parquet", "exclude_years": [2020, 2021]}, None)
    raw = _config(root, "raw", {"pupils": "dfe/pupils.parquet"}, written["sources"])
    runner = CliRunner()
    for config in (tidy, raw):
        result = runner.invoke(main, ["run", str(config), "--out", str(root / f"out_{config.stem}")])
        assert result.exit_code == 0, result.output
    a = pd.read_csv(root / "out_tidy" / "results.csv")
    b = pd.read_csv(root / "out_raw" / "results.csv")
    assert len(a) == len(b) and (a["term"] == b["term"]).all()
    for column in ("estimate", "std_error", "ci_lower", "ci_upper", "n_obs"):
        np.testing.assert_allclose(b[column].to_numpy(), a[column].to_numpy(), rtol=1e-10, err_msg=column)
    assert set(b["analysis"]) == {"staggered", "twfe", "pupils"}  # pupils' earlier URNs mapped to their school
    headline = b[(b["analysis"] == "staggered") & (b["term"] == "ATT (cohort-weighted)")].iloc[0]
    truth = data.truth["att_overall"]["school"]
    assert headline["ci_lower"] <= truth <= headline["ci_upper"], (headline["estimate"], truth)
    assembly = json.loads((root / "out_raw" / "results.json").read_text())["data"]["assembly"]
    assert assembly["pupil_urns"]["urns"] > 0
    assert "Data assembly" in (root / "out_raw" / "report.md").read_text(encoding="utf-8")


def test_simulate_cli_writes_both_layouts(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["simulate", "--schools", "40", "--out", str(tmp_path / "sim"), "--layout", "dfe"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "sim" / "school_panel.csv").exists()  # the tidy twin, for comparison
    assert (tmp_path / "sim" / "dfe" / "layout.json").exists()
    assert len(list((tmp_path / "sim" / "dfe" / "ks4").glob("*_england_ks4final.csv"))) == 10
