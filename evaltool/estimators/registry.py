"""Registry of analysis methods.

A method module defines an options model (a subclass of
:class:`~evaltool.config.models.AnalysisBase` with ``method:
Literal["name"]``) and a ``run`` function, and calls :func:`register`.  The
config loader and the pipeline only ever go through this registry, so adding
an estimator never touches them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evaltool.config.models import AnalysisBase
    from evaltool.pipeline import AnalysisContext
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


_METHODS: dict[str, Method] = {}


def register(method: Method) -> Method:
    """Add a method to the registry (names must be unique)."""
    if method.name in _METHODS and _METHODS[method.name] is not method:
        raise ValueError(f"method {method.name!r} is registered twice")
    _METHODS[method.name] = method
    return method


def get_method(name: str) -> Method:
    """The method registered as ``name``."""
    _load_builtin()
    try:
        return _METHODS[name]
    except KeyError:
        raise KeyError(f"unknown method {name!r}; known methods: {', '.join(sorted(_METHODS))}") from None


def all_methods() -> list[Method]:
    """Every registered method, sorted by name."""
    _load_builtin()
    return [_METHODS[name] for name in sorted(_METHODS)]


def _load_builtin() -> None:
    # Importing the estimator packages registers their methods.
    import evaltool.estimators  # noqa: F401
