"""Exact REML/ML for two-level linear mixed models from per-cluster sufficient statistics.

The model is ``y_g = X_g β + Z_g b_g + e_g`` for clusters (schools) ``g``, with
``b_g ~ N(0, σ² Λ Λᵀ)`` and ``e_g ~ N(0, σ² I)``: random intercepts (``Z`` a column of ones)
or random intercepts and slopes (``Z = [1, x₁, …]``).  Everything the likelihood needs is
in ``XᵀX``, ``Xᵀy``, ``yᵀy`` and, per cluster, ``Z_gᵀZ_g``, ``Z_gᵀX_g``, ``Z_gᵀy_g``; these are
computed once (one pass over the rows), after which every evaluation of the profiled
deviance costs ``O(G·q³ + G·q·p²)`` for ``G`` clusters, whatever the number of pupils.

Written by hand because no maintained Python library fits LMMs this way: statsmodels'
MixedLM loops over groups in Python and works on the rows of every group at every
iteration, which is what makes it slow on national pupil data (see
``benchmarks/bench_multilevel.py``).  Results agree with MixedLM to 1e-4 (tests).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import optimize, stats

from evaltool.errors import EstimationError

#: Relative size below which a random-effect standard deviation counts as zero (boundary).
BOUNDARY_TOLERANCE = 1e-4


@dataclass(frozen=True)
class ClusterStatistics:
    """Sufficient statistics of a two-level linear mixed model.

    Attributes
    ----------
    XtX, Xty, yty
        Whole-sample cross products.
    ZtZ, ZtX, Zty
        Per-cluster cross products, shapes ``(G, q, q)``, ``(G, q, p)``, ``(G, q)``.
    n_per_cluster
        Rows in each cluster.
    """

    XtX: np.ndarray
    Xty: np.ndarray
    yty: float
    ZtZ: np.ndarray
    ZtX: np.ndarray
    Zty: np.ndarray
    n_per_cluster: np.ndarray
    parent: np.ndarray | None = None
    """Code of each cluster's parent group (trust) for three-level random intercepts, else ``None``."""

    @property
    def n(self) -> int:
        return int(self.n_per_cluster.sum())

    @property
    def p(self) -> int:
        return int(self.XtX.shape[0])

    @property
    def q(self) -> int:
        return int(self.ZtZ.shape[1])


def cluster_statistics(y: np.ndarray, X: np.ndarray, Z: np.ndarray, codes: np.ndarray, n_clusters: int) -> ClusterStatistics:
    """One pass over the rows: whole-sample and per-cluster cross products.

    ``codes`` are integer cluster codes ``0 … n_clusters − 1``.  The per-cluster sums use a
    sparse indicator matrix product, so there is no Python loop over rows or clusters.
    """
    n, p = X.shape
    q = Z.shape[1]
    indicator = sp.csr_matrix((np.ones(n), (codes, np.arange(n))), shape=(n_clusters, n))
    ZtZ = (indicator @ (Z[:, :, None] * Z[:, None, :]).reshape(n, q * q)).reshape(n_clusters, q, q)
    ZtX = (indicator @ (Z[:, :, None] * X[:, None, :]).reshape(n, q * p)).reshape(n_clusters, q, p)
    Zty = indicator @ (Z * y[:, None])
    counts = np.bincount(codes, minlength=n_clusters)
    return ClusterStatistics(
        XtX=X.T @ X, Xty=X.T @ y, yty=float(y @ y), ZtZ=ZtZ, ZtX=ZtX, Zty=np.asarray(Zty), n_per_cluster=counts
    )


def theta_to_lambda(theta: np.ndarray, q: int) -> np.ndarray:
    """Lower-triangular relative Cholesky factor Λ from its ``q(q+1)/2`` entries (row-major)."""
    lam = np.zeros((q, q))
    lam[np.tril_indices(q)] = theta
    return lam


def _parent_update(t2: float, m: np.ndarray, rhs: np.ndarray, s: ClusterStatistics) -> tuple[float, np.ndarray]:
    """Log-determinant and cross-product terms added by a random intercept for the parent groups.

    Notes
    -----
    Within a trust, ``V = V_s + θ_t² 11ᵀ`` with ``V_s`` the school-level matrix, whose inverse maps
    ``1`` to ``1/m_g`` on school ``g``.  So ``a_t = 1ᵀV_s⁻¹1 = Σ_g n_g/m_g``, ``b_t = Σ_g [Xᵀ1, yᵀ1]_g / m_g``,
    ``|V| = |V_s|·Π_t (1 + θ_t² a_t)`` and ``V⁻¹ = V_s⁻¹ − Σ_t c_t (V_s⁻¹1)(V_s⁻¹1)ᵀ`` with
    ``c_t = θ_t²/(1 + θ_t² a_t)``; the returned cross products ``Σ_t c_t b_t b_tᵀ`` are subtracted.
    """
    n_parents = int(s.parent.max()) + 1
    a = np.bincount(s.parent, weights=s.n_per_cluster / m, minlength=n_parents)
    b = np.zeros((n_parents, rhs.shape[1]))
    np.add.at(b, s.parent, rhs / m[:, None])
    c = t2 / (1.0 + t2 * a)
    return float(np.log1p(t2 * a).sum()), (b * c[:, None]).T @ b


@dataclass(frozen=True)
class _Profile:
    deviance: float
    beta: np.ndarray
    XVX: np.ndarray
    rss: float
    logdet_m: float


def profiled_deviance(theta: np.ndarray, s: ClusterStatistics, reml: bool) -> _Profile:
    """Deviance (−2 log-likelihood, REML or ML) with β and σ² profiled out.

    Notes
    -----
    With ``V_g = I + Z_g Λ Λᵀ Z_gᵀ`` and ``M_g = I_q + Λᵀ Z_gᵀ Z_g Λ``, Woodbury gives
    ``V_g⁻¹ = I − Z_g Λ M_g⁻¹ Λᵀ Z_gᵀ`` and ``|V_g| = |M_g|``, so ``XᵀV⁻¹X``, ``XᵀV⁻¹y`` and
    ``yᵀV⁻¹y`` follow from the sufficient statistics.  With ``r(θ) = yᵀV⁻¹y − (XᵀV⁻¹y)ᵀβ̂``:

    * ML: ``d(θ) = Σ log|M_g| + n (1 + log(2π r / n))``;
    * REML: ``d_R(θ) = Σ log|M_g| + log|XᵀV⁻¹X| + (n − p)(1 + log(2π r / (n − p)))``,

    the profiled criteria of Bates et al. (2015, *J. Stat. Softw.* 67(1), eqs. 34 and 41),
    which lme4 minimises.
    """
    q, p, n = s.q, s.p, s.n
    lam = theta_to_lambda(theta[: q * (q + 1) // 2], q)
    if q == 1:  # random intercepts: M_g is a scalar, so no batched factorisations
        t2 = float(lam[0, 0]) ** 2
        m = 1.0 + t2 * s.ZtZ[:, 0, 0]
        logdet_m = float(np.log(m).sum())
        rhs = np.concatenate([s.ZtX[:, 0, :], s.Zty], axis=1)
        cross = (rhs * (t2 / m)[:, None]).T @ rhs
        if s.parent is not None:  # trust intercepts: a rank-one Woodbury update per trust
            logdet_t, cross_t = _parent_update(float(theta[1]) ** 2, m, rhs, s)
            logdet_m += logdet_t
            cross = cross + cross_t
    else:
        lt_ztz = np.einsum("ji,gjk->gik", lam, s.ZtZ)
        m = np.eye(q) + lt_ztz @ lam
        chol = np.linalg.cholesky(m)
        logdet_m = 2.0 * float(np.log(np.diagonal(chol, axis1=1, axis2=2)).sum())
        lt_ztx = np.einsum("ji,gjp->gip", lam, s.ZtX)
        lt_zty = s.Zty @ lam
        rhs = np.concatenate([lt_ztx, lt_zty[:, :, None]], axis=2)
        sol = np.linalg.solve(m, rhs)
        cross = np.einsum("gip,gik->pk", rhs, sol)
    XVX = s.XtX - cross[:p, :p]
    XVy = s.Xty - cross[:p, p]
    yVy = s.yty - cross[p, p]
    chol_x = np.linalg.cholesky(XVX)
    beta = np.linalg.solve(XVX, XVy)
    rss = float(yVy - XVy @ beta)
    if reml:
        dof = n - p
        dev = logdet_m + 2.0 * float(np.log(np.diag(chol_x)).sum()) + dof * (1.0 + math.log(2 * math.pi * rss / dof))
    else:
        dev = logdet_m + n * (1.0 + math.log(2 * math.pi * rss / n))
    return _Profile(deviance=dev, beta=beta, XVX=XVX, rss=rss, logdet_m=logdet_m)


def variance_parameter_covariance(s: ClusterStatistics, reml: bool, re_cov: np.ndarray, sigma2: float) -> np.ndarray:
    """Covariance of the variance parameters ``(vech(Ψ), σ²)`` from the observed information.

    Notes
    -----
    The (RE)ML deviance with β profiled out, written in the variance parameters,
    ``d(Ψ, σ²) = Σ log|M_g| [+ log|XᵀV_r⁻¹X|] + m·log(2πσ²) + r(θ)/σ²`` with ``ΛΛᵀ = Ψ/σ²``,
    ``m = n`` (ML) or ``n − p`` (REML), is differentiated twice by central differences;
    the covariance is ``2·H⁻¹`` (the deviance is −2ℓ).  Profiling out β leaves the variance
    block of the inverse information unchanged.  ``nan`` when the fit is on the boundary
    (a zero variance or singular Ψ), where Wald SEs of variances are not meaningful.
    """
    q = re_cov.shape[0]
    rows, cols = np.tril_indices(q)
    phi = np.append(re_cov[rows, cols], sigma2)
    k = phi.size
    if np.linalg.eigvalsh(re_cov)[0] <= BOUNDARY_TOLERANCE**2 * sigma2:
        return np.full((k, k), np.nan)
    m = s.n - s.p if reml else s.n

    def deviance(values: np.ndarray) -> float:
        psi = np.zeros((q, q))
        psi[rows, cols] = values[:-1]
        psi = psi + np.tril(psi, -1).T
        lam = np.linalg.cholesky(psi / values[-1])
        prof = profiled_deviance(lam[rows, cols], s, reml)
        logdet_x = 2.0 * float(np.log(np.diag(np.linalg.cholesky(prof.XVX))).sum()) if reml else 0.0
        return prof.logdet_m + logdet_x + m * math.log(2 * math.pi * values[-1]) + prof.rss / values[-1]

    step = 1e-3 * np.maximum(np.abs(phi), 1e-3 * sigma2)
    hess = np.empty((k, k))
    try:  # near a singular Ψ the perturbed matrices may not be positive definite: then no SEs
        f0 = deviance(phi)
        for i in range(k):  # k ≤ 4 for the structures fitted here: a loop over parameters, not rows
            for j in range(i, k):
                ei, ej = np.eye(k)[i] * step[i], np.eye(k)[j] * step[j]
                if i == j:
                    value = (deviance(phi + ei) - 2 * f0 + deviance(phi - ei)) / step[i] ** 2
                else:
                    value = (deviance(phi + ei + ej) - deviance(phi + ei - ej) - deviance(phi - ei + ej)
                             + deviance(phi - ei - ej)) / (4 * step[i] * step[j])
                hess[i, j] = hess[j, i] = value
        cov = 2.0 * np.linalg.inv(hess)
    except np.linalg.LinAlgError:
        return np.full((k, k), np.nan)
    return cov if np.all(np.diag(cov) > 0) else np.full((k, k), np.nan)


@dataclass
class FastLMMResult:
    """A fitted two-level linear mixed model (the shape both engines return).

    Attributes
    ----------
    params, bse
        Fixed effects and their standard errors (``σ̂² (XᵀV⁻¹X)⁻¹``, as lme4's ``vcov``).
    cov_params
        Covariance matrix of the fixed effects.
    re_cov
        Covariance matrix of the random effects (school level), on the outcome scale.
    residual_variance
        Pupil-level (residual) variance σ̂².
    llf, deviance, aic, bic
        Log-likelihood (REML or ML as fitted), −2·llf and the information criteria
        (parameters counted as fixed effects + variance parameters + σ², as lme4).
    converged, message
        Whether the optimiser reported success, and its message.
    boundary
        Random-effect terms whose variance is estimated at zero, or whose covariance
        matrix is singular (a boundary fit).
    """

    params: pd.Series
    bse: pd.Series
    cov_params: pd.DataFrame
    re_cov: pd.DataFrame
    residual_variance: float
    llf: float
    reml: bool
    n_obs: int
    n_groups: int
    n_iterations: int
    converged: bool
    message: str
    engine: str = "fast"
    boundary: list[str] = field(default_factory=list)
    random_effects: pd.DataFrame | None = None
    group_sizes: np.ndarray | None = None
    higher_levels: dict[str, float] = field(default_factory=dict)
    """Variances of random intercepts above the school (e.g. ``{"trust": 0.01}``; three-level fits)."""
    variance_se: list[float] | None = None
    """Standard errors of the variance components, in the order of :meth:`variance_components`."""
    cluster_count: int | None = None
    """Clusters of a cluster-robust covariance (``bse``/``cov_params`` are then the sandwich), else ``None``."""

    @property
    def n_variance_parameters(self) -> int:
        q = self.re_cov.shape[0]
        return q * (q + 1) // 2 + 1 + len(self.higher_levels)

    @property
    def deviance(self) -> float:
        return -2.0 * self.llf

    @property
    def aic(self) -> float:
        return self.deviance + 2 * (len(self.params) + self.n_variance_parameters)

    @property
    def bic(self) -> float:
        return self.deviance + math.log(self.n_obs) * (len(self.params) + self.n_variance_parameters)

    @property
    def total_variance(self) -> float:
        """School intercept + higher-level + residual variance (at zero on any random slope)."""
        return float(self.re_cov.iloc[0, 0]) + sum(self.higher_levels.values()) + self.residual_variance

    @property
    def icc(self) -> float:
        """Intraclass correlation of pupils in one school: (τ_school + τ_higher) / total variance.

        Conditional on the fixed effects; at zero on any random slope.
        """
        return (float(self.re_cov.iloc[0, 0]) + sum(self.higher_levels.values())) / self.total_variance

    def conf_int(self, level: float = 0.95) -> pd.DataFrame:
        """Wald intervals for the fixed effects: normal quantiles (as MixedLM), t(G − 1) when cluster-robust."""
        reference = stats.norm if self.cluster_count is None else stats.t(self.cluster_count - 1)
        z = reference.ppf(0.5 + level / 2)
        return pd.DataFrame({"lower": self.params - z * self.bse, "upper": self.params + z * self.bse})

    def summary_frame(self, level: float = 0.95) -> pd.DataFrame:
        """Fixed effects: estimate, SE, z, p, CI."""
        ci = self.conf_int(level)
        z = self.params / self.bse
        return pd.DataFrame(
            {
                "estimate": self.params,
                "std_error": self.bse,
                "z": z,
                "p_value": 2 * (stats.norm.sf(np.abs(z)) if self.cluster_count is None
                                else stats.t.sf(np.abs(z), self.cluster_count - 1)),
                "ci_lower": ci["lower"],
                "ci_upper": ci["upper"],
            }
        )

    def variance_components(self) -> pd.DataFrame:
        """Variances (and covariances) of every level, one row each."""
        rows = []
        names = list(self.re_cov.index)
        for i, a in enumerate(names):
            for b in names[: i + 1]:
                kind = "variance" if a == b else "covariance"
                rows.append({"level": "school", "term": a if a == b else f"{b},{a}", "kind": kind,
                             "value": float(self.re_cov.loc[a, b])})
        for level, value in self.higher_levels.items():
            rows.append({"level": level, "term": "(Intercept)", "kind": "variance", "value": float(value)})
        rows.append({"level": "residual", "term": "(residual)", "kind": "variance", "value": self.residual_variance})
        table = pd.DataFrame(rows)
        table["std_error"] = self.variance_se if self.variance_se is not None else np.nan
        return table


def fit_fast_lmm(
    y: np.ndarray,
    X: np.ndarray,
    Z: np.ndarray,
    groups: np.ndarray,
    *,
    fixed_names: list[str],
    random_names: list[str],
    reml: bool = True,
    max_iterations: int = 1000,
    parents: np.ndarray | None = None,
) -> FastLMMResult:
    """Fit a two-level LMM (or three-level random intercepts) by exact (RE)ML on the profiled deviance.

    Parameters
    ----------
    y, X, Z
        Outcome, fixed-effects design (with the intercept column) and random-effects design
        (first column the intercept), all without missing values.
    groups
        Cluster label of each row (any hashable values).
    fixed_names, random_names
        Column names of ``X`` and ``Z``.
    reml
        REML (default, as lme4 and MixedLM) or ML.
    parents
        Optional parent group (trust) of each row, for a third level of random intercepts
        (random-intercept models only; each school must belong to one parent).

    Raises
    ------
    EstimationError
        If the fixed-effects design is rank deficient, or the optimiser does not converge
        (with its message); unconverged estimates are never returned.

    Notes
    -----
    The relative Cholesky factor Λ (θ, lower triangle, diagonal ≥ 0) is found by bounded
    L-BFGS-B on :func:`profiled_deviance`; then ``β̂ = (XᵀV⁻¹X)⁻¹XᵀV⁻¹y``, ``σ̂² = r/(n−p)``
    (REML) or ``r/n`` (ML), the school covariance ``σ̂² ΛΛᵀ`` and the fixed-effects covariance
    ``σ̂² (XᵀV⁻¹X)⁻¹``.  Predicted random effects (BLUPs) are ``Λ M_g⁻¹ Λᵀ Z_gᵀ(y_g − X_g β̂)``.
    """
    y = np.asarray(y, dtype=float)
    X = np.asarray(X, dtype=float)
    Z = np.asarray(Z, dtype=float)
    codes, labels = pd.factorize(pd.Series(groups), sort=True)
    n, p = X.shape
    q = Z.shape[1]
    xtx = X.T @ X
    scale = 1.0 / np.sqrt(np.where(np.diag(xtx) > 0, np.diag(xtx), 1.0))
    rank = np.linalg.matrix_rank(xtx * scale[:, None] * scale[None, :])  # scaled: units do not matter
    if rank < p:
        raise EstimationError(
            f"The fixed-effects design has {p} columns but rank {rank}: some of {fixed_names} are collinear (e.g. a "
            "covariate constant in the data, or a dummy for every category). Remove the redundant covariate.",
            user_error=True,
        )
    if n - p <= 0:
        raise EstimationError(f"Only {n} rows for {p} fixed effects; the model cannot be estimated.", user_error=True)
    # Work with centred, unit-norm columns, X·T with T = C·S (C centres every column on the constant
    # column, S scales): the criterion is then well conditioned whatever the units or location of a
    # covariate (a calendar year next to the intercept).  β = T β_t and Cov(β) = T Cov(β_t) Tᵀ.
    X_t, transform = _conditioning_transform(X, xtx)
    s = cluster_statistics(y, X_t, Z, codes, len(labels))
    if parents is not None:
        s = dataclasses.replace(s, parent=_parent_codes(codes, len(labels), parents, q))
    diagonal = np.array([i == j for i in range(q) for j in range(i + 1)] + ([True] if parents is not None else []))
    theta0 = np.where(diagonal, 1.0, 0.0)
    bounds = [(0.0, None) if d else (None, None) for d in diagonal]

    def objective(theta: np.ndarray) -> float:
        try:
            return profiled_deviance(theta, s, reml).deviance
        except np.linalg.LinAlgError:
            return np.inf

    opt = optimize.minimize(
        objective,
        theta0,
        method="L-BFGS-B",
        bounds=bounds,
        options={"maxiter": max_iterations, "ftol": 1e-15, "gtol": 1e-10, "maxls": 50},
    )
    # Polish with Powell (line searches on function values only). L-BFGS-B's finite-difference
    # gradients are accurate to only ~1e-8·|deviance|/step: flat directions (large school
    # variances) stay loose at ~1e-4, and its line search can stop "ABNORMAL" next to the optimum.
    start = opt.x if np.isfinite(opt.fun) else theta0
    polish = optimize.minimize(objective, start, method="Powell", bounds=bounds,
                               options={"xtol": 1e-10, "ftol": 1e-15, "maxiter": max_iterations})
    best, converged = accepted_optimum(opt, polish)
    message = f"L-BFGS-B: {opt.message}; Powell: {polish.message}"
    n_iterations = int(opt.nit + polish.nit)
    if not converged:
        raise EstimationError(
            f"The mixed model did not converge ({message}; {n_iterations} iterations). No estimates are reported. "
            "Try: centring and scaling covariates (e.g. prior attainment in SD units), removing random slopes, or "
            "fitting by ML (reml: false).",
        )
    opt = best
    theta = np.asarray(opt.x, dtype=float)
    prof = profiled_deviance(theta, s, reml)
    sigma2 = prof.rss / (n - p if reml else n)
    lam = theta_to_lambda(theta[: q * (q + 1) // 2], q)
    re_cov = sigma2 * lam @ lam.T
    higher = {"trust": float(sigma2 * theta[-1] ** 2)} if parents is not None else {}
    beta = transform @ prof.beta
    cov_beta = sigma2 * transform @ np.linalg.inv(prof.XVX) @ transform.T
    # REML: log|XᵀV⁻¹X| of the transformed design is the original's + 2 log|det T|.
    deviance = prof.deviance - (2.0 * float(np.linalg.slogdet(transform)[1]) if reml else 0.0)
    boundary = _boundary_terms(re_cov, random_names, sigma2)
    boundary += [f"{k} (Intercept)" for k, v in higher.items() if v <= BOUNDARY_TOLERANCE**2 * sigma2]
    if parents is None:
        variance_se = np.sqrt(np.diag(variance_parameter_covariance(s, reml, re_cov, sigma2))).tolist()
        blups = pd.DataFrame(_blups(lam, s, prof.beta), index=pd.Index(labels, name="group"), columns=random_names)
    else:  # not derived for three levels: reported as missing, never approximated
        variance_se, blups = None, None
    return FastLMMResult(
        params=pd.Series(beta, index=fixed_names),
        bse=pd.Series(np.sqrt(np.diag(cov_beta)), index=fixed_names),
        cov_params=pd.DataFrame(cov_beta, index=fixed_names, columns=fixed_names),
        re_cov=pd.DataFrame(re_cov, index=random_names, columns=random_names),
        residual_variance=float(sigma2),
        llf=-0.5 * deviance,
        reml=reml,
        n_obs=n,
        n_groups=len(labels),
        n_iterations=n_iterations,
        converged=True,
        message=message,
        boundary=boundary,
        random_effects=blups,
        group_sizes=s.n_per_cluster,
        variance_se=variance_se,
        higher_levels=higher,
    )


def accepted_optimum(first: optimize.OptimizeResult, second: optimize.OptimizeResult) -> tuple[optimize.OptimizeResult, bool]:
    """The optimum to report and whether it counts as converged.

    A point is reported only from an optimiser that says it succeeded, and only if no point found by the
    other is materially better (deviance lower by more than 1e-8 relative): otherwise the "success" stopped
    short of the optimum.  (Before, a fit was accepted when either optimiser succeeded and the lower point
    was kept, even if it came from the one that failed.)
    """
    finite = [r for r in (first, second) if np.isfinite(r.fun)]
    if not finite:
        return first, False
    lowest = min(r.fun for r in finite)
    good = [r for r in finite if r.success and r.fun <= lowest + 1e-8 * max(1.0, abs(lowest))]
    if not good:
        return min(finite, key=lambda r: r.fun), False
    return min(good, key=lambda r: r.fun), True


def _parent_codes(codes: np.ndarray, n_clusters: int, parents: np.ndarray, q: int) -> np.ndarray:
    """Parent code of each cluster; schools must be nested in one parent."""
    if q != 1:
        raise EstimationError("Three levels are fitted with random intercepts only; remove the random slopes.",
                              user_error=True)
    parent_codes, _ = pd.factorize(pd.Series(parents), sort=True)
    pairs = pd.DataFrame({"school": codes, "parent": parent_codes}).drop_duplicates()
    if len(pairs) != n_clusters:
        raise EstimationError(
            f"{len(pairs) - n_clusters} schools appear in more than one trust; three-level models need each school "
            "in one trust. Fix the trust column, or set trust_intercept: false.",
            user_error=True,
        )
    return pairs.sort_values("school")["parent"].to_numpy()


def _conditioning_transform(X: np.ndarray, xtx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``X·T = (X − shift)·diag(scale)`` and ``T``: centre on the constant column (if any), unit norm.

    Elementwise (a small-inner-dimension matrix product is slow); the constant column is
    found from ``XᵀX`` and confirmed on the data.
    """
    n, p = X.shape
    means = X.mean(axis=0)
    transform = np.eye(p)
    shift = np.zeros(p)
    candidates = np.flatnonzero(np.isclose(np.diag(xtx), n * X[0] ** 2, rtol=1e-12, atol=0) & (X[0] != 0))
    constant = [j for j in candidates if np.all(X[:, j] == X[0, j])]
    if constant:
        k = constant[0]
        shift = means.copy()
        shift[k] = 0.0
        transform[k, :] -= shift / X[0, k]
    centred_sq = np.diag(transform.T @ xtx @ transform)
    norms = np.sqrt(np.where(centred_sq > 0, centred_sq, 1.0))
    scale = 1.0 / norms
    return (X - shift) * scale, transform * scale[None, :]


def _boundary_terms(re_cov: np.ndarray, names: list[str], sigma2: float) -> list[str]:
    """Random-effect terms at the boundary: zero variance, or a singular covariance matrix."""
    out = [name for name, v in zip(names, np.diag(re_cov), strict=True) if v <= (BOUNDARY_TOLERANCE**2) * sigma2]
    if len(names) > 1 and not out:
        eig = np.linalg.eigvalsh(re_cov)
        if eig[0] <= BOUNDARY_TOLERANCE**2 * max(eig[-1], sigma2):
            out.append("covariance matrix (singular: correlation ±1)")
    return out


def _blups(lam: np.ndarray, s: ClusterStatistics, beta: np.ndarray) -> np.ndarray:
    m = np.eye(s.q) + np.einsum("ji,gjk->gik", lam, s.ZtZ) @ lam
    ztr = s.Zty - s.ZtX @ beta
    return (lam @ np.linalg.solve(m, (ztr @ lam)[:, :, None])[:, :, 0].T).T
