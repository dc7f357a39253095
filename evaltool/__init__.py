"""evaltool: quasi-experimental evaluation of inter-school collaboration.

The flow is linear: ``config`` (YAML → validated models) → ``data`` (load,
validate, panel) → ``estimators`` (one module per method, registered by name)
→ ``results`` (one result shape, written atomically) → ``report``.
"""

from evaltool._version import __version__

__all__ = ["__version__"]
