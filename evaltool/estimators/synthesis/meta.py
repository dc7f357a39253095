"""Random-effects meta-analysis and meta-regression engine (the model of metafor's ``rma.uni``).

One function, :func:`fit_meta`, fits the random-effects model

.. math::  y_i = x_i^\\top \\beta + u_i + e_i,\\quad u_i \\sim N(0, \\tau^2),\\quad e_i \\sim N(0, v_i)

for ``k`` studies with known sampling variances ``v_i``.  With ``X`` a column of
ones it is the usual random-effects meta-analysis; with moderators it is a
mixed-effects meta-regression.  Hand-written because no maintained Python
package offers REML τ² with Knapp–Hartung meta-regression (statsmodels'
``combine_effects`` has DerSimonian–Laird and Paule–Mandel, intercept only).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from evaltool.errors import EstimationError

#: The fewest studies a random-effects synthesis accepts.
MIN_STUDIES = 3


@dataclass(frozen=True)
class MetaFit:
    """A fitted random-effects model (all arrays follow ``names``).

    Attributes
    ----------
    coef, vcov
        Estimated fixed effects and their covariance (already scaled by the
        Knapp–Hartung factor when ``test == "knapp_hartung"``).
    tau2, tau2_se
        Between-study variance and its standard error (REML: from the
        expected information; DL: ``nan``).
    QE, QE_df, QE_p
        Cochran's test of residual heterogeneity.
    I2, H2
        Share (%) of total variance due to heterogeneity and the ratio of total
        to sampling variance, with metafor's "typical" sampling variance.
    QM, QM_df, QM_p
        Omnibus test that every coefficient but the intercept is zero (χ², or
        F with ``(QM_df, k − p)`` degrees of freedom under Knapp–Hartung);
        ``nan`` for an intercept-only model.
    df
        Degrees of freedom of the t/F reference (``k − p``) or ``None`` for z.
    """

    names: tuple[str, ...]
    coef: np.ndarray
    vcov: np.ndarray
    tau2: float
    tau2_se: float
    tau2_method: str
    test: str
    k: int
    QE: float
    QE_df: int
    QE_p: float
    I2: float
    H2: float
    QM: float
    QM_df: int
    QM_p: float
    df: int | None
    level: float
    iterations: int
    weights: np.ndarray = field(repr=False)

    @property
    def se(self) -> np.ndarray:
        return np.sqrt(np.diag(self.vcov))

    def _dist(self) -> stats.rv_continuous:
        return stats.t(self.df) if self.df is not None else stats.norm()

    @property
    def statistic(self) -> np.ndarray:
        """z (or t under Knapp–Hartung) of each coefficient."""
        return self.coef / self.se

    @property
    def p_values(self) -> np.ndarray:
        return 2 * self._dist().sf(np.abs(self.statistic))

    def conf_int(self) -> np.ndarray:
        """``(p, 2)`` array of confidence limits at ``level``."""
        crit = self._dist().ppf(0.5 + self.level / 2)
        return np.column_stack([self.coef - crit * self.se, self.coef + crit * self.se])

    def prediction_interval(self, x: np.ndarray | None = None) -> tuple[float, float, float]:
        """Predicted mean at moderators ``x`` (default: the intercept) and its prediction interval.

        Notes
        -----
        As metafor's ``predict.rma``: ``ŷ ± c·sqrt(SE(ŷ)² + τ²)`` with ``c`` the
        normal quantile, or the t(k − p) quantile under Knapp–Hartung.  (Higgins,
        Thompson & Spiegelhalter 2009 propose t(k − 2) for the intercept-only model.)
        """
        x = np.eye(len(self.names))[0] if x is None else np.asarray(x, dtype=float)
        pred = float(x @ self.coef)
        se = float(np.sqrt(x @ self.vcov @ x))
        crit = float(self._dist().ppf(0.5 + self.level / 2))
        half = crit * np.sqrt(se**2 + self.tau2)
        return pred, pred - half, pred + half


def _check_inputs(y: np.ndarray, v: np.ndarray, X: np.ndarray) -> None:
    k, p = X.shape
    if y.shape != (k,) or v.shape != (k,):
        raise ValueError(f"y, v and X must have the same number of studies (got {y.shape}, {v.shape}, {X.shape})")
    if k < MIN_STUDIES:
        raise EstimationError(
            f"A random-effects meta-analysis needs at least {MIN_STUDIES} studies; got {k}. "
            "Between-study variance cannot be estimated from fewer; report the studies one by one instead.",
            user_error=True,
        )
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(v))):
        raise EstimationError("Effect sizes and sampling variances must be finite numbers (found NaN or infinity).")
    if np.any(v <= 0):
        raise EstimationError(
            f"Every study needs a positive standard error; {int(np.sum(v <= 0))} have zero or negative ones.",
            user_error=True,
        )
    if k <= p:
        raise EstimationError(
            f"The meta-regression has {p} coefficients but only {k} studies; use fewer moderators "
            "(each category of a categorical moderator but one is a coefficient).",
            user_error=True,
        )
    if np.linalg.matrix_rank(X) < p:
        raise EstimationError(
            "The moderators are collinear (one is a combination of the others, or a category has no studies); "
            "remove one of them.",
            user_error=True,
        )


@dataclass(frozen=True)
class _Projection:
    """Quantities of ``P = W − W X (XᵀWX)⁻¹ XᵀW`` for diagonal weights, without forming the k×k matrix.

    With ``A = (XᵀWX)⁻¹`` and ``B = A XᵀW²X``: ``Py = W(y − Xβ̂)``,
    ``tr(P) = Σw − tr(B)`` and ``tr(PP) = Σw² − 2 tr(A XᵀW³X) + tr(B²)``; O(k·p²).
    """

    Py: np.ndarray
    trace: float
    trace_sq: float


def _projection(w: np.ndarray, X: np.ndarray, y: np.ndarray) -> _Projection:
    A = np.linalg.inv(X.T @ (X * w[:, None]))
    beta = A @ (X.T @ (w * y))
    B = A @ (X.T @ (X * (w**2)[:, None]))
    C = A @ (X.T @ (X * (w**3)[:, None]))
    return _Projection(
        Py=w * (y - X @ beta),
        trace=float(w.sum() - np.trace(B)),
        trace_sq=float(np.sum(w**2) - 2 * np.trace(C) + np.sum(B * B.T)),
    )


def tau2_dersimonian_laird(y: np.ndarray, v: np.ndarray, X: np.ndarray) -> float:
    """Method-of-moments τ² (DerSimonian & Laird 1986; Raudenbush 2009 for moderators).

    Notes
    -----
    ``τ² = max(0, (Q_E − (k − p)) / tr(P₀))`` with ``P₀`` the projection with
    weights ``1/v_i``.
    """
    w = 1.0 / v
    P0 = _projection(w, X, y)
    QE = float(P0.Py @ (P0.Py / w))
    return max(0.0, (QE - (X.shape[0] - X.shape[1])) / P0.trace)


def tau2_reml(y: np.ndarray, v: np.ndarray, X: np.ndarray, *, start: float, tol: float = 1e-10, max_iter: int = 200
              ) -> tuple[float, float, int]:
    """REML τ² by Fisher scoring, truncated at zero.

    Notes
    -----
    Update (Viechtbauer 2005, eq. 14; metafor's algorithm):
    ``τ² ← τ² + (yᵀPPy − tr(P)) / tr(PP)``, with step halving if a step would
    go below zero.  The standard error is ``sqrt(2 / tr(PP))`` at the solution.

    Returns
    -------
    tau2, its standard error, iterations used
    """
    tau2 = max(0.0, start)
    for iteration in range(1, max_iter + 1):  # noqa: B007 (the count is returned)
        P = _projection(1.0 / (v + tau2), X, y)
        step = (float(P.Py @ P.Py) - P.trace) / P.trace_sq
        new = tau2 + step
        while new < 0 and tau2 > 0 and abs(step) > tol:
            step /= 2
            new = tau2 + step
        new = max(0.0, new)
        if abs(new - tau2) < tol:
            tau2 = new
            break
        tau2 = new
    else:
        raise EstimationError(
            f"REML estimation of the between-study variance did not converge in {max_iter} iterations; "
            "use tau2_method: DL.",
        )
    P = _projection(1.0 / (v + tau2), X, y)
    return tau2, float(np.sqrt(2.0 / P.trace_sq)), iteration


def fit_meta(
    y: np.ndarray,
    se: np.ndarray,
    X: np.ndarray | None = None,
    *,
    names: tuple[str, ...] | None = None,
    tau2_method: str = "REML",
    knapp_hartung: bool = False,
    level: float = 0.95,
) -> MetaFit:
    """Fit a random-effects meta-analysis (``X=None``) or meta-regression.

    Parameters
    ----------
    y, se
        Effect estimates and their standard errors, one per study.
    X
        ``(k, p)`` design matrix whose first column is the intercept; default a
        column of ones.
    names
        Coefficient names (default ``intercept``, ``x1`` …).
    tau2_method
        ``"REML"`` (restricted maximum likelihood) or ``"DL"`` (DerSimonian–Laird).
    knapp_hartung
        Use the Knapp–Hartung (Hartung–Knapp–Sidik–Jonkman) adjustment: the
        covariance is scaled by ``s² = Σ wᵢ(yᵢ − xᵢβ)²/(k − p)`` and tests use
        t(k − p) / F(m, k − p) (Knapp & Hartung 2003).
    level
        Confidence level.

    Notes
    -----
    With ``wᵢ = 1/(vᵢ + τ²)``: ``β = (XᵀWX)⁻¹XᵀWy``, ``Var(β) = (XᵀWX)⁻¹``.
    Heterogeneity: ``Q_E = yᵀP₀y`` on ``k − p`` df; ``I² = 100·τ²/(τ² + s̃²)``
    and ``H² = (τ² + s̃²)/s̃²`` with the typical sampling variance
    ``s̃² = (k − p)/tr(P₀)`` (Higgins & Thompson 2002; metafor's definitions).
    Reproduces ``metafor::rma(yi, vi, mods, method, test)``; see
    ``tests/reference/dat_bcg.md``.
    """
    y = np.asarray(y, dtype=float)
    v = np.asarray(se, dtype=float) ** 2
    X = np.ones((len(y), 1)) if X is None else np.asarray(X, dtype=float)
    if X.ndim != 2:
        raise ValueError("X must be a 2-D design matrix")
    _check_inputs(y, v, X)
    k, p = X.shape
    names = names or ("intercept", *(f"x{j}" for j in range(1, p)))

    tau2_dl = tau2_dersimonian_laird(y, v, X)
    if tau2_method == "DL":
        tau2, tau2_se, iterations = tau2_dl, float("nan"), 0
    elif tau2_method == "REML":
        tau2, tau2_se, iterations = tau2_reml(y, v, X, start=tau2_dl)
    else:
        raise ValueError(f"tau2_method must be 'REML' or 'DL'; got {tau2_method!r}")

    w = 1.0 / (v + tau2)
    XtWX = X.T @ (X * w[:, None])
    vcov = np.linalg.inv(XtWX)
    coef = vcov @ (X.T @ (w * y))
    df: int | None = None
    if knapp_hartung:
        resid = y - X @ coef
        s2 = float(np.sum(w * resid**2)) / (k - p)
        vcov = vcov * s2
        df = k - p

    P0 = _projection(1.0 / v, X, y)
    QE = float(P0.Py @ (P0.Py * v))  # yᵀP₀y = Σ wᵢ rᵢ² with P₀y = w·r
    typical = (k - p) / P0.trace
    I2 = 100.0 * tau2 / (tau2 + typical)
    H2 = (tau2 + typical) / typical

    if p > 1:
        b = coef[1:]
        V = vcov[1:, 1:]
        QM = float(b @ np.linalg.solve(V, b))
        m = p - 1
        if knapp_hartung:
            QM = QM / m
            QM_p = float(stats.f.sf(QM, m, k - p))
        else:
            QM_p = float(stats.chi2.sf(QM, m))
    else:
        QM, m, QM_p = float("nan"), 0, float("nan")

    return MetaFit(
        names=tuple(names),
        coef=coef,
        vcov=vcov,
        tau2=float(tau2),
        tau2_se=tau2_se,
        tau2_method=tau2_method,
        test="knapp_hartung" if knapp_hartung else "z",
        k=k,
        QE=QE,
        QE_df=k - p,
        QE_p=float(stats.chi2.sf(QE, k - p)),
        I2=float(I2),
        H2=float(H2),
        QM=QM,
        QM_df=m,
        QM_p=QM_p,
        df=df,
        level=level,
        iterations=iterations,
        weights=w,
    )
