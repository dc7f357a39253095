"""``method: did_staggered``: Callaway & Sant'Anna (2021) staggered difference-in-differences.

Group-time ATTs (:mod:`~evaltool.estimators.did.engine.att_gt`), their
aggregations (:mod:`~evaltool.estimators.did.engine.aggregate`) and a multiplier
bootstrap (:mod:`~evaltool.estimators.did.engine.bootstrap`) with uniform bands, plus
the pre-trend and placebo diagnostics.

Inference
---------
The influence functions are summed within clusters (``inference.cluster``: by default the trust, each
school outside a trust its own cluster; one level only).  The variance is the influence-function one
``Σ_c S_c² / n²`` with no small-sample factor and normal intervals, as R ``did`` (``correction`` left
at its default, or ``none``).  ``correction: CR1`` written in the config multiplies it by G/(G − 1)
(intervals stay normal; the uniform bands scale with it).  The multiplier bootstrap draws one weight per
cluster, so it is a cluster wild bootstrap (without the null imposed); it is this method's few-cluster
route (``few_clusters: wild_bootstrap`` needs ``bootstrap_draws`` > 0).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator
from scipy import special
from threadpoolctl import ThreadpoolController

from evaltool.config.models import AnalysisBase, EventTime
from evaltool.diagnostics.pretrends import placebo_test, staggered_pretrend_test
from evaltool.errors import EstimationError
from evaltool.estimators.base import Method
from evaltool.estimators.common import design_problems, result_for
from evaltool.estimators.did.engine.aggregate import Aggregate, aggregate
from evaltool.estimators.did.engine.att_gt import GroupTimeResult, att_gt
from evaltool.estimators.did.engine.bootstrap import BootstrapResult, PendingDraws, start_group_time_draws
from evaltool.estimators.did.engine.clustering import DidClusters, label_warnings, resolve_clusters
from evaltool.estimators.did.sensitivity import event_time_sensitivity, pre_joining_change
from evaltool.estimators.inference import Inference, check_cluster_count, few_clusters_route, inference_problems
from evaltool.results import AnalysisResult, EffectEstimate, SampleReport

if TYPE_CHECKING:
    from evaltool.config.root import Config
    from evaltool.estimators.context import AnalysisContext

#: Term of the headline estimate for each aggregation.
OVERALL_TERMS = {
    "group": "ATT (cohort-weighted)",
    "simple": "ATT (simple)",
    "dynamic": "ATT (event-time average)",
    "calendar": "ATT (calendar-year average)",
}
ELEMENT = {"group": ("cohort", "ATT(g)"), "dynamic": ("event_time", "ATT(e)"), "calendar": ("year", "ATT(t)")}


class DidStaggeredOptions(AnalysisBase):
    """Options of ``method: did_staggered``."""

    method: Literal["did_staggered"]
    comparison: Literal["never_joined", "not_yet_joined"] = "never_joined"
    """Comparison schools: 'never_joined', or 'not_yet_joined' (also schools that join later)."""
    anticipation: int = Field(default=0, ge=0, le=5)
    """Years before joining in which schools may already change; the base year is before them."""
    covariates: list[str] = Field(default_factory=list)
    """Covariates (from columns.covariates) for conditional parallel trends; values from covariate_year."""
    covariate_year: Literal["before_base", "base"] = "before_base"
    """Covariates from the year before each cell's base year ('before_base') or from the base year ('base', R did)."""
    est_method: Literal["dr", "ipw", "reg"] = "dr"
    """Covariate adjustment: 'dr' (doubly robust), 'ipw' (inverse probability weighting) or 'reg' (outcome regression)."""
    base_period: Literal["varying", "universal"] = "varying"
    """Pre-joining cells compare consecutive years ('varying', as R did) or all use the year before joining ('universal')."""
    unbalanced: Literal["balance", "available_pairs"] = "balance"
    """'balance': drop schools missing any year (reported); 'available_pairs': each cell uses schools seen in both its years."""
    bootstrap_draws: int = Field(default=999, ge=0, le=100_000)
    """Multiplier-bootstrap draws (0: analytic standard errors and no uniform bands)."""
    bootstrap_weights: Literal["mammen", "rademacher"] = "mammen"
    """Multiplier weights: 'mammen' (as R did) or 'rademacher'."""
    aggregations: list[Literal["simple", "group", "dynamic", "calendar"]] = Field(
        default_factory=lambda: ["group", "simple", "dynamic", "calendar"], min_length=1
    )
    """Aggregations to report; the first one's overall ATT is the headline estimate."""
    event_window: tuple[EventTime, EventTime] | None = None
    """Event times [min, max] kept in the dynamic (and simple/group) aggregations; default all."""
    pretrend_reference: Literal["f", "chi2"] = "f"
    """Reference distribution of the pre-trend Wald test: 'f' (small-sample F, default) or 'chi2' (as R did)."""
    placebo_shift: int | None = Field(default=2, ge=1, le=20)
    """Placebo test: move every joining year this many years earlier, using only pre-joining years (null: skip)."""
    ci_level: float = Field(default=0.95, gt=0.5, lt=1.0)
    """Confidence level of intervals and uniform bands."""

    @field_validator("event_window")
    @classmethod
    def _ordered(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None and value[0] > value[1]:
            raise ValueError(f"event_window must be [min, max] with min <= max (got {list(value)})")
        return value

    def cross_check(self, config: Config) -> list[tuple[tuple, str]]:
        problems = design_problems(config, self.method, covariates=self.covariates)
        problems += inference_problems(config, self, levels=["school", "trust", "local_authority"],
                                       few_clusters=["wild_bootstrap"] if self.bootstrap_draws else [])
        return problems


def fit_did_staggered(
    frame: pd.DataFrame,
    outcome: str,
    *,
    options: DidStaggeredOptions,
    rng: np.random.Generator,
    clusters: DidClusters | None = None,
) -> tuple[list[EffectEstimate], dict, SampleReport, list[str]]:
    """Estimate the staggered DiD on a school × year frame with canonical columns.

    ``clusters``: resolved clusters (default: ``options.inference.cluster`` resolved from ``frame``).

    Returns
    -------
    estimates (headline overall ATT first), diagnostics, sample report, warnings

    Notes
    -----
    The matrix products here are tall and thin (schools × cells); multi-threaded OpenBLAS spends more
    time synchronising than computing on them, dramatically so on a shared machine, so BLAS is limited to
    one thread for the duration of the fit (scoped with threadpoolctl; restored afterwards).
    """
    clusters = clusters or resolve_clusters(options.inference.levels, frame, two_way=False)
    with _blas_controller().limit(limits=1, user_api="blas"):
        return _fit(frame, outcome, options=options, rng=rng, clusters=clusters)


@cache
def _blas_controller() -> ThreadpoolController:
    """The process's thread-pool controller, found once: locating the libraries scans every loaded shared
    object (about 25 ms, a tenth of a fit), while the BLAS libraries are loaded with numpy and scipy."""
    return ThreadpoolController()


def _fit(
    frame: pd.DataFrame, outcome: str, *, options: DidStaggeredOptions, rng: np.random.Generator,
    clusters: DidClusters,
) -> tuple[list[EffectEstimate], dict, SampleReport, list[str]]:
    (level,) = clusters.levels
    labels = clusters.labels[level]
    gt = att_gt(
        frame,
        outcome,
        control_group=options.comparison,
        anticipation=options.anticipation,
        covariates=tuple(options.covariates),
        est_method=options.est_method,
        covariate_year=options.covariate_year,
        base_period=options.base_period,
        unbalanced=options.unbalanced,
        cluster=labels,
        stage=options.name,
        warn_few_clusters=False,
    )
    check_cluster_count(gt.arrays.n_clusters, level)
    record, factor, route_warnings = _inference_record(options, clusters, gt.arrays.n_clusters)
    _check_window(gt, options)
    # The bootstrap's compiled loop starts on a helper thread here and runs while the aggregations and the
    # pre-trend test are computed on this one (the draws do not depend on them).
    pending = (
        start_group_time_draws(gt, n_draws=options.bootstrap_draws, rng=rng, weights=options.bootstrap_weights)
        if options.bootstrap_draws > 0 else None
    )
    try:
        min_e, max_e = options.event_window if options.event_window else (-np.inf, np.inf)
        aggs = {kind: aggregate(gt, kind, min_e=min_e, max_e=max_e) for kind in options.aggregations}
        pretrend = staggered_pretrend_test(gt, reference=options.pretrend_reference)
        blocks = _inference(gt, aggs, options, pending, 1 - options.ci_level, factor)
    except BaseException:
        if pending is not None:
            pending.cancel()
        raise

    estimates = _estimates(gt, aggs, blocks, options, record)
    cells = _add_bands(gt.cells, blocks["att_gt"])
    tables = {kind: _add_bands(agg.table, blocks[kind]) for kind, agg in aggs.items() if len(agg.table)}
    arrays = gt.arrays
    cohorts, counts = np.unique(arrays.cohort, return_counts=True)  # never joined (inf) last
    diagnostics = {
        "design": {
            **gt.options,
            "n_schools": arrays.n_units,
            "years": [int(p) for p in arrays.periods],
            "bootstrap_draws": options.bootstrap_draws,
            "bootstrap_weights": options.bootstrap_weights if options.bootstrap_draws else None,
            "inference": record.sentence(),
        },
        "cohort_counts": pd.DataFrame(
            {"cohort": [str(int(k)) if np.isfinite(k) else "never joined" for k in cohorts], "n_schools": counts}
        ),
        "group_time": cells,
        "aggregations": tables,
        "overall": {kind: {"att": agg.overall_att, "std_error": blocks[kind]["overall_se"]} for kind, agg in aggs.items()},
        "pretrend_test": pretrend,
        "inference": record.to_dict(),
    }
    if options.placebo_shift:
        diagnostics["placebo_test"] = placebo_test(
            frame,
            outcome,
            shift=options.placebo_shift,
            control_group=options.comparison,
            anticipation=options.anticipation,
            covariates=tuple(options.covariates),
            est_method=options.est_method,
            covariate_year=options.covariate_year,
            cluster=labels,  # resolved from the whole panel, not the placebo's pre-joining years
            stage=f"{options.name} (placebo)",
        )
    if options.sensitivity.enabled:
        diagnostics["sensitivity"] = _sensitivity(gt, aggs, options, factor, pretrend)
        # Placebo joining years one and two years early (and placebo_shift's, already run): each should show nothing.
        shifts = sorted(set(options.sensitivity.placebo_shifts) | ({options.placebo_shift} if options.placebo_shift
                                                                   else set()))
        diagnostics["sensitivity"]["placebo_years"] = [
            diagnostics["placebo_test"] if k == options.placebo_shift else placebo_test(
                frame, outcome, shift=k, control_group=options.comparison, anticipation=options.anticipation,
                covariates=tuple(options.covariates), est_method=options.est_method,
                covariate_year=options.covariate_year, cluster=labels, stage=f"{options.name} (placebo {k})")
            for k in shifts
        ]
    sample = gt.sample
    sample.n_rows_used = int((~np.isnan(arrays.y)).sum())
    sample.n_units_used = arrays.n_units
    warnings = [*gt.warnings, *label_warnings(clusters), *route_warnings]
    pre = diagnostics["pretrend_test"]
    if pre["p_value"] is not None and pre["p_value"] < 0.05:
        warnings.append(
            f"Pre-joining group-time effects are jointly different from zero (Wald p = {pre['p_value']:.3g}, "
            f"{_df_text(pre)}): parallel trends is doubtful, so treat the effects with caution."
        )
    return estimates, diagnostics, sample, warnings


def _sensitivity(gt: GroupTimeResult, aggs: dict, options: DidStaggeredOptions, factor: float,
                 pretrend: dict) -> dict:
    """Rambachan-Roth bounds and pre-trend power on the dynamic aggregation (``base_period: universal``), or the
    pre-trend power of the varying-base test reported (``varying``, where the bounds cannot be computed)."""
    if options.base_period != "universal":
        reason = ("the bounds need base_period: universal (every pre-joining effect against the year before joining, "
                  "an event study); with 'varying' (the default, as R did) pre-joining effects compare consecutive "
                  "years")
        out: dict = {"honest": {r: {"available": False, "reason": reason} for r in options.sensitivity.restrictions}}
        if options.sensitivity.pretrend_power:
            out["pretrend_power"] = varying_base_power(gt, aggs[options.aggregations[0]], factor, pretrend,
                                                       options.sensitivity.alpha)
        out["target"] = options.aggregations[0]
        dynamic = aggs.get("dynamic")
        if dynamic is not None and (dynamic.table["event_time"] == -1 - options.anticipation).any():
            # With consecutive-year comparisons, the dynamic effect at e = −1 is the change into the year before
            # joining (from two years before).
            row = dynamic.table.index[dynamic.table["event_time"] == -1 - options.anticipation][0]
            out["pre_joining_year"] = pre_joining_change(
                float(dynamic.table.at[row, "att"]), factor * float(dynamic.table.at[row, "std_error"]),
                options.sensitivity.alpha, "the dynamic effect at event time −1 (consecutive-year comparisons)")
        out["anticipation"] = options.anticipation
        return out
    min_e, max_e = options.event_window if options.event_window else (-np.inf, np.inf)
    dynamic = aggs.get("dynamic") or aggregate(gt, "dynamic", min_e=min_e, max_e=max_e)
    times = dynamic.table["event_time"].to_numpy()
    out = event_time_sensitivity(times, dynamic.table["att"].to_numpy(), factor**2 * dynamic.covariance(),
                                 options.sensitivity)
    out["source"] = ("dynamic aggregation (effects by event time) with its influence-function covariance; the "
                     "pre-trend power is that of a Wald test of its pre-joining event times")
    out["anticipation"] = options.anticipation
    return out


def varying_base_power(gt: GroupTimeResult, headline: Aggregate, factor: float, pretrend: dict, alpha: float) -> dict:
    """Roth (2022) for the varying-base pre-trend test: its power against a linear differential trend.

    With consecutive-year comparisons every pre-joining ATT(g, t) of a trend δ_t = slope·t equals the slope, so
    the test's non-centrality is slope²·1'Σ⁻¹1 (Σ the covariance of the tested cells; the F reference's
    degrees of freedom of the test reported, with the pooled covariance: an approximation to its per-cohort
    variance).  The same trend biases each post-joining ATT(g, t) (base year g − 1) by slope·(t − g + 1), so the
    headline aggregation by slope·w'(e + 1) with its cell weights w.
    """
    from scipy.optimize import brentq

    from evaltool.sensitivity.pretrend_power import pretest_power

    cells = gt.cells
    antic = gt.options["anticipation"]
    att, se = cells["att"].to_numpy(), cells["std_error"].to_numpy()
    pre = (cells["year"].to_numpy() < cells["cohort"].to_numpy() - antic) & np.isfinite(att) & (se > 0)
    if not pre.any():
        return {"available": False, "reason": "no pre-joining group-time effect to test"}
    # The tested cells' covariance is often singular (more cells than independent contrasts); the Wald test uses
    # its pseudo-inverse and rank, so the power is computed in the span of its positive eigenvalues.
    values, vectors = np.linalg.eigh(factor**2 * gt.vcov(pre))
    keep = values > 1e-10 * max(values.max(), 1e-300)
    sigma = np.diag(values[keep])
    ones = vectors[:, keep].T @ np.ones(int(pre.sum()))
    f = pretrend.get("df_denominator") is not None
    kwargs = {"reference": "F" if f else "chi2", "df": int(keep.sum()),
              "df_denominator": pretrend.get("df_denominator") if f else None, "alpha": alpha}
    try:
        def power(slope: float) -> float:
            return pretest_power(slope * ones, sigma, **kwargs)

        upper = float(np.sqrt(np.max(np.diag(sigma))))
        while power(upper) < 0.9:
            upper *= 2
        slope_50 = float(brentq(lambda v: power(v) - 0.5, 0.0, upper, xtol=1e-10))
        slope_80 = float(brentq(lambda v: power(v) - 0.8, 0.0, upper, xtol=1e-10))
    except (EstimationError, ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
        return {"available": False, "reason": f"the power could not be computed ({type(exc).__name__}: {exc})"}
    weights = headline.coef[: len(cells), -1]
    event = (cells["year"] - cells["cohort"]).to_numpy(dtype=float)
    per_slope = float(np.nansum(np.where(event >= 0, weights * (event + 1), 0.0)))
    return {
        "available": True, "test": "wald", "reference": kwargs["reference"], "df": kwargs["df"],
        "df_denominator": kwargs["df_denominator"], "alpha": alpha, "slope": slope_50, "power": 0.5,
        "slope_50": slope_50, "slope_80": slope_80, "target": headline.kind,
        "bias_unconditional": slope_50 * per_slope, "bias_conditional": None,
        "note": "power of the reported varying-base pre-trend test (pooled covariance; the F reference's degrees "
                "of freedom) against δ_t = slope·t; the bias is the headline aggregation's under that trend",
    }


def _df_text(test: dict) -> str:
    if test.get("df_denominator") is not None:
        return f"F({test['df']}, {test['df_denominator']:.1f})"
    return f"{test['df']} df"


def _check_window(gt: GroupTimeResult, options: DidStaggeredOptions) -> None:
    if options.event_window is None:
        return
    available = gt.cells["event_time"]
    lo, hi = options.event_window
    first, last = int(available.min()), int(available.max())
    if lo < first or hi > last or not lo <= 0 <= hi:
        raise EstimationError(
            f"event_window [{lo}, {hi}] is beyond the data: estimable event times run from {first} to {last}, and "
            f"the window must include event time 0. Choose event_window within [{first}, {last}].",
            user_error=True,
        )


def _inference_record(
    options: DidStaggeredOptions, clusters: DidClusters, n_clusters: int
) -> tuple[Inference, float, list[str]]:
    """The inference record of every row, the SE factor (√(G/(G−1)) under an explicit CR1, else 1) and warnings.

    Raises
    ------
    EstimationError
        ``few_clusters: wild_bootstrap`` without bootstrap draws (the multiplier bootstrap is the route).
    """
    inference = options.inference
    draws = options.bootstrap_draws
    if inference.few_clusters == "wild_bootstrap" and not draws:
        raise EstimationError(
            "inference.few_clusters: wild_bootstrap asks for the multiplier bootstrap (a cluster wild bootstrap of "
            "the influence functions), but bootstrap_draws is 0. Set bootstrap_draws (e.g. 999) or few_clusters: "
            "auto.",
            user_error=True,
        )
    _, warnings = few_clusters_route(inference, n_clusters, ("wild_bootstrap",) if draws else (),
                                     level=clusters.levels[0])
    if draws and n_clusters < inference.few_clusters_below:
        warnings.append(
            f"Only {n_clusters} clusters: the standard errors and bands come from the multiplier bootstrap, a wild "
            "cluster bootstrap, which is the few-cluster route of this method; with very few clusters (below about "
            "10) even it can be unreliable."
        )
    explicit_cr1 = inference.correction == "CR1" and "correction" in inference.model_fields_set
    if explicit_cr1:
        correction, factor = "G/(G-1) on the influence-function variance (correction: CR1); normal intervals", float(
            np.sqrt(n_clusters / (n_clusters - 1)))
    else:
        correction, factor = "none (influence-function variance, as R did); normal intervals", 1.0
    if draws:
        method = (f"multiplier bootstrap ({draws} {options.bootstrap_weights} draws, one weight per cluster: a wild "
                  "cluster bootstrap of the influence functions)")
    else:
        method = "analytic influence-function SEs"
    return clusters.record(n_clusters, correction, method), factor, warnings


def _inference(
    gt: GroupTimeResult, aggs: dict[str, Aggregate], options: DidStaggeredOptions, pending: PendingDraws | None,
    alpha: float, factor: float = 1.0,
) -> dict:
    """Standard errors and uniform-band critical values per block (one bootstrap of the basis for all blocks).

    ``pending``: the bootstrap started by the caller (``None`` without bootstrap draws).  ``factor``
    multiplies every standard error (the bands' critical values are ratios to them, so unchanged).
    """
    n_cells = len(gt.cells)
    identity = np.eye(gt.n_basis)[:, :n_cells]
    coefs = {"att_gt": identity, **{kind: agg.coef for kind, agg in aggs.items()}}
    blocks: dict = {}
    arrays = gt.arrays
    if pending is not None:
        # Every block's draws in one product and one pass of quantiles; bands are per block.
        draws = pending.draws(np.column_stack(list(coefs.values())))
        every = BootstrapResult.from_draws(
            draws, weights=options.bootstrap_weights, n_clusters=arrays.n_clusters, alpha=alpha, overall_band=False
        )
        ends = np.cumsum([coef.shape[1] for coef in coefs.values()])
        # A block's band covers its elements, not its overall parameter (the last column of an aggregation).
        ranges = [
            (int(end - coef.shape[1]), int(end - (name != "att_gt")))
            for (name, coef), end in zip(coefs.items(), ends, strict=True)
        ]
        crits = every.bands(ranges, alpha)
        for (name, _), (start, stop), end, crit in zip(coefs.items(), ranges, ends, crits, strict=True):
            blocks[name] = {"se": every.std_error[start:stop], "crit": crit, "overall_se": float(every.std_error[end - 1])}
    else:
        for name, coef in coefs.items():
            se = gt.std_errors(coef)
            k = coef.shape[1] - (name != "att_gt")
            blocks[name] = {"se": se[:k], "crit": np.nan, "overall_se": float(se[-1])}
    if factor != 1.0:
        for name in coefs:
            blocks[name] = {**blocks[name], "se": factor * np.asarray(blocks[name]["se"]),
                            "overall_se": factor * blocks[name]["overall_se"]}
    nan_cells = ~np.isfinite(gt.cells["att"].to_numpy())
    blocks["att_gt"]["se"] = np.where(nan_cells, np.nan, blocks["att_gt"]["se"])
    return blocks


def _add_bands(table: pd.DataFrame, block: dict) -> pd.DataFrame:
    """A copy of ``table`` with the block's standard errors, critical value and uniform band (one frame built)."""
    se = np.asarray(block["se"], dtype=float)
    crit = block["crit"]
    att = table["att"].to_numpy()
    columns = {name: table[name].to_numpy() for name in table.columns}
    columns.update(std_error=se, critical_value=np.full(len(table), crit), ci_lower_uniform=att - crit * se,
                   ci_upper_uniform=att + crit * se)  # std_error keeps its place; the band columns follow
    return pd.DataFrame(columns, index=table.index)


def comparison_schools(gt: GroupTimeResult, options: DidStaggeredOptions) -> int:
    """Schools used as comparisons in at least one post-joining cell (the overall estimates' ``n_control``).

    Never-joined schools, and with ``comparison: not_yet_joined`` also the schools of every cohort that had
    not yet joined (``g' > t + anticipation``) in some post-joining cell ``(g, t)``.
    """
    cohort = gt.arrays.cohort
    never = ~np.isfinite(cohort)
    if options.comparison != "not_yet_joined":
        return int(never.sum())
    post = gt.cells.loc[gt.cells["post"] & gt.cells["att"].notna()]
    if post.empty:
        return int(never.sum())
    # A cohort g' serves in cell (g, t) when g' > t + anticipation; the earliest post-joining year admits most.
    serves = np.isfinite(cohort) & (cohort > float(post["year"].min()) + options.anticipation)
    return int(never.sum() + serves.sum())


def _estimates(
    gt: GroupTimeResult, aggs: dict[str, Aggregate], blocks: dict, options: DidStaggeredOptions, record: Inference
) -> list[EffectEstimate]:
    cohort = gt.arrays.cohort
    n_treated_all = int(np.isfinite(cohort).sum())
    n_comparison = comparison_schools(gt, options)
    n_obs = int((~np.isnan(gt.arrays.y)).sum())
    rows: list[tuple[str, str, float, float, dict]] = [
        (OVERALL_TERMS[kind], "ATT", agg.overall_att, blocks[kind]["overall_se"],
         {"n_treated": n_treated_all, "n_control": n_comparison, "n_obs": n_obs})
        for kind, agg in aggs.items()
    ]
    for kind, agg in aggs.items():
        if kind not in ELEMENT:
            continue
        label, estimand = ELEMENT[kind]
        table = agg.table
        for value, att, se in zip(table[label].tolist(), table["att"].tolist(), list(blocks[kind]["se"]), strict=True):
            rows.append((f"{label}={value}", estimand, att, se, {}))
    cells = gt.cells
    year, att = cells["year"].to_numpy(), cells["att"].to_numpy()
    shown = np.flatnonzero(np.isfinite(att) & (year != cells["base_year"].to_numpy()))
    se = np.asarray(blocks["att_gt"]["se"])[shown].tolist()
    columns = (cells["cohort"].to_numpy()[shown].astype(int).tolist(), year[shown].tolist(), att[shown].tolist(), se,
               cells["n_treated"].to_numpy()[shown].tolist(), cells["n_control"].to_numpy()[shown].tolist())
    for g, t, value, error, n1, n0 in zip(*columns, strict=True):
        rows.append((f"ATT({g},{t})", "ATT(g,t)", value, error, {"n_treated": n1, "n_control": n0}))
    return _normal_estimates(rows, ci_level=options.ci_level, **record.row_fields())


def _normal_estimates(
    rows: list[tuple[str, str, float, float, dict]], *, ci_level: float, **fields: object
) -> list[EffectEstimate]:
    """Wald CIs and p-values of many estimates at once, equal to :meth:`EffectEstimate.from_normal` for each row.

    Here the critical value is computed once and the p-values in one vector call of the special functions
    ``from_normal`` uses, so every field is bit-for-bit what ``from_normal`` gives (tested).

    Parameters
    ----------
    rows
        ``(term, estimand, estimate, std_error, extra fields)`` per estimate.
    fields
        Fields shared by every row (the inference record's ``row_fields()``).
    """
    if not rows:
        return []
    estimate = np.array([float(r[2]) for r in rows])
    std_error = np.array([float(r[3]) for r in rows])
    usable = np.isfinite(std_error) & (std_error > 0)
    crit = np.where(usable, float(special.ndtri(0.5 + ci_level / 2)), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        p_value = np.where(usable, 2 * special.ndtr(-np.abs(estimate / std_error)), np.nan)
    lower, upper = estimate - crit * std_error, estimate + crit * std_error
    return [
        EffectEstimate(
            term=term, estimand=estimand, estimate=float(estimate[i]), std_error=float(std_error[i]),
            ci_lower=float(lower[i]), ci_upper=float(upper[i]), p_value=float(p_value[i]), ci_level=ci_level,
            **fields, **extra,
        )
        for i, (term, estimand, _, _, extra) in enumerate(rows)
    ]


def run(context: AnalysisContext) -> AnalysisResult:
    spec: DidStaggeredOptions = context.spec  # type: ignore[assignment]
    frame = context.panel.frame
    clusters = resolve_clusters(spec.inference.levels, frame, config=context.config, two_way=False)
    estimates, diagnostics, sample, warnings = fit_did_staggered(
        frame, context.outcome, options=spec, rng=context.rng, clusters=clusters
    )
    # The first aggregation's overall ATT is the headline; its counts are schools.
    diagnostics.update(headline_term=estimates[0].term, count_unit="schools")
    return result_for(context, estimates, diagnostics, sample, warnings)


def figures(result: AnalysisResult) -> dict:
    from evaltool.report.plots_did import dynamic_figure, group_time_figure, sensitivity_figures

    figs = {"group_time": group_time_figure(result)}
    if "dynamic" in result.diagnostics.get("aggregations", {}):
        figs["event_study"] = dynamic_figure(result)
    return {**figs, **sensitivity_figures(result)}


DID_STAGGERED = Method(
    name="did_staggered",
    options=DidStaggeredOptions,
    run=run,
    summary="Callaway-Sant'Anna staggered DiD: group-time ATTs, aggregations, multiplier bootstrap with uniform bands.",
    figures=figures,
)
