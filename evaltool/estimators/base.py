"""What an analysis method is: its options model, its ``run`` function and what it needs.

A method's front end (``did/method_2x2.py``, ``psm/method.py`` …) defines one :class:`Method`; the
registry (:mod:`evaltool.estimators.registry`) lists them.  This module imports nothing of evaltool at
run time, so the front ends, the registry and the config loader can all depend on it without a cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evaltool.config.models import AnalysisBase
    from evaltool.estimators.context import AnalysisContext
    from evaltool.results import AnalysisResult


@dataclass(frozen=True)
class Method:
    """A registered analysis method.

    Parameters
    ----------
    name
        The value of ``method:`` in the config.
    options
        Pydantic model of the analysis block.
    run
        ``run(context) -> AnalysisResult``; raises :class:`EstimationError`
        (or ``DataError``) with a message naming the option to change.
    summary
        One line shown by ``evaltool schema`` and in the docs.
    figures
        Optional ``figures(result) -> {name: matplotlib Figure}``; the
        pipeline saves each as PNG and SVG.
    needs
        Data sources the method requires beyond the panel (``"pupils"``,
        ``"subgroups"``, ``"trusts"``); checked before anything runs.
    """

    name: str
    options: type[AnalysisBase]
    run: Callable[[AnalysisContext], AnalysisResult]
    summary: str = ""
    figures: Callable[[AnalysisResult], dict[str, Any]] | None = None
    needs: tuple[str, ...] = field(default_factory=tuple)
