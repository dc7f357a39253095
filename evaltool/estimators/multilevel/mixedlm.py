"""statsmodels MixedLM engine: three-level models (pupils in schools in trusts) and cross-checks.

The fast engine (:mod:`.fastlmm`) covers two levels; a random intercept for trusts with
schools nested in them is fitted here as a MixedLM with ``groups = trust``, a trust random
intercept and a school variance component (``vc_formula``), the statsmodels idiom for nested
random effects.  The result has the same shape as the fast engine's.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import statsmodels.api as sm
from statsmodels.tools.sm_exceptions import ConvergenceWarning as SMConvergenceWarning

from evaltool.errors import EstimationError
from evaltool.estimators.multilevel.fastlmm import BOUNDARY_TOLERANCE, FastLMMResult


def fit_mixedlm(
    y: np.ndarray,
    X: np.ndarray,
    Z: np.ndarray,
    groups: np.ndarray,
    *,
    fixed_names: list[str],
    random_names: list[str],
    reml: bool = True,
    trusts: np.ndarray | None = None,
) -> FastLMMResult:
    """Fit with statsmodels MixedLM; with ``trusts``, a three-level random-intercept model.

    Parameters
    ----------
    y, X, Z, groups, fixed_names, random_names, reml
        As :func:`~evaltool.estimators.multilevel.fastlmm.fit_fast_lmm`.
    trusts
        Trust of each row (schools outside any trust must already have their own label).
        Only random intercepts are supported at three levels (``Z`` one column).

    Raises
    ------
    EstimationError
        When MixedLM does not converge (its warning text is quoted).
    """
    y = np.asarray(y, dtype=float)
    X = np.asarray(X, dtype=float)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if trusts is None:
            model = sm.MixedLM(y, X, groups=np.asarray(groups), exog_re=np.asarray(Z, dtype=float))
        else:
            if Z.shape[1] != 1:
                raise EstimationError(
                    "Random slopes with a trust level (three levels) are not supported; remove random_slopes or set "
                    "trust_intercept: false.",
                    user_error=True,
                )
            school_codes = pd.factorize(pd.Series(groups), sort=True)[0]
            model = sm.MixedLM(
                y,
                X,
                groups=np.asarray(trusts),
                exog_re=np.ones((len(y), 1)),
                exog_vc={"school": _school_dummies(np.asarray(trusts), school_codes)},
            )
        fit = model.fit(reml=reml)
    # MixedLM warns and retries with other optimisers; only a final failure, or a Hessian that is
    # not positive definite (invalid standard errors), makes the fit unusable.
    problems = [str(w.message) for w in caught if issubclass(w.category, SMConvergenceWarning)]
    hessian = [p for p in problems if "Hessian" in p]
    if not fit.converged or hessian:
        raise EstimationError(
            "The mixed model (statsmodels MixedLM) did not converge"
            + (f": {'; '.join(sorted(set(problems)))}" if problems else "")
            + ". No estimates are reported. Try centring and scaling covariates, removing random slopes or the trust "
            "level, or fitting by ML (reml: false).",
        )
    p = X.shape[1]
    params = np.asarray(fit.fe_params)
    cov_beta = np.asarray(fit.cov_params())[:p, :p]
    sigma2 = float(fit.scale)
    higher: dict[str, float] = {}
    if trusts is None:
        re_cov = np.asarray(fit.cov_re)
        names = random_names
    else:
        higher = {"trust": float(np.asarray(fit.cov_re)[0, 0])}
        re_cov = np.array([[float(fit.vcomp[0])]])
        names = random_names[:1]
    boundary = [n for n, v in zip(names, np.diag(re_cov), strict=True) if v <= BOUNDARY_TOLERANCE**2 * sigma2]
    boundary += [f"{k} (Intercept)" for k, v in higher.items() if v <= BOUNDARY_TOLERANCE**2 * sigma2]
    return FastLMMResult(
        params=pd.Series(params, index=fixed_names),
        bse=pd.Series(np.sqrt(np.diag(cov_beta)), index=fixed_names),
        cov_params=pd.DataFrame(cov_beta, index=fixed_names, columns=fixed_names),
        re_cov=pd.DataFrame(re_cov, index=names, columns=names),
        residual_variance=sigma2,
        llf=float(fit.llf),
        reml=reml,
        n_obs=len(y),
        n_groups=int(pd.Series(groups).nunique()),
        n_iterations=int(getattr(fit, "n_iter", 0) or 0),
        converged=True,
        message="statsmodels MixedLM converged",
        engine="statsmodels",
        boundary=boundary,
        higher_levels=higher,
    )


def _school_dummies(trusts: np.ndarray, school_codes: np.ndarray) -> dict:
    """MixedLM's ``exog_vc`` for a school variance component nested in trust groups.

    ``{trust: matrix}``: for each trust, its rows (in data order) × one 0/1 column per school of
    that trust.  A loop over trusts (not rows), as MixedLM itself works group by group.
    """
    frame = pd.DataFrame({"trust": trusts, "school": school_codes})
    out = {}
    for trust, rows in frame.groupby("trust", sort=False).indices.items():
        codes, _ = pd.factorize(frame["school"].to_numpy()[rows])
        matrix = np.zeros((len(rows), int(codes.max()) + 1))
        matrix[np.arange(len(rows)), codes] = 1.0
        out[trust] = matrix
    return out
