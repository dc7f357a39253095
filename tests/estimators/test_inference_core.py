"""The inference core: cluster labels from the data, the inference block and its shorthand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evaltool.config.inference import InferenceOptions, move_cluster_shorthand
from evaltool.errors import DataError, EstimationError
from evaltool.estimators.inference import (
    Inference,
    check_cluster_count,
    design_level,
    few_clusters_route,
    school_cluster_labels,
)


def panel(rows: list[tuple[str, int, str | None]], column: str = "trust") -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["school", "year", column]).astype({column: "string"})


def test_blank_trust_before_joining_takes_the_schools_trust():
    # School a is blank in 2015 (before it joined T1) and T1 afterwards: one trust cluster with b, not a cluster of its own.
    frame = panel([("a", 2015, None), ("a", 2016, "T1"), ("b", 2015, "T1"), ("b", 2016, "T1"), ("c", 2015, None), ("c", 2016, None)])
    labels = school_cluster_labels(frame, "trust")
    assert labels.labels["a"] == labels.labels["b"] == "T1"
    assert labels.labels["c"] == "school:c"
    assert (labels.filled_rows, labels.filled_schools, labels.n_own_cluster) == (1, 1, 1)
    codes, n = labels.codes_for(frame["school"])
    assert n == 2
    assert codes[0] == codes[2]
    assert any("blank" in note for note in labels.notes)


def test_first_row_blank_does_not_make_a_school_its_own_cluster():
    """The bug of #19: taking the first row's trust turned 'by trust' into 'by school' for such schools."""
    rows = []
    for i in range(6):
        rows += [(f"s{i}", 2014, None), (f"s{i}", 2015, "T1" if i < 3 else "T2")]
    labels = school_cluster_labels(panel(rows), "trust")
    assert labels.codes_for(pd.Series([f"s{i}" for i in range(6)]))[1] == 2


def test_school_in_two_trusts_links_them():
    frame = panel([("a", 2015, "T1"), ("a", 2016, "T2"), ("b", 2015, "T2"), ("c", 2015, "T1"), ("d", 2015, "T3")])
    labels = school_cluster_labels(frame, "trust")
    assert labels.labels["a"] == labels.labels["b"] == labels.labels["c"] == "T1"
    assert labels.labels["d"] == "T3"
    assert labels.n_schools_changed == 1 and labels.examples_changed == ("a",)


def test_local_authority_varying_within_school_is_an_error():
    frame = panel([("a", 2015, "LA1"), ("a", 2016, "LA2"), ("b", 2015, "LA1")], column="local_authority")
    with pytest.raises(DataError, match=r"inference\.cluster: the local authority differs .* \(e\.g\. a\)"):
        school_cluster_labels(frame, "local_authority")


def test_missing_cluster_column_names_the_key():
    with pytest.raises(DataError, match=r"columns\.trust"):
        school_cluster_labels(pd.DataFrame({"school": ["a"], "year": [2015]}), "trust")


def test_labels_do_not_depend_on_row_order():
    rng = np.random.default_rng(3)
    rows = [(f"s{i}", y, (f"T{i % 4}" if y >= 2016 or i % 2 else None)) for i in range(40) for y in (2015, 2016, 2017)]
    frame = panel(rows)
    shuffled = frame.sample(frac=1.0, random_state=rng.integers(1 << 31))
    a = school_cluster_labels(frame, "trust").labels
    b = school_cluster_labels(shuffled, "trust").labels
    pd.testing.assert_series_equal(a, b.loc[a.index])


def test_design_level_is_trust_only_when_mapped():
    assert design_level("design", None, has_trust=True)[0] == "trust"
    level, reason = design_level("design", None, has_trust=False)
    assert level == "school" and "columns.trust is not mapped" in reason
    assert design_level("local_authority", None)[0] == "local_authority"


def test_fewer_than_two_clusters_is_an_error_naming_the_key():
    with pytest.raises(EstimationError, match=r"inference\.cluster: .* 1 trust cluster") as info:
        check_cluster_count(1, "trust")
    assert info.value.exit_code == 2


def test_few_cluster_route():
    opts = InferenceOptions()
    assert few_clusters_route(opts, 12, ("wild_bootstrap",))[0] == "wild_bootstrap"
    assert few_clusters_route(opts, 300, ("wild_bootstrap",)) == ("cluster-robust", [])
    method, warnings = few_clusters_route(InferenceOptions(few_clusters="none"), 12, ("wild_bootstrap",))
    assert method == "cluster-robust" and "Only 12 clusters" in warnings[0]
    method, warnings = few_clusters_route(InferenceOptions(few_clusters="wild_bootstrap"), 300, ("wild_bootstrap",))
    assert method == "wild_bootstrap" and "300 clusters" in warnings[0]
    with pytest.raises(EstimationError, match="'randomisation' is not available"):
        few_clusters_route(InferenceOptions(few_clusters="randomisation"), 12, ("wild_bootstrap",))


def test_shorthand_moves_cluster_into_inference():
    assert move_cluster_shorthand({"cluster": "trust"}) == {"inference": {"cluster": "trust"}}
    assert move_cluster_shorthand({"cluster": "trust", "cluster_by_year": True}) == {"inference": {"cluster": ["trust", "year"]}}
    with pytest.raises(ValueError, match="either 'cluster:' or 'inference.cluster:'"):
        move_cluster_shorthand({"cluster": "trust", "inference": {"cluster": "school"}})


@pytest.mark.parametrize(
    ("cluster", "message"),
    [(["trust", "trust"], "two different levels"), (["matched_set", "year"], "cannot be one of them")],
)
def test_two_way_validation(cluster, message):
    with pytest.raises(ValueError, match=message):
        InferenceOptions(cluster=cluster)


def test_inference_record_fills_every_row_field():
    record = Inference(cluster="trust", n_clusters=271, correction="CR1: G/(G-1)·(N-1)/(N-K), t(G-1)", method="cluster-robust")
    fields = record.row_fields()
    assert fields["cluster"] == "trust" and fields["n_clusters"] == 271 and fields["se_method"] == "cluster-robust"
    assert fields["inference"] == "cluster-robust by trust (271 clusters); correction CR1: G/(G-1)·(N-1)/(N-K), t(G-1)"
