"""Fast engine vs statsmodels MixedLM on seeded data; boundary, convergence and rank errors; three levels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from evaltool.errors import EstimationError
from evaltool.estimators.multilevel.fastlmm import fit_fast_lmm
from evaltool.estimators.multilevel.mixedlm import fit_mixedlm


def make_data(seed: int, n_schools: int = 120, school_sd: float = 0.5, slope_sd: float = 0.2, n_trusts: int = 0,
              trust_sd: float = 0.0) -> pd.DataFrame:
    """Pupils in schools (in trusts): y = 1 + 0.5 x1 − 0.3 x2 + 0.2 x3 + u0 + u1·x1 + v_trust + e."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(5, 60, size=n_schools)
    school = np.repeat(np.arange(n_schools), sizes)
    n = school.size
    x = rng.normal(size=(n, 3))
    u = rng.normal(size=(n_schools, 2)) * [school_sd, slope_sd]
    trust_of_school = rng.integers(0, max(n_trusts, 1), size=n_schools)
    v = rng.normal(size=max(n_trusts, 1)) * trust_sd
    y = (1 + x @ [0.5, -0.3, 0.2] + u[school, 0] + u[school, 1] * x[:, 0] + v[trust_of_school[school]]
         + rng.normal(size=n))
    return pd.DataFrame({"y": y, "x1": x[:, 0], "x2": x[:, 1], "x3": x[:, 2], "school": school,
                         "trust": trust_of_school[school], "u0": u[school, 0], "u1": u[school, 1]})


def _design(d: pd.DataFrame, slope: bool):
    X = np.column_stack([np.ones(len(d)), d[["x1", "x2", "x3"]]])
    Z = X[:, :2] if slope else X[:, :1]
    return X, Z, ["Intercept", "x1", "x2", "x3"], ["Intercept", "x1"][: Z.shape[1]]


@pytest.mark.parametrize("slope", [False, True])
@pytest.mark.parametrize("reml", [True, False])
def test_fast_engine_equals_mixedlm(slope, reml):
    d = make_data(11)
    X, Z, fixed, random = _design(d, slope)
    fast = fit_fast_lmm(d["y"], X, Z, d["school"], fixed_names=fixed, random_names=random, reml=reml)
    # statsmodels 0.15.0 MixedLM on the same arrays (the baseline implementation)
    ref = sm.MixedLM(d["y"].to_numpy(), X, groups=d["school"].to_numpy(), exog_re=Z).fit(reml=reml)
    np.testing.assert_allclose(fast.params.to_numpy(), ref.fe_params, atol=1e-4)
    np.testing.assert_allclose(fast.re_cov.to_numpy(), np.asarray(ref.cov_re), atol=1e-4)
    assert fast.residual_variance == pytest.approx(ref.scale, abs=1e-4)
    assert fast.llf == pytest.approx(ref.llf, abs=1e-4)
    np.testing.assert_allclose(fast.bse.to_numpy(), ref.bse_fe, rtol=2e-3)
    # the statsmodels wrapper returns the same shape and numbers
    wrapped = fit_mixedlm(d["y"], X, Z, d["school"], fixed_names=fixed, random_names=random, reml=reml)
    np.testing.assert_allclose(wrapped.params.to_numpy(), fast.params.to_numpy(), atol=1e-4)


def test_recovers_simulated_parameters():
    d = make_data(5, n_schools=400)
    X, Z, fixed, random = _design(d, slope=True)
    fit = fit_fast_lmm(d["y"], X, Z, d["school"], fixed_names=fixed, random_names=random)
    truth = [1.0, 0.5, -0.3, 0.2]
    assert np.all(np.abs(fit.params.to_numpy() - truth) < 4 * fit.bse.to_numpy())
    assert fit.re_cov.iloc[0, 0] == pytest.approx(0.25, rel=0.25)
    assert fit.residual_variance == pytest.approx(1.0, rel=0.05)
    # Wald intervals: estimate ± z(0.975)·SE (normal quantile, as MixedLM), not merely "around" the estimate
    ci = fit.conf_int(0.95)
    np.testing.assert_allclose(ci["lower"], fit.params - 1.959963984540054 * fit.bse, rtol=1e-12)
    np.testing.assert_allclose(ci["upper"], fit.params + 1.959963984540054 * fit.bse, rtol=1e-12)
    # BLUPs predict the true school effects: the intercepts' (u0 sd 0.5, ~30 pupils a school, σ = 1) reliability
    # is about 0.25/(0.25 + 1/30) ≈ 0.88, so their correlation with the truth is about 0.94 (slopes: sd 0.2, ≈ 0.7)
    true_u = d.groupby("school")[["u0", "u1"]].first().loc[fit.random_effects.index]
    assert np.corrcoef(fit.random_effects["Intercept"], true_u["u0"])[0, 1] > 0.85
    assert np.corrcoef(fit.random_effects["x1"], true_u["u1"])[0, 1] > 0.5


def _dense_blups(d: pd.DataFrame, X: np.ndarray, Z: np.ndarray, beta: np.ndarray, D: np.ndarray,
                 sigma2: float) -> np.ndarray:
    """BLUPs by the textbook formula b_i = D Z_i' V_i⁻¹ (y_i − X_i β), V_i = σ²I + Z_i D Z_i' (dense, per school)."""
    out = []
    for school in np.unique(d["school"]):
        rows = (d["school"] == school).to_numpy()
        V = sigma2 * np.eye(rows.sum()) + Z[rows] @ D @ Z[rows].T
        out.append(D @ Z[rows].T @ np.linalg.solve(V, d["y"].to_numpy()[rows] - X[rows] @ beta))
    return np.asarray(out)


@pytest.mark.parametrize("slope", [False, True])
def test_blups_equal_mixedlm_random_effects_and_the_dense_formula(slope):
    d = make_data(11)
    X, Z, fixed, random = _design(d, slope)
    fast = fit_fast_lmm(d["y"], X, Z, d["school"], fixed_names=fixed, random_names=random, reml=True)
    assert list(fast.random_effects.index) == sorted(d["school"].unique())
    assert list(fast.random_effects.columns) == random
    # Same fitted parameters through the dense formula: exact agreement (the engine's Woodbury form)
    dense = _dense_blups(d, X, Z, fast.params.to_numpy(), fast.re_cov.to_numpy(), fast.residual_variance)
    np.testing.assert_allclose(fast.random_effects.to_numpy(), dense, rtol=1e-7, atol=1e-10)
    # statsmodels 0.15.0: sm.MixedLM(y, X, groups=school, exog_re=Z).fit(reml=True).random_effects (its own
    # optimum, which agrees with ours to ~1e-5 in the parameters; BLUPs of size ~1 agree to 4e-5)
    ref = sm.MixedLM(d["y"].to_numpy(), X, groups=d["school"].to_numpy(), exog_re=Z).fit(reml=True)
    theirs = np.vstack([ref.random_effects[g].to_numpy() for g in fast.random_effects.index])
    np.testing.assert_allclose(fast.random_effects.to_numpy(), theirs, atol=2e-4)


def test_zero_school_variance_is_flagged_as_boundary():
    d = make_data(3, school_sd=0.0, slope_sd=0.0)
    X, Z, fixed, random = _design(d, slope=False)
    fit = fit_fast_lmm(d["y"], X, Z, d["school"], fixed_names=fixed, random_names=random)
    # flagged exactly when the estimate is (relatively) zero
    at_zero = fit.re_cov.iloc[0, 0] <= 1e-8 * fit.residual_variance
    assert (fit.boundary == ["Intercept"]) == at_zero, (fit.boundary, fit.re_cov.iloc[0, 0])
    d2 = d.assign(y=d["y"] - d.groupby("school")["y"].transform("mean") + d["y"].mean())  # no between-school variation
    fit2 = fit_fast_lmm(d2["y"], X, Z, d2["school"], fixed_names=fixed, random_names=random)
    assert fit2.boundary == ["Intercept"]
    assert fit2.re_cov.iloc[0, 0] == pytest.approx(0.0, abs=1e-8)


def test_perfectly_correlated_random_effects_flag_singular_covariance():
    d = make_data(8, school_sd=0.0, slope_sd=0.0)
    d["y"] = d["y"] + (d["school"] % 7 - 3) * 0.3 * (1 + d["x1"])  # u1 = u0 exactly: correlation 1
    X, Z, fixed, random = _design(d, slope=True)
    fit = fit_fast_lmm(d["y"], X, Z, d["school"], fixed_names=fixed, random_names=random)
    eig = np.linalg.eigvalsh(fit.re_cov.to_numpy())
    assert eig[0] < 1e-6 * eig[-1]
    assert fit.boundary == ["covariance matrix (singular: correlation ±1)"]


def test_non_convergence_is_an_error_with_the_optimiser_message():
    d = make_data(2)
    X, Z, fixed, random = _design(d, slope=True)
    with pytest.raises(EstimationError, match=r"did not converge \(L-BFGS-B: .*; Powell: .*; 2 iterations\)\. No estimates"):
        fit_fast_lmm(d["y"], X, Z, d["school"], fixed_names=fixed, random_names=random, max_iterations=1)


def test_collinear_fixed_effects_are_named():
    d = make_data(2)
    X, Z, fixed, random = _design(d, slope=False)
    X = np.column_stack([X, 2 * X[:, 1]])
    with pytest.raises(EstimationError, match=r"has 5 columns but rank 4: some of .*'x1_twice'.* are collinear"):
        fit_fast_lmm(d["y"], X, Z, d["school"], fixed_names=[*fixed, "x1_twice"], random_names=random)


def test_three_levels_via_mixedlm_recovers_trust_variance():
    d = make_data(21, n_schools=150, slope_sd=0.0, school_sd=0.4, n_trusts=40, trust_sd=0.5)
    X, Z, fixed, random = _design(d, slope=False)
    fit = fit_mixedlm(d["y"], X, Z, d["school"], fixed_names=fixed, random_names=random, trusts=d["trust"].to_numpy())
    assert fit.engine == "statsmodels"
    assert set(fit.higher_levels) == {"trust"}
    assert fit.higher_levels["trust"] == pytest.approx(0.25, rel=0.6)
    assert fit.re_cov.iloc[0, 0] == pytest.approx(0.16, rel=0.5)
    assert np.all(np.abs(fit.params.to_numpy()[1:] - [0.5, -0.3, 0.2]) < 4 * fit.bse.to_numpy()[1:])
    vc = fit.variance_components()
    assert list(vc["level"]) == ["school", "trust", "residual"]


def test_three_level_random_slopes_are_refused():
    d = make_data(21, n_schools=30, n_trusts=5)
    X, Z, fixed, random = _design(d, slope=True)
    with pytest.raises(EstimationError, match="Random slopes with a trust level"):
        fit_mixedlm(d["y"], X, Z, d["school"], fixed_names=fixed, random_names=random, trusts=d["trust"].to_numpy())


@pytest.mark.parametrize("reml", [True, False])
def test_fast_three_levels_equal_mixedlm(reml):
    import statsmodels.formula.api as smf

    d = make_data(21, n_schools=150, slope_sd=0.0, school_sd=0.4, n_trusts=40, trust_sd=0.5).sample(frac=1, random_state=1)
    X, Z, fixed, random = _design(d, slope=False)
    fit = fit_fast_lmm(d["y"], X, Z, d["school"], fixed_names=fixed, random_names=random, reml=reml,
                       parents=d["trust"].to_numpy())
    # statsmodels 0.15.0: smf.mixedlm("y ~ x1+x2+x3", d, groups="trust", re_formula="1",
    #                                 vc_formula={"school": "0 + C(school)"}).fit(reml=...)
    ref = smf.mixedlm("y ~ x1 + x2 + x3", d, groups="trust", re_formula="1",
                      vc_formula={"school": "0 + C(school)"}).fit(reml=reml)
    np.testing.assert_allclose(fit.params.to_numpy(), ref.fe_params.to_numpy(), atol=1e-4)
    np.testing.assert_allclose(fit.bse.to_numpy(), ref.bse_fe.to_numpy(), atol=1e-4)
    assert fit.higher_levels["trust"] == pytest.approx(float(ref.cov_re.iloc[0, 0]), abs=1e-3)
    assert fit.re_cov.iloc[0, 0] == pytest.approx(float(ref.vcomp[0]), abs=1e-4)
    assert fit.llf >= ref.llf - 1e-8 and fit.llf == pytest.approx(ref.llf, abs=1e-4)
    assert fit.random_effects is None and fit.variance_components()["std_error"].isna().all()


def test_three_levels_need_nested_schools_and_no_slopes():
    d = make_data(21, n_schools=30, n_trusts=5)
    X, Z, fixed, random = _design(d, slope=False)
    crossed = d["trust"].to_numpy().copy()
    crossed[:3] = (crossed[:3] + 1) % 5  # the first school's first pupils in another trust
    with pytest.raises(EstimationError, match=r"1 schools appear in more than one trust"):
        fit_fast_lmm(d["y"], X, Z, d["school"], fixed_names=fixed, random_names=random, parents=crossed)
    X, Z, fixed, random = _design(d, slope=True)
    with pytest.raises(EstimationError, match="Three levels are fitted with random intercepts only"):
        fit_fast_lmm(d["y"], X, Z, d["school"], fixed_names=fixed, random_names=random, parents=d["trust"].to_numpy())


def test_three_levels_equal_statsmodels_formula_interface_on_shuffled_rows():
    import statsmodels.formula.api as smf

    d = make_data(21, n_schools=80, slope_sd=0.0, school_sd=0.4, n_trusts=25, trust_sd=0.5).sample(frac=1, random_state=1)
    X, Z, fixed, random = _design(d, slope=False)
    fit = fit_mixedlm(d["y"], X, Z, d["school"], fixed_names=fixed, random_names=random, trusts=d["trust"].to_numpy())
    # statsmodels 0.15.0: smf.mixedlm("y ~ x1+x2+x3", d, groups="trust", re_formula="1",
    #                                 vc_formula={"school": "0 + C(school)"}).fit()
    ref = smf.mixedlm("y ~ x1 + x2 + x3", d, groups="trust", re_formula="1",
                      vc_formula={"school": "0 + C(school)"}).fit()
    np.testing.assert_allclose(fit.params.to_numpy(), ref.fe_params.to_numpy(), atol=1e-6)
    assert fit.higher_levels["trust"] == pytest.approx(float(ref.cov_re.iloc[0, 0]), abs=1e-6)
    assert fit.re_cov.iloc[0, 0] == pytest.approx(float(ref.vcomp[0]), abs=1e-6)
    assert fit.llf == pytest.approx(ref.llf, abs=1e-6)


def test_units_of_covariates_do_not_matter():
    d = make_data(9)
    X, Z, fixed, random = _design(d, slope=False)
    base = fit_fast_lmm(d["y"], X, Z, d["school"], fixed_names=fixed, random_names=random)
    scaled = X * [1.0, 1000.0, 1e-3, 1.0] + [0.0, 0.0, 0.0, 2019.0]  # x3 shifted like a calendar year
    other = fit_fast_lmm(d["y"], scaled, Z, d["school"], fixed_names=fixed, random_names=random)
    np.testing.assert_allclose(other.params.to_numpy()[1:3] * [1000.0, 1e-3], base.params.to_numpy()[1:3], rtol=1e-6)
    assert other.params["x3"] == pytest.approx(base.params["x3"], rel=1e-6)
    assert other.re_cov.iloc[0, 0] == pytest.approx(base.re_cov.iloc[0, 0], rel=1e-6)
    # the REML likelihood changes with the units of X by the log-Jacobian: + log|D| for X·D
    assert other.llf == pytest.approx(base.llf + np.log(1000.0) + np.log(1e-3), abs=1e-6)


def test_variance_component_standard_errors_match_the_balanced_anova_formula():
    # Balanced one-way design, g groups of k: REML = ANOVA estimators, with (Searle, Casella & McCulloch 1992,
    # Variance Components, §3.6) Var(σ̂²) = 2σ⁴/(g(k−1)) and Var(τ̂²) = (2/k²)[(σ² + kτ²)²/(g−1) + σ⁴/(g(k−1))].
    rng = np.random.default_rng(31)
    g, k = 80, 12
    school = np.repeat(np.arange(g), k)
    y = 3.0 + rng.normal(0, 0.7, g)[school] + rng.normal(0, 1.0, g * k)
    one = np.ones((g * k, 1))
    fit = fit_fast_lmm(y, one, one, school, fixed_names=["Intercept"], random_names=["Intercept"], reml=True)
    tau2, s2 = fit.re_cov.iloc[0, 0], fit.residual_variance
    se = fit.variance_components().set_index("term")["std_error"]
    assert se["(residual)"] == pytest.approx(np.sqrt(2 * s2**2 / (g * (k - 1))), rel=1e-3)
    assert se["Intercept"] == pytest.approx(np.sqrt(2 / k**2 * ((s2 + k * tau2) ** 2 / (g - 1) + s2**2 / (g * (k - 1)))),
                                            rel=1e-3)


def test_boundary_fits_have_no_variance_standard_errors():
    d = make_data(3, school_sd=0.0, slope_sd=0.0)
    d2 = d.assign(y=d["y"] - d.groupby("school")["y"].transform("mean"))
    X, Z, fixed, random = _design(d2, slope=False)
    fit = fit_fast_lmm(d2["y"], X, Z, d2["school"], fixed_names=fixed, random_names=random)
    assert fit.boundary == ["Intercept"]
    assert fit.variance_components()["std_error"].isna().all()


def test_nearly_singular_random_effects_give_missing_variance_ses_not_a_crash():
    from evaltool.estimators.multilevel.fastlmm import cluster_statistics, variance_parameter_covariance

    d = make_data(4)
    X, Z, _, _ = _design(d, slope=True)
    codes = d["school"].to_numpy()
    s = cluster_statistics(d["y"].to_numpy(), X, Z, codes, int(codes.max()) + 1)
    # not a boundary fit (smallest eigenvalue 3.8e-7 > 1e-8), but finite-difference steps leave the PD cone
    psi = np.array([[0.25, 0.05], [0.05, 0.01 + 4e-7]])
    assert np.linalg.eigvalsh(psi)[0] > 1e-8
    cov = variance_parameter_covariance(s, True, psi, 1.0)
    assert cov.shape == (4, 4) and np.isnan(cov).all()
