"""Standardised effect sizes (Hedges' g) for estimates on an attainment scale.

An estimate ``Δ`` in outcome points becomes ``g = ω · Δ / S`` with the small-sample
correction ``ω = 1 − 3 / (4N − 9)`` (N the total sample size) and a standardiser ``S``:

* **pupil level** (preferred; EEF guidance): ``S = √(τ² + σ²)``, the total (school +
  pupil) standard deviation of the outcome from a multilevel model without covariates,
  fitted on the pupil data; N is the number of pupils;
* **school level** (when no pupil data exist): ``S`` is the standard deviation of the
  outcome across school × year rows, and N the number of rows.  School means vary far less
  than pupils, so school-level effect sizes are larger than pupil-level g (by about
  ``1/√(ICC + (1 − ICC)/n)`` for ICC and cohort size n) and must not be compared with EEF
  or WWC pupil-level effect sizes; the results say which standardiser was used.

The interval is the estimate's interval scaled the same way (S treated as known).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from evaltool.results.estimate import EffectEstimate
from evaltool.sensitivity.evalue import evalue_smd


def hedges_correction(n_total: float) -> float:
    """Small-sample correction ω = 1 − 3/(4N − 9) (WWC Procedures Handbook; Hedges 1981).

    Equal to Hedges' ``J(df) = 1 − 3/(4·df − 1)`` with ``df = N − 2``.
    """
    if n_total <= 2:
        raise ValueError(f"Hedges' correction needs more than 2 observations (got N = {n_total})")
    return 1.0 - 3.0 / (4.0 * n_total - 9.0)


def pooled_sd(sd_1: float, n_1: float, sd_2: float, n_2: float) -> float:
    """Pooled within-group SD ``√(((n₁−1)s₁² + (n₂−1)s₂²)/(n₁+n₂−2))``."""
    return math.sqrt(((n_1 - 1) * sd_1**2 + (n_2 - 1) * sd_2**2) / (n_1 + n_2 - 2))


def hedges_g_groups(mean_1: float, sd_1: float, n_1: float, mean_2: float, sd_2: float, n_2: float) -> tuple[float, float]:
    """Hedges' g of two independent groups and its standard error.

    Notes
    -----
    ``d = (x̄₁ − x̄₂)/S_pooled``, ``V_d = (n₁+n₂)/(n₁n₂) + d²/(2(n₁+n₂))``, ``g = ω·d``,
    ``V_g = ω²·V_d`` (Borenstein, Hedges, Higgins & Rothstein 2009, *Introduction to
    Meta-Analysis*, eqs. 4.18–4.24; WWC Procedures Handbook v5.0, Appendix E).
    """
    n = n_1 + n_2
    d = (mean_1 - mean_2) / pooled_sd(sd_1, n_1, sd_2, n_2)
    var_d = n / (n_1 * n_2) + d**2 / (2 * n)
    omega = hedges_correction(n)
    return omega * d, omega * math.sqrt(var_d)


@dataclass(frozen=True)
class Standardiser:
    """The SD an outcome is divided by, with the N for Hedges' correction and a description."""

    sd: float
    n_total: int
    level: str
    description: str

    def to_dict(self) -> dict:
        return {"sd": self.sd, "n_total": self.n_total, "level": self.level, "description": self.description}


def standardise(estimate: EffectEstimate, standardiser: Standardiser) -> EffectEstimate:
    """The estimate with ``effect_size`` and its interval filled in (Hedges' g)."""
    if not (standardiser.sd > 0 and math.isfinite(standardiser.sd)):
        return estimate
    factor = hedges_correction(standardiser.n_total) / standardiser.sd
    g, se_g = estimate.estimate * factor, estimate.std_error * factor
    evalue = evalue_smd(g, se_g) if math.isfinite(g) and math.isfinite(se_g) and se_g >= 0 else None
    return estimate.with_context(
        effect_size=g,
        effect_size_ci_lower=estimate.ci_lower * factor,
        effect_size_ci_upper=estimate.ci_upper * factor,
        e_value=evalue.evalue if evalue is not None else None,
        e_value_ci=evalue.evalue_ci if evalue is not None else None,
    )
