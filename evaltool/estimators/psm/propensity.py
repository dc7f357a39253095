"""The propensity model: P(joined | baseline covariates).

Logistic regression (unpenalised maximum likelihood, statsmodels ``Logit``,
coefficients reported) or gradient boosting (scikit-learn
``HistGradientBoostingClassifier``).  Before fitting, the design is checked for
the problems that make a propensity model meaningless, each reported with the
covariate to change: a constant or all-missing covariate, and a covariate that
separates the groups perfectly.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy.special import expit
from statsmodels.tools.sm_exceptions import PerfectSeparationError, PerfectSeparationWarning

from evaltool.errors import EstimationError
from evaltool.estimators.rank import check_rank

PropensityKind = Literal["logistic", "gradient_boosting"]
#: Probabilities are clipped to [EPS, 1 − EPS] before taking logits.
EPS = 1e-8


@dataclass(frozen=True)
class PropensityModel:
    """A fitted propensity model.

    Attributes
    ----------
    kind
        ``"logistic"`` or ``"gradient_boosting"``.
    score
        Fitted P(treated | X) per unit.
    logit
        log(score / (1 − score)), the default matching distance.
    coefficients
        For logistic regression: term, estimate, std_error, z, p_value; else ``None``.
    converged
        Whether the optimiser converged.
    problem
        Why the fit is doubtful (e.g. the logit did not converge in its iterations), else ``None``.
    """

    kind: str
    score: np.ndarray
    logit: np.ndarray
    coefficients: pd.DataFrame | None
    converged: bool
    problem: str | None = None


def design_matrix(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Numeric design: numeric columns as they are, text/category columns one-hot (first level dropped)."""
    parts = []
    for column in columns:
        values = frame[column]
        if isinstance(values.dtype, pd.CategoricalDtype) or values.dtype == object or pd.api.types.is_string_dtype(values):
            dummies = pd.get_dummies(values.astype(str), prefix=column, prefix_sep="", drop_first=True, dtype=float)
            parts.append(dummies)
        else:
            parts.append(values.astype(float).rename(column))
    return pd.concat(parts, axis=1) if parts else pd.DataFrame(index=frame.index)


def check_covariates(frame: pd.DataFrame, columns: list[str], treat: np.ndarray, option: str = "covariates") -> None:
    """Raise a clear error for covariates no propensity model can use.

    Checks, per covariate: all missing; constant; perfectly separating the
    groups (every treated value above, or below, every comparison value).
    """
    for column in columns:
        values = frame[column]
        if values.isna().all():
            raise EstimationError(
                f"Covariate '{column}' (option {option}) is missing for every school in the matching sample. "
                f"Remove it from {option} or fix the data.",
                user_error=True,
            )
        if values.nunique(dropna=True) < 2:
            raise EstimationError(
                f"Covariate '{column}' (option {option}) is constant ({values.dropna().iloc[0]!r}) in the matching "
                f"sample, so it cannot predict joining. Remove it from {option}.",
                user_error=True,
            )
        if pd.api.types.is_numeric_dtype(values):
            x = values.to_numpy(dtype=float)
            xt, xc = x[treat], x[~treat]
            if xt.size and xc.size and (np.nanmin(xt) > np.nanmax(xc) or np.nanmax(xt) < np.nanmin(xc)):
                raise EstimationError(
                    f"Covariate '{column}' separates the groups perfectly: treated values lie in "
                    f"[{np.nanmin(xt):g}, {np.nanmax(xt):g}] and comparison values in [{np.nanmin(xc):g}, {np.nanmax(xc):g}], "
                    "so the groups do not overlap and no comparison school is like any treated school. "
                    f"Remove '{column}' from {option}, or restrict the sample to where the groups overlap.",
                    user_error=True,
                )


def fit_propensity(
    X: pd.DataFrame, treat: np.ndarray, *, kind: PropensityKind = "logistic", rng: np.random.Generator
) -> PropensityModel:
    """Fit the propensity model on a numeric design ``X`` (no constant).

    Notes
    -----
    Logistic: maximum likelihood by Newton–Raphson, ê(x) = 1/(1 + exp(−x'β̂)),
    unpenalised as MatchIt's ``distance = "glm"``.  A fit whose fitted
    probabilities reach 0 or 1 for a whole group signals (quasi-)complete
    separation and is an error: the groups do not overlap.
    """
    treat = np.asarray(treat, dtype=bool)
    if kind == "logistic":
        return _fit_logistic(X, treat)
    return _fit_boosting(X, treat, rng)


def _fit_logistic(X: pd.DataFrame, treat: np.ndarray) -> PropensityModel:
    exog = sm.add_constant(X.to_numpy(dtype=float), has_constant="add")
    names = ["(Intercept)", *map(str, X.columns)]
    fit = fit_logit(exog, treat, names)
    score = np.clip(fit.score, EPS, 1 - EPS)
    coef = pd.DataFrame(
        {"term": names, "estimate": fit.params, "std_error": fit.bse, "z": fit.tvalues, "p_value": fit.pvalues}
    )
    return PropensityModel("logistic", score, np.log(score / (1 - score)), coef, fit.converged, fit.problem)


#: Newton iterations of the propensity logit.
MAX_ITER = 100
#: A linear predictor beyond ±LINEAR_BOUND puts a unit's fitted probability within 3e-7 of 0 or 1 (with no convergence: diverging).
LINEAR_BOUND = 15.0


@dataclass(frozen=True)
class LogitFit:
    """An unpenalised logit fitted by :func:`fit_logit`.

    Attributes
    ----------
    params, bse, tvalues, pvalues
        Coefficients, standard errors, z statistics and p-values (in the order of the design's columns).
    score
        Fitted probabilities.
    converged, iterations
        Whether Newton–Raphson converged, and in how many iterations.
    problem
        Why the fit is doubtful (non-convergence), else ``None``.
    """

    params: np.ndarray
    bse: np.ndarray
    tvalues: np.ndarray
    pvalues: np.ndarray
    score: np.ndarray
    converged: bool
    iterations: int
    problem: str | None = None


def fit_logit(exog: np.ndarray, treat: np.ndarray, names: list[str], *, option: str = "covariates") -> LogitFit:
    """Maximum-likelihood logit of ``treat`` on ``exog`` (with its constant) with every failure named.

    Raises
    ------
    EstimationError
        A singular design (the collinear covariates named), complete separation (the covariates that
        separate on their own named), quasi-complete separation (the number of schools predicted exactly
        and the covariates that separate them), or a singular information matrix.

    Notes
    -----
    Non-convergence within :data:`MAX_ITER` Newton iterations without separation is not an error here:
    the fit is returned with ``converged=False`` and a ``problem`` message, for the caller to decide.
    """
    treat = np.asarray(treat, dtype=bool)
    X = pd.DataFrame(exog[:, 1:], columns=names[1:])
    check_design_rank(exog, names, option)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fit = sm.Logit(treat.astype(float), exog).fit(method="newton", disp=0, maxiter=MAX_ITER)
        except PerfectSeparationError as exc:
            raise _separation_error(names, X, treat) from exc
        except np.linalg.LinAlgError as exc:
            raise EstimationError(
                "The propensity model's information matrix is singular although the covariates are not exactly "
                f"collinear ({', '.join(names[1:])}): some are nearly combinations of others, or nearly constant "
                f"among the treated or comparison schools. Remove or combine those covariates in {option}.",
                user_error=True,
            ) from exc
    linear = exog @ fit.params
    if not np.all(np.isfinite(linear)) or (np.all(linear[treat] > 15) and np.all(linear[~treat] < -15)):
        raise _separation_error(names, X, treat)
    extreme = np.abs(linear) > LINEAR_BOUND
    flagged = any(issubclass(w.category, PerfectSeparationWarning) for w in caught)
    converged = bool(fit.mle_retvals.get("converged", True))
    touching = separating_covariates(X, treat, strict=False) if extreme.any() else []
    if touching and (flagged or not converged):
        raise _quasi_separation_error(touching, X, treat, extreme)
    iterations = int(fit.mle_retvals.get("iterations", MAX_ITER))
    problem = None if converged else (
        f"The propensity logit did not converge in {iterations} Newton iterations (covariates "
        f"{', '.join(names[1:])})"
        + (f"; {int(extreme.sum())} schools' scores reach 0 or 1, so a combination of the covariates nearly "
           "separates the groups" if extreme.any() else "")
        + f". Its scores may be inaccurate: centre and scale the covariates, or remove weakly identified ones "
        f"from {option}."
    )
    return LogitFit(np.asarray(fit.params), np.asarray(fit.bse), np.asarray(fit.tvalues), np.asarray(fit.pvalues),
                    expit(linear), converged, iterations, problem)


def check_design_rank(exog: np.ndarray, names: list[str], option: str = "covariates") -> None:
    """Raise a message naming the collinear covariates when the propensity design is rank deficient."""
    check = check_rank(exog, names)
    if check.full:
        return
    dummies = [c for c in check.collinear if c.startswith("cohort_")]
    covs = [c for c in check.collinear if c != "(Intercept)" and c not in dummies]
    raise EstimationError(
        f"The propensity model's design is singular (rank {check.rank} < {check.n_columns} terms): {check.describe()}. "
        + (f"Remove {' or '.join(covs)} from {option} (of covariates that are combinations of each other, e.g. "
           "shares that sum to 100, keep all but one)." if covs else "")
        + (" The cohort indicators are involved: a covariate is constant within cohorts." if dummies else ""),
        user_error=True,
    )


def _separation_error(names: list[str], X: pd.DataFrame, treat: np.ndarray) -> EstimationError:
    separating = separating_covariates(X, treat)
    which = (f"the covariate(s) {', '.join(separating)} on their own" if separating
             else f"a combination of the covariates ({', '.join(names[1:])})")
    return EstimationError(
        f"Perfect separation in the propensity model: {which} predict(s) joining exactly, so treated and "
        "comparison schools do not overlap. Remove the covariate(s) that separate the groups, coarsen them, or "
        "restrict the sample to where they overlap.",
        user_error=True,
    )


def _quasi_separation_error(touching: list[str], X: pd.DataFrame, treat: np.ndarray, extreme: np.ndarray) -> EstimationError:
    """Quasi-complete separation: a covariate predicts some schools' joining exactly (their scores reach 0 or 1)."""
    n_t, n_c = int((extreme & treat).sum()), int((extreme & ~treat).sum())
    return EstimationError(
        f"Quasi-complete separation in the propensity model: the covariate(s) {', '.join(touching)} (the treated "
        f"range only touches the comparison range) predict(s) joining exactly for {n_t} treated and {n_c} "
        "comparison school(s), whose scores reach 0 or 1 while the coefficients diverge. Remove or coarsen "
        f"{', '.join(touching)} (e.g. merge a category that holds only one group), or restrict the sample to "
        "where the groups overlap.",
        user_error=True,
    )


def separating_covariates(X: pd.DataFrame, treat: np.ndarray, *, strict: bool = True) -> list[str]:
    """Covariates whose treated and comparison ranges do not overlap (each alone separates the groups).

    With ``strict=False`` also those whose ranges only touch (quasi-complete separation, e.g. a category
    held by one group only).
    """
    values = X.to_numpy(dtype=float)
    t, c = values[treat], values[~treat]
    if not len(t) or not len(c):
        return []
    if strict:
        apart = (np.nanmax(t, axis=0) < np.nanmin(c, axis=0)) | (np.nanmin(t, axis=0) > np.nanmax(c, axis=0))
    else:
        apart = (np.nanmax(t, axis=0) <= np.nanmin(c, axis=0)) | (np.nanmin(t, axis=0) >= np.nanmax(c, axis=0))
    return [str(name) for name, flag in zip(X.columns, apart, strict=True) if flag]


def _fit_boosting(X: pd.DataFrame, treat: np.ndarray, rng: np.random.Generator) -> PropensityModel:
    from sklearn.ensemble import HistGradientBoostingClassifier

    # Shallow trees: a propensity model should rank units smoothly, not classify the sample perfectly.
    model = HistGradientBoostingClassifier(max_depth=3, learning_rate=0.1, max_iter=100, random_state=int(rng.integers(2**31 - 1)))
    from threadpoolctl import threadpool_limits

    # OpenMP threads only pay off on large samples; on a busy machine they spin-wait (seconds for 400 rows).
    with threadpool_limits(limits=1 if len(X) < 50_000 else None, user_api="openmp"):
        model.fit(X.to_numpy(dtype=float), treat)
        score = np.clip(model.predict_proba(X.to_numpy(dtype=float))[:, 1], EPS, 1 - EPS)
    return PropensityModel("gradient_boosting", score, np.log(score / (1 - score)), None, True)
