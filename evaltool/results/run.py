"""The results of every analysis of one config (what the pipeline returns and the writer writes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from evaltool.results.estimate import TIDY_COLUMNS, AnalysisResult

if TYPE_CHECKING:
    from evaltool.config.root import Config
    from evaltool.data.study import StudyData


@dataclass
class RunResult:
    """The results of every analysis of one config."""

    config: Config
    study: StudyData
    analyses: list[AnalysisResult]
    started_at: str
    timings: dict[str, float] = field(default_factory=dict)

    def tidy(self) -> pd.DataFrame:
        """All estimates, one row each (the content of ``results.csv``)."""
        frames = [a.tidy() for a in self.analyses if a.estimates]
        if not frames:
            return pd.DataFrame(columns=list(TIDY_COLUMNS))
        return pd.concat(frames, ignore_index=True)

    @property
    def failed(self) -> list[AnalysisResult]:
        return [a for a in self.analyses if a.status != "ok"]

    @property
    def exit_code(self) -> int:
        """0 if every analysis ran; otherwise the worst failure's code."""
        return max((a.diagnostics.get("exit_code", 1) for a in self.failed), default=0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.config.title,
            "seed": self.config.seed,
            "data": self.study.summary(),
            "analyses": [a.to_dict() for a in self.analyses],
        }
