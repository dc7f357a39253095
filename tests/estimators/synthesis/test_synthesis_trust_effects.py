"""Per-trust DiD effects and their randomisation inference."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from evaltool.errors import EstimationError
from evaltool.estimators.did.method_2x2 import fit_did_2x2
from evaltool.estimators.synthesis.trust_effects import (
    Window,
    fit_trust_effects,
    placebo_groups,
    randomisation_pvalue,
    two_by_two_changes,
)


def test_each_trust_equals_the_2x2_did_on_its_schools(frame, rng):
    # the per-trust estimate is the canonical 2x2 DiD (evaltool did_2x2) on that trust's schools vs never-joined
    result = fit_trust_effects(frame, "attainment8", rng=rng, n_permutations=99)
    for row in result.table.head(4).itertuples():
        g = row.join_year
        keep = (frame["trust"] == row.trust) | frame["join_year"].isna()
        est, *_ = fit_did_2x2(frame.loc[keep], "attainment8", pre_years=[g - 3, g - 2, g - 1],
                              post_years=[g, g + 1, g + 2])
        assert row.estimate == pytest.approx(est.estimate, rel=1e-10)
        assert row.n_treated == est.n_treated and row.n_control == est.n_control


def test_recovers_true_trust_effects(sim, frame, rng, sim_tools):
    window = Window(pre=(-3, -1), post=(0, 2))
    result = fit_trust_effects(frame, "attainment8", window=window, rng=rng, n_permutations=99)
    table = result.table.set_index("trust").join(sim_tools.truth_in_window(sim, window.post).rename("truth"))
    z = (table["estimate"] - table["truth"]) / table["std_error"]
    assert len(table) >= 40
    assert np.all(np.abs(z) < 4)
    # intervals cover the truth about 95% of the time (binomial sd ≈ 3% for ~55 trusts)
    covered = (table["ci_lower"] <= table["truth"]) & (table["truth"] <= table["ci_upper"])
    assert covered.mean() >= 0.85


def test_randomisation_pvalue_matches_exact_enumeration():
    # 4 schools, 1 treated: the placebo statistic takes 4 equally likely values; only the observed is as extreme
    changes = np.array([10.0, 0.0, 1.0, 2.0])
    observed = 10.0 - 1.0
    p, placebo = randomisation_pvalue(changes, 1, observed, 4000, np.random.default_rng(3))
    assert set(np.round(placebo, 10)) <= {9.0, round(0 - 13 / 3, 10), -3.0, round(2 - 11 / 3, 10)}
    assert abs(p - 0.25) < 4 * np.sqrt(0.25 * 0.75 / 4000)


def test_randomisation_is_reproducible_with_the_seed(frame):
    a = fit_trust_effects(frame, "attainment8", rng=np.random.default_rng(7), n_permutations=199)
    b = fit_trust_effects(frame, "attainment8", rng=np.random.default_rng(7), n_permutations=199)
    pd.testing.assert_frame_equal(a.table, b.table)


def test_rows_order_does_not_change_estimates(frame, rng):
    a = fit_trust_effects(frame, "attainment8", rng=np.random.default_rng(1), n_permutations=99)
    b = fit_trust_effects(frame.sample(frac=1.0, random_state=5), "attainment8", rng=np.random.default_rng(1),
                          n_permutations=99)
    pd.testing.assert_series_equal(a.table["estimate"], b.table["estimate"], rtol=1e-10)


def test_caller_frame_unchanged(frame, rng):
    before = frame.copy()
    fit_trust_effects(frame, "attainment8", rng=rng, n_permutations=99)
    pd.testing.assert_frame_equal(frame, before)


def test_changes_core_counts_years():
    frame = pd.DataFrame({"school": ["a"] * 6, "year": [2014, 2015, 2016, 2017, 2018, 2019],
                          "y": [1.0, 2.0, np.nan, 5.0, 7.0, 9.0]})
    out = two_by_two_changes(frame, "y", 2017, Window(pre=(-3, -1), post=(0, 1)))
    assert out.loc["a", "n_pre"] == 2 and out.loc["a", "n_post"] == 2
    assert out.loc["a", "change"] == pytest.approx(6.0 - 1.5)


# ------------------------------------------------------------------ problems
def test_trusts_without_pre_joining_years_are_reported(frame, rng):
    result = fit_trust_effects(frame, "attainment8", rng=rng, n_permutations=99)
    early = result.skipped[result.skipped["reason"].str.contains("no outcome data before joining|has outcome data before")]
    assert len(early) > 0  # the simulator's trusts that started before 2012
    assert any("could not be estimated" in w for w in result.warnings)
    reasons = result.sample.to_frame()["reason"]
    assert reasons.str.startswith("trust skipped: none of its").any()


def test_single_school_trust_is_skipped_or_fails(frame, rng):
    estimated = fit_trust_effects(frame, "attainment8", rng=rng, n_permutations=99).table
    target = estimated["trust"].iloc[0]
    members = frame.loc[frame["trust"] == target, "school"].unique()
    reduced = frame.loc[~frame["school"].isin(members[1:])]
    result = fit_trust_effects(reduced, "attainment8", rng=rng, n_permutations=99)
    row = result.skipped.set_index("trust").loc[target]
    assert "only 1 school(s) with outcomes before and after joining; at least 2 needed" in row["reason"]
    with pytest.raises(EstimationError, match=f"Trust '{target}': only 1 school"):
        fit_trust_effects(reduced.loc[(reduced["trust"] == target) | reduced["trust"].isna()], "attainment8",
                          rng=rng, n_permutations=99, on_problem="fail")
    one = fit_trust_effects(reduced, "attainment8", rng=rng, n_permutations=99, min_schools=1)
    assert target in set(one.table["trust"])


def test_no_trust_column_values_is_an_error(frame, rng):
    with pytest.raises(EstimationError, match="No school has both a trust id"):
        fit_trust_effects(frame.assign(trust=pd.NA), "attainment8", rng=rng)


def test_nothing_estimable_names_first_problem(frame, rng):
    with pytest.raises(EstimationError, match="No trust could be estimated .* first: TR"):
        fit_trust_effects(frame, "attainment8", window=Window(pre=(-20, -15), post=(0, 1)), rng=rng)


# ------------------------------------------------------------------ size
@pytest.mark.slow
def test_randomisation_pvalues_uniform_under_no_effect(sim_tools):
    pvalues = []
    for seed in (11, 12, 13, 14):
        data = sim_tools.simulated(seed=seed, n_schools=400, effect_scale=0.0)
        result = fit_trust_effects(sim_tools.canonical(data.panel), "attainment8", rng=np.random.default_rng(seed),
                                   n_permutations=399)
        pvalues.append(result.table["p_value"].to_numpy())
    p = np.concatenate(pvalues)
    n = len(p)
    assert n >= 150
    size = float(np.mean(p <= 0.05))
    # within 3 Monte Carlo standard errors of 5%
    assert abs(size - 0.05) <= 3 * np.sqrt(0.05 * 0.95 / n), size
    assert stats.kstest(p, "uniform").pvalue > 0.001


@pytest.mark.parametrize("n,k", [(50, 3), (6, 4)])  # rejection sampling path; sorted-keys path
def test_placebo_groups_are_uniform_subsets(n, k):
    idx = placebo_groups(n, k, 20000, np.random.default_rng(9))
    assert idx.shape == (20000, k)
    assert (np.diff(np.sort(idx, axis=1), axis=1) > 0).all()  # distinct within a row
    counts = np.bincount(idx.ravel(), minlength=n)
    expected = 20000 * k / n
    # each school is in a placebo group with probability k/n (chi-square goodness of fit)
    assert stats.chisquare(counts, np.full(n, expected)).pvalue > 0.001


def test_did_core_is_swappable(frame, rng):
    # the boundary for the staggered group-time engine: a core returning each school's change
    base = fit_trust_effects(frame, "attainment8", rng=np.random.default_rng(1), n_permutations=99).table
    members = set(frame.loc[frame["trust"].notna(), "school"])

    def shifted(panel, outcome, g, window):
        out = two_by_two_changes(panel, outcome, g, window)
        return out.assign(change=out["change"] + np.where(out.index.isin(members), 1.0, 0.0))

    moved = fit_trust_effects(frame, "attainment8", rng=np.random.default_rng(1), n_permutations=99, core=shifted)
    np.testing.assert_allclose(moved.table["estimate"], base["estimate"] + 1.0, rtol=1e-10)


def test_trust_school_without_join_year_is_counted(frame, rng):
    never = frame.loc[frame["join_year"].isna(), "school"].unique()[:3]
    tagged = frame.assign(trust=frame["trust"].where(~frame["school"].isin(never), "TRX"))
    base = fit_trust_effects(frame, "attainment8", rng=rng, n_permutations=99)
    result = fit_trust_effects(tagged, "attainment8", rng=rng, n_permutations=99)
    exclusions = result.sample.to_frame().set_index("reason")
    assert exclusions.loc["school has a trust but no join year (neither a trust school nor a comparison)",
                          "n_units"] == 3
    assert "TRX" not in set(result.table["trust"])
    drop = base.table.set_index("trust")["n_control"] - result.table.set_index("trust")["n_control"]
    assert drop.between(1, 3).all()


def test_school_in_two_trusts_is_warned(frame, rng):
    school = frame.loc[frame["trust"].notna(), "school"].iloc[0]
    changed = frame.copy()
    first_row = changed.index[changed["school"] == school][0]
    changed.loc[first_row, "trust"] = "TR_OTHER"
    result = fit_trust_effects(changed, "attainment8", rng=rng, n_permutations=99)
    assert any("more than one trust id" in w and school in w for w in result.warnings)


def test_sample_counts_are_consistent(frame, rng):
    result = fit_trust_effects(frame, "attainment8", rng=rng, n_permutations=99)
    sample = result.sample
    assert 0 < sample.n_rows_used <= sample.n_rows_in == len(frame)
    assert sample.n_units_used <= frame["school"].nunique()
    # every estimated trust school and every comparison school is among the schools used
    assert sample.n_units_used >= result.table["n_control"].max() + result.table["n_treated"].sum()


def test_not_yet_joined_adds_later_joiners_as_comparisons(frame, rng):
    never = fit_trust_effects(frame, "attainment8", rng=rng, n_permutations=99).table.set_index("trust")
    later = fit_trust_effects(frame, "attainment8", rng=rng, n_permutations=99,
                              comparison="not_yet_joined").table.set_index("trust")
    gain = later["n_control"] - never["n_control"]
    assert (gain >= 0).all() and (gain > 0).any()
    # the last cohort has no later joiners: same comparisons, same estimate
    last = never["join_year"] == never["join_year"].max()
    np.testing.assert_allclose(later.loc[last, "estimate"], never.loc[last, "estimate"])
