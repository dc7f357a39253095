"""The report's "How sure are we?" section: each headline estimate's sensitivity, in plain words.

Reads what the analyses wrote (the E-value columns of the headline estimate and
``diagnostics.sensitivity``) from the disclosure-controlled payload; a value withheld there is not
described.  The sentences say how strong a violation of the design's assumption would have to be to change
the answer, with the reference of each measure.
"""

from __future__ import annotations

from typing import Any

from evaltool.report.formatting import is_number

#: Rosenbaum's Γ below which a significant matched finding counts as fragile (costs a padlock; see
#: :mod:`evaltool.report.security`): hidden bias raising the odds of joining by a quarter would explain it.
FRAGILE_GAMMA = 1.25


def rosenbaum_line(bounds: dict) -> str | None:
    """Rosenbaum bounds (matched designs) in one sentence, or why they were not computed."""
    if not isinstance(bounds, dict):
        return None
    if not bounds.get("available"):
        reason = str(bounds.get("reason") or "not computed")
        return f"Rosenbaum bounds (hidden bias in who joined) were not computed: {reason}"
    gamma = bounds.get("breakdown_gamma")
    p_values = bounds.get("p_upper") or []
    alpha = bounds.get("alpha", 0.05)
    if not (is_number(gamma) and p_values and is_number(p_values[0])):
        return None
    if p_values[0] > alpha:
        return ("Rosenbaum bounds: the matched differences are not significant even without hidden bias (Γ = 1), "
                "so there is no finding for hidden bias to explain away.")
    strength = "fragile" if gamma < FRAGILE_GAMMA else ("moderately robust" if gamma < 2 else "robust")
    return (
        f"Hidden bias (Rosenbaum 2002): the matched comparison stays significant unless an unmeasured difference "
        f"between schools multiplies the odds of joining within matched pairs by {gamma:.2f} or more "
        f"(breakdown Γ; {strength}). {bounds.get('note', '')}".strip()
    )


def evalue_line(estimate: dict) -> str | None:
    """The headline's E-values (VanderWeele & Ding 2017) in one sentence."""
    value, limit = estimate.get("e_value"), estimate.get("e_value_ci")
    if not is_number(value):
        return None
    text = (
        f"Unmeasured confounding (E-value, VanderWeele & Ding 2017): to explain the effect away, an unmeasured "
        f"factor would have to be associated with both joining and the outcome by a risk ratio of at least "
        f"{value:.2f} each, beyond the measured covariates"
    )
    if is_number(limit):
        text += (" (the interval already includes no effect)." if limit <= 1.0 else
                 f"; {limit:.2f} to move the confidence interval to include no effect.")
    else:
        text += "."
    return text


def sensitivity_lines(analysis: dict, headline: dict | None) -> list[str]:
    """The sentences of one analysis's "How sure are we?" entry (empty when it measured nothing)."""
    lines: list[str] = []
    block = (analysis.get("diagnostics") or {}).get("sensitivity")
    if isinstance(block, dict):
        line = rosenbaum_line(block.get("rosenbaum"))
        if line:
            lines.append(line)
    if headline is not None:
        line = evalue_line(headline)
        if line:
            lines.append(line)
    return lines


def fragile_breakdown(diagnostics: dict) -> tuple[str, float] | None:
    """(measure, breakdown value) when a significant finding breaks down easily, else ``None``."""
    block = diagnostics.get("sensitivity") if isinstance(diagnostics, dict) else None
    bounds = block.get("rosenbaum") if isinstance(block, dict) else None
    if isinstance(bounds, dict) and bounds.get("available"):
        gamma, p_values = bounds.get("breakdown_gamma"), bounds.get("p_upper") or []
        significant = bool(p_values) and is_number(p_values[0]) and p_values[0] <= bounds.get("alpha", 0.05)
        if significant and is_number(gamma) and gamma < FRAGILE_GAMMA:
            return "Rosenbaum breakdown Γ", float(gamma)
    return None


def measured(diagnostics: dict) -> dict[str, Any]:
    """The breakdown values an analysis measured (for the security rating's line)."""
    block = diagnostics.get("sensitivity") if isinstance(diagnostics, dict) else None
    out: dict[str, Any] = {}
    bounds = block.get("rosenbaum") if isinstance(block, dict) else None
    if isinstance(bounds, dict) and bounds.get("available") and is_number(bounds.get("breakdown_gamma")):
        out["Rosenbaum breakdown Γ"] = float(bounds["breakdown_gamma"])
    return out
