"""Write a run's output folder atomically.

Everything is written to a hidden temporary folder next to the target, which
is renamed into place only when complete; a failed run leaves no folder that
looks finished.  ``results.csv`` and ``results.json`` depend only on the
config, data and seed (no times, no paths), so reruns are byte-identical;
``manifest.json`` holds hashes, versions and timings.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import platform
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evaltool import __version__
from evaltool.errors import OutputError
from evaltool.results.estimate import to_jsonable

if TYPE_CHECKING:
    from evaltool.pipeline import RunResult

#: Format version of results.json; bump when the layout changes incompatibly.
RESULTS_FORMAT = 1

PACKAGES = ("numpy", "pandas", "scipy", "statsmodels", "linearmodels", "scikit-learn", "pydantic", "PyYAML", "matplotlib")


def check_output_folder(out_dir: Path, overwrite: bool) -> None:
    """Refuse an existing output folder unless ``overwrite``."""
    if out_dir.exists() and not overwrite:
        raise OutputError(
            f"The output folder '{out_dir}' already exists. Choose another folder with --out, delete it, or "
            "replace it with --overwrite (or output.overwrite: true in the config)."
        )
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"The output path '{out_dir}' exists and is a file, not a folder; choose another with --out.")


@contextlib.contextmanager
def atomic_folder(out_dir: Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder that becomes ``out_dir`` on success."""
    out_dir = Path(out_dir)
    check_output_folder(out_dir, overwrite)
    parent = out_dir.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"Cannot create the folder '{parent}' for the results: {exc.strerror}.") from None
    tmp = parent / f".{out_dir.name}.partial-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
        old = None
        if out_dir.exists():
            old = parent / f".{out_dir.name}.old-{os.getpid()}"
            os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _dump_json(data: Any) -> str:
    return json.dumps(to_jsonable(data), indent=2, sort_keys=False, ensure_ascii=False, allow_nan=False) + "\n"


def write_results(run: RunResult, folder: Path) -> None:
    """Write ``results.csv`` and ``results.json``."""
    tidy = run.tidy()
    tidy.to_csv(folder / "results.csv", index=False, lineterminator="\n")
    payload = {"format": RESULTS_FORMAT, "evaltool_version": __version__, **run.to_dict()}
    (folder / "results.json").write_text(_dump_json(payload), encoding="utf-8")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version(), "evaltool": __version__}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def write_manifest(run: RunResult, folder: Path) -> None:
    """Write ``manifest.json``: hashes, versions, seed, timings."""
    config = run.config
    manifest = {
        "format": RESULTS_FORMAT,
        "evaltool_version": __version__,
        "started_at": run.started_at,
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "seed": config.seed,
        "config": {
            "path": str(config.source) if config.source else None,
            "sha256": file_sha256(config.source) if config.source else None,
            "validated": config.model_dump(mode="json"),
        },
        "inputs": {key: {"path": str(path), "sha256": file_sha256(path)} for key, path in run.study.files.items()},
        "packages": package_versions(),
        "platform": {"system": platform.system(), "machine": platform.machine(), "cpus": os.cpu_count()},
        "timings_seconds": {k: round(v, 4) for k, v in run.timings.items()},
        "analyses": [{"name": a.analysis, "method": a.method, "status": a.status} for a in run.analyses],
        "files": sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) + ["manifest.json"],
    }
    (folder / "manifest.json").write_text(_dump_json(manifest), encoding="utf-8")
