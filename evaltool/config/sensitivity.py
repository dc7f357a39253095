"""The ``sensitivity:`` block every analysis has: how wrong would the design's assumption have to be?

Every quasi-experiment rests on an assumption the data cannot prove (parallel trends for DiD, no unobserved
confounding for matching and regression).  The analyses in this block say how strong a violation would have
to be to change the answer; they are on by default, each where its method allows it:

* E-values (VanderWeele & Ding 2017) for every estimate with an effect size (columns ``e_value`` and
  ``e_value_ci`` of results.csv);
* Rosenbaum bounds (Rosenbaum 2002) for matched designs (``method: psm``), over the ``gamma`` grid, with the
  breakdown Γ;

(see :mod:`evaltool.sensitivity` for the computations and docs/configuration.md for the reading).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: Γ values of Rosenbaum's bounds by default (rbounds' examples use 1 to 3).
DEFAULT_GAMMA: tuple[float, ...] = (1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0)


class SensitivityOptions(BaseModel):
    """Sensitivity analyses of an analysis (the ``sensitivity:`` block of any method)."""

    # Same settings as config.models.ConfigModel (that module imports this one).
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    enabled: bool = True
    """Run the sensitivity analyses this method allows (default true); false skips them (E-values are always given)."""
    gamma: list[float] = Field(default_factory=lambda: list(DEFAULT_GAMMA), min_length=1, max_length=100)
    """Rosenbaum bounds (psm): the Γ grid, odds ratios ≥ 1 of hidden bias in treatment assignment within matched pairs."""
    alpha: float = Field(default=0.05, gt=0.0, lt=0.5)
    """Significance level at which a bound 'breaks down' (the breakdown Γ is the smallest Γ with p above it)."""

    @field_validator("gamma")
    @classmethod
    def _gamma_at_least_one(cls, value: list[float]) -> list[float]:
        bad = [g for g in value if not g >= 1.0]
        if bad:
            raise ValueError(f"every Γ must be a number ≥ 1 (1 = no hidden bias); got {bad}")
        return sorted(set(value))
