"""Inference of the DiD family on the sample data: default trust clustering against independent references.

The sample panel is used with the trust id blanked in the years before each school joined (a common way
of recording membership, and the case where taking a school's first row lost its trust).  The default
``cluster: design`` must still cluster every school of a trust together, in every year, and each
never-joined school on its own; each method's standard errors must equal a reference computed here
with statsmodels from those clusters to 1e-8.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import yaml
from scipy import stats

from evaltool.config import load_config
from evaltool.estimators.did.method_2x2 import fit_did_2x2
from evaltool.pipeline import run_analyses

ROOT = Path(__file__).resolve().parents[3]
DID_METHODS = ("did_2x2", "did_twfe", "event_study", "did_staggered")
EXCLUDED_YEARS = (2020, 2021)  # data.exclude_years of configs/federation_impact.yaml


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """The sample's DiD analyses with their cluster keys removed (the default), trust blank before joining."""
    folder = tmp_path_factory.mktemp("sample")
    data = folder / "sample_data"
    shutil.copytree(ROOT / "sample_data", data)
    panel = pd.read_csv(data / "school_panel.csv")
    before = panel["year"] < panel["join_year"]
    assert before.sum() > 300  # the blanks below matter
    panel.loc[before, "trust_id"] = np.nan
    panel.to_csv(data / "school_panel.csv", index=False)
    config = yaml.safe_load((ROOT / "configs" / "federation_impact.yaml").read_text())
    config["data"] = {k: (v.replace("../sample_data/", "sample_data/") if isinstance(v, str) else v)
                      for k, v in config["data"].items()}
    analyses = [a for a in config["analyses"] if a["method"] in DID_METHODS]
    for analysis in analyses:
        analysis.pop("cluster", None)
        if analysis["method"] == "did_staggered":
            analysis["bootstrap_draws"] = 0  # analytic influence-function SEs
    config["analyses"] = analyses
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    run = run_analyses(load_config(folder / "config.yaml"))
    assert [a.status for a in run.analyses] == ["ok"] * len(analyses), [a.error for a in run.analyses]
    results = {a.method: a for a in run.analyses}
    frame = pd.read_csv(ROOT / "sample_data" / "school_panel.csv")  # the original, for the reference trusts
    frame = frame[~frame["year"].isin(EXCLUDED_YEARS)]
    return results, frame, panel


def trust_clusters(panel: pd.DataFrame) -> pd.Series:
    """Reference cluster of each school: the trust it is recorded in in any year, else the school itself."""
    trust = panel.dropna(subset=["trust_id"]).groupby("urn")["trust_id"].agg(lambda s: s.unique().tolist())
    assert (trust.str.len() == 1).all()  # no school in two trusts in the sample
    label = pd.Series("school " + panel["urn"].unique().astype(str), index=panel["urn"].unique())
    label.loc[trust.index] = "trust " + trust.str[0].astype(str)
    return label


def cr1_se(fit, n_obs: int, k: int, n_clusters: int, column: int | None = None, contrast=None) -> float:
    """CR1 = G/(G−1)·(N−1)/(N−K) times the plain cluster sandwich (statsmodels, use_correction=False)."""
    cov = np.asarray(fit.cov_params())
    factor = n_clusters / (n_clusters - 1) * (n_obs - 1) / (n_obs - k)
    if contrast is None:
        contrast = np.eye(cov.shape[0])[column]
    return float(np.sqrt(factor * contrast @ cov @ contrast))


def test_every_row_states_its_inference(sample):
    results, frame, _ = sample
    n_trusts = frame["trust_id"].nunique()
    for method, result in results.items():
        tidy = result.tidy()
        assert (tidy["se_method"].str.len() > 0).all(), method
        assert (tidy["cluster"] == "trust").all(), method
        assert tidy["n_clusters"].notna().all(), method
        assert result.diagnostics["inference"]["reason"].startswith("joining is decided for all schools of a trust")
        # Every trust is one cluster, each never-joined school another (not the 400 schools).
        assert tidy["n_clusters"].iloc[0] <= n_trusts + (frame.groupby("urn")["trust_id"].count() == 0).sum()


def test_did_2x2_trust_clustered_se_equals_statsmodels(sample):
    results, frame, _ = sample
    estimate = results["did_2x2"].estimate("treated:post")
    pre, post = [2012, 2013], [2022, 2023]
    data = frame[frame["year"].isin(pre + post)].dropna(subset=["attainment8"])
    join = data.groupby("urn")["join_year"].first()
    treated = join[(join > max(pre)) & (join <= min(post))].index
    keep = data["urn"].isin(treated) | data["urn"].map(join).isna()
    data = data[keep].assign(post=data["year"].isin(post).astype(float))
    means = data.groupby(["urn", "post"], as_index=False)["attainment8"].mean()
    means = means[means.groupby("urn")["post"].transform("nunique") == 2]
    d = means["urn"].isin(treated).astype(float)
    x = sm.add_constant(np.column_stack([d, means["post"], d * means["post"]]))
    groups = pd.factorize(means["urn"].map(trust_clusters(frame)))[0]
    # statsmodels 0.15 OLS cluster with use_correction=True: G/(G-1)·(N-1)/(N-K), K = 4
    fit = sm.OLS(means["attainment8"].to_numpy(), x).fit(cov_type="cluster", cov_kwds={"groups": groups})
    assert estimate.estimate == pytest.approx(fit.params[3], abs=1e-10)
    assert estimate.std_error == pytest.approx(fit.bse[3], rel=1e-8)
    assert estimate.n_clusters == groups.max() + 1
    half = stats.t.ppf(0.975, estimate.n_clusters - 1) * estimate.std_error
    assert estimate.ci_upper - estimate.estimate == pytest.approx(half, rel=1e-10)
    # Subgroup reruns (heterogeneity) cluster the same way.
    subgroups = results["did_2x2"].tidy().query("subgroup != 'all'")
    assert len(subgroups) and (subgroups["cluster"] == "trust").all()


def twfe_sample(frame: pd.DataFrame) -> pd.DataFrame:
    data = frame.dropna(subset=["attainment8"])
    return data[data.groupby("urn")["year"].transform("size") >= 2].copy()


def lsdv_fit(data: pd.DataFrame, regressors: pd.DataFrame):
    """Dummy-variable OLS (school and year dummies), plain cluster sandwich by the reference trusts."""
    dummies = pd.get_dummies(data[["urn", "year"]].astype(str), drop_first=True, dtype=float)
    x = pd.concat([regressors, dummies], axis=1).assign(const=1.0)
    groups = pd.factorize(data["urn"].map(trust_clusters(data)))[0]
    fit = sm.OLS(data["attainment8"], x).fit(cov_type="cluster", cov_kwds={"groups": groups, "use_correction": False})
    return fit, groups.max() + 1


def test_did_twfe_trust_clustered_se_equals_statsmodels(sample):
    results, frame, _ = sample
    estimate = results["did_twfe"].estimate("joined")
    data = twfe_sample(frame)
    d = pd.DataFrame({"joined": (data["year"] >= data["join_year"]).astype(float)}, index=data.index)
    fit, n_clusters = lsdv_fit(data, d)
    # K = 1 regressor + (T − 1) year effects; school effects nested in the trust clusters are not counted.
    k = 1 + data["year"].nunique() - 1
    assert estimate.estimate == pytest.approx(fit.params["joined"], abs=1e-9)
    assert estimate.std_error == pytest.approx(cr1_se(fit, len(data), k, n_clusters, column=0), rel=1e-8)
    assert estimate.n_clusters == n_clusters


def test_event_study_trust_clustered_se_equals_statsmodels(sample):
    results, frame, _ = sample
    tidy = results["event_study"].tidy()
    data = twfe_sample(frame)
    event = np.clip(data["year"] - data["join_year"], -4, 5)  # window [-4, 5], endpoints binned
    times = [k for k in range(-4, 6) if k != -1]
    dummies = pd.DataFrame({f"e{k}": (event == k).astype(float) for k in times}, index=data.index)
    fit, n_clusters = lsdv_fit(data, dummies)
    k = len(times) + data["year"].nunique() - 1
    for j, time in enumerate(times):
        row = tidy[tidy["term"] == f"event_time={time}"].iloc[0]
        assert row["std_error"] == pytest.approx(cr1_se(fit, len(data), k, n_clusters, column=j), rel=1e-8), time
    average = np.zeros(len(fit.params))
    average[[times.index(t) for t in times if t >= 0]] = 1 / 6
    row = tidy[tidy["term"] == "average post-joining coefficient"].iloc[0]
    assert row["std_error"] == pytest.approx(cr1_se(fit, len(data), k, n_clusters, contrast=average), rel=1e-8)


def test_did_staggered_analytic_se_equals_cluster_sandwich_of_each_cell(sample):
    # ATT(g,t) without covariates is the OLS slope of Y_t − Y_{g−1} on D among cohort g and never-joined
    # schools; its influence-function variance Σ_c (Σ_{i∈c} ψ_i)² / n² is that regression's plain cluster
    # sandwich (no small-sample factor, as R did), clusters = trusts.
    results, frame, _ = sample
    tidy = results["did_staggered"].tidy().set_index("term")
    wide = frame.pivot(index="urn", columns="year", values="attainment8").dropna()  # balanced panel
    join = frame.groupby("urn")["join_year"].first().reindex(wide.index)
    clusters = trust_clusters(frame).reindex(wide.index)
    checked = 0
    for g in sorted(join.dropna().unique()):
        if g <= wide.columns.min():
            continue  # no pre-joining year: excluded
        for t in [t for t in wide.columns if t >= g]:
            cell = (join == g) | join.isna()
            base = max(y for y in wide.columns if y < g)
            dy = (wide[t] - wide[base])[cell]
            x = sm.add_constant((join[cell] == g).astype(float).to_numpy())
            groups = pd.factorize(clusters[cell])[0]
            fit = sm.OLS(dy.to_numpy(), x).fit(cov_type="cluster", cov_kwds={"groups": groups, "use_correction": False})
            row = tidy.loc[f"ATT({int(g)},{int(t)})"]
            assert row["estimate"] == pytest.approx(fit.params[1], abs=1e-10)
            assert row["std_error"] == pytest.approx(fit.bse[1], rel=1e-8), (g, t)
            checked += 1
    assert checked >= 20
    assert (tidy["se_method"] == "analytic influence-function SEs").all()


def test_wild_cluster_bootstrap_with_few_trusts():
    # 12 trusts (< few_clusters_below = 30): the 2x2 p-value and interval come from the WCR bootstrap.
    from evaltool.config.inference import InferenceOptions

    rng = np.random.default_rng(4)
    rows = []
    shocks = rng.normal(size=12)
    for school in range(48):
        group = school % 12  # trusts 0-5 join in 2016; 6-11 are groups of never-joined schools
        joins = 2016.0 if group < 6 else np.nan
        for year in (2014, 2015, 2017, 2018):
            treated = group < 6 and year >= joins
            rows.append({"school": str(school), "year": year, "join_year": joins,
                         # joiners' trust recorded only from joining: filled from their later years
                         "trust": f"T{group}" if treated or group >= 6 else None,
                         "y": shocks[group] + 0.5 * treated + rng.normal()})
    frame = pd.DataFrame(rows)
    options = InferenceOptions(cluster="trust", wild_bootstrap_draws=1999)
    estimate, diagnostics, _, _ = fit_did_2x2(frame, "y", pre_years=[2014, 2015], post_years=[2017, 2018],
                                              cluster="trust", inference=options, rng=np.random.default_rng(1))
    assert estimate.n_clusters == 12
    assert estimate.se_method.startswith("wild cluster bootstrap (WCR, Webb weights, 1999 draws")
    assert diagnostics["inference"]["method"] == estimate.se_method
    # Same draws by hand: the bootstrap on the school-period means with the same clusters and generator.
    again, *_ = fit_did_2x2(frame, "y", pre_years=[2014, 2015], post_years=[2017, 2018], cluster="trust",
                            inference=options, rng=np.random.default_rng(1))
    assert (again.p_value, again.ci_lower, again.ci_upper) == (estimate.p_value, estimate.ci_lower, estimate.ci_upper)
    # The interval is not the t(G−1) Wald interval.
    half = stats.t.ppf(0.975, 11) * estimate.std_error
    assert estimate.ci_lower != pytest.approx(estimate.estimate - half, rel=1e-6)
    assert estimate.ci_lower < estimate.estimate < estimate.ci_upper


def test_wild_cluster_bootstrap_equals_brute_force():
    # Each draw re-estimated by OLS with the null imposed (restricted residuals), Webb weights per cluster.
    from evaltool.estimators.wild_bootstrap import WEBB, wild_cluster_bootstrap  # new on this branch

    rng = np.random.default_rng(1)
    n_clusters, size = 9, 8
    clusters = np.repeat(np.arange(n_clusters), size)
    x = np.column_stack([np.ones(len(clusters)), rng.normal(size=len(clusters)), rng.normal(size=len(clusters))])
    y = x @ [1.0, 0.3, 0.1] + rng.normal(size=len(clusters)) + rng.normal(size=n_clusters)[clusters]
    result = wild_cluster_bootstrap(y, x, np.array([0.0, 1.0, 0.0]), clusters, n_draws=499,
                                    rng=np.random.default_rng(5))
    weights = WEBB[np.random.default_rng(5).integers(0, 6, size=(499, n_clusters))]
    pinv = np.linalg.pinv(x)

    def score_se(resid):
        return np.sqrt((np.bincount(clusters, pinv[1] * resid) ** 2).sum())

    def brute_p(r):
        rest = x[:, [0, 2]]
        gamma = np.linalg.lstsq(rest, y - r * x[:, 1], rcond=None)[0]
        restricted = y - r * x[:, 1] - rest @ gamma
        beta = pinv @ y
        t = (beta[1] - r) / score_se(y - x @ beta)
        draws = []
        for v in weights:
            y_star = rest @ gamma + r * x[:, 1] + v[clusters] * restricted
            b = pinv @ y_star
            draws.append((b[1] - r) / score_se(y_star - x @ b))
        return np.mean(np.abs(draws) >= abs(t) * (1 - 1e-12))

    assert result.p_value == pytest.approx(brute_p(0.0), abs=1e-12)
    # Test inversion: the interval ends are where the brute-force p-value crosses 5%.
    eps = 1e-6 * (result.ci_upper - result.ci_lower)
    for end, inward in ((result.ci_lower, 1), (result.ci_upper, -1)):
        assert brute_p(end + inward * eps) > 0.05 >= brute_p(end - inward * eps)


def config_problems(tmp_path, analysis: str) -> str:
    """The ConfigError message of a sample config with one analysis block (YAML text)."""
    from evaltool.errors import ConfigError

    text = (ROOT / "configs" / "federation_impact.yaml").read_text().replace("../sample_data/", str(ROOT / "sample_data") + "/")
    head = text[: text.index("analyses:")]
    (tmp_path / "config.yaml").write_text(head + "analyses:\n" + analysis)
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "config.yaml")
    return str(err.value)


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        ("  - {name: cs, method: did_staggered, inference: {cluster: [trust, year]}}\n",
         r"inference\.cluster .*did_staggered does not support two-way clustering"),
        ("  - {name: tw, method: did_twfe, cluster: matched_set}\n", r"inference\.cluster .*cannot cluster by 'matched_set'"),
        ("  - {name: d, method: did_2x2, pre_years: [2012], post_years: [2022], cluster_by_year: true}\n",
         r"did_2x2 does not support two-way clustering"),
        ("  - {name: cs, method: did_staggered, bootstrap_draws: 0, inference: {few_clusters: wild_bootstrap}}\n",
         r"inference\.few_clusters .*'wild_bootstrap' is not available for did_staggered"),
        ("  - {name: es, method: event_study, inference: {few_clusters: randomisation}}\n",
         r"inference\.few_clusters .*'randomisation' is not available for event_study"),
    ],
)
def test_requests_that_cannot_be_honoured_are_config_errors(tmp_path, block, expected):
    import re

    assert re.search(expected, config_problems(tmp_path, block))


def test_too_few_clusters_and_empty_two_way_dimension_are_errors():
    from evaltool.errors import EstimationError
    from evaltool.estimators.did.method_twfe import fit_did_twfe

    frame = pd.DataFrame({"school": np.repeat(["a", "b", "c", "d"], 2), "year": np.tile([2015, 2016], 4),
                          "join_year": np.repeat([2016.0, 2016.0, np.nan, np.nan], 2), "trust": "T1",
                          "y": np.arange(8.0) ** 1.5})
    with pytest.raises(EstimationError, match=r"inference\.cluster: the analysis sample has 1 trust cluster") as err:
        fit_did_twfe(frame, "y", cluster="trust")
    assert err.value.exit_code == 2
    # Two-way clustering by [school, year] on rows of one year: the year dimension has one cluster.
    from evaltool.estimators.did.engine.clustering import resolve_clusters

    one_year = frame.assign(year=2016)
    with pytest.raises(EstimationError, match=r"inference\.cluster: the analysis sample has 1 year cluster"):
        resolve_clusters(("school", "year"), one_year).row_codes(one_year)


def test_n_control_counts_not_yet_joined_comparisons():
    """#19: n_control reported the never-joined count under not-yet-joined comparisons."""
    import numpy as np

    from evaltool.estimators.did.method_staggered import DidStaggeredOptions, fit_did_staggered
    from tests.conftest import make_panel

    frame = make_panel(seed=3).rename(columns={"urn": "school"})
    frame["join_year"] = frame["join_year"].where(frame["join_year"] > 0)
    schools = frame.drop_duplicates("school")
    never = int(schools["join_year"].isna().sum())
    analysed = schools["join_year"] > frame["year"].min()  # cohorts joining within the data (earlier ones excluded)
    first = schools.loc[analysed, "join_year"].min()
    later = int((schools["join_year"] > first).sum())  # not yet joined in the first cohort's joining year
    counts = {}
    for comparison in ("never_joined", "not_yet_joined"):
        options = DidStaggeredOptions(name="s", method="did_staggered", comparison=comparison, bootstrap_draws=0,
                                      placebo_shift=None)
        estimates, *_ = fit_did_staggered(frame, "att8", options=options, rng=np.random.default_rng(1))
        counts[comparison] = estimates[0].n_control
    assert counts["never_joined"] == never
    assert counts["not_yet_joined"] == never + later
