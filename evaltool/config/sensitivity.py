"""The ``sensitivity:`` block every analysis has: how wrong would the design's assumption have to be?

Every quasi-experiment rests on an assumption the data cannot prove (parallel trends for DiD, no unobserved
confounding for matching and regression).  The analyses in this block say how strong a violation would have
to be to change the answer; they are on by default, each where its method allows it:

* E-values (VanderWeele & Ding 2017) for every estimate with an effect size (columns ``e_value`` and
  ``e_value_ci`` of results.csv);
* Rosenbaum bounds (Rosenbaum 2002) for matched designs (``method: psm``), over the ``gamma`` grid, with the
  breakdown Γ;
* Rambachan & Roth (2023) bounds for event studies (``event_study``, and ``did_staggered`` with
  ``base_period: universal``): smoothness (Δ^SD, FLCI) by default, relative magnitudes (Δ^RM, hybrid C-LF,
  seconds per M̄) when listed in ``restrictions``; the breakdown value;
* the power of the pre-trend test against linear violations (Roth 2022), beside every pre-trend test;
* robustness values with covariate benchmarks (Cinelli & Hazlett 2020) for the TWFE coefficient (``did_twfe``);

(see :mod:`evaltool.sensitivity` for the computations and docs/configuration.md for the reading).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: A Γ of Rosenbaum's bounds (odds ratio of hidden bias: 1 none, 20 beyond any plausible confounder).
Gamma = Annotated[float, Field(ge=1.0, le=1000.0)]
#: A value of a Rambachan-Roth grid (M̄ a multiple of the largest pre-joining violation; M points a year).
GridValue = Annotated[float, Field(ge=0.0, le=1e6)]
#: A placebo shift of the joining years, in whole years.
Shift = Annotated[int, Field(ge=1, le=20)]

#: Γ values of Rosenbaum's bounds by default (rbounds' examples use 1 to 3).
DEFAULT_GAMMA: tuple[float, ...] = (1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0)


class SensitivityOptions(BaseModel):
    """Sensitivity analyses of an analysis (the ``sensitivity:`` block of any method)."""

    # Same settings as config.models.ConfigModel (that module imports this one).
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    enabled: bool = True
    """Run the sensitivity analyses this method allows (default true); false skips them (E-values are always given)."""
    gamma: list[Gamma] = Field(default_factory=lambda: list(DEFAULT_GAMMA), min_length=1, max_length=100)
    """Rosenbaum bounds (psm): the Γ grid, odds ratios ≥ 1 of hidden bias in treatment assignment within matched pairs."""
    alpha: float = Field(default=0.05, gt=0.0, lt=0.5)
    """Significance level of the bounds: a bound 'breaks down' where its interval (or worst-case p-value) stops excluding no effect."""
    restrictions: list[Literal["smoothness", "relative_magnitudes"]] = Field(
        default_factory=lambda: ["smoothness"], max_length=2
    )
    """Rambachan-Roth bounds (event studies): 'smoothness' (default; FLCI, fast) and/or 'relative_magnitudes' (hybrid C-LF; about 12 s per mbar value)."""
    mbar: list[GridValue] = Field(default_factory=lambda: [0.0, 0.5, 1.0, 1.5, 2.0], min_length=1, max_length=50)
    """Relative magnitudes: post-joining violations at most mbar times the largest pre-joining one (grid, each ≥ 0)."""
    m: list[GridValue] | None = Field(default=None, min_length=1, max_length=50)
    """Smoothness: the slope of the differential trend changes by at most m outcome points a year (grid, each ≥ 0; default 5 values from 0 to HonestDiD's data-driven upper bound)."""
    target: Literal["first_post", "average_post"] = "first_post"
    """The effect the bounds are for: 'first_post' (the year of joining, e = 0, as HonestDiD) or 'average_post' (mean of the post-joining event times)."""
    placebo_outcome: str | None = None
    """An outcome joining cannot have changed (e.g. a measure fixed before joining): the analysis is rerun on it and its headline effect reported, which should be about zero. Must be listed in columns.outcomes."""
    placebo_shifts: list[Shift] = Field(default_factory=lambda: [1, 2], max_length=10)
    """did_staggered: placebo joining years this many years early (pre-joining years only); each should show no effect (adds to placebo_shift)."""
    pretrend_power: bool = True
    """Report the power of the pre-trend test against linear violations, the slopes it detects with 50% and 80% power and the bias they would cause (Roth 2022)."""

    @field_validator("gamma", "mbar", "m", "placebo_shifts", "restrictions")
    @classmethod
    def _sorted_unique(cls, value: list | None) -> list | None:
        """Grids (and restrictions) in order without repeats (each value's range is checked by its type)."""
        return None if value is None else sorted(set(value))
