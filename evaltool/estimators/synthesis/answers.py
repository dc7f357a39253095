"""Plain-language answers to the Campbell review questions from a meta-analysis's diagnostics.

Connolly et al. (2015–2018) ask: (1) do collaborations improve outcomes; (2) do types differ; (3) which
characteristics optimise effects; (4) do effects differ by pupil group, and does that vary by type.  The
sentences only restate the estimates (with their uncertainty); the report decides how to show them.
"""

from __future__ import annotations

import pandas as pd

from evaltool.labels import label

#: Moderators that describe the kind of collaboration (question 2); other moderators answer question 3.
TYPE_MODERATORS = ("collaboration_type", "federation_form")


def _num(value: float) -> str:
    return f"{value:.2f}"


def _p(value: float) -> str:
    return "p < 0.001" if value < 0.001 else f"p = {value:.3f}"


def review_answers(diagnostics: dict, outcome: str, *, gap: tuple[str, str] | None = None) -> dict[str, str]:
    """Sentences keyed ``overall``, ``types``, ``characteristics`` (when moderators allow).

    Parameters
    ----------
    diagnostics
        The ``meta_analysis`` diagnostics (``pooled``, ``heterogeneity``, optionally ``meta_regression``,
        ``by_level``).
    gap
        The two subgroups when the pooled effects are effects on a subgroup gap (question 4).
    """
    pooled, het = diagnostics["pooled"], diagnostics["heterogeneity"]
    level = int(round(pooled["ci_level"] * 100))
    words = label(outcome)
    what = f"the gap in {words} between {gap[0].replace('_', ' ')} and {gap[1].replace('_', ' ')} pupils" if gap else words
    answers = {
        "overall": (
            f"Across {het['k']} collaborations, joining changed {what} by {_num(pooled['estimate'])} points on "
            f"average ({level}% CI {_num(pooled['ci_lower'])} to {_num(pooled['ci_upper'])}). Effects "
            f"{'vary' if het['Q_p_value'] < 0.05 else 'do not clearly vary'} between collaborations (tau = {_num(het['tau'])}, I² = {het['I2_percent']:.0f}%, Q test "
            f"{_p(het['Q_p_value'])}): a new collaboration's effect is expected between "
            f"{_num(pooled['prediction_lower'])} and {_num(pooled['prediction_upper'])} ({level}% prediction interval)."
        )
    }
    regression = diagnostics.get("meta_regression")
    if regression is None:
        return _as_gap_answer(answers) if gap else answers
    tests = _frame(regression["moderator_tests"]).set_index("moderator")
    coefficients = _frame(regression["coefficients"]).set_index("term")
    by_level = diagnostics.get("by_level", {})
    type_sentences = []
    for moderator in [m for m in TYPE_MODERATORS if m in tests.index]:
        levels = _frame(by_level[moderator]) if moderator in by_level else pd.DataFrame()
        pooled_levels = levels[levels.get("status", pd.Series(dtype=str)) == "pooled"] if len(levels) else levels
        detail = "; ".join(f"{row.level} {_num(row.estimate)}" for row in pooled_levels.itertuples()) if len(
            pooled_levels) else ""
        type_sentences.append(
            f"By {moderator.replace('_', ' ')}, effects {'differ' if tests.loc[moderator, 'p_value'] < 0.05 else 'do not clearly differ'} "
            f"(test of the moderator, other moderators held fixed: {_p(tests.loc[moderator, 'p_value'])})"
            + (f"; pooled within each: {detail}" if detail else "") + "."
        )
    if type_sentences:
        answers["types"] = " ".join(type_sentences)
    others = [m for m in tests.index if m not in TYPE_MODERATORS]
    if others:
        parts = []
        for moderator in others:
            terms = [t for t in coefficients.index if t == moderator or t.startswith(moderator + "=")]
            if len(terms) == 1 and terms[0] == moderator:
                row = coefficients.loc[moderator]
                parts.append(f"{moderator.replace('_', ' ')}: {_num(row['estimate'])} points per unit "
                             f"({level}% CI {_num(row['ci_lower'])} to {_num(row['ci_upper'])}, {_p(row['p_value'])})")
            else:
                parts.append(f"{moderator.replace('_', ' ')}: {_p(tests.loc[moderator, 'p_value'])}")
        answers["characteristics"] = (
            "Characteristics, each holding the other moderators fixed — " + "; ".join(parts)
            + f". Together the moderators explain {regression['R2_percent']:.0f}% of the between-collaboration "
            "variance."
            + (" Depth scores run from 0 (no checklist item) to 1 (every item)." if any(
                m.startswith("depth_") for m in others) else "")
        )
    return _as_gap_answer(answers) if gap else answers


def _as_gap_answer(answers: dict[str, str]) -> dict[str, str]:
    """Answers about a subgroup gap all answer the review's question 4 (pupil groups, and by type)."""
    return {"subgroups": " ".join(answers.values())}


def _frame(value) -> pd.DataFrame:
    if isinstance(value, pd.DataFrame):
        return value
    return pd.DataFrame(value["data"], columns=value["columns"])
