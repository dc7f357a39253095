"""What a method's ``run`` receives: the data, its options and its random generator.

This module sits below every estimator and the pipeline (which builds the contexts), so estimators never
import :mod:`evaltool.pipeline`.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from evaltool.config.models import AnalysisBase
    from evaltool.config.root import Config
    from evaltool.data.panel import SchoolPanel
    from evaltool.data.study import StudyData


@dataclass(frozen=True)
class AnalysisContext:
    """What a method's ``run`` receives.

    Attributes
    ----------
    study
        All loaded data.
    spec
        The analysis block of the config (the method's options model).
    outcome
        The outcome column to analyse.
    rng
        Random generator for this analysis, derived from the config seed and
        the analysis name (adding an analysis does not change the others).
    config
        The whole config (for column roles and paths).
    """

    study: StudyData
    spec: AnalysisBase
    outcome: str
    rng: np.random.Generator
    config: Config

    @property
    def panel(self) -> SchoolPanel:
        return self.study.panel


def analysis_rng(seed: int, name: str) -> np.random.Generator:
    """Generator for one analysis: stable across runs and across added analyses."""
    return np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])
