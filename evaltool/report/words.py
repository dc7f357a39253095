"""Words for people: outcome, subgroup and method names, and what each method does and does not show."""

from __future__ import annotations

from typing import Any

from evaltool.labels import label

#: Unit of a difference in each known column (labels come from :mod:`evaltool.labels`).
OUTCOME_UNITS = {
    "fsm_pct": "percentage points",
    "eal_pct": "percentage points",
    "sen_pct": "percentage points",
    "cohort_size": "pupils",
}
SUBGROUP_LABELS = {
    "disadvantaged": "Disadvantaged pupils",
    "not_disadvantaged": "Other pupils (not disadvantaged)",
    "girls": "Girls",
    "boys": "Boys",
    "eal": "Pupils with English as an additional language",
    "not_eal": "Pupils with English as first language",
    "sen": "Pupils with special educational needs",
    "not_sen": "Pupils without special educational needs",
    "low_prior": "Low prior attainment",
    "middle_prior": "Middle prior attainment",
    "high_prior": "High prior attainment",
    "all": "All pupils",
}
METHOD_LABELS = {
    "did_2x2": "Difference-in-differences (two groups, before and after)",
    "did_twfe": "Difference-in-differences (two-way fixed effects)",
    "event_study": "Event study (effects by years since joining)",
    "did_staggered": "Difference-in-differences for schools joining in different years",
    "psm": "Propensity-score matching",
    "multilevel": "Multilevel model (pupils within schools)",
    "ipw": "Inverse-probability weighting",
    "trust_effects": "Effect for each trust (few-school inference)",
    "meta_analysis": "Synthesis across trusts (random-effects meta-analysis)",
}
#: What each method does (first sentence of the plain-English paragraph).
METHOD_EXPLANATIONS = {
    "did_2x2": (
        "This analysis compares how much results changed between a 'before' and an 'after' period in schools that "
        "joined a trust or federation in between, with the change over the same years in schools that did not join."
    ),
    "did_twfe": (
        "This analysis compares the change in results after joining with the change in schools that had not joined, "
        "using every year of data in one regression with school and year effects."
    ),
    "event_study": (
        "This analysis follows schools year by year before and after they joined, against schools that had not "
        "joined, so that it shows whether any difference appeared only after joining."
    ),
    "did_staggered": (
        "This analysis compares each group of schools that joined in the same year with schools that had not (yet) "
        "joined, and averages these comparisons, which avoids the biases of simpler methods when schools join in "
        "different years."
    ),
    "psm": (
        "This analysis pairs each school that joined with similar schools that did not (similar prior attainment, "
        "intake and size before joining) and compares their later results."
    ),
    "multilevel": (
        "This analysis models pupils within schools, comparing pupils in schools that joined with similar pupils "
        "in schools that did not, allowing for schools differing from one another."
    ),
    "ipw": (
        "This analysis weights schools that did not join so that, taken together, they resemble the schools that "
        "joined before joining (prior attainment, intake and size), and compares their later results."
    ),
    "trust_effects": (
        "This analysis estimates, for each trust separately, how the results of its schools changed after joining "
        "compared with schools that did not join; because a trust has few schools, each p-value comes from "
        "comparing the trust with many placebo 'trusts' of the same size drawn from the comparison schools. The "
        "headline figures below are for the first trust listed: read the table for every trust."
    ),
    "meta_analysis": (
        "This analysis combines the per-trust effects into an overall effect, measures how much effects vary "
        "between trusts, and tests whether the type of collaboration, its depth or its size explain that variation."
    ),
}
NOT_SHOWN = (
    "It does not prove that joining caused the difference: schools chose to join, and anything else that changed "
    "for the same schools at the same time (academy conversion, a new head, national programmes) is part of this "
    "estimate. It is an average over the schools analysed; individual schools may have gained more, less or lost."
)

#: Words for each number of padlocks (ours, in the spirit of the EEF's "very limited" … "very high").
SECURITY_WORDS = ("Very limited security", "Very limited security", "Limited security", "Moderate security", "High security", "Very high security")


def outcome_words(name: str) -> tuple[str, str]:
    """(label, unit) of an outcome column, in words."""
    return (label(name) or "Outcome", OUTCOME_UNITS.get(name, "points"))


def subgroup_words(name: Any) -> str:
    text = str(name)
    base, _, rest = text.partition(" (")
    words = SUBGROUP_LABELS.get(base, base.replace("_", " ").capitalize())
    return f"{words} ({rest}" if rest else words


def method_words(method: str) -> str:
    return METHOD_LABELS.get(method, method.replace("_", " "))


def registered_summary(method: str) -> str:
    try:
        from evaltool.estimators.registry import get_method

        return get_method(method).summary
    except KeyError:
        return ""

