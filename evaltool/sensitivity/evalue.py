r"""E-values (VanderWeele & Ding 2017, *Annals of Internal Medicine* 167:268).

The E-value is the minimum strength of association, on the risk-ratio scale, that an unmeasured
confounder would need to have with both the treatment and the outcome, conditional on the measured
covariates, to fully explain away an observed association.

* :func:`evalue_rr`: for a risk ratio and its confidence interval.
* :func:`evalue_smd`: for a standardised mean difference (Cohen's d / Hedges' g) and its standard error,
  converted to the risk-ratio scale as the R package ``EValue``'s ``evalues.MD``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from evaltool.errors import EstimationError

#: ``EValue::evalues.MD`` conversion: RR ≈ exp(0.91·d) (Chinn 2000; VanderWeele 2017), CI exp(0.91·d ± 1.78·se).
MD_LOG_RR_PER_SD = 0.91
MD_CI_HALF_WIDTH_PER_SE = 1.78


@dataclass(frozen=True)
class EValue:
    """E-values of an estimate and of its confidence limit nearest the null.

    Parameters
    ----------
    rr, rr_lower, rr_upper
        The estimate and its confidence interval on the risk-ratio scale (``nan`` where not given).
    evalue
        E-value of the point estimate (1 at the null).
    evalue_ci
        E-value of the confidence limit nearest the null; 1 when the interval includes the null;
        ``nan`` when no interval was given.
    scale
        ``"RR"`` or ``"SMD"`` (the input's scale; ``rr*`` are then approximate conversions).
    estimate, std_error
        The input on its own scale (``std_error`` only for ``"SMD"``).
    note
        How the input was converted.
    """

    rr: float
    rr_lower: float
    rr_upper: float
    evalue: float
    evalue_ci: float
    scale: str
    estimate: float
    std_error: float = float("nan")
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python dictionary for results.json."""
        return asdict(self)


def evalue_point(rr: float | np.ndarray) -> float | np.ndarray:
    r"""E-value of a risk ratio: :math:`RR + \sqrt{RR(RR-1)}` for RR ≥ 1, applied to 1/RR for RR < 1.

    Vectorised over ``rr``.
    """
    rr = np.asarray(rr, dtype=float)
    away = np.where(rr < 1, 1.0 / rr, rr)
    out = away + np.sqrt(away * (away - 1.0))
    return float(out) if out.ndim == 0 else out


def evalue_rr(rr: float, ci_lower: float | None = None, ci_upper: float | None = None) -> EValue:
    """E-values for a risk ratio and (optionally) its confidence interval.

    Parameters
    ----------
    rr
        Risk ratio (> 0).
    ci_lower, ci_upper
        Confidence limits (> 0, ``ci_lower <= rr <= ci_upper``); both or neither.

    Returns
    -------
    EValue

    Notes
    -----
    VanderWeele & Ding (2017), eq. in Table 1: :math:`E = RR + \\sqrt{RR (RR - 1)}` for :math:`RR \\ge 1`;
    for :math:`RR < 1` take :math:`1/RR` first.  For the interval, the limit nearest the null is used
    (lower limit if RR > 1, upper if RR < 1); if the interval includes 1 the E-value is 1.
    Example (the paper's): RR 3.9 (1.8–8.7) gives 7.26 and 3.00.
    """
    _check_ratio("rr", rr)
    lo = float("nan") if ci_lower is None else float(ci_lower)
    hi = float("nan") if ci_upper is None else float(ci_upper)
    if (ci_lower is None) != (ci_upper is None):
        raise EstimationError("evalue_rr needs both ci_lower and ci_upper, or neither.")
    if ci_lower is not None:
        _check_ratio("ci_lower", lo)
        _check_ratio("ci_upper", hi)
        if not lo <= rr <= hi:
            raise EstimationError(f"The interval ({lo}, {hi}) does not contain the risk ratio {rr}.")
    return EValue(
        rr=float(rr),
        rr_lower=lo,
        rr_upper=hi,
        evalue=float(evalue_point(rr)),
        evalue_ci=_evalue_ci(float(rr), lo, hi),
        scale="RR",
        estimate=float(rr),
    )


def evalue_smd(d: float, std_error: float | None = None) -> EValue:
    r"""E-values for a standardised mean difference, converted as ``EValue::evalues.MD``.

    Parameters
    ----------
    d
        Standardised mean difference (outcome difference in outcome standard deviations).
    std_error
        Its standard error (≥ 0); without it only the point E-value is given.

    Returns
    -------
    EValue

    Notes
    -----
    :math:`RR \approx \exp(0.91 d)`, interval :math:`\exp(0.91 d \pm 1.78\,se)` (the constants of
    ``evalues.MD``, EValue 4.1: 0.91 from Chinn 2000 / VanderWeele 2017 and :math:`1.78 \approx 0.91 \times
    1.96`, so the interval is a 95% interval).  The E-value is then computed as for a risk ratio; it is an
    approximation that treats the outcome as if dichotomised (VanderWeele & Ding 2017, Table 2).
    """
    d = float(d)
    if not np.isfinite(d):
        raise EstimationError(f"The standardised difference must be finite; got {d}.")
    rr = float(np.exp(MD_LOG_RR_PER_SD * d))
    lo = hi = float("nan")
    se = float("nan")
    if std_error is not None:
        se = float(std_error)
        if not np.isfinite(se) or se < 0:
            raise EstimationError(f"The standard error of the standardised difference must be ≥ 0; got {se}.")
        lo = float(np.exp(MD_LOG_RR_PER_SD * d - MD_CI_HALF_WIDTH_PER_SE * se))
        hi = float(np.exp(MD_LOG_RR_PER_SD * d + MD_CI_HALF_WIDTH_PER_SE * se))
    return EValue(
        rr=rr,
        rr_lower=lo,
        rr_upper=hi,
        evalue=float(evalue_point(rr)),
        evalue_ci=_evalue_ci(rr, lo, hi),
        scale="SMD",
        estimate=d,
        std_error=se,
        note="SMD converted to the risk-ratio scale as EValue::evalues.MD: RR = exp(0.91 d), CI exp(0.91 d ± 1.78 se)",
    )


def _evalue_ci(rr: float, lo: float, hi: float) -> float:
    if np.isnan(lo) or np.isnan(hi):
        return float("nan")
    if lo <= 1.0 <= hi:
        return 1.0
    nearest = lo if rr > 1 else hi
    return float(evalue_point(nearest))


def _check_ratio(name: str, value: float) -> None:
    if not np.isfinite(value) or value <= 0:
        raise EstimationError(f"{name} must be a positive, finite risk ratio; got {value}.")
