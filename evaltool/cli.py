"""Command-line interface: thin click commands over the library.

This is the only module that prints.  Errors in the config, data or output
folder exit with code 2 and a one-paragraph message; failed estimations exit
with code 1; tracebacks appear only with ``--debug``.
"""

from __future__ import annotations

import json
import sys
import traceback
import warnings
from pathlib import Path

import click

from evaltool._version import __version__
from evaltool.errors import EvaltoolError, EvaltoolWarning


class _State:
    debug = False


def _fail(exc: BaseException) -> None:
    if _State.debug:
        traceback.print_exception(exc)
    if isinstance(exc, EvaltoolError):
        click.echo(f"Error: {exc}", err=True)
        sys.exit(exc.exit_code)
    click.echo(
        f"Internal error ({type(exc).__name__}: {exc}). This is a bug in evaltool; please report it with the "
        "command you ran. Rerun with --debug for the traceback.",
        err=True,
    )
    sys.exit(1)


def _guard(func):
    """Turn exceptions into clean messages and exit codes."""
    import functools

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", EvaltoolWarning)
                value = func(*args, **kwargs)
            for w in caught:
                if issubclass(w.category, EvaltoolWarning):
                    click.echo(f"Warning: {w.message}", err=True)
            return value
        except click.exceptions.Exit:
            raise
        except SystemExit as exc:
            if isinstance(exc.code, int) and exc.code > 128:  # a signal (see results.writer._signals_as_exit)
                click.echo(f"Interrupted (signal {exc.code - 128}); no results folder was written.", err=True)
            raise
        except KeyboardInterrupt:
            click.echo("Interrupted; no results folder was written.", err=True)
            sys.exit(130)
        except MemoryError:
            click.echo("Out of memory; no results folder was written. Use fewer bootstrap draws or a smaller sample.", err=True)
            sys.exit(1)
        except Exception as exc:  # every failure gets a message, never a bare traceback
            _fail(exc)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="evaltool")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
def main(debug: bool) -> None:
    """Evaluate whether inter-school collaboration raised pupils' attainment."""
    _State.debug = debug


@main.command()
@click.argument("config", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), help="Output folder (overrides output.folder).")
@click.option("--overwrite", is_flag=True, default=None, help="Replace the output folder if it exists.")
@_guard
def run(config: Path, out: Path | None, overwrite: bool | None) -> None:
    """Run every analysis in CONFIG and write results to the output folder."""
    from evaltool.api import run as run_config
    from evaltool.config import load_config

    cfg = load_config(config)
    out = out if out is not None else cfg.resolve(cfg.output.folder)
    result = run_config(cfg, out=out, overwrite=overwrite)
    folder = result.folder
    for analysis in result.analyses:
        click.echo(analysis.summary())
    click.echo(f"\nResults written to {folder}; report: {folder / 'report.html'}")
    if result.failed:
        click.echo(f"{len(result.failed)} of {len(result.analyses)} analyses failed; see above and results.json.", err=True)
        sys.exit(result.exit_code)


@main.command()
@click.argument("config", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@_guard
def validate(config: Path, as_json: bool) -> None:
    """Check CONFIG and its data, and summarise the data, without estimating."""
    from evaltool.config import load_config
    from evaltool.data import load_study
    from evaltool.data.summary import format_summary
    from evaltool.pipeline import check_requirements

    cfg = load_config(config)
    study = load_study(cfg)
    check_requirements(cfg, study)
    if as_json:
        click.echo(json.dumps(study.summary(), indent=2, default=str))
    else:
        click.echo(format_summary(cfg, study))


@main.command()
@click.argument("output_dir", type=click.Path(path_type=Path))
@click.option(
    "--threshold",
    type=click.IntRange(min=1),
    default=None,
    help="Suppress counts below this (default: the run's output.suppression_threshold, else 10).",
)
@_guard
def report(output_dir: Path, threshold: int | None) -> None:
    """Rebuild report.html and report.md in OUTPUT_DIR from its saved results (no re-estimation)."""
    from evaltool.report.build import write_report
    from evaltool.results.writer import record_files

    written = write_report(output_dir, threshold=threshold)
    record_files(output_dir, written)  # so that a later --overwrite still knows them as evaltool's
    click.echo(f"Report written to {output_dir / 'report.html'} and {output_dir / 'report.md'} ({len(written)} files).")


@main.command()
@click.option("--indent", default=2, show_default=True, help="JSON indentation.")
@_guard
def schema(indent: int) -> None:
    """Print the JSON Schema of the config (for editor autocompletion)."""
    from evaltool.config.schema import config_json_schema

    click.echo(json.dumps(config_json_schema(), indent=indent))


@main.command()
@click.argument("config", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Panel file to write (.parquet or .csv); the subgroup panel and the data report go beside it.")
@click.option("--overwrite", is_flag=True, help="Replace the files if they exist.")
@_guard
def ingest(config: Path, out: Path, overwrite: bool) -> None:
    """Assemble the school panel from the raw DfE/GIAS files of CONFIG's sources: block and write it."""
    from evaltool.config import load_config
    from evaltool.data.ingest import write_ingested

    cfg = load_config(config)
    written, report = write_ingested(cfg, out, overwrite=overwrite)
    panel_step = report["steps"][-1] if report.get("steps") else {}
    click.echo(
        f"Assembled {panel_step.get('rows_out', '?')} school-year rows of {panel_step.get('schools_out', '?')} schools "
        f"from {len(report.get('files', []))} files."
    )
    for path in written:
        click.echo(f"  wrote {path}")


@main.command()
@click.argument("data", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--base", type=click.Path(path_type=Path), default=Path("."), show_default=True,
              help="Folder the config will be saved in (paths in it are relative to this folder).")
@_guard
def init(data: tuple[Path, ...], base: Path) -> None:
    """Print a commented config for the DATA files (redirect it: evaltool init data/* > evaluation.yaml)."""
    from evaltool.config.scaffold import scaffold_config

    click.echo(scaffold_config(list(data), base))


@main.command()
@click.option("--seed", type=int, default=2024, show_default=True, help="Random seed.")
@click.option("--schools", type=click.IntRange(min=20), default=400, show_default=True, help="Number of schools.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder to write the data into.")
@click.option("--pretrend-slope", type=float, default=0.0, show_default=True, help="Break parallel trends (points/year before joining).")
@click.option("--effect-scale", type=float, default=1.0, show_default=True, help="Multiply every true effect (0 = no effect).")
@click.option("--overwrite", is_flag=True, help="Replace the folder if it exists.")
@click.option("--layout", type=click.Choice(["tidy", "dfe"]), default="tidy", show_default=True,
              help="'tidy': one school x year panel; 'dfe': also England's raw files of the same schools in OUT/dfe/ "
                   "(per-year KS4 tables, GIAS extracts; see sample_data/README.md).")
@_guard
def simulate(
    seed: int, schools: int, out: Path, pretrend_slope: float, effect_scale: float, overwrite: bool, layout: str
) -> None:
    """Generate realistic English school data with known true effects."""
    from evaltool.data.simulate import SimulationSettings, write_simulation
    from evaltool.data.simulate import simulate as make
    from evaltool.results.writer import atomic_folder

    settings = SimulationSettings(seed=seed, n_schools=schools, pretrend_slope=pretrend_slope, effect_scale=effect_scale)
    data = make(settings)
    with atomic_folder(out, overwrite=overwrite) as tmp:
        written = write_simulation(data, tmp)
        if layout == "dfe":
            from evaltool.data.simulate_dfe import write_dfe_layout

            written += write_dfe_layout(data, tmp, seed=seed)["files"]
    click.echo(f"Wrote {len(written)} files for {schools} schools to {out}")


if __name__ == "__main__":  # pragma: no cover
    main()
