"""Restricted wild cluster bootstrap (WCR) for one linear combination of OLS coefficients.

With few clusters, cluster-robust t-tests over-reject; the wild cluster bootstrap with the null imposed
(WCR) and Webb's six-point weights is the standard remedy (Cameron, Gelbach & Miller 2008, *REStat*
90(3); Webb 2023, *Can. J. Econ.* 56(3); MacKinnon, Nielsen & Webb 2023, *J. Econometrics* 232(2)).
The p-value of ``c'β = 0`` and the confidence interval (the set of ``r`` whose test of ``c'β = r`` is
not rejected, found by inverting the test) come from the same draws.

Why hand-written: the ``wildboottest`` package (0.3.2) computes p-values only (no confidence interval by
test inversion) and takes an integer seed rather than the analysis's ``numpy.random.Generator``.

Algorithm (Roodman, MacKinnon, Nielsen & Webb 2019, *Stata J.* 19(1), "fast and wild"): with ``a`` the
row of ``(X'X)⁻¹X'`` of the tested coefficient, the restricted residuals ``ũ(r) = e − r f`` are linear in
``r``, so every bootstrap numerator ``a'(v∘ũ)`` and every cluster score of the bootstrap variance is linear
in ``r``; the draws are summarised once as quadratics in ``r`` and each test of the inversion costs
O(draws).  Fixed effects nested in the clusters (school effects under school, trust or local-authority
clusters) may be partialled out of ``y`` and ``X`` beforehand: the weights are constant within a
cluster, so the bootstrap residuals stay orthogonal to them and the result is exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Webb's six-point distribution: ±√(1/2), ±1, ±√(3/2), each with probability 1/6 (mean 0, variance 1).
WEBB = np.array([-np.sqrt(1.5), -1.0, -np.sqrt(0.5), np.sqrt(0.5), 1.0, np.sqrt(1.5)])


@dataclass(frozen=True)
class WildBootstrapResult:
    """p-value of ``c'β = 0`` and the interval of ``c'β`` by test inversion."""

    p_value: float
    ci_lower: float
    ci_upper: float
    n_draws: int
    n_clusters: int

    @property
    def method(self) -> str:
        return f"wild cluster bootstrap (WCR, Webb weights, {self.n_draws} draws; p-value and CI by test inversion)"


def wild_cluster_bootstrap(
    y: np.ndarray,
    x: np.ndarray,
    contrast: np.ndarray,
    clusters: np.ndarray,
    *,
    n_draws: int,
    rng: np.random.Generator,
    ci_level: float = 0.95,
    chunk: int = 2000,
) -> WildBootstrapResult:
    """Restricted wild cluster bootstrap test and interval for ``contrast @ β`` in ``y = Xβ + u``.

    Parameters
    ----------
    y, x
        Outcome ``(n,)`` and regressors ``(n, k)`` (fixed effects nested in the clusters may be partialled out).
    contrast
        Weights ``c`` of the tested combination ``c'β`` (``(k,)``).
    clusters
        Cluster code of each row, ``0 … G − 1``.
    n_draws
        Bootstrap draws.
    rng
        Generator of the Webb weights (one per cluster and draw).
    ci_level
        Confidence level of the interval.
    chunk
        Draws held in memory at a time (draws × clusters values).

    Notes
    -----
    The bootstrap t-statistic is ``(a'w)/√(Σ_c s_c²)`` with ``w = v∘ũ(r)`` and ``s_c`` the cluster score of
    the re-estimated residuals; the original one is ``(ĉ − r)/√(Σ_c (a_c'û_c)²)``.  The CR1 factor
    multiplies both variances and cancels, so it is left out.  The p-value is symmetric two-sided,
    ``mean(|t*| ≥ |t|)``.
    """
    y = np.asarray(y, dtype=float)
    x = np.asarray(x, dtype=float)
    contrast = np.asarray(contrast, dtype=float)
    clusters = np.asarray(clusters, dtype=np.int64)
    n_clusters = int(clusters.max()) + 1
    xt, j = _isolate_contrast(x, contrast)
    pinv = np.linalg.pinv(xt)  # (k, n): rows of (X'X)⁻¹X'
    a = pinv[j]
    estimate = float(a @ y)
    resid = y - xt @ (pinv @ y)
    se = np.sqrt(np.square(np.bincount(clusters, a * resid, minlength=n_clusters)).sum())

    rest = np.delete(xt, j, axis=1)
    e, f = _annihilate(rest, y), _annihilate(rest, xt[:, j])  # ũ(r) = e − r f
    # Cluster sums: P_c = Σ a_i x_i (G × k); W_c = Σ (X'X)⁻¹x_i ũ_i (G × k), linear in r.
    p = _cluster_sums(a[:, None] * xt, clusters, n_clusters)
    w_e = _cluster_sums((pinv * e).T, clusters, n_clusters)
    w_f = _cluster_sums((pinv * f).T, clusters, n_clusters)
    num_e, num_f, q0, q1, q2 = (np.empty(n_draws) for _ in range(5))
    for start in range(0, n_draws, chunk):
        stop = min(start + chunk, n_draws)
        v = WEBB[rng.integers(0, 6, size=(stop - start, n_clusters))]
        u_e = v * w_e[:, j] - (v @ w_e) @ p.T
        u_f = v * w_f[:, j] - (v @ w_f) @ p.T
        num_e[start:stop] = v @ w_e[:, j]
        num_f[start:stop] = v @ w_f[:, j]
        q0[start:stop] = np.einsum("bg,bg->b", u_e, u_e)
        q1[start:stop] = np.einsum("bg,bg->b", u_e, u_f)
        q2[start:stop] = np.einsum("bg,bg->b", u_f, u_f)

    def p_value(r: float) -> float:
        t = abs(estimate - r) / se
        var = np.maximum(q0 - 2 * r * q1 + r * r * q2, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            t_star = np.abs(num_e - r * num_f) / np.sqrt(var)
        return float(np.mean(np.nan_to_num(t_star, nan=0.0) >= t * (1 - 1e-12)))

    alpha = 1 - ci_level
    lower = _bound(p_value, estimate, -se, alpha)
    upper = _bound(p_value, estimate, se, alpha)
    return WildBootstrapResult(p_value=p_value(0.0), ci_lower=lower, ci_upper=upper, n_draws=n_draws,
                               n_clusters=n_clusters)


def _isolate_contrast(x: np.ndarray, contrast: np.ndarray) -> tuple[np.ndarray, int]:
    """Regressors ``X T⁻¹`` whose coefficient ``j`` is ``c'β`` (``T``: identity with row ``j`` replaced by ``c``)."""
    j = int(np.argmax(np.abs(contrast)))
    if contrast[j] == 0:
        raise ValueError("the contrast of the wild cluster bootstrap is zero")
    transform = np.eye(len(contrast))
    transform[j] = contrast
    return x @ np.linalg.inv(transform), j


def _annihilate(z: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Residual of ``v`` on the columns of ``z``."""
    if z.shape[1] == 0:
        return v.copy()
    return v - z @ np.linalg.lstsq(z, v, rcond=None)[0]


def _cluster_sums(values: np.ndarray, clusters: np.ndarray, n_clusters: int) -> np.ndarray:
    out = np.zeros((n_clusters, values.shape[1]))
    np.add.at(out, clusters, values)
    return out


def _bound(p_value, estimate: float, step: float, alpha: float) -> float:
    """The end of the interval in the direction of ``step``: where the p-value falls to ``alpha`` (bisection)."""
    inside, outside = estimate, estimate + step
    for _ in range(60):
        if p_value(outside) <= alpha:
            break
        inside, outside = outside, outside + 2 * (outside - estimate)
    else:
        return float(np.sign(step) * np.inf)
    for _ in range(60):
        mid = (inside + outside) / 2
        if p_value(mid) > alpha:
            inside = mid
        else:
            outside = mid
        if abs(outside - inside) <= 1e-10 * max(abs(step), 1e-300):
            break
    return float((inside + outside) / 2)
