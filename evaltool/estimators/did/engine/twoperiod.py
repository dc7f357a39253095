"""Two-period panel DiD estimators with their influence functions.

Each group-time cell of the Callaway–Sant'Anna estimator is a two-period,
two-group DiD on the change ``ΔY = Y_t − Y_base`` of the cell's schools.  These
functions estimate the ATT of one cell and return its influence function
(one value per school of the cell, scaled so that ``Var(ATT) ≈ mean(ψ²)/n``).

They follow Sant'Anna & Zhao (2020), *Journal of Econometrics* 219(1), and the
R package ``DRDID`` (``reg_did_panel``, ``std_ipw_did_panel``,
``drdid_panel``) used by R ``did``: outcome regression (OLS of ``ΔY`` on the
covariates among comparison schools), normalised inverse probability weighting
(logit propensity score) and the locally efficient doubly robust estimator.
Without covariates all three reduce to the difference in mean changes.

Written by hand (not statsmodels) because the engine calls them once per
group-time cell and needs the score and Hessian of the logit for the
influence function, which a small Newton solver gives directly.
"""

from __future__ import annotations

import numpy as np

from evaltool.errors import EstimationError

#: Propensity scores are capped at 1 − 1e-6 and comparison schools with a score above this are trimmed (as DRDID).
PS_CAP = 1 - 1e-6
PS_TRIM = 0.995


def unconditional(dy: np.ndarray, d: np.ndarray) -> tuple[float, np.ndarray]:
    r"""Difference in mean changes and its influence function.

    Notes
    -----
    :math:`\hat\tau = \bar{\Delta Y}_1 - \bar{\Delta Y}_0`,
    :math:`\psi_i = D_i(\Delta Y_i - \bar{\Delta Y}_1)/\hat p - (1-D_i)(\Delta Y_i - \bar{\Delta Y}_0)/(1-\hat p)`.
    """
    p1 = d.mean()
    m1 = dy[d].mean()
    m0 = dy[~d].mean()
    inf = np.where(d, (dy - m1) / p1, -(dy - m0) / (1 - p1))
    return float(m1 - m0), inf


def _ols_controls(dy: np.ndarray, d: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """OLS of ΔY on X among comparison schools: fitted values for all, and the asymptotic linear representation."""
    n = len(dy)
    xc = x[~d]
    xtx = xc.T @ xc / n
    beta = np.linalg.solve(xtx, xc.T @ dy[~d] / n)
    fitted = x @ beta
    resid_c = np.where(d, 0.0, dy - fitted)
    lin_rep = (resid_c[:, None] * x) @ np.linalg.inv(xtx)
    return fitted, lin_rep


def logit(d: np.ndarray, x: np.ndarray, *, max_iter: int = 100, tol: float = 1e-10) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-likelihood logit by Newton–Raphson.

    Returns
    -------
    fitted probabilities, and ``n · (X'WX)^{-1}`` (the inverse Hessian per unit).

    Raises
    ------
    EstimationError
        If the fit does not converge (e.g. perfect separation by a covariate).
    """
    n, k = x.shape
    beta = np.zeros(k)
    y = d.astype(float)
    loglik_old = -np.inf
    for _ in range(max_iter):
        eta = x @ beta
        p = 1.0 / (1.0 + np.exp(-eta))
        w = p * (1 - p)
        hess = (x * w[:, None]).T @ x
        step = np.linalg.solve(hess, x.T @ (y - p))
        beta = beta + step
        eta = x @ beta
        loglik = float(np.sum(y * eta - np.logaddexp(0.0, eta)))
        if abs(loglik - loglik_old) < tol * (abs(loglik) + tol) and np.max(np.abs(step)) < 1e-7:
            break
        loglik_old = loglik
    else:
        raise EstimationError(
            "The propensity-score logit did not converge (the covariates may separate joining from comparison schools "
            "perfectly). Use fewer covariates, or est_method: reg.",
            user_error=True,
        )
    p = 1.0 / (1.0 + np.exp(-(x @ beta)))
    w = p * (1 - p)
    hess_inv = np.linalg.inv((x * w[:, None]).T @ x / n)
    return p, hess_inv


def regression(dy: np.ndarray, d: np.ndarray, x: np.ndarray) -> tuple[float, np.ndarray]:
    r"""Outcome-regression DiD (Heckman, Ichimura & Todd 1997; DRDID ``reg_did_panel``).

    Notes
    -----
    :math:`\hat\tau = \bar{\Delta Y}_1 - \overline{X\hat\beta}_1` with :math:`\hat\beta` from OLS of
    :math:`\Delta Y` on :math:`X` among comparison schools.
    """
    fitted, lin_rep = _ols_controls(dy, d, x)
    w = d.astype(float)
    mean_w = w.mean()
    eta_treat = np.mean(w * dy) / mean_w
    eta_cont = np.mean(w * fitted) / mean_w
    inf_treat = (w * dy - w * eta_treat) / mean_w
    inf_cont = (w * fitted - w * eta_cont + lin_rep @ np.mean(w[:, None] * x, axis=0)) / mean_w
    return float(eta_treat - eta_cont), inf_treat - inf_cont


def _ps_weights(d: np.ndarray, ps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ps = np.minimum(ps, PS_CAP)
    keep = np.where(d, ps < 1.01, ps < PS_TRIM)
    w_treat = keep * d.astype(float)
    w_cont = keep * ps * (~d) / (1 - ps)
    return w_treat, w_cont


def ipw(dy: np.ndarray, d: np.ndarray, x: np.ndarray) -> tuple[float, np.ndarray]:
    r"""Normalised (Hájek) IPW DiD (Abadie 2005; DRDID ``std_ipw_did_panel``).

    Notes
    -----
    Comparison schools are weighted by :math:`\hat p(X)/(1-\hat p(X))`, weights normalised to one in each group;
    the influence function includes the logit's estimation effect.
    """
    ps, hess_inv = logit(d, x)
    w_treat, w_cont = _ps_weights(d, ps)
    eta_treat = np.mean(w_treat * dy) / w_treat.mean()
    eta_cont = np.mean(w_cont * dy) / w_cont.mean()
    score = (d - np.minimum(ps, PS_CAP))[:, None] * x
    lin_rep_ps = score @ hess_inv
    inf_treat = (w_treat * dy - w_treat * eta_treat) / w_treat.mean()
    m2 = np.mean((w_cont * (dy - eta_cont))[:, None] * x, axis=0)
    inf_cont = (w_cont * dy - w_cont * eta_cont + lin_rep_ps @ m2) / w_cont.mean()
    return float(eta_treat - eta_cont), inf_treat - inf_cont


def doubly_robust(dy: np.ndarray, d: np.ndarray, x: np.ndarray) -> tuple[float, np.ndarray]:
    r"""Locally efficient doubly robust DiD (Sant'Anna & Zhao 2020, eq. 3.1; DRDID ``drdid_panel``).

    Notes
    -----
    :math:`\hat\tau = E_n[w_1(\Delta Y - \hat\mu_0(X))] - E_n[w_0(\Delta Y - \hat\mu_0(X))]` with
    :math:`w_1 = D/E_n[D]`, :math:`w_0 \propto \hat p(X)(1-D)/(1-\hat p(X))`; consistent if either the
    outcome regression :math:`\hat\mu_0` or the propensity score is correctly specified.
    """
    ps, hess_inv = logit(d, x)
    fitted, lin_rep_ols = _ols_controls(dy, d, x)
    w_treat, w_cont = _ps_weights(d, ps)
    resid = dy - fitted
    eta_treat = np.mean(w_treat * resid) / w_treat.mean()
    eta_cont = np.mean(w_cont * resid) / w_cont.mean()
    score = (d - np.minimum(ps, PS_CAP))[:, None] * x
    lin_rep_ps = score @ hess_inv
    inf_treat = (
        w_treat * resid - w_treat * eta_treat - lin_rep_ols @ np.mean(w_treat[:, None] * x, axis=0)
    ) / w_treat.mean()
    m2 = np.mean((w_cont * (resid - eta_cont))[:, None] * x, axis=0)
    m3 = np.mean(w_cont[:, None] * x, axis=0)
    inf_cont = (w_cont * resid - w_cont * eta_cont + lin_rep_ps @ m2 - lin_rep_ols @ m3) / w_cont.mean()
    return float(eta_treat - eta_cont), inf_treat - inf_cont


ESTIMATORS = {"reg": regression, "ipw": ipw, "dr": doubly_robust}
