"""Data: load input files, validate them, and hold the school panel."""

from evaltool.data.panel import ASSESSED_YEARS, SchoolPanel
from evaltool.data.study import StudyData, load_study

__all__ = ["ASSESSED_YEARS", "SchoolPanel", "StudyData", "load_study"]
