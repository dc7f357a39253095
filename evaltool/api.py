"""The Python API: run a config, or one method on data frames, and get result objects back.

Every function here goes through the same path as the command line (config models → data checks → the
method's ``run``), so a result's :meth:`~AnalysisResult.tidy` rows are exactly the rows ``evaltool run``
writes to ``results.csv`` for the same data and options, and a bad argument gets the message a bad config
key would, naming the argument instead of the key.  Errors are raised as :class:`~evaltool.errors.ConfigError`
(an argument), :class:`~evaltool.errors.DataError` (the data) or :class:`~evaltool.errors.EstimationError`
(an estimate that cannot be made), all subclasses of :class:`~evaltool.errors.EvaltoolError`.

Argument names follow R's did and MatchIt (``unit``, ``time``, ``cohort``, ``control``); every option of a
method's config block can be given as a keyword with its config name (``caliper=0.2``,
``bootstrap_draws=0``, ``inference={"cluster": "trust"}``).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import html
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from evaltool.config import Config
from evaltool.config.loader import config_from_dict, load_config
from evaltool.config.root import format_loc
from evaltool.data import SchoolPanel, StudyData, load_study
from evaltool.data.study import FRAME_ARGUMENTS
from evaltool.errors import ConfigError, DataError, EstimationError
from evaltool.estimators.registry import get_method
from evaltool.pipeline import check_requirements, execute, run_analyses, run_analysis
from evaltool.results import AnalysisResult as _AnalysisResult
from evaltool.results.run import RunResult as _RunResult

__all__ = [
    "AnalysisResult",
    "RunResult",
    "did_2x2",
    "did_staggered",
    "did_twfe",
    "event_study",
    "ipw",
    "load_config",
    "meta_analysis",
    "multilevel",
    "psm",
    "run",
    "simulate",
    "trust_effects",
]

#: The seed of a config that does not set one (``seed:``), also the API's default.
DEFAULT_SEED = 20240601

#: API argument → ``columns:`` role (R did's names for the panel's identifiers).
COLUMN_ARGUMENTS: dict[str, str] = {
    "unit": "school",
    "time": "year",
    "cohort": "join_year",
    "treated": "treated",
    "trust": "trust",
    "local_authority": "local_authority",
    "subgroup": "subgroup",
    "subgroup_type": "subgroup_type",
    "pupil_count": "pupil_count",
}
_ROLE_ARGUMENTS = {role: argument for argument, role in COLUMN_ARGUMENTS.items()}

#: R did's ``control_group`` values accepted for ``control`` (evaltool's own values are accepted too).
CONTROL_VALUES: dict[str, str] = {
    "never_treated": "never_joined",
    "nevertreated": "never_joined",
    "not_yet_treated": "not_yet_joined",
    "notyettreated": "not_yet_joined",
    "never_joined": "never_joined",
    "not_yet_joined": "not_yet_joined",
}


# ------------------------------------------------------------------ result objects
class AnalysisResult(_AnalysisResult):
    """The result of one analysis, with the views a notebook user expects.

    The same object the pipeline builds (:class:`evaltool.results.AnalysisResult`: ``estimates``,
    ``diagnostics``, ``sample``, ``warnings``), plus :meth:`summary` (a text table), :meth:`tidy` (the rows of
    ``results.csv``), :meth:`plot` and :meth:`figures` (the report's figures), :meth:`to_dict` (the entry of
    ``results.json``) and an HTML view in Jupyter.
    """

    @classmethod
    def of(cls, result: _AnalysisResult) -> AnalysisResult:
        """The API view of a pipeline result (the same data, not a copy of the frames)."""
        if isinstance(result, cls):
            return result
        return cls(**{f.name: getattr(result, f.name) for f in dataclasses.fields(_AnalysisResult)})

    def summary(self, max_rows: int = 12) -> str:
        """A readable text table: estimates with SE, interval and p-value, then the inference and sample.

        Parameters
        ----------
        max_rows
            Estimates shown (the headline first); the rest are counted (all are in :meth:`tidy`).

        Returns
        -------
        str
            The table (print it).
        """
        if self.status != "ok":
            return f"{self.analysis} ({self.method}): FAILED: {self.error}"
        head = f"{self.analysis}: {self.method}, outcome {self.outcome}"
        table = self._estimate_table()
        lines = [head, "=" * max(len(head), 20),
                 table.head(max_rows).to_string(index=False) if len(table) else "(no estimates)"]
        if len(table) > max_rows:
            lines.append(f"... and {len(table) - max_rows} more rows (all in .tidy())")
        first = self.estimates[0] if self.estimates else None
        if first is not None:
            lines.append("")
            lines.append(f"Inference: {_inference_line(first)}")
            lines.append(f"Estimand: {first.estimand}")
        lines.append(
            f"Sample: {self.sample.n_rows_used:,} of {self.sample.n_rows_in:,} rows used; "
            f"{len(self.sample.exclusions)} exclusion reason(s) (see .sample.to_frame())."
        )
        lines += [f"Warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def _estimate_table(self) -> pd.DataFrame:
        columns = ["term", "subgroup", "estimate", "std_error", "ci_lower", "ci_upper", "p_value", "n_treated",
                   "n_control"]
        frame = self.tidy()[columns]
        return frame.round({"estimate": 3, "std_error": 3, "ci_lower": 3, "ci_upper": 3, "p_value": 4})

    def figures(self) -> dict[str, Any]:
        """The report's figures of this analysis, by name (matplotlib figures; close them when done).

        Returns
        -------
        dict
            Name → :class:`matplotlib.figure.Figure`; empty for a failed analysis or a method without figures.
        """
        if self.status != "ok":
            return {}
        from evaltool.report.figures import analysis_figures

        return analysis_figures(self)

    def plot(self, name: str | None = None):
        """One of the report's figures: ``name`` (see :meth:`figures`), or the method's main figure.

        Raises
        ------
        ValueError
            If the analysis failed, has no figures, or has none called ``name`` (the message lists them).
        """
        figures = self.figures()
        if not figures:
            raise ValueError(f"Analysis {self.analysis!r} has no figures ({self.status}).")
        if name is None:
            name = next(iter(figures))
        if name not in figures:
            raise ValueError(f"Analysis {self.analysis!r} has no figure {name!r}; figures are {sorted(figures)}.")
        import matplotlib.pyplot as plt

        for other, fig in figures.items():  # only the one asked for stays open
            if other != name:
                plt.close(fig)
        return figures[name]

    def _repr_html_(self) -> str:
        if self.status != "ok":
            return f"<p><b>{html.escape(self.analysis)}</b> ({html.escape(self.method)}): failed: " \
                   f"{html.escape(str(self.error))}</p>"
        parts = [f"<p><b>{html.escape(self.analysis)}</b>: {html.escape(self.method)}, outcome "
                 f"{html.escape(self.outcome)}</p>", self._estimate_table().to_html(index=False, na_rep="")]
        if self.estimates:
            parts.append(f"<p>Inference: {html.escape(_inference_line(self.estimates[0]))}</p>")
        parts += [f"<p>⚠ {html.escape(w)}</p>" for w in self.warnings]
        return "\n".join(parts)


class RunResult(_RunResult):
    """The results of every analysis of a config (:func:`run`).

    ``analyses`` holds one :class:`AnalysisResult` per analysis, in config order; ``result["name"]`` picks one
    by name; :meth:`tidy` is ``results.csv``; :meth:`to_dict` the body of ``results.json``; ``folder`` the
    results folder written (``None`` if none was).
    """

    folder: Path | None = None

    @classmethod
    def of(cls, run: _RunResult, folder: Path | None = None) -> RunResult:
        """The API view of a pipeline run."""
        view = cls(config=run.config, study=run.study, analyses=[AnalysisResult.of(a) for a in run.analyses],
                   started_at=run.started_at, timings=run.timings)
        view.folder = folder
        return view

    def __getitem__(self, name: str) -> AnalysisResult:
        for analysis in self.analyses:
            if analysis.analysis == name:
                return analysis
        raise KeyError(f"No analysis named {name!r}; analyses are {[a.analysis for a in self.analyses]}.")

    def summary(self) -> str:
        """Every analysis's :meth:`AnalysisResult.summary`, one after the other."""
        return "\n\n".join([f"{self.config.title}", *(a.summary() for a in self.analyses)])

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        return "\n".join([f"<h3>{html.escape(self.config.title)}</h3>", *(a._repr_html_() for a in self.analyses)])


def _inference_line(estimate) -> str:
    """How the estimate's SE was obtained: clustering, clusters, correction and method (#19)."""
    method = f"; {estimate.se_method}" if estimate.se_method else ""
    if not estimate.cluster:  # randomisation inference, a meta-analysis's independent studies …
        return f"not clustered{method}"
    clusters = f", {estimate.n_clusters} clusters" if estimate.n_clusters else ""
    correction = f", {estimate.se_correction}" if estimate.se_correction else ""
    return f"clustered by {estimate.cluster}{clusters}{correction}{method}"


# ------------------------------------------------------------------ whole configs
def run(config: str | Path | Config, *, out: str | Path | None = None, overwrite: bool | None = None) -> RunResult:
    """Run every analysis of a config; with ``out``, also write the results folder and report.

    Parameters
    ----------
    config
        Path of a YAML config, or a config from :func:`load_config`.
    out
        Results folder to write (atomically, as ``evaltool run --out``); ``None`` writes nothing.
    overwrite
        Replace ``out`` if it exists and evaltool wrote it (default: the config's ``output.overwrite``).

    Returns
    -------
    RunResult
        One :class:`AnalysisResult` per analysis; a failed analysis has ``status == "failed"`` and its
        ``error`` (the others still ran), and ``exit_code`` is what ``evaltool run`` would exit with.

    Raises
    ------
    ConfigError, DataError
        A problem in the config or its data (before any analysis runs).
    OutputError
        The results folder cannot be written.
    """
    cfg = config if isinstance(config, Config) else load_config(config)
    if out is None:
        return RunResult.of(run_analyses(cfg))
    result, folder = execute(cfg, Path(out), overwrite=overwrite)
    return RunResult.of(result, folder)


# ------------------------------------------------------------------ one method on data frames
def did_2x2(
    data: pd.DataFrame, *, outcome: str, pre_years: Sequence[int], post_years: Sequence[int],
    unit: str = "urn", time: str = "year", cohort: str = "join_year", trust: str | None = None,
    covariates: Sequence[str] = (), control: str | None = None,
    pupils: pd.DataFrame | None = None, seed: int = DEFAULT_SEED, **options: Any,
) -> AnalysisResult:
    """Two-group pre/post difference-in-differences on school means (``method: did_2x2``).

    Parameters
    ----------
    data
        School × year panel, one row per school and year.
    outcome
        Outcome column.
    pre_years, post_years
        Years averaged as the before and after periods.
    unit, time, cohort
        Columns of the school id, the academic year and the year the school joined (empty: never joined).
    trust
        Column of the school's trust (the default cluster: schools of a trust share the treatment).
    covariates
        Covariates (checked for balance at baseline).
    control
        Comparison schools: ``"never_treated"`` (default) or ``"not_yet_treated"`` (R did's names; evaltool's
        ``never_joined``/``not_yet_joined`` also work).
    pupils
        Optional pupil-level rows (``unit``, ``time``, the outcome): effect sizes are then standardised by the
        pupils' SD (EEF), as when a config names data.pupils; else by the SD of school means.
    seed
        Seed of every random step (the wild cluster bootstrap under few clusters).
    **options
        Any other key of the method's config block (``ci_level``, ``inference``, ``heterogeneity`` …).

    Returns
    -------
    AnalysisResult
    """
    return _fit("did_2x2", data, outcome=outcome, unit=unit, time=time, cohort=cohort, trust=trust,
                covariates=covariates, control=control, seed=seed, frames={"pupils": pupils},
                options={"pre_years": list(pre_years), "post_years": list(post_years), **options})


def did_twfe(
    data: pd.DataFrame, *, outcome: str, unit: str = "urn", time: str = "year", cohort: str = "join_year",
    trust: str | None = None, covariates: Sequence[str] = (),
    pupils: pd.DataFrame | None = None, seed: int = DEFAULT_SEED, **options: Any,
) -> AnalysisResult:
    """Two-way fixed-effects DiD with school and year effects (``method: did_twfe``).

    Parameters are those of :func:`did_2x2` (without the periods and ``control``); ``covariates`` enter the
    regression.

    Returns
    -------
    AnalysisResult
    """
    return _fit("did_twfe", data, outcome=outcome, unit=unit, time=time, cohort=cohort, trust=trust,
                covariates=covariates, seed=seed, frames={"pupils": pupils}, options=options)


def event_study(
    data: pd.DataFrame, *, outcome: str, unit: str = "urn", time: str = "year", cohort: str = "join_year",
    trust: str | None = None, covariates: Sequence[str] = (),
    pupils: pd.DataFrame | None = None, seed: int = DEFAULT_SEED, **options: Any,
) -> AnalysisResult:
    """Event-study regression: an effect for each year relative to joining (``method: event_study``).

    Parameters are those of :func:`did_twfe`; ``window=[-4, 4]`` and the other config keys as keywords.

    Returns
    -------
    AnalysisResult
    """
    return _fit("event_study", data, outcome=outcome, unit=unit, time=time, cohort=cohort, trust=trust,
                covariates=covariates, seed=seed, frames={"pupils": pupils}, options=options)


def did_staggered(
    data: pd.DataFrame, *, outcome: str, unit: str = "urn", time: str = "year", cohort: str = "join_year",
    trust: str | None = None, covariates: Sequence[str] = (), control: str | None = None,
    pupils: pd.DataFrame | None = None, seed: int = DEFAULT_SEED, subgroups: pd.DataFrame | None = None,
    **options: Any,
) -> AnalysisResult:
    """Staggered-adoption DiD: group-time effects and their aggregations (``method: did_staggered``).

    Callaway & Sant'Anna (2021) with R did's argument names: ``unit`` (idname), ``time`` (tname), ``cohort``
    (gname), ``control`` (control_group).

    Parameters
    ----------
    data
        School × year panel.
    outcome
        Outcome column (yname).
    unit, time, cohort
        School id, academic year and joining year columns (a blank joining year: never joined).
    trust
        Trust column: standard errors are clustered by trust by default (the design shares treatment).
    covariates
        Covariates for conditional parallel trends (``est_method`` ``"dr"``, ``"ipw"`` or ``"reg"``).
    control
        ``"never_treated"`` (default) or ``"not_yet_treated"``.
    seed
        Seed of the multiplier bootstrap.
    subgroups
        Optional school × year × subgroup panel for ``heterogeneity={"by": [...]}``; pass its columns'
        roles as ``subgroup=``, ``subgroup_type=``, ``pupil_count=`` keywords.
    **options
        Any other key of the config block: ``bootstrap_draws``, ``aggregations``, ``anticipation``,
        ``base_period``, ``est_method``, ``event_window``, ``inference`` …

    Returns
    -------
    AnalysisResult
        The headline overall ATT first, then the aggregations' rows.
    """
    return _fit("did_staggered", data, outcome=outcome, unit=unit, time=time, cohort=cohort, trust=trust,
                covariates=covariates, control=control, seed=seed, frames={"pupils": pupils, "subgroups": subgroups},
                options=options)


def psm(
    data: pd.DataFrame, *, outcome: str, covariates: Sequence[str], unit: str = "urn", time: str = "year",
    cohort: str = "join_year", trust: str | None = None,
    pupils: pd.DataFrame | None = None, control: str | None = None,
    seed: int = DEFAULT_SEED, **options: Any,
) -> AnalysisResult:
    """Propensity-score matching of joining schools to similar schools in their baseline year (``method: psm``).

    MatchIt's names where they exist: ``ratio``, ``caliper``, ``replace`` … (every key of the config block).

    Parameters
    ----------
    data
        School × year panel.
    outcome
        Outcome column.
    covariates
        Columns of the propensity model, measured in each joining school's baseline year.
    unit, time, cohort, trust
        As in :func:`did_staggered`.
    control
        Comparison schools: ``"never_treated"`` (default) or ``"not_yet_treated"``.
    seed
        Seed of tie-breaking and any resampling.
    **options
        ``did=True`` for matched DiD, ``event_times``, ``caliper``, ``ratio``, ``exact`` …

    Returns
    -------
    AnalysisResult
        With the balance table in ``diagnostics["balance"]``.
    """
    return _fit("psm", data, outcome=outcome, unit=unit, time=time, cohort=cohort, trust=trust,
                covariates=covariates, control=control, seed=seed, frames={"pupils": pupils}, options=options)


def ipw(
    data: pd.DataFrame, *, outcome: str, covariates: Sequence[str], unit: str = "urn", time: str = "year",
    cohort: str = "join_year", trust: str | None = None,
    pupils: pd.DataFrame | None = None, control: str | None = None,
    seed: int = DEFAULT_SEED, **options: Any,
) -> AnalysisResult:
    """Inverse-probability weighting with the same propensity model as :func:`psm` (``method: ipw``).

    Returns
    -------
    AnalysisResult
    """
    return _fit("ipw", data, outcome=outcome, unit=unit, time=time, cohort=cohort, trust=trust,
                covariates=covariates, control=control, seed=seed, frames={"pupils": pupils}, options=options)


def multilevel(
    data: pd.DataFrame, *, outcome: str, pupils: pd.DataFrame | None = None, level: str = "pupils", unit: str = "urn",
    time: str = "year", cohort: str = "join_year", trust: str | None = None, covariates: Sequence[str] = (),
    seed: int = DEFAULT_SEED, **options: Any,
) -> AnalysisResult:
    """Multilevel (mixed) model: pupils in schools (in trusts), or years in schools (``method: multilevel``).

    Parameters
    ----------
    data
        School × year panel (joining years, school covariates).
    outcome
        Outcome column (of ``pupils`` for a pupil-level model).
    pupils
        Pupil-level rows with the ``unit`` and ``time`` columns; required with ``level="pupils"``.
    level
        ``"pupils"`` (default): pupils in schools; ``"panel"``: a growth model of the school panel, years in
        schools (the config key ``data``).
    unit, time, cohort, trust
        As in :func:`did_staggered`.
    covariates
        School-level covariates (``school_covariates``); pupil covariates as ``pupil_covariates=[...]``.
    **options
        ``pupil_covariates``, ``random_slopes``, ``trust_intercept``, ``years``, ``estimand``, ``heterogeneity`` …

    Returns
    -------
    AnalysisResult
    """
    if level == "pupils" and pupils is None:
        raise ConfigError("multilevel() with level='pupils' needs pupils= (a pupil-level DataFrame with the unit and "
                          "time columns); pass it, or level='panel' for a growth model of the school panel.")
    return _fit("multilevel", data, outcome=outcome, unit=unit, time=time, cohort=cohort, trust=trust,
                covariates=covariates, seed=seed, frames={"pupils": pupils},
                options={"data": level, **options}, aliases={"data": "level"})


def trust_effects(
    data: pd.DataFrame, *, outcome: str, trust: str, unit: str = "urn", time: str = "year",
    cohort: str = "join_year", trusts: pd.DataFrame | None = None,
    pupils: pd.DataFrame | None = None, control: str | None = None,
    seed: int = DEFAULT_SEED, **options: Any,
) -> AnalysisResult:
    """One DiD estimate per trust, with randomisation inference (``method: trust_effects``).

    Parameters
    ----------
    data
        School × year panel.
    outcome, trust, unit, time, cohort
        Columns (``trust`` is required: it defines the trusts).
    trusts
        Optional trust attributes (one row per trust), e.g. for :func:`meta_analysis` moderators.
    control
        Comparison schools: ``"never_treated"`` (default) or ``"not_yet_treated"``.
    seed
        Seed of the placebo trusts drawn for each p-value.
    **options
        ``pre_window``, ``post_window``, ``comparison``, ``min_schools``, ``n_permutations`` …

    Returns
    -------
    AnalysisResult
    """
    return _fit("trust_effects", data, outcome=outcome, unit=unit, time=time, cohort=cohort, trust=trust,
                control=control, seed=seed, frames={"pupils": pupils, "trusts": trusts}, options=options)


def meta_analysis(
    effects: pd.DataFrame, *, study: str = "study", estimate: str = "estimate", std_error: str = "std_error",
    moderators: Sequence[str] = (), seed: int = DEFAULT_SEED, **options: Any,
) -> AnalysisResult:
    """Random-effects meta-analysis (and meta-regression) of independent estimates (``method: meta_analysis``).

    Parameters
    ----------
    effects
        One row per study: its id, estimate and standard error (and any moderators).
    study, estimate, std_error
        Their columns.
    moderators
        Columns for a meta-regression.
    **options
        ``tau2_method`` (``"REML"`` or ``"DL"``), ``knapp_hartung``, ``categorical``, ``ci_level`` …

    Returns
    -------
    AnalysisResult
    """
    if not isinstance(effects, pd.DataFrame):
        raise DataError(f"effects must be a pandas DataFrame; got {type(effects).__name__}.")
    block = {"study_column": study, "estimate_column": estimate, "std_error_column": std_error,
             "moderators": list(moderators), "effects_file": "<effects>", **options}
    config = _config("meta_analysis", {"outcomes": ["effect_size"]}, {}, block, seed)
    # A meta-analysis of published effects reads no school panel: the study's panel is empty.
    empty = SchoolPanel(frame=pd.DataFrame(columns=["school", "year"]), outcomes=[], covariates=[], source_columns={})
    study_data = StudyData(panel=empty, inline={"effects_file": effects})
    return _analyse(config, study_data)


def simulate(settings: Any = None, **overrides: Any):
    """Simulated English school data with known true effects (as ``evaltool simulate``).

    Parameters
    ----------
    settings
        A :class:`evaltool.data.simulate.SimulationSettings`, or ``None`` for the defaults.
    **overrides
        Settings to change, e.g. ``n_schools=200, seed=7, effect_scale=0``.

    Returns
    -------
    SimulatedData
        ``panel``, ``subgroups``, ``pupils``, ``trusts`` (data frames) and ``truth`` (the true effects).
    """
    from evaltool.data.simulate import simulate as make

    return make(settings, **overrides)


# ------------------------------------------------------------------ the shared path
def _fit(
    method: str, data: pd.DataFrame, *, outcome: str, unit: str, time: str, cohort: str | None,
    trust: str | None, seed: int, covariates: Sequence[str] = (), control: str | None = None,
    frames: Mapping[str, pd.DataFrame | None] | None = None, options: dict[str, Any],
    aliases: Mapping[str, str] | None = None,
) -> AnalysisResult:
    """Validate the arguments as a one-analysis config, check the frames as files would be, and run it.

    ``aliases``: option → the API argument that sets it (named in messages).
    """
    try:
        return _fit_checked(method, data, outcome=outcome, unit=unit, time=time, cohort=cohort, trust=trust,
                            seed=seed, covariates=covariates, control=control, frames=frames, options=options,
                            aliases=dict(aliases or {}))
    except (ConfigError, DataError, EstimationError) as exc:
        exc.args = (_in_argument_terms(str(exc)),)
        raise


def _fit_checked(
    method: str, data: pd.DataFrame, *, outcome: str, unit: str, time: str, cohort: str | None,
    trust: str | None, seed: int, covariates: Sequence[str], control: str | None,
    frames: Mapping[str, pd.DataFrame | None] | None, options: dict[str, Any], aliases: dict[str, str],
) -> AnalysisResult:
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"data must be a pandas DataFrame (school × year rows); got {type(data).__name__}.")
    if isinstance(outcome, (list, tuple)):
        raise ConfigError("outcome must be one column name; call the function once per outcome.")
    if isinstance(covariates, str):
        covariates = [covariates]
    given = {name: frame for name, frame in (frames or {}).items() if frame is not None}
    columns: dict[str, Any] = {"school": unit, "year": time, "join_year": cohort, "trust": trust,
                               "outcomes": [outcome], "covariates": list(covariates)}
    for argument, role in COLUMN_ARGUMENTS.items():  # roles given as keywords (subgroup=…, local_authority=…)
        if argument in options and role not in ("school", "year", "join_year", "trust"):
            columns[role] = options.pop(argument)
    block = dict(options)
    placebo = block.get("sensitivity", {}).get("placebo_outcome") if isinstance(block.get("sensitivity"), dict) else None
    if isinstance(placebo, str) and placebo not in columns["outcomes"]:
        columns["outcomes"] = [*columns["outcomes"], placebo]  # loaded and checked like the outcome
    if control is not None:
        if "comparison" in block:
            raise ConfigError("Give control or comparison, not both (they are the same option).")
        block["comparison"] = CONTROL_VALUES.get(str(control).lower(), control)
    fields = get_method(method).options.model_fields
    key = "school_covariates" if method == "multilevel" else "covariates"
    if covariates and key in fields and key not in block:
        block[key] = list(covariates)
    if control is not None:
        aliases["comparison"] = "control"
    config = _config(method, columns, {name: f"<{name}>" for name in given}, block, seed, aliases)
    study = load_study(config, {"panel": data, **given})
    check_requirements(config, study)
    return _analyse(config, study)


def _config(
    method: str, columns: dict[str, Any], data: dict[str, str], block: dict[str, Any], seed: int,
    aliases: Mapping[str, str] | None = None,
) -> Config:
    """The one-analysis config of an API call, validated with argument names in messages."""
    model = get_method(method).options
    allowed = set(model.model_fields) - {"method", "name"}
    unknown = sorted(set(block) - allowed)
    if unknown:
        close = difflib.get_close_matches(unknown[0], sorted(allowed), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"{method}() got unknown option(s) {unknown}{hint}. Options are the keys of the method's config "
            f"block: {', '.join(sorted(allowed))}."
        )
    raw = {
        "title": f"evaltool.{method}",
        "seed": seed,
        "data": {"panel": "<data>", **data},
        "columns": {role: value for role, value in columns.items() if value is not None},
        "analyses": [{"name": method, "method": method, **block}],
    }
    return config_from_dict(raw, namer=functools.partial(_argument_name, aliases=aliases or {}), base_dir=Path.cwd())


def _analyse(config: Config, study: StudyData) -> AnalysisResult:
    try:
        return AnalysisResult.of(run_analysis(config, study, config.analyses[0]))
    except (ConfigError, DataError, EstimationError):
        raise
    except (KeyError, IndexError, TypeError, ValueError) as exc:  # never a bare error from deep inside
        raise EstimationError(f"{config.analyses[0].method} could not run ({type(exc).__name__}: {exc}); "
                              "this is probably a bug in evaltool, please report it.") from exc


_CONFIG_COLUMN = re.compile(r"\bcolumns\.(\w+)")
_CONFIG_DATA = re.compile(r"\bdata\.(panel|subgroups|pupils|trusts)\b")


def _in_argument_terms(message: str) -> str:
    """A message of the config path in the API's words: ``columns.trust`` → ``trust=``, ``data.pupils`` → ``pupils=``.

    The checks themselves are shared with the config path (so they cannot drift); only the names of the keys
    they mention change.
    """
    def column(match: re.Match) -> str:
        role = match.group(1)
        named = {"outcomes": "outcome", "covariates": "covariates"}.get(role, _ROLE_ARGUMENTS.get(role, role))
        return f"{named}="

    message = _CONFIG_COLUMN.sub(column, message)
    return _CONFIG_DATA.sub(lambda m: f"{FRAME_ARGUMENTS[m.group(1)]}=", message)


def _argument_name(loc: tuple, aliases: Mapping[str, str]) -> str:
    """How an API message names a config key: the argument that set it (``('columns', 'school')`` → ``unit``)."""
    head, rest = (loc[0], loc[1:]) if loc else ("", ())
    if head == "columns":
        if not rest:
            return "argument 'unit'/'time'/'cohort'/'outcome'"
        if rest[0] == "outcomes":
            return "argument 'outcome'"
        if rest[0] == "covariates":
            return "argument 'covariates'" + (f" (item {rest[1] + 1})" if len(rest) > 1 else "")
        return f"argument '{_ROLE_ARGUMENTS.get(rest[0], rest[0])}'"
    if head == "analyses":
        inner = rest[1:] if rest and isinstance(rest[0], int) else rest
        if inner and inner[0] in aliases:  # the option was given under its R did name (control=)
            inner = (aliases[inner[0]], *inner[1:])
        return f"argument '{format_loc(inner)}'" if inner else "the options"
    if head == "data" and rest:
        return f"argument '{FRAME_ARGUMENTS.get(rest[0], rest[0])}'"
    return f"argument '{format_loc(loc)}'"

