"""Evidence-security rating: the EEF padlocks adapted to quasi-experimental designs.

The EEF rates the security of a trial's finding from 0 to 5 padlocks from its
design, minimum detectable effect size (MDES), attrition, balance and threats
to validity (EEF, "Classifying the security of EEF findings", 2019 update:
design 5 = randomised … 3 = well-matched comparison (e.g. propensity-score
matching) … 1 = comparison group with poor or no matching; MDES 5 < 0.2,
4 < 0.3, 3 < 0.4, 2 < 0.5, 1 < 0.6; attrition 5 < 10 %, 4 < 20 %, 3 < 30 %,
2 < 40 %, 1 < 50 %; the rating is the lowest of the three, minus padlocks for
imbalance or other threats).  No design here is randomised, so no analysis can
score more than 3.

Adaptation (our choices, shown in the report next to each value):

* **design** from the method (or ``diagnostics.design_type``): matched
  comparison or difference-in-differences with a pre-trend check 3; other
  difference-in-differences and regression-adjusted comparisons 2; anything
  else 1;
* **MDES** for the achieved sample: ``(z_{1-α/2} + z_{0.8}) × SE(g)`` with
  α = 0.05 (2.80 × SE; Bloom 1995), SE(g) taken from the effect-size interval,
  or ``diagnostics.mdes`` when the method reports it;
* **attrition**: rows the design meant to analyse but lost (exclusions marked
  ``attrition``: missing outcomes or covariates, treated schools without a match
  or outside common support, schools dropped to balance a panel) as a share of
  the rows used plus those lost; exclusions that define the design (years or
  cohorts not used, unmatched comparison schools, small subgroup cells) are
  not attrition;
* **baseline balance**: the largest absolute standardised difference in
  ``diagnostics.balance``; above 0.25 (WWC: does not satisfy baseline
  equivalence) costs one padlock;
* **pre-trend test**: ``diagnostics.pretrend_test.p_value`` below 0.05 costs
  one padlock;
* **sensitivity** (``diagnostics.sensitivity``, where the method measured it): a finding that is
  significant without hidden bias but breaks down at a small violation of the design's assumption costs
  one padlock: Rosenbaum's breakdown Γ below 1.25 for matched designs (unmeasured factors raising the odds
  of joining within matched pairs by a quarter would explain it away); for event studies, a relative-magnitudes
  breakdown M̄ below 0.5 (post-joining violations half the size of the largest pre-joining one would explain
  it), or a robust interval that includes no effect at the smallest violation allowed (M̄ = 0 or M = 0, i.e.
  a continuing linear pre-trend would explain it).  E-values and the smoothness breakdown M (in outcome points
  a year, with no unit-free threshold) are shown, not rated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from scipy import stats

from evaltool.report.sensitivity import fragile_breakdown, measured

#: Multiplier of SE(g) giving the MDES at 80 % power and 5 % two-sided significance (Bloom 1995).
MDES_MULTIPLIER = float(stats.norm.ppf(0.975) + stats.norm.ppf(0.80))
MDES_BANDS: tuple[tuple[float, int], ...] = ((0.2, 5), (0.3, 4), (0.4, 3), (0.5, 2), (0.6, 1))
ATTRITION_BANDS: tuple[tuple[float, int], ...] = ((0.10, 5), (0.20, 4), (0.30, 3), (0.40, 2), (0.50, 1))
#: WWC Procedures Handbook baseline-equivalence bands on |standardised difference|.
WWC_SATISFIES, WWC_ADJUST = 0.05, 0.25
PRETREND_ALPHA = 0.05

#: Design type → (description, padlocks).
DESIGN_TYPES: dict[str, tuple[str, int]] = {
    "matched": ("matched comparison group (e.g. propensity-score matching)", 3),
    "did_pretrend": ("difference-in-differences with a check of trends before joining", 3),
    "did": ("difference-in-differences without a pre-trend check", 2),
    "regression": ("comparison adjusted by regression (no matching)", 2),
    "comparison": ("comparison group with no matching", 1),
}
#: Registered method → design type (``diagnostics.design_type`` overrides).
METHOD_DESIGNS: dict[str, str] = {
    "psm": "matched",
    "did_staggered": "did_pretrend",
    "event_study": "did_pretrend",
    "did_twfe": "did",
    "did_2x2": "did",
    "multilevel": "regression",
}
BALANCE_COLUMNS = ("smd_after", "smd_matched", "smd_adjusted", "std_diff_after", "smd", "std_diff")


@dataclass(frozen=True)
class Criterion:
    """One line of the rating: what was measured, its value, and what it allows."""

    name: str
    value: str
    effect: str
    padlocks: int | None = None
    deduction: int = 0


@dataclass
class SecurityRating:
    """Padlocks (0–5, ``None`` if not rated) with the criteria that set them."""

    padlocks: int | None
    criteria: list[Criterion] = field(default_factory=list)
    note: str = ""


def _num(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value)):
        return float(value)
    return None


def _band(value: float, bands: tuple[tuple[float, int], ...]) -> int:
    for upper, padlocks in bands:
        if value < upper:
            return padlocks
    return 0


def design_criterion(method: str, diagnostics: dict) -> Criterion:
    kind = diagnostics.get("design_type") or METHOD_DESIGNS.get(method, "comparison")
    if kind == "did_pretrend" and not isinstance(diagnostics.get("pretrend_test"), dict):
        kind = "did"
    text, padlocks = DESIGN_TYPES.get(kind, DESIGN_TYPES["comparison"])
    return Criterion("Design", text, f"at most {padlocks} padlocks", padlocks=padlocks)


def mdes_value(estimate: dict, diagnostics: dict) -> float | None:
    """MDES of the effect size for the achieved sample (``None`` if no effect size)."""
    reported = _num(diagnostics.get("mdes"))
    if reported is not None:
        return reported
    low, high = _num(estimate.get("effect_size_ci_lower")), _num(estimate.get("effect_size_ci_upper"))
    level = _num(estimate.get("ci_level")) or 0.95
    if low is None or high is None:
        return None
    se = (high - low) / (2 * float(stats.norm.ppf(0.5 + level / 2)))
    return MDES_MULTIPLIER * se


def mdes_criterion(estimate: dict, diagnostics: dict) -> Criterion:
    mdes = mdes_value(estimate, diagnostics)
    if mdes is None:
        return Criterion("Minimum detectable effect size", "not measured (no effect size)", "not used")
    padlocks = _band(mdes, MDES_BANDS)
    return Criterion("Minimum detectable effect size", f"{mdes:.2f}", f"at most {padlocks} padlocks", padlocks=padlocks)


def attrition_share(sample: dict) -> float | None:
    """Rows the design meant to analyse but lost, as a share of the rows used plus those lost."""
    used = _num(sample.get("n_rows_used"))
    lost = [_num(e.get("n_rows")) for e in sample.get("exclusions", []) if e.get("attrition")]
    if used is None or any(v is None for v in lost):
        return None
    total = used + sum(lost)  # type: ignore[arg-type]
    return sum(lost) / total if total > 0 else None  # type: ignore[arg-type]


def attrition_criterion(sample: dict) -> Criterion:
    share = attrition_share(sample)
    if share is None:
        return Criterion("Attrition (units lost from the design)", "not measured", "not used")
    padlocks = _band(share, ATTRITION_BANDS)
    return Criterion("Attrition (units lost from the design)", f"{share:.0%}", f"at most {padlocks} padlocks", padlocks=padlocks)


def max_abs_smd(balance: Any) -> float | None:
    """Largest |standardised difference| in a balance table (``{columns, data}``)."""
    if not (isinstance(balance, dict) and "columns" in balance):
        return None
    columns = list(balance["columns"])
    column = next((c for c in BALANCE_COLUMNS if c in columns), None)
    if column is None:
        return None
    i = columns.index(column)
    values = [abs(v) for v in (_num(row[i]) for row in balance["data"]) if v is not None]
    return max(values) if values else None


def wwc_verdict(smd: float | None) -> str:
    """WWC baseline-equivalence verdict for one |standardised difference|."""
    if smd is None:
        return "not available"
    size = abs(smd)
    if size <= WWC_SATISFIES:
        return "satisfies"
    if size <= WWC_ADJUST:
        return "satisfies if adjusted for"
    return "does not satisfy"


def balance_criterion(diagnostics: dict) -> Criterion:
    smd = max_abs_smd(diagnostics.get("balance"))
    if smd is None:
        return Criterion("Baseline balance", "not reported", "no deduction (not measured)")
    deduction = 1 if smd > WWC_ADJUST else 0
    verdict = wwc_verdict(smd)
    return Criterion(
        "Baseline balance",
        f"largest standardised difference {smd:.2f} ({verdict})",
        "−1 padlock" if deduction else "no deduction",
        deduction=deduction,
    )


def pretrend_criterion(diagnostics: dict) -> Criterion:
    test = diagnostics.get("pretrend_test")
    p = _num(test.get("p_value")) if isinstance(test, dict) else None
    if p is None:
        return Criterion("Trends before joining", "not tested", "no deduction (not measured)")
    deduction = 1 if p < PRETREND_ALPHA else 0
    text = f"p = {p:.3f}" + (" (trends differed before joining)" if deduction else " (no evidence of different trends)")
    return Criterion("Trends before joining", text, "−1 padlock" if deduction else "no deduction", deduction=deduction)


def sensitivity_criterion(diagnostics: dict) -> Criterion | None:
    """The sensitivity line of the rating (``None`` when the analysis measured no breakdown value)."""
    values = measured(diagnostics)
    if not values:
        return None
    text = "; ".join(f"{name} {value:.2f}" for name, value in values.items())
    fragile = fragile_breakdown(diagnostics)
    if fragile is not None:
        name, value = fragile
        return Criterion("Sensitivity of the finding", f"{text} (fragile: {name} {value:.2f})", "−1 padlock",
                         deduction=1)
    return Criterion("Sensitivity of the finding", text, "no deduction")


def rate(analysis: dict, estimate: dict | None) -> SecurityRating:
    """Rate one analysis of ``results.json`` from its headline estimate and diagnostics.

    Notes
    -----
    ``padlocks = max(0, min(design, MDES, attrition) − balance − pre-trend − sensitivity)``,
    where criteria that were not measured do not enter the minimum (the
    rating is then an upper bound, and the report says so).
    """
    if analysis.get("status") != "ok" or estimate is None:
        return SecurityRating(None, note="not rated: the analysis did not produce an estimate")
    diagnostics = analysis.get("diagnostics") or {}
    criteria = [
        design_criterion(analysis.get("method", ""), diagnostics),
        mdes_criterion(estimate, diagnostics),
        attrition_criterion(analysis.get("sample") or {}),
        balance_criterion(diagnostics),
        pretrend_criterion(diagnostics),
    ]
    sensitivity = sensitivity_criterion(diagnostics)
    if sensitivity is not None:
        criteria.append(sensitivity)
    caps = [c.padlocks for c in criteria if c.padlocks is not None]
    padlocks = max(0, min(caps) - sum(c.deduction for c in criteria))
    unmeasured = [c.name.lower() for c in criteria if c.effect.startswith(("not used", "no deduction (not"))]
    note = ""
    if unmeasured:
        note = "Not measured in this run: " + ", ".join(unmeasured) + ", so the rating may be lower than shown."
    return SecurityRating(padlocks, criteria, note)
