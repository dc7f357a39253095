"""Per-trust effects with inference valid for a handful of treated schools.

For each trust, its schools' change in mean outcome from before to after
joining is compared with the change of comparison schools over the same
calendar years (a 2×2 difference in differences around the trust's joining
year ``g``)::

    change_i = mean(y_it : t − g in post_window) − mean(y_it : t − g in pre_window)
    effect   = mean(change_i : i in trust) − mean(change_j : j comparison)

Inference.  A trust has 2–9 schools, so cluster-robust standard errors are
unreliable.  The p-value comes from randomisation inference: ``B`` placebo
trusts of the same size are drawn at random from the trust's schools and the
comparison schools together, each gives a placebo DiD, and
``p = (1 + #{|placebo| ≥ |effect|}) / (B + 1)`` — exact under the sharp null
of no effect when schools are exchangeable (Fisher; see Imbens & Rubin 2015,
ch. 5; MacKinnon & Webb 2020 on few treated clusters).  The standard error,
used for intervals and for the meta-analysis, assumes the trust's schools'
changes have the comparison schools' variance:
``SE = s_C · sqrt(1/n_T + 1/n_C)`` (t with ``n_C − 1`` df).

The per-school changes come from a small *DiD core* function
(:data:`DidCore`); :func:`two_by_two_changes` is the default, and a staggered
group-time engine can replace it without touching the inference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import sparse, stats

from evaltool.errors import EstimationError
from evaltool.estimators.did.method_2x2 import assign_groups
from evaltool.results import EffectEstimate, SampleReport

#: Number of placebo assignments built per block (bounds memory).
_BLOCK = 2000


@dataclass(frozen=True)
class Window:
    """Event-time windows (years since joining; 0 = first year in the trust), inclusive."""

    pre: tuple[int, int] = (-3, -1)
    post: tuple[int, int] = (0, 2)


#: ``core(frame, outcome, g, window) -> DataFrame`` indexed by school with column
#: ``change`` (post minus pre mean; NaN if a period has no outcome), and the
#: counts ``n_pre``, ``n_post`` of school-years used.
DidCore = Callable[[pd.DataFrame, str, int, Window], pd.DataFrame]


def two_by_two_changes(frame: pd.DataFrame, outcome: str, g: int, window: Window) -> pd.DataFrame:
    """Each school's post-minus-pre change in mean outcome around calendar year ``g``.

    Vectorised: one boolean mask and one groupby over the whole panel.
    """
    event = frame["year"].to_numpy() - g
    pre = (event >= window.pre[0]) & (event <= window.pre[1])
    post = (event >= window.post[0]) & (event <= window.post[1])
    keep = (pre | post) & frame[outcome].notna().to_numpy()
    part = pd.DataFrame({
        "school": frame["school"].to_numpy()[keep],
        "post": post[keep],
        "y": frame[outcome].to_numpy(dtype=float)[keep],
    })
    cells = part.groupby(["school", "post"])["y"].agg(["mean", "size"]).unstack("post")
    out = pd.DataFrame(index=cells.index)
    out["n_pre"] = cells[("size", False)].fillna(0).astype(int) if ("size", False) in cells else 0
    out["n_post"] = cells[("size", True)].fillna(0).astype(int) if ("size", True) in cells else 0
    pre_mean = cells[("mean", False)] if ("mean", False) in cells else np.nan
    post_mean = cells[("mean", True)] if ("mean", True) in cells else np.nan
    out["change"] = post_mean - pre_mean
    return out


@dataclass
class TrustEffects:
    """Per-trust estimates and everything reported about them."""

    estimates: list[EffectEstimate]
    table: pd.DataFrame
    skipped: pd.DataFrame
    sample: SampleReport
    warnings: list[str] = field(default_factory=list)


def placebo_groups(n: int, k: int, b: int, rng: np.random.Generator) -> np.ndarray:
    """``(b, k)`` indices: ``b`` independent uniformly random ``k``-subsets of ``range(n)``.

    Notes
    -----
    When duplicates are rare (``k(k−1)/2 < n``) ordered ``k``-tuples are drawn
    with replacement and rows with a repeated index are redrawn (rejection
    sampling: uniform over distinct tuples, hence over subsets), costing
    O(b·k).  Otherwise each row takes the ``k`` smallest of ``n`` uniform keys,
    O(b·n).
    """
    if k * (k - 1) / 2 < n:
        idx = rng.integers(0, n, size=(b, k))
        while True:
            ordered = np.sort(idx, axis=1)
            repeated = (np.diff(ordered, axis=1) == 0).any(axis=1)
            if not repeated.any():
                return idx
            idx[repeated] = rng.integers(0, n, size=(int(repeated.sum()), k))
    keys = rng.random((b, n))
    return np.argpartition(keys, k - 1, axis=1)[:, :k]


def randomisation_pvalue(
    changes: np.ndarray, n_treated: int, observed: float, n_draws: int, rng: np.random.Generator
) -> tuple[float, np.ndarray]:
    """Two-sided randomisation p-value of a difference in means over random same-size placebo groups.

    Parameters
    ----------
    changes
        Changes of the pooled schools (treated and comparison), length ``N``.
    n_treated
        Size of each placebo group.
    observed
        The actual difference in means (treated minus the rest).
    n_draws
        Number of placebo groups ``B``.

    Notes
    -----
    The placebo groups form a sparse ``(B, N)`` 0/1 assignment matrix ``A``
    (``n_treated`` ones per row, rows uniformly random subsets, see
    :func:`placebo_groups`); all placebo estimates come from one product,
    ``A d / n_T − (Σd − A d)/(N − n_T)``.
    ``p = (1 + #{|placebo| ≥ |observed|}) / (B + 1)``.
    """
    d = np.asarray(changes, dtype=float)
    n = d.size
    total = d.sum()
    placebo = np.empty(n_draws)
    for start in range(0, n_draws, _BLOCK):
        b = min(_BLOCK, n_draws - start)
        chosen = placebo_groups(n, n_treated, b, rng)
        A = sparse.csr_matrix((np.ones(chosen.size), chosen.ravel(), np.arange(0, chosen.size + 1, n_treated)),
                              shape=(b, n))
        treated_sum = A @ d
        placebo[start : start + b] = treated_sum / n_treated - (total - treated_sum) / (n - n_treated)
    # tolerance so that ties with the observed value (e.g. the identity assignment) count as extreme
    extreme = np.abs(placebo) >= abs(observed) - 1e-12 * max(1.0, abs(observed))
    return float((1 + extreme.sum()) / (n_draws + 1)), placebo


def _cohort_inputs(changes: pd.DataFrame, schools: pd.DataFrame, g: int, window: Window, comparison: str
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Cohort ``g``: every school's change and year counts (aligned with ``schools``), and the comparison schools.

    Returns
    -------
    change, n_pre, n_post, comparison positions, comparison changes, comparison school-years used
    """
    aligned = changes.reindex(schools.index)
    change = aligned["change"].to_numpy(dtype=float)
    n_pre = aligned["n_pre"].fillna(0).to_numpy(dtype=int)
    n_post = aligned["n_post"].fillna(0).to_numpy(dtype=int)
    labels = assign_groups(schools["join_year"].astype(float), g + window.pre[1], g + window.post[0],
                           g + window.post[1], comparison)
    # a school with a trust id but no join year is ambiguous, so it is no comparison school either
    unclear = (schools["trust"].notna() & schools["join_year"].isna()).to_numpy()
    control_pos = np.flatnonzero((labels == "comparison").to_numpy() & ~np.isnan(change) & ~unclear)
    return change, n_pre, n_post, control_pos, change[control_pos], int(n_pre[control_pos].sum() + n_post[control_pos].sum())


def _rows_used(frame: pd.DataFrame, outcome: str, schools: pd.Index, used_by_cohort: dict[int, np.ndarray],
               window: Window) -> int:
    """Distinct school-year rows that entered some trust's estimate (comparison rows count once)."""
    position = schools.get_indexer(frame["school"])
    year = frame["year"].to_numpy()
    has_outcome = frame[outcome].notna().to_numpy()
    used = np.zeros(len(frame), dtype=bool)
    for g, schools_used in used_by_cohort.items():
        event = year - g
        in_window = ((event >= window.pre[0]) & (event <= window.pre[1])) | (
            (event >= window.post[0]) & (event <= window.post[1]))
        used |= in_window & has_outcome & schools_used[position]
    return int(used.sum())


def fit_trust_effects(
    frame: pd.DataFrame,
    outcome: str,
    *,
    window: Window = Window(),
    comparison: str = "never_joined",
    min_schools: int = 2,
    n_permutations: int = 999,
    on_problem: str = "skip",
    ci_level: float = 0.95,
    rng: np.random.Generator,
    core: DidCore = two_by_two_changes,
) -> TrustEffects:
    """Estimate every trust's effect on its schools, with randomisation-inference p-values.

    Parameters
    ----------
    frame
        School × year panel with canonical ``school``, ``year``, ``join_year``
        and ``trust`` columns and the outcome.
    window
        Pre and post event-time windows around each trust's joining year.
    comparison
        ``"never_joined"`` or ``"not_yet_joined"`` (also schools joining after
        the post window).
    min_schools
        Trusts with fewer schools having outcomes in both windows are skipped.
    on_problem
        ``"skip"``: a trust that cannot be estimated is reported and skipped;
        ``"fail"``: it raises :class:`EstimationError` naming the trust.
    rng
        Generator for the placebo draws.
    core
        The DiD core giving each school's change (see :data:`DidCore`).
    """
    sample = SampleReport(n_rows_in=len(frame))
    schools = frame.groupby("school")[["join_year", "trust"]].first()
    schools["rows"] = frame.groupby("school").size()
    member = schools["trust"].notna()
    skipped: list[dict] = []
    rows: list[dict] = []
    estimates: list[EffectEstimate] = []
    warnings: list[str] = []
    used_by_cohort: dict[int, np.ndarray] = {}  # schools used, per joining year

    def skip(trust: str, reason: str, positions: np.ndarray) -> None:
        if on_problem == "fail":
            raise EstimationError(
                f"Trust '{trust}': {reason}. Change pre_window/post_window, or set on_problem: skip to report "
                "such trusts and go on.",
                user_error=True,
            )
        skipped.append({"trust": trust, "reason": reason, "n_schools": len(positions),
                        "n_rows": int(rows_of[positions].sum())})

    moved = frame.groupby("school")["trust"].nunique()
    moved = moved.index[moved.to_numpy() > 1]
    if len(moved):
        warnings.append(
            f"{len(moved)} school(s) have more than one trust id over the years (e.g. '{moved[0]}'); each is "
            "counted in the first trust recorded for it."
        )
    no_join = member & schools["join_year"].isna()
    if no_join.any():
        counts = schools.loc[no_join].groupby("trust")["rows"].agg(["size", "sum"])
        for trust, (n_schools, n_rows) in counts.iterrows():
            sample.exclude("school has a trust but no join year (neither a trust school nor a comparison)",
                           int(n_rows), int(n_schools), stage="design", detail=f"trust {trust}")
    eligible = (member & schools["join_year"].notna()).to_numpy()
    if not eligible.any():
        raise EstimationError(
            "No school has both a trust id (columns.trust) and a join year (columns.join_year); per-trust effects "
            "need both.",
            user_error=True,
        )
    join = schools["join_year"].to_numpy(dtype=float)
    rows_of = schools["rows"].to_numpy()
    # positions of each trust's schools (one groupby, not a scan per trust)
    members_of = schools.iloc[np.flatnonzero(eligible)].assign(position=np.flatnonzero(eligible)).groupby(
        "trust", sort=True)["position"].agg(lambda s: s.to_numpy())
    cohorts: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]] = {}

    for trust, positions in members_of.items():
        g = int(join[positions].min())
        late = positions[join[positions] != g]
        if len(late):
            sample.exclude("joined its trust after the trust's first schools", int(rows_of[late].sum()), len(late),
                           stage="design", detail=f"trust {trust} (first joining year {g})")
            positions = positions[join[positions] == g]
        if g not in cohorts:
            cohorts[g] = _cohort_inputs(core(frame, outcome, g, window), schools, g, window, comparison)
        change, n_pre, n_post, control_pos, d_c, control_obs = cohorts[g]
        if not (n_pre[positions] > 0).any():
            skip(trust, f"none of its {len(positions)} school(s) has outcome data before joining (event times "
                        f"{window.pre[0]} to {window.pre[1]} around {g})", positions)
            continue
        if not (n_post[positions] > 0).any():
            skip(trust, f"none of its {len(positions)} school(s) has outcome data after joining (event times "
                        f"{window.post[0]} to {window.post[1]} around {g})", positions)
            continue
        complete = ~np.isnan(change[positions])
        if not complete.all():
            incomplete = positions[~complete]
            sample.exclude("trust school without outcome in the pre or the post window", int(rows_of[incomplete].sum()),
                           len(incomplete), stage="analysis", attrition=True, detail=f"trust {trust}")
        treated_pos = positions[complete]
        if len(treated_pos) < min_schools:
            skip(trust, f"only {len(treated_pos)} school(s) with outcomes before and after joining; at least "
                        f"{min_schools} needed (min_schools)", positions)
            continue
        if len(d_c) < 2:
            skip(trust, f"fewer than 2 comparison schools ({comparison}) have outcomes in both windows", positions)
            continue

        d_t = change[treated_pos]
        effect = float(d_t.mean() - d_c.mean())
        p_value, _ = randomisation_pvalue(np.concatenate([d_t, d_c]), len(d_t), effect, n_permutations, rng)
        se = float(d_c.std(ddof=1) * np.sqrt(1 / len(d_t) + 1 / len(d_c)))
        df = len(d_c) - 1
        crit = float(stats.t.ppf(0.5 + ci_level / 2, df))
        n_obs = int(n_pre[treated_pos].sum() + n_post[treated_pos].sum()) + control_obs
        inference = (
            f"p: randomisation inference, {n_permutations} placebo trusts of {len(d_t)} schools; "
            f"CI: t({df}) with SE from comparison-school variance"
        )
        estimate = EffectEstimate(
            term=str(trust),
            estimand=f"ATT of trust (2x2 DiD, event times {window.pre[0]}..{window.pre[1]} vs "
                     f"{window.post[0]}..{window.post[1]})",
            estimate=effect,
            std_error=se,
            ci_lower=effect - crit * se,
            ci_upper=effect + crit * se,
            p_value=p_value,
            n_treated=len(d_t),
            n_control=len(d_c),
            n_obs=n_obs,
            ci_level=ci_level,
            inference=inference,
            cluster="",
            n_clusters=None,
            se_correction=f"t({df}) intervals (comparison schools - 1)",
            se_method=(f"randomisation inference ({n_permutations} placebo trusts) for p; SE from the comparison "
                       "schools' variance for the CI"),
        )
        estimates.append(estimate)
        rows.append({
            "trust": str(trust), "join_year": g, "n_treated": len(d_t), "n_control": len(d_c),
            "estimate": effect, "std_error": se, "ci_lower": estimate.ci_lower, "ci_upper": estimate.ci_upper,
            "p_value": p_value, "p_value_method": "randomisation inference",
            "treated_change": float(d_t.mean()), "comparison_change": float(d_c.mean()),
        })
        cohort_used = used_by_cohort.setdefault(g, np.zeros(len(schools), dtype=bool))
        cohort_used[treated_pos] = True
        cohort_used[control_pos] = True

    skipped_frame = pd.DataFrame(skipped, columns=["trust", "reason", "n_schools", "n_rows"])
    for reason_row in skipped:
        sample.exclude(
            f"trust skipped: {reason_row['reason']}",
            reason_row["n_rows"],
            reason_row["n_schools"],
            stage="design",
            detail=f"trust {reason_row['trust']}",
            changes_estimand=True,
        )
    if skipped:
        warnings.append(
            f"{len(skipped)} trust(s) could not be estimated and are left out: "
            + "; ".join(f"{r['trust']} ({r['reason']})" for r in skipped[:5])
            + (" …" if len(skipped) > 5 else "")
            + ". See diagnostics 'skipped_trusts'."
        )
    if not estimates:
        raise EstimationError(
            f"No trust could be estimated ({len(skipped)} skipped; first: {skipped[0]['trust']}: "
            f"{skipped[0]['reason']}). Widen pre_window/post_window or use comparison: not_yet_joined.",
            user_error=True,
        )
    sample.n_rows_used = _rows_used(frame, outcome, schools.index, used_by_cohort, window)
    sample.n_units_used = int(np.logical_or.reduce(list(used_by_cohort.values())).sum())
    table = pd.DataFrame(rows).sort_values("estimate", kind="stable").reset_index(drop=True)
    return TrustEffects(estimates=estimates, table=table, skipped=skipped_frame, sample=sample, warnings=warnings)
