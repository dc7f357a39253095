"""Cluster-robust (sandwich) covariance of a linear mixed model's fixed effects.

The model-based covariance ``(X'V⁻¹X)⁻¹`` is right only if the random effects describe all of the
dependence.  Joining a trust is shared by its schools, so trust-level shocks that a school random
intercept does not capture make it too small.  The sandwich (Liang & Zeger 1986, the GEE form with the
fitted marginal covariance as working covariance) is

.. math:: \\widehat{V} = \\frac{G}{G-1} B \\Big( \\sum_g U_g U_g' \\Big) B, \\quad
          B = (X'V^{-1}X)^{-1}, \\quad U_g = \\sum_{i \\in g} X_i' V_i^{-1} (y_i - X_i \\hat\\beta),

with schools ``i`` nested in clusters ``g`` (trusts) and ``V_i = σ²I + Z_i D Z_i'``.  ``V_i⁻¹`` comes from
the push-through form of Woodbury's identity, ``V_i⁻¹ = σ⁻²(I − Z_i A_i Z_i')`` with
``A_i = D(σ²I + Z_i'Z_i D)⁻¹``, valid also for a singular ``D`` (a boundary fit); everything is computed
from per-school cross products, so no ``n × n`` matrix is formed.  No library offers this for a fitted
LMM in Python (statsmodels' MixedLM has no robust covariance), hence the hand-written version.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def lmm_cluster_covariance(
    y: np.ndarray,
    X: np.ndarray,
    Z: np.ndarray,
    school: np.ndarray,
    cluster_of_school: np.ndarray,
    beta: np.ndarray,
    re_cov: np.ndarray,
    sigma2: float,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Cluster-robust covariance of ``beta``, the model-based one ``B`` (for checks), and G.

    Parameters
    ----------
    y, X, Z
        Outcome, fixed-effect design (with intercept) and random-effect design, one row per observation.
    school
        Integer code 0…S−1 of each row's school (the random-effect grouping).
    cluster_of_school
        Integer code 0…G−1 of each school's cluster; schools must nest in clusters.
    beta, re_cov, sigma2
        Fitted fixed effects, random-effect covariance ``D`` (q × q) and residual variance.
    """
    n, p = X.shape
    q = Z.shape[1]
    n_schools = int(school.max()) + 1
    indicator = sp.csr_matrix((np.ones(n), (school, np.arange(n))), shape=(n_schools, n))
    resid = y - X @ beta
    ZtZ = np.asarray(indicator @ (Z[:, :, None] * Z[:, None, :]).reshape(n, q * q)).reshape(n_schools, q, q)
    ZtX = np.asarray(indicator @ (Z[:, :, None] * X[:, None, :]).reshape(n, q * p)).reshape(n_schools, q, p)
    Zte = np.asarray(indicator @ (Z * resid[:, None]))
    Xte = np.asarray(indicator @ (X * resid[:, None]))
    A = re_cov @ np.linalg.inv(sigma2 * np.eye(q) + ZtZ @ re_cov)  # (S, q, q)
    xvx = (X.T @ X - np.einsum("sqp,sqr,srk->pk", ZtX, A, ZtX)) / sigma2
    scores = (Xte - np.einsum("sqp,sqr,sr->sp", ZtX, A, Zte)) / sigma2  # X_i' V_i⁻¹ e_i per school
    n_clusters = int(cluster_of_school.max()) + 1
    summed = np.zeros((n_clusters, p))
    np.add.at(summed, cluster_of_school, scores)
    bread = np.linalg.inv(xvx)
    meat = summed.T @ summed
    cov = n_clusters / (n_clusters - 1) * bread @ meat @ bread
    return (cov + cov.T) / 2, bread, n_clusters
