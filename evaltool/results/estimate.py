"""The one result shape every estimator returns.

An estimator produces :class:`EffectEstimate` rows (one per term, subgroup,
cohort, event time …) collected in an :class:`AnalysisResult` together with
its diagnostics and a :class:`SampleReport` of every exclusion.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

#: Columns of ``results.csv`` in order.  Later columns may be added at the end;
#: these are never renamed or removed (the results contract).
TIDY_COLUMNS: tuple[str, ...] = (
    "analysis",
    "method",
    "outcome",
    "estimand",
    "term",
    "subgroup",
    "estimate",
    "std_error",
    "ci_lower",
    "ci_upper",
    "p_value",
    "n_treated",
    "n_control",
    "n_obs",
    "ci_level",
    "inference",
    "effect_size",
    "effect_size_ci_lower",
    "effect_size_ci_upper",
    "cluster",
    "n_clusters",
    "se_correction",
    "se_method",
    "n_pupils_min",
    "e_value",
    "e_value_ci",
)


@dataclass(frozen=True)
class EffectEstimate:
    """One estimated effect.

    Parameters
    ----------
    term
        What is estimated, e.g. ``"treated:post"``, ``"ATT(2015,2017)"``,
        ``"event_time=2"``.
    estimand
        The population quantity, e.g. ``"ATT"``, ``"ATT(g,t)"``, ``"dynamic"``.
    estimate, std_error, ci_lower, ci_upper, p_value
        Point estimate and its uncertainty.  ``nan`` where not available (never
        a made-up number).
    n_treated, n_control, n_obs
        Units (schools, or pupils for pupil-level models) in each group and
        observations used.
    method
        Registered method name.
    outcome
        Outcome column.
    subgroup
        Pupil subgroup, ``"all"`` for the whole population.
    ci_level
        Confidence level of ``ci_lower``/``ci_upper``.
    inference
        How the standard error was obtained, in words (``"cluster-robust by
        school (412 clusters)"``).
    effect_size, effect_size_ci_lower, effect_size_ci_upper
        The estimate and its interval as a standardised effect size (Hedges'
        g); ``None`` where the outcome has no standardiser.
    cluster, n_clusters, se_correction, se_method
        The inference in fields (see :class:`evaltool.estimators.inference.Inference`): cluster level
        (``""`` when the method does not cluster), number of clusters, small-sample correction and variance
        method.  Every estimate with a standard error states them.
    n_pupils_min
        Pupils in the smaller of the two groups compared (treated / comparison), where the data say; the
        disclosure threshold applies to it (``None`` where unknown, e.g. school-level outcomes without counts).
    """

    term: str
    estimand: str
    estimate: float
    std_error: float
    ci_lower: float
    ci_upper: float
    p_value: float
    n_treated: int | None = None
    n_control: int | None = None
    n_obs: int | None = None
    method: str = ""
    outcome: str = ""
    subgroup: str = "all"
    ci_level: float = 0.95
    inference: str = ""
    effect_size: float | None = None
    effect_size_ci_lower: float | None = None
    effect_size_ci_upper: float | None = None
    cluster: str = ""
    n_clusters: int | None = None
    se_correction: str = ""
    se_method: str = ""
    n_pupils_min: int | None = None
    e_value: float | None = None
    e_value_ci: float | None = None

    @classmethod
    def from_normal(
        cls,
        *,
        term: str,
        estimand: str,
        estimate: float,
        std_error: float,
        ci_level: float = 0.95,
        df: float | None = None,
        **kwargs: Any,
    ) -> EffectEstimate:
        """Build an estimate with a Wald CI and two-sided p-value.

        Uses the normal distribution, or Student's t with ``df`` degrees of
        freedom when given (e.g. G − 1 for G clusters).
        """
        estimate = float(estimate)
        std_error = float(std_error)
        if not math.isfinite(std_error) or std_error <= 0:
            crit = z = p = math.nan
        else:
            # The special functions scipy.stats.norm / scipy.stats.t call, without building a
            # distribution object per estimate (same values, far cheaper when methods emit hundreds).
            z = estimate / std_error
            if df is None:
                crit = float(special.ndtri(0.5 + ci_level / 2))
                p = float(2 * special.ndtr(-abs(z)))
            else:
                crit = float(special.stdtrit(df, 0.5 + ci_level / 2))
                p = float(2 * special.stdtr(df, -abs(z)))
        return cls(
            term=term,
            estimand=estimand,
            estimate=estimate,
            std_error=std_error,
            ci_lower=estimate - crit * std_error,
            ci_upper=estimate + crit * std_error,
            p_value=p,
            ci_level=ci_level,
            **kwargs,
        )

    def with_context(self, **kwargs: Any) -> EffectEstimate:
        """Return a copy with some fields replaced (e.g. method, outcome)."""
        values = asdict(self)
        values.update(kwargs)
        return EffectEstimate(**values)

    def covers(self, value: float) -> bool:
        """Whether ``value`` lies inside the confidence interval."""
        return bool(self.ci_lower <= value <= self.ci_upper)


ESTIMATE_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(EffectEstimate))


@dataclass(frozen=True)
class Exclusion:
    """Rows or units left out of an analysis, with the reason.

    ``stage`` says where it happened (``"data"`` for file-level checks,
    otherwise the analysis name); ``unit`` is what ``n_units`` counts
    (``"schools"``, ``"pupils"``, ``"treated schools"`` …).  ``attrition``
    marks units the design meant to analyse but lost (missing outcome or
    covariate, treated school without a match or outside common support,
    school dropped to balance a panel); exclusions that define the design
    (years or cohorts not used, unmatched comparison schools, small subgroup
    cells) are not attrition.  The evidence-security rating counts only
    attrition.
    """

    reason: str
    n_rows: int
    n_units: int | None = None
    unit: str = "schools"
    stage: str = "data"
    detail: str = ""
    changes_estimand: bool = False
    attrition: bool = False


@dataclass
class SampleReport:
    """Who was analysed and who was left out, and why."""

    n_rows_in: int = 0
    n_rows_used: int = 0
    n_units_used: int | None = None
    exclusions: list[Exclusion] = field(default_factory=list)

    def exclude(
        self,
        reason: str,
        n_rows: int,
        n_units: int | None = None,
        *,
        unit: str = "schools",
        stage: str = "data",
        detail: str = "",
        changes_estimand: bool = False,
        attrition: bool = False,
    ) -> None:
        """Record an exclusion; zero-row exclusions are not recorded."""
        if n_rows <= 0 and not n_units:
            return
        self.exclusions.append(
            Exclusion(
                reason=reason,
                n_rows=int(n_rows),
                n_units=None if n_units is None else int(n_units),
                unit=unit,
                stage=stage,
                detail=detail,
                changes_estimand=changes_estimand,
                attrition=attrition,
            )
        )

    def extend(self, other: SampleReport) -> None:
        """Append another report's exclusions (e.g. data-stage ones)."""
        self.exclusions.extend(other.exclusions)

    @property
    def n_rows_excluded(self) -> int:
        return sum(e.n_rows for e in self.exclusions)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(e) for e in self.exclusions], columns=[f.name for f in fields(Exclusion)])

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_rows_in": int(self.n_rows_in),
            "n_rows_used": int(self.n_rows_used),
            "n_units_used": None if self.n_units_used is None else int(self.n_units_used),
            "exclusions": [asdict(e) for e in self.exclusions],
        }


@dataclass
class AnalysisResult:
    """Everything one analysis produced.

    Parameters
    ----------
    analysis, method, outcome
        Which analysis of the config this is.
    estimates
        The effect rows (possibly several: cohorts, event times, subgroups).
    diagnostics
        JSON-serialisable diagnostics (balance table, pre-trend test …).
        Plot functions in :mod:`evaltool.report` read them.
    sample
        Counts used and excluded, by reason.
    warnings
        Messages the reader of the results must see.
    status
        ``"ok"`` or ``"failed"`` (then ``error`` says why and ``estimates`` is
        empty).
    """

    analysis: str
    method: str
    outcome: str = ""
    estimates: list[EffectEstimate] = field(default_factory=list)
    diagnostics: dict[str, Any] = field(default_factory=dict)
    sample: SampleReport = field(default_factory=SampleReport)
    warnings: list[str] = field(default_factory=list)
    status: str = "ok"
    error: str | None = None

    def tidy(self) -> pd.DataFrame:
        """One row per estimate with the fixed :data:`TIDY_COLUMNS`."""
        rows = [
            {**asdict(e), "analysis": self.analysis, "method": e.method or self.method, "outcome": e.outcome or self.outcome}
            for e in self.estimates
        ]
        frame = pd.DataFrame(rows, columns=list(TIDY_COLUMNS))
        return frame.astype({"n_treated": "Int64", "n_control": "Int64", "n_obs": "Int64", "n_clusters": "Int64", "n_pupils_min": "Int64"})

    def estimate(self, term: str | None = None, subgroup: str = "all") -> EffectEstimate:
        """The single estimate for ``term`` (the first one if ``None``)."""
        for e in self.estimates:
            if (term is None or e.term == term) and e.subgroup == subgroup:
                return e
        raise KeyError(f"no estimate with term={term!r} and subgroup={subgroup!r} in analysis {self.analysis!r}")

    def summary(self) -> str:
        """A short plain-text summary (for logs and the CLI)."""
        if self.status != "ok":
            return f"{self.analysis} ({self.method}): FAILED: {self.error}"
        lines = [f"{self.analysis} ({self.method}, outcome {self.outcome})"]
        for e in self.estimates:
            lines.append(
                f"  {e.term:<28} {e.estimate:9.3f}  SE {e.std_error:7.3f}  "
                f"{int(e.ci_level * 100)}% CI [{e.ci_lower:.3f}, {e.ci_upper:.3f}]  p={e.p_value:.3g}"
            )
        for w in self.warnings:
            lines.append(f"  warning: {w}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "analysis": self.analysis,
            "method": self.method,
            "outcome": self.outcome,
            "status": self.status,
            "error": self.error,
            "estimates": [asdict(e) for e in self.estimates],
            "sample": self.sample.to_dict(),
            "diagnostics": to_jsonable(self.diagnostics),
            "warnings": list(self.warnings),
        }


def to_jsonable(value: Any) -> Any:
    """Convert numpy / pandas values to plain JSON types, recursively.

    Non-finite floats become ``None`` so ``results.json`` is valid JSON.
    """
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, pd.DataFrame):
        return {"columns": [str(c) for c in value.columns], "data": to_jsonable(value.to_numpy(dtype=object).tolist())}
    if isinstance(value, pd.Series):
        return to_jsonable(value.to_dict())
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return f if math.isfinite(f) else None
    if value is pd.NA or value is pd.NaT:
        return None
    return value
