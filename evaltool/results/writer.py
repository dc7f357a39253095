"""Write a run's output folder atomically.

Everything is written to a hidden temporary folder next to the target, which
is renamed into place only when complete; a failed run leaves no folder that
looks finished.  ``results.csv`` and ``results.json`` depend only on the
config, data and seed (no times, no paths), so reruns are byte-identical;
``manifest.json`` holds hashes, versions and timings.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import importlib.metadata
import json
import os
import platform
import shutil
import signal
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from evaltool import __version__
from evaltool.errors import OutputError
from evaltool.results.estimate import to_jsonable

if TYPE_CHECKING:
    from evaltool.pipeline import RunResult

#: Format version of results.json; bump when the layout changes incompatibly.
RESULTS_FORMAT = 1

PACKAGES = ("numpy", "pandas", "scipy", "statsmodels", "linearmodels", "scikit-learn", "pydantic", "PyYAML", "matplotlib")


#: Written last into every folder evaltool creates; lists the files evaltool put there.  ``--overwrite``
#: replaces only a folder that has it (or a results manifest) and nothing else.
MARKER = ".evaltool-output.json"
#: Characters that make a spreadsheet treat a cell as a formula (OWASP "CSV injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: errno values of a write that cannot succeed, with the one-line cause shown to the user.
WRITE_FAULTS = {
    errno.ENOSPC: "no space left on the device",
    errno.EROFS: "the location is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EDQUOT: "disk quota exceeded",
}


def check_output_folder(out_dir: Path, overwrite: bool, *, protected: Iterable[Path] = ()) -> None:
    """Refuse an output folder that exists (unless ``overwrite`` and it is evaltool's own) or holds inputs.

    Parameters
    ----------
    out_dir
        The output folder.
    overwrite
        Whether an existing evaltool output folder may be replaced.
    protected
        The config file and input files: the output may be neither their folder nor an ancestor of it.

    Raises
    ------
    OutputError
        With the reason and the way out.
    """
    out_dir = Path(out_dir)
    target = out_dir.resolve()
    for path in protected:
        held = Path(path).resolve()
        if target == held or target in held.parents:
            raise OutputError(
                f"The output folder '{out_dir}' holds the input '{path}'; writing there could delete it. "
                "Choose a separate folder for the results with --out (or output.folder)."
            )
    if not out_dir.exists() and not out_dir.is_symlink():
        return
    if not out_dir.is_dir():
        raise OutputError(f"The output path '{out_dir}' exists and is a file, not a folder; choose another with --out.")
    if not overwrite:
        raise OutputError(
            f"The output folder '{out_dir}' already exists. Choose another folder with --out, delete it, or "
            "replace it with --overwrite (or output.overwrite: true in the config)."
        )
    foreign = foreign_file(out_dir)
    if foreign is not None:
        raise OutputError(
            f"--overwrite refused: '{out_dir}' is not a folder evaltool wrote ({foreign}). evaltool only replaces "
            "its own output folders; choose another folder with --out, or move the folder away yourself."
        )


def foreign_file(folder: Path) -> str | None:
    """Why ``folder`` is not evaltool's own output (a file it did not write), or ``None`` if it is."""
    folder = Path(folder)
    if folder.is_symlink():
        return "it is a symbolic link"
    listed = _listed_files(folder)
    if listed is None:
        first = next((p for p in sorted(folder.rglob("*")) if p.is_file()), None)
        held = f" and holds '{first.relative_to(folder)}', not written by evaltool" if first is not None else ""
        return f"it has no evaltool manifest{held}"
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            return f"'{path.relative_to(folder)}' is a symbolic link"
        if path.is_file() and str(path.relative_to(folder)) not in listed:
            return f"'{path.relative_to(folder)}' was not written by evaltool"
    return None


def _listed_files(folder: Path) -> set[str] | None:
    """The files evaltool recorded in a folder's marker (or results manifest), with the marker itself."""
    for name in (MARKER, "manifest.json"):
        path = folder / name
        if not path.is_file() or path.is_symlink():
            continue
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        files = record.get("files") if isinstance(record, dict) else None
        if isinstance(files, list) and ("evaltool_version" in record or record.get("created_by") == "evaltool"):
            return {str(f) for f in files} | {MARKER, "manifest.json"}
    return None


def _write_marker(folder: Path) -> None:
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    record = {"created_by": "evaltool", "evaltool_version": __version__, "files": files}
    (folder / MARKER).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def write_fault(exc: OSError, where: Path) -> OutputError:
    """A one-line :class:`OutputError` for a write that failed for lack of space, rights or a read-only disk."""
    cause = WRITE_FAULTS.get(exc.errno or -1, exc.strerror or str(exc))
    return OutputError(
        f"Cannot write the results to '{where}': {cause}. Nothing was written; free space or choose another "
        "folder with --out."
    )


@contextlib.contextmanager
def output_lock(out_dir: Path) -> Iterator[Path]:
    """Hold ``.NAME.lock`` beside ``out_dir`` so a second run to the same folder fails instead of racing.

    A lock left by a process that no longer runs (a killed run) is taken over.
    """
    out_dir = Path(out_dir)
    parent = out_dir.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_fault(exc, parent) from None
    lock = parent / f".{out_dir.name}.lock"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if _lock_owner_alive(lock):
                raise OutputError(
                    f"Another evaltool run is writing to '{out_dir}' (lock file '{lock}'). Wait for it to finish, or "
                    "choose another folder with --out."
                ) from None
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()  # stale: its process is gone
            continue
        except OSError as exc:
            raise write_fault(exc, parent) from None
        with os.fdopen(fd, "w") as handle:
            handle.write(f"{os.getpid()}\n")
        break
    else:
        raise OutputError(f"Cannot take the lock file '{lock}'; delete it if no evaltool run is writing to '{out_dir}'.")
    try:
        with _signals_as_exit():
            yield lock
    finally:
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()


def _lock_owner_alive(lock: Path) -> bool:
    try:
        pid = int(lock.read_text().strip() or "0")
    except (OSError, ValueError):
        return True  # being written right now, or unreadable: assume a live owner
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def _signals_as_exit() -> Iterator[None]:
    """Turn SIGTERM (and SIGHUP) into ``SystemExit`` while writing, so the temporary folder is removed.

    SIGINT already raises ``KeyboardInterrupt``.  Handlers are only installed in the main thread and are
    restored afterwards.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _exit(signum, frame):
        raise SystemExit(128 + signum)

    previous = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        previous[sig] = signal.signal(sig, _exit)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def atomic_folder(out_dir: Path, *, overwrite: bool = False, protected: Iterable[Path] = ()) -> Iterator[Path]:
    """Yield a temporary folder that becomes ``out_dir`` on success.

    The temporary folder (``.NAME.partial-PID`` beside the target) is removed on any failure, a signal
    included.  The target is replaced only if it is evaltool's own output (see :func:`check_output_folder`);
    a folder that appeared at the target while writing is never touched.
    """
    out_dir = Path(out_dir)
    protected = list(protected)
    check_output_folder(out_dir, overwrite, protected=protected)
    existed = out_dir.exists()
    parent = out_dir.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_fault(exc, parent) from None
    tmp = parent / f".{out_dir.name}.partial-{os.getpid()}"
    with _signals_as_exit():
        try:
            if tmp.exists():
                shutil.rmtree(tmp)
            tmp.mkdir()
            yield tmp
            if _listed_files(tmp) is None:  # a results folder's manifest is its marker already
                _write_marker(tmp)
            _move_into_place(tmp, out_dir, existed=existed, overwrite=overwrite, protected=protected)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(exc, OutputError):
                raise
            if exc.errno in WRITE_FAULTS:
                raise write_fault(exc, out_dir) from None
            raise
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def _move_into_place(tmp: Path, out_dir: Path, *, existed: bool, overwrite: bool, protected: list[Path]) -> None:
    """Rename the finished folder onto ``out_dir``, checking again that nothing foreign is there now."""
    parent = out_dir.parent
    if out_dir.exists() or out_dir.is_symlink():
        if not existed:
            raise OutputError(
                f"'{out_dir}' appeared while the results were being written; it was left untouched and nothing "
                "was written. Choose another folder with --out, or rerun."
            )
        check_output_folder(out_dir, overwrite, protected=protected)  # still evaltool's own?
        old = parent / f".{out_dir.name}.old-{os.getpid()}"
        os.replace(out_dir, old)
        try:
            os.rename(tmp, out_dir)
        except OSError:
            os.replace(old, out_dir)  # put the previous results back
            raise
        shutil.rmtree(old, ignore_errors=True)
        return
    try:
        os.rename(tmp, out_dir)
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.EISDIR, errno.ENOTDIR):
            raise OutputError(
                f"'{out_dir}' appeared while the results were being written; it was left untouched and nothing "
                "was written. Choose another folder with --out, or rerun."
            ) from None
        raise
    # (os.rename onto an empty folder that appeared meanwhile replaces it: nothing of the user's is lost.)


def csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells cannot run as spreadsheet formulas.

    A text value starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return gets a leading ``'``
    (the OWASP CSV-injection rule); numbers, including negative ones, are left as numbers.
    """
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if not (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)):
            continue
        text = values.map(lambda v: isinstance(v, str) and v.startswith(FORMULA_START))
        if text.any():
            out[column] = values.where(~text, "'" + values.astype("string"))
    return out


def _dump_json(data: Any) -> str:
    return json.dumps(to_jsonable(data), indent=2, sort_keys=False, ensure_ascii=False, allow_nan=False) + "\n"


def write_results(run: RunResult, folder: Path) -> None:
    """Write ``results.csv`` and ``results.json``."""
    tidy = csv_safe(run.tidy())
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
