"""Words for column names, so figures and tables never show raw column names."""

from __future__ import annotations

#: Labels for the columns of English school data that evaltool knows.
KNOWN_LABELS: dict[str, str] = {
    "attainment8": "Attainment 8 score",
    "att8": "Attainment 8 score",
    "progress8": "Progress 8 score",
    "ks2_prior": "KS2 prior attainment (scaled score)",
    "fsm_pct": "% disadvantaged pupils (FSM)",
    "eal_pct": "% pupils with English as an additional language",
    "sen_pct": "% pupils with special educational needs",
    "cohort_size": "Number of pupils in the year group",
    "distance": "Propensity score (logit)",
    "baseline_outcome": "Outcome before joining",
}


def label(column: str) -> str:
    """A readable label for ``column`` (known name, else words from the name)."""
    if column in KNOWN_LABELS:
        return KNOWN_LABELS[column]
    words = column.replace("_", " ").strip()
    return words[:1].upper() + words[1:]
