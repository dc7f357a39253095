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


#: Relative-magnitudes breakdown below which a significant DiD finding counts as fragile: post-joining violations
#: half the size of the largest pre-joining one would explain it.
FRAGILE_MBAR = 0.5
TARGET_WORDS = {"first_post": "the effect in the year of joining", "average_post": "the average effect after joining"}


def honest_lines(block: dict) -> list[str]:
    """Rambachan & Roth (2023) bounds in plain words, one sentence per restriction computed."""
    lines = []
    target = TARGET_WORDS.get(str(block.get("target")), "the effect")
    for restriction, bounds in (block.get("honest") or {}).items():
        if not isinstance(bounds, dict):
            continue
        if not bounds.get("available"):
            lines.append(f"Parallel trends ({restriction.replace('_', ' ')} bounds, Rambachan & Roth 2023) not "
                         f"computed: {bounds.get('reason', 'no reason given')}.")
            continue
        value, status = bounds.get("breakdown"), bounds.get("breakdown_status")
        if restriction == "relative_magnitudes":
            measure = "post-joining violations of parallel trends up to {v:.2f} times the largest pre-joining one"
        else:
            measure = ("a differential trend whose slope may change by up to {v:.3g} points a year from one year to the "
                       "next (smoothness M; M = 0 allows a linear pre-joining trend to continue)")
        if status == "not_significant" or not is_number(value):
            lines.append(f"Parallel trends (Rambachan & Roth 2023): {target} is not significant once "
                         f"{restriction.replace('_', ' ')} violations are allowed at all (its robust interval "
                         "includes no effect at the smallest value).")
            continue
        beyond = " (the whole grid; it may survive more)" if status == "beyond_grid" else ""
        lines.append(f"Parallel trends (Rambachan & Roth 2023): {target} stays significant with "
                     f"{measure.format(v=value)}{beyond}.")
    return lines


def power_line(power: dict) -> str | None:
    """Roth (2022): what the pre-trend test could have detected, and the bias it could have missed."""
    if not isinstance(power, dict):
        return None
    if not power.get("available"):
        return f"Power of the pre-trend test (Roth 2022) not computed: {power.get('reason', 'no reason given')}."
    s50, s80 = power.get("slope_50"), power.get("slope_80")
    conditional, unconditional = power.get("bias_conditional"), power.get("bias_unconditional")
    if not (is_number(s50) and is_number(s80)):
        return None
    text = (f"Power of the pre-trend test (Roth 2022): it detects a linear pre-joining trend of {s80:.3g} points a "
            f"year 80% of the time and one of {s50:.3g} only half the time")
    if is_number(conditional):
        text += f"; a trend of {s50:.3g} a year that passed the test would bias the estimate by {conditional:+.3g} points"
    elif is_number(unconditional):
        text += f"; a trend of {s50:.3g} a year would bias the estimate by {unconditional:+.3g} points"
    return text + ". No significant pre-trend is not proof of parallel trends."


def placebo_lines(years: Any, outcome: Any) -> list[str]:
    """Placebo joining years and a placebo outcome: each should show no effect."""
    lines = []
    if isinstance(years, list):
        parts = []
        for test in years:
            if not isinstance(test, dict):
                continue
            est, p = test.get("estimate"), test.get("p_value")
            if is_number(est) and is_number(p):
                parts.append(f"{test.get('shift')} year{'s' if test.get('shift') != 1 else ''} early: {est:+.2f} "
                             f"(p = {p:.3f})")
            else:
                parts.append(f"{test.get('shift')} years early: not estimable")
        if parts:
            flagged = [t for t in years if isinstance(t, dict) and is_number(t.get("p_value")) and t["p_value"] < 0.05]
            verdict = ("a placebo shows an 'effect' before anyone joined: the design picks up something else"
                       if flagged else "no placebo shows an effect, as it should not")
            lines.append("Placebo joining years (only years before joining): " + "; ".join(parts) + f"; {verdict}.")
    if isinstance(outcome, dict):
        if not outcome.get("available"):
            lines.append(f"Placebo outcome {outcome.get('outcome')}: not estimable ({outcome.get('reason')}).")
        elif is_number(outcome.get("estimate")) and is_number(outcome.get("p_value")):
            verdict = ("it shows an effect joining cannot have caused: be cautious" if outcome.get("rejects_no_effect")
                       else "no effect, as there should not be")
            lines.append(f"Placebo outcome {outcome['outcome']} (joining cannot have changed it): {outcome['estimate']:+.2f} "
                         f"(p = {outcome['p_value']:.3f}); {verdict}.")
    return lines


def pre_joining_line(change: dict | None, anticipation: Any) -> str | None:
    """Whether outcomes already moved in the year before joining (anticipation; EPI 2017)."""
    if not (isinstance(change, dict) and change.get("available")):
        return None
    value, p = change.get("change"), change.get("p_value")
    if not (is_number(value) and is_number(p)):
        return None
    allowed = f" (anticipation: {int(anticipation)} year{'s' if anticipation != 1 else ''} allowed)" \
        if is_number(anticipation) else ""
    if change.get("moves"):
        return (f"The year before joining already moves{allowed}: outcomes changed by {value:+.2f} points from two years "
                f"before joining to one year before (p = {p:.3f}), more than the comparison schools. English schools "
                "often improve in the year before converting (EPI 2017): anticipation or a temporary high point. If "
                "it is anticipation, set anticipation: 1 so the base year is before it.")
    return (f"The year before joining does not move{allowed}: outcomes changed by {value:+.2f} points from two years "
            f"before joining to one year before, relative to the comparison schools (p = {p:.3f}).")


def robustness_line(values: dict | None) -> str | None:
    """Cinelli & Hazlett (2020) robustness values and the strongest benchmark, in plain words."""
    if not (isinstance(values, dict) and values.get("available")):
        return None
    rv, rv_alpha, r2 = values.get("rv_q"), values.get("rv_q_alpha"), values.get("partial_r2")
    if not (is_number(rv) and is_number(rv_alpha)):
        return None
    text = (f"Omitted variables (robustness value, Cinelli & Hazlett 2020): an unobserved confounder would have to "
            f"explain {rv:.1%} of the remaining variation of both joining and the outcome to remove the effect, "
            f"{rv_alpha:.1%} to make it no longer significant (joining explains {r2:.1%} of the outcome's)")
    sentences = values.get("sentences") or []
    return text + (". " + " ".join(str(x) for x in sentences[:3]) if sentences else ".")


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
        lines += honest_lines(block)
        line = robustness_line(block.get("robustness"))
        if line:
            lines.append(line)
        line = power_line(block.get("pretrend_power"))
        if line:
            lines.append(line)
        lines += placebo_lines(block.get("placebo_years"), block.get("placebo_outcome"))
        line = pre_joining_line(block.get("pre_joining_year"), block.get("anticipation"))
        if line:
            lines.append(line)
        if block.get("note"):
            lines.append(str(block["note"]))
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
    honest = block.get("honest") if isinstance(block, dict) else None
    for restriction, bounds in (honest or {}).items():
        if not (isinstance(bounds, dict) and bounds.get("available")):
            continue
        original = bounds.get("original") or {}
        lo, hi = original.get("lb"), original.get("ub")
        significant = is_number(lo) and is_number(hi) and (lo > 0 or hi < 0)
        if not significant:
            continue
        if bounds.get("breakdown_status") == "not_significant":
            return f"{restriction.replace('_', ' ')} breakdown", 0.0
        value = bounds.get("breakdown")
        if restriction == "relative_magnitudes" and is_number(value) and value < FRAGILE_MBAR:
            return "relative magnitudes breakdown M̄", float(value)
    return None


def measured(diagnostics: dict) -> dict[str, Any]:
    """The breakdown values an analysis measured (for the security rating's line)."""
    block = diagnostics.get("sensitivity") if isinstance(diagnostics, dict) else None
    out: dict[str, Any] = {}
    bounds = block.get("rosenbaum") if isinstance(block, dict) else None
    if isinstance(bounds, dict) and bounds.get("available") and is_number(bounds.get("breakdown_gamma")):
        out["Rosenbaum breakdown Γ"] = float(bounds["breakdown_gamma"])
    honest = block.get("honest") if isinstance(block, dict) else None
    names = {"relative_magnitudes": "relative magnitudes breakdown M̄", "smoothness": "smoothness breakdown M"}
    for restriction, bounds in (honest or {}).items():
        if isinstance(bounds, dict) and bounds.get("available"):
            value = bounds.get("breakdown")
            out[names.get(restriction, restriction)] = (
                0.0 if bounds.get("breakdown_status") == "not_significant" or not is_number(value) else float(value))
    return out
