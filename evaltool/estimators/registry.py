"""Registry of analysis methods.

A method's front end defines an options model (a subclass of
:class:`~evaltool.config.models.AnalysisBase` with ``method:
Literal["name"]``), a ``run`` function and a :class:`~evaltool.estimators.base.Method`
that binds them; :func:`_builtin` lists the built-in ones and :func:`register` adds
others.  The config loader and the pipeline only ever go through this registry, so
adding an estimator never touches them.

The registry imports the front ends, never the reverse, so there is no import cycle
between the config loader, the registry and the estimators.
"""

from __future__ import annotations

from evaltool.estimators.base import Method

__all__ = ["Method", "all_methods", "get_method", "register"]

_METHODS: dict[str, Method] = {}


def register(method: Method) -> Method:
    """Add a method to the registry (names must be unique)."""
    _load_builtin()
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
    """Add the built-in methods (imported on first use: the estimators are slow to import)."""
    if _METHODS:
        return
    for method in _builtin():
        _METHODS[method.name] = method


def _builtin() -> tuple[Method, ...]:
    """The methods evaltool ships, one per front end."""
    from evaltool.estimators.did.method_2x2 import DID_2X2
    from evaltool.estimators.did.method_event_study import EVENT_STUDY
    from evaltool.estimators.did.method_staggered import DID_STAGGERED
    from evaltool.estimators.did.method_twfe import DID_TWFE
    from evaltool.estimators.multilevel.method import MULTILEVEL
    from evaltool.estimators.psm.ipw import IPW
    from evaltool.estimators.psm.method import PSM
    from evaltool.estimators.synthesis.method import META_ANALYSIS, TRUST_EFFECTS

    return (DID_2X2, DID_TWFE, EVENT_STUDY, DID_STAGGERED, PSM, IPW, TRUST_EFFECTS, META_ANALYSIS, MULTILEVEL)
