"""evaltool: quasi-experimental evaluation of inter-school collaboration.

The flow is linear: ``config`` (YAML → validated models) → ``data`` (load,
validate, panel) → ``estimators`` (one module per method, registered by name)
→ ``results`` (one result shape, written atomically) → ``report``.

The public API (documented in :mod:`evaltool.api`)::

    import evaltool
    run = evaltool.run("evaluation.yaml")            # every analysis of a config
    fit = evaltool.did_staggered(df, outcome="attainment8", unit="urn", time="year",
                                 cohort="join_year", trust="trust_id", control="never_treated")
    print(fit.summary()); fit.tidy(); fit.plot()
"""

from evaltool._version import __version__
from evaltool.api import (
    AnalysisResult,
    RunResult,
    did_2x2,
    did_staggered,
    did_twfe,
    event_study,
    ipw,
    load_config,
    meta_analysis,
    multilevel,
    psm,
    run,
    simulate,
    trust_effects,
)
from evaltool.errors import (
    ConfigError,
    DataError,
    EstimationError,
    EvaltoolError,
    EvaltoolWarning,
    OutputError,
)

__all__ = [
    "__version__",
    "run",
    "load_config",
    "did_2x2",
    "did_twfe",
    "event_study",
    "did_staggered",
    "psm",
    "ipw",
    "multilevel",
    "trust_effects",
    "meta_analysis",
    "simulate",
    "AnalysisResult",
    "RunResult",
    "EvaltoolError",
    "ConfigError",
    "DataError",
    "EstimationError",
    "OutputError",
    "EvaltoolWarning",
]
