"""Trust attributes: validation, depth scores, id comparison."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evaltool.data.simulate import DEPTH_ITEMS, depth_scores, simulate
from evaltool.data.trusts import DEPTH_CHECKLIST, compare_ids, validate_trusts
from evaltool.errors import DataError


def _table() -> pd.DataFrame:
    return pd.DataFrame({
        "trust_id": ["T1", "T2", "T3"],
        "collaboration_type": ["expertise", "geographic", "expertise"],
        "n_schools": [2, 5, 3],
        "start_year": [2015, 2016, 2017],
        # organisation: T1 5/5 yes, T2 1 of 2 answered, T3 0/5
        "formal_status": ["yes", "Y", "no"],
        "shared_governance": ["yes", "", "no"],
        "organisational_infrastructure": ["yes", None, "no"],
        "common_budget": ["TRUE", None, "0"],
        "shared_staff": ["1", "no", "n"],
        # penetration
        "broad_involvement": ["yes", "yes", "no"],
        "broad_curriculum": ["no", "yes", "no"],
        "expected_longevity": ["no", "yes", "yes"],
        # joint investment: only two items in this file
        "strategic_vision": ["yes", "no", "no"],
        "shared_accountability": ["yes", "no", "yes"],
    })


def test_checklist_matches_simulator():
    assert dict(DEPTH_CHECKLIST) == dict(DEPTH_ITEMS)


def test_depth_scores_are_shares_of_yes_among_answered_items():
    attrs = validate_trusts(_table())
    f = attrs.frame
    assert list(f.index) == ["T1", "T2", "T3"]
    np.testing.assert_allclose(f["depth_organisation"], [1.0, 0.5, 0.0])
    np.testing.assert_allclose(f["depth_penetration"], [1 / 3, 1.0, 1 / 3])
    np.testing.assert_allclose(f["depth_joint_investment"], [1.0, 0.0, 0.5])
    np.testing.assert_allclose(f["depth_total"], f[["depth_organisation", "depth_penetration",
                                                    "depth_joint_investment"]].mean(axis=1))
    assert attrs.checklist_columns["joint_investment"] == ["strategic_vision", "shared_accountability"]


def test_depth_scores_agree_with_simulator():
    trusts = simulate(seed=5, n_schools=150).trusts
    attrs = validate_trusts(trusts)
    expected = depth_scores(trusts).set_index("trust_id")
    for dim in DEPTH_CHECKLIST:
        np.testing.assert_allclose(attrs.frame.loc[expected.index, f"depth_{dim}"], expected[f"depth_{dim}"])


def test_missing_dimension_is_noted():
    table = _table().drop(columns=["strategic_vision", "shared_accountability"])
    attrs = validate_trusts(table)
    assert attrs.frame["depth_joint_investment"].isna().all()
    assert attrs.frame["depth_total"].isna().all()
    assert any("none of the 'joint_investment' checklist items" in n for n in attrs.notes)


def test_bad_answer_names_column_and_values():
    table = _table()
    table.loc[1, "common_budget"] = "partly"
    with pytest.raises(DataError, match="column 'common_budget' is a depth checklist item .* e.g. 'partly'"):
        validate_trusts(table)


def test_duplicate_ids_are_an_error():
    table = _table()
    table.loc[2, "trust_id"] = "T1"
    with pytest.raises(DataError, match="trust ids must be unique; 1 appear more than once, e.g. 'T1'"):
        validate_trusts(table)


def test_missing_id_column_is_an_error():
    with pytest.raises(DataError, match="has no column 'trust_id'"):
        validate_trusts(_table().rename(columns={"trust_id": "id"}))


def test_bad_size_is_an_error():
    table = _table()
    table["n_schools"] = ["2", "three", "4"]
    with pytest.raises(DataError, match="column 'n_schools' must be a whole number of at least 1"):
        validate_trusts(table)


def test_ids_only_in_one_source_are_reported():
    attrs = validate_trusts(_table())
    comparison = compare_ids(attrs, ["T1", "T2", "T9"])
    assert comparison.only_in_attributes == ("T3",)
    assert comparison.only_in_data == ("T9",)
    messages = comparison.messages()
    assert "1 trust id(s) in data.trusts have no schools in the data" in messages[0] and "'T3'" in messages[0]
    assert "missing from data.trusts" in messages[1] and "'T9'" in messages[1]


def test_caller_frame_unchanged():
    table = _table()
    before = table.copy()
    validate_trusts(table)
    pd.testing.assert_frame_equal(table, before)
