"""Design matrices and the two fits of ``method: multilevel``.

* :func:`fit_pupil_model`: pupils in schools (optionally in trusts), ``outcome ~ treated +
  pupil and school covariates + (1 [+ slopes] | school) [+ (1 | trust)]``, where ``treated``
  is 1 for pupils whose school had joined by their exam year;
* :func:`fit_growth_model`: the school panel as a growth model (years within schools),
  ``outcome ~ treated_it + year effects + school covariates + (1 [+ time] | school)``.

Both return the fitted model (the shape of :class:`~.fastlmm.FastLMMResult`).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from evaltool.errors import DataError, EstimationError
from evaltool.estimators.multilevel.fastlmm import FastLMMResult, fit_fast_lmm
from evaltool.estimators.multilevel.mixedlm import fit_mixedlm
from evaltool.estimators.multilevel.sandwich import lmm_cluster_covariance

TREATED = "treated"


def design(frame: pd.DataFrame, columns: list[str], where: str) -> pd.DataFrame:
    """Numeric design columns: numbers as they are, yes/no and text columns as dummies.

    Text columns get one 0/1 column per level except the most common (named
    ``column[level]``); booleans become 0/1.
    """
    parts = []
    for column in columns:
        values = frame[column]
        if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
            parts.append(values.astype(float).rename(column))
            continue
        text = values.astype("string")
        reference = text.value_counts().index[0]
        levels = sorted(set(text.dropna()) - {reference})
        if len(levels) > 50:
            raise DataError(
                f"{where}: column '{column}' has {len(levels) + 1} distinct text values (e.g. {levels[:5]}); a covariate "
                "must be numeric or have at most 51 categories."
            )
        for level in levels:
            parts.append((text == level).astype(float).rename(f"{column}[{level}]"))
    return pd.concat(parts, axis=1) if parts else pd.DataFrame(index=frame.index)


def fit_mixed(
    frame: pd.DataFrame,
    outcome: str,
    X: pd.DataFrame,
    *,
    random_slopes: list[str],
    reml: bool,
    engine: str,
    trust: bool = False,
) -> FastLMMResult:
    """Fit ``outcome ~ X + (1 + random_slopes | school) [+ (1 | trust)]``.

    ``engine='auto'``/``'fast'`` use the exact engine (two levels, or three with random
    intercepts); ``'statsmodels'`` uses MixedLM.
    """
    X = pd.concat([pd.Series(1.0, index=frame.index, name="Intercept"), X], axis=1)
    Z = np.column_stack([np.ones(len(frame))] + [frame[c].to_numpy(dtype=float) for c in random_slopes])
    random_names = ["Intercept", *random_slopes]
    y = frame[outcome].to_numpy(dtype=float)
    args = dict(fixed_names=list(X.columns), random_names=random_names, reml=reml)
    trusts = frame["trust_or_school"].to_numpy() if trust else None
    if engine == "statsmodels":
        fit = fit_mixedlm(y, X.to_numpy(), Z, frame["school"].to_numpy(), trusts=trusts, **args)
    else:
        fit = fit_fast_lmm(y, X.to_numpy(), Z, frame["school"].to_numpy(), parents=trusts, **args)
    if CLUSTER_COLUMN in frame:
        fit = with_cluster_robust_se(fit, frame, y, X.to_numpy(), Z)
    return fit


#: Column of a model frame holding each row's cluster code; when present the fixed effects get
#: cluster-robust standard errors (:mod:`.sandwich`).
CLUSTER_COLUMN = "_cluster"


def with_cluster_robust_se(fit: FastLMMResult, frame: pd.DataFrame, y: np.ndarray, X: np.ndarray,
                           Z: np.ndarray) -> FastLMMResult:
    """The fit with its fixed effects' covariance replaced by the cluster-robust sandwich.

    Raises
    ------
    EstimationError
        The clusters do not nest the model's groups (a school's rows in two clusters): the sandwich sums
        whole schools' scores, so each school must lie in one cluster.
    """
    school, schools = pd.factorize(frame["school"])
    per_school = pd.Series(frame[CLUSTER_COLUMN].to_numpy()).groupby(school).nunique()
    if (per_school > 1).any():
        split = schools[per_school.index[per_school.to_numpy() > 1]]
        raise EstimationError(
            f"inference.cluster: the clusters must nest the model's schools, but {len(split)} school(s) have rows in "
            f"more than one cluster (e.g. {', '.join(map(str, split[:3]))}). Cluster at a level that contains whole "
            "schools (trust, local_authority or school)."
        )
    cluster_of_school = pd.Series(frame[CLUSTER_COLUMN].to_numpy()).groupby(school).first().to_numpy()
    cluster_of_school = pd.factorize(cluster_of_school)[0]
    cov, _, n_clusters = lmm_cluster_covariance(
        y, X, Z, school, cluster_of_school, fit.params.to_numpy(), fit.re_cov.to_numpy(), fit.residual_variance
    )
    names = fit.params.index
    return dataclasses.replace(
        fit,
        cov_params=pd.DataFrame(cov, index=names, columns=names),
        bse=pd.Series(np.sqrt(np.diag(cov)), index=names),
        cluster_count=n_clusters,
    )


def null_icc(frame: pd.DataFrame, outcome: str, reml: bool) -> tuple[float, float, float]:
    """ICC, school variance and pupil variance of ``outcome ~ 1 + (1 | school)`` (fast engine)."""
    y = frame[outcome].to_numpy(dtype=float)
    one = np.ones((len(frame), 1))
    fit = fit_fast_lmm(y, one, one, frame["school"].to_numpy(), fixed_names=["Intercept"],
                       random_names=["Intercept"], reml=reml)
    tau = float(fit.re_cov.iloc[0, 0])
    return tau / (tau + fit.residual_variance), tau, fit.residual_variance
