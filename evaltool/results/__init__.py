"""Result types shared by every estimator, and the output-folder writer."""

from evaltool.results.estimate import (
    TIDY_COLUMNS,
    AnalysisResult,
    EffectEstimate,
    Exclusion,
    SampleReport,
    to_jsonable,
)

__all__ = ["TIDY_COLUMNS", "AnalysisResult", "EffectEstimate", "Exclusion", "SampleReport", "to_jsonable"]
