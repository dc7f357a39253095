"""The linear flow: config → data → analyses → results folder.

:func:`run_analyses` estimates (no files); :func:`execute` also writes the
output folder atomically.  Neither prints: the CLI does.
"""

from __future__ import annotations

import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from evaltool.config import AnalysisBase, Config
from evaltool.config.paths import input_paths
from evaltool.data import StudyData, load_study
from evaltool.errors import ConfigError, DataError, EstimationError
from evaltool.estimators.context import AnalysisContext, analysis_rng
from evaltool.estimators.heterogeneity import post_process
from evaltool.estimators.registry import get_method
from evaltool.results import AnalysisResult
from evaltool.results.run import RunResult

#: AnalysisContext, analysis_rng and RunResult are defined below the estimators (which never import the pipeline);
#: the pipeline builds and returns them.
__all__ = ["AnalysisContext", "RunResult", "analysis_rng", "check_requirements", "execute", "input_paths", "run_analyses"]


def check_requirements(config: Config, study: StudyData) -> None:
    """Fail before estimating anything if an analysis needs data that is not there."""
    problems = []
    for i, spec in enumerate(config.analyses):
        method = get_method(spec.method)
        for need in method.needs:
            if getattr(study, need, None) is None:
                problems.append(
                    f"{config.where(('analyses', i, 'method'))}: method '{spec.method}' needs data.{need}; "
                    f"add data.{need} to the config."
                )
    if problems:
        raise ConfigError("The config cannot run as written:\n" + "\n".join(f"  - {p}" for p in problems))


def run_analyses(config: Config, study: StudyData | None = None) -> RunResult:
    """Load the data (unless given) and run every analysis.

    An analysis that fails is recorded with ``status='failed'`` and its
    message; the others still run.  Errors in the config or data raise before
    any analysis runs.
    """
    started = datetime.now(UTC).isoformat(timespec="seconds")
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    study = study if study is not None else load_study(config)
    timings["load_data"] = time.perf_counter() - t0
    check_requirements(config, study)
    results = []
    for spec in config.analyses:
        outcome = config.analysis_outcomes(spec)
        t0 = time.perf_counter()
        results.append(_run_one(config, study, spec, outcome))
        timings[f"analysis:{spec.name}"] = time.perf_counter() - t0
    return RunResult(config=config, study=study, analyses=results, started_at=started, timings=timings)


def run_analysis(config: Config, study: StudyData, spec: AnalysisBase, outcome: str | None = None) -> AnalysisResult:
    """Run one analysis of ``config`` on ``study`` and return its result (the Python API's path).

    Raises
    ------
    EvaltoolError
        ``ConfigError``/``DataError`` for what the user must change, ``EstimationError`` for an estimation
        that cannot be done, also for a numerical failure the estimator did not foresee (a singular matrix in
        one cell, an overflow …), chained to the numpy error.
    """
    outcome = outcome if outcome is not None else config.analysis_outcomes(spec)
    method = get_method(spec.method)
    context = AnalysisContext(study=study, spec=spec, outcome=outcome, rng=analysis_rng(config.seed, spec.name), config=config)
    try:
        result = post_process(method, context, method.run(context))
    except (np.linalg.LinAlgError, ArithmeticError) as exc:
        raise EstimationError(
            f"numerical failure ({type(exc).__name__}: {exc}). Often a covariate that is constant or collinear in "
            "part of the sample; remove covariates from this analysis or rerun with --debug for details."
        ) from exc
    result.sample.extend(study.panel.report)
    return result


def _run_one(config: Config, study: StudyData, spec: AnalysisBase, outcome: str) -> AnalysisResult:
    """Run one analysis; any failure inside it becomes a recorded failed analysis, never the end of the run."""
    try:
        return run_analysis(config, study, spec, outcome)
    except (EstimationError, DataError, ConfigError) as exc:
        numerical = exc.__cause__ if isinstance(exc.__cause__, (np.linalg.LinAlgError, ArithmeticError)) else None
        return _failed(spec, outcome, str(exc), exc.exit_code, numerical)
    except MemoryError as exc:
        return _failed(spec, outcome, "out of memory; use fewer bootstrap draws, permutations or a smaller sample.", 1, exc)
    except Exception as exc:  # a bug in evaltool must not take the other analyses down with it
        return _failed(spec, outcome, f"internal error ({type(exc).__name__}: {exc}); please report it.", 1, exc)


def _failed(spec: AnalysisBase, outcome: str, message: str, code: int, exc: BaseException | None = None) -> AnalysisResult:
    diagnostics: dict[str, Any] = {"exit_code": code}
    if exc is not None:
        diagnostics["exception"] = type(exc).__name__
        diagnostics["traceback"] = "".join(traceback.format_exception(exc)[-6:])
    return AnalysisResult(
        analysis=spec.name, method=spec.method, outcome=outcome, status="failed", error=message, diagnostics=diagnostics
    )


def execute(config: Config, out: Path | None = None, *, overwrite: bool | None = None) -> tuple[RunResult, Path]:
    """Run every analysis and write the output folder atomically.

    The output folder is checked before any analysis runs: it may not hold the config or an input file
    (nor be a parent of one), and an existing folder is replaced only with ``overwrite`` and only if
    evaltool wrote it (:func:`~evaltool.results.writer.check_output_folder`).  A lock beside it keeps a
    second run from writing to the same folder at the same time.

    Returns
    -------
    The run result and the output folder written.

    Raises
    ------
    OutputError
        If the output folder is refused, locked by another run, or cannot be written.
    """
    from evaltool.report.build import write_report
    from evaltool.report.disclosure import publish_results
    from evaltool.report.figures import save_figures
    from evaltool.results.writer import atomic_folder, check_output_folder, output_lock, write_manifest, write_results

    out_dir = Path(out) if out is not None else config.resolve(config.output.folder)
    replace = config.output.overwrite if overwrite is None else overwrite
    protected = input_paths(config)
    check_output_folder(out_dir, replace, protected=protected)
    with output_lock(out_dir):
        t_start = time.perf_counter()
        run = run_analyses(config)
        protected += [path for path in run.study.files.values() if path not in protected]
        with atomic_folder(out_dir, overwrite=replace, protected=protected) as tmp:
            write_results(run, tmp)
            t0 = time.perf_counter()
            save_figures(run, tmp / "figures", config.output.suppression_threshold)
            run.timings["figures"] = time.perf_counter() - t0
            if config.output.publication:
                publish_results(tmp, config.output.suppression_threshold)
            write_manifest(run, tmp)  # the report reads it (analysis descriptions, output options)
            t0 = time.perf_counter()
            write_report(tmp, threshold=config.output.suppression_threshold, publication=config.output.publication)
            run.timings["report"] = time.perf_counter() - t0
            run.timings["total"] = time.perf_counter() - t_start
            write_manifest(run, tmp)  # again, to list the report files and time
    return run, out_dir
