"""Write a run's output folder atomically.

Everything is written to a hidden temporary folder next to the target, which
is renamed into place only when complete; a failed run leaves no folder that
looks finished.  ``results.csv`` and ``results.json`` depend only on the
config, data and seed (no times, no paths), so reruns are byte-identical;
``manifest.json`` holds hashes, versions and timings.

Nothing evaltool did not create is ever deleted or replaced: ``--overwrite``
replaces only a folder whose marker lists every file in it, never a folder
holding an input or the current folder; one run at a time holds a lock beside
the output; a signal or a failed write removes the temporary folder.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import hashlib
import importlib.metadata
import json
import os
import platform
import secrets
import shutil
import signal
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

import pandas as pd

from evaltool._version import __version__
from evaltool.errors import OutputError
from evaltool.results.estimate import to_jsonable

if TYPE_CHECKING:
    from evaltool.results.run import RunResult

#: Format version of results.json; bump when the layout changes incompatibly.
RESULTS_FORMAT = 1

PACKAGES = ("numpy", "pandas", "scipy", "statsmodels", "linearmodels", "scikit-learn", "pydantic", "PyYAML", "matplotlib")


#: Written last into every folder evaltool creates that has no results manifest (the simulator's data folder);
#: lists the files evaltool put there.  ``--overwrite`` replaces only a folder that has this marker or a results
#: ``manifest.json`` (see :func:`foreign_file`) and nothing else.
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
#: Signals turned into an exception while a run holds its lock or writes, so the temporary folder is removed.
CLEANUP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


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
        The current working directory is always protected the same way.

    Raises
    ------
    OutputError
        With the reason and the way out.

    Notes
    -----
    Paths are compared after resolving symbolic links and ``..``, so ``--out ../study`` and a link to the
    data folder are recognised.
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
    try:
        here = Path.cwd().resolve()
    except OSError:  # the current folder was deleted: nothing there to protect
        here = None
    if here is not None and (target == here or target in here.parents):
        raise OutputError(
            f"The output folder '{out_dir}' is the current folder or holds it ('{here}'); writing there could "
            "delete it. Choose a separate folder for the results with --out (or output.folder)."
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
    """Why ``folder`` is not evaltool's own output, or ``None`` if it is.

    A folder is evaltool's own if it has a marker (:data:`MARKER`, or the ``manifest.json`` of a run with
    evaltool's format keys) and everything in it other than folders and the marker itself is listed in the
    marker's ``files``.  Anything else (a file evaltool did not list, a symbolic link, a pipe) is foreign.
    """
    folder = Path(folder)
    if folder.is_symlink():
        return "it is a symbolic link"
    found = _marker(folder)
    if found is None:
        first = next((p for p in sorted(folder.rglob("*")) if not p.is_dir() or p.is_symlink()), None)
        held = f" and holds '{first.relative_to(folder)}', not written by evaltool" if first is not None else ""
        return f"it has no evaltool manifest{held}"
    marker, listed = found
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).as_posix()
        if path.is_symlink():
            return f"'{name}' is a symbolic link"
        if path.is_dir() or name == marker:
            continue
        if not path.is_file():
            return f"'{name}' is not a regular file"
        if name not in listed:
            return f"'{name}' was not written by evaltool"
    return None


def _marker(folder: Path) -> tuple[str, set[str]] | None:
    """The marker file of an evaltool folder and the files it lists, or ``None`` if it has none."""
    for name, is_ours in ((MARKER, _is_simulation_marker), ("manifest.json", _is_results_manifest)):
        path = folder / name
        if not path.is_file() or path.is_symlink():
            continue
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and is_ours(record) and isinstance(record.get("files"), list):
            return name, {str(f) for f in record["files"]}
    return None


def _is_simulation_marker(record: dict) -> bool:
    return record.get("created_by") == "evaltool" and "evaltool_version" in record


def _is_results_manifest(record: dict) -> bool:
    return isinstance(record.get("format"), int) and "evaltool_version" in record and "config" in record


def _write_marker(folder: Path) -> None:
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    record = {"created_by": "evaltool", "evaltool_version": __version__, "files": files}
    (folder / MARKER).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def record_files(folder: Path, written: Iterable[Path]) -> None:
    """Add files written into an existing output folder (``evaltool report``) to its manifest's ``files``.

    Without this, the next ``--overwrite`` would take them for a user's files and refuse.  A folder that
    is not evaltool's own is left as it is.
    """
    folder = Path(folder)
    path = folder / "manifest.json"
    found = _marker(folder)
    if found is None or found[0] != "manifest.json":
        return
    record = json.loads(path.read_text(encoding="utf-8"))
    root = folder.resolve()
    names = {Path(p).resolve() for p in written}
    listed = set(record["files"]) | {p.relative_to(root).as_posix() for p in names if root in p.parents}
    if listed != set(record["files"]):  # otherwise the manifest stays byte for byte as the run wrote it
        record["files"] = sorted(listed)
        path.write_text(_dump_json(record), encoding="utf-8")


def write_fault(exc: OSError, where: Path) -> OutputError:
    """A one-line :class:`OutputError` for a write that failed (no space, no rights, read-only disk, …)."""
    cause = WRITE_FAULTS.get(exc.errno or -1) or (exc.strerror or str(exc) or type(exc).__name__).lower()
    return OutputError(
        f"Cannot write the results to '{where}': {cause}. Nothing was written; free space or choose another "
        "folder with --out."
    )


@contextlib.contextmanager
def output_lock(out_dir: Path) -> Iterator[Path]:
    """Hold ``.NAME.lock`` beside ``out_dir`` so a second run to the same folder fails instead of racing.

    The lock is an exclusive ``flock`` on that file (where the platform has it), which the system releases
    when its process ends however it ends, so a lock left by a killed run never blocks; elsewhere the file
    is created exclusively and a lock whose process no longer runs is taken over.  The file holds the
    owner's process id and is removed on every exit path.
    """
    out_dir = Path(out_dir)
    parent = out_dir.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_fault(exc, parent) from None
    lock = parent / f".{out_dir.name}.lock"
    take = _take_flock if fcntl is not None else _take_exclusive
    fd = take(lock, out_dir)
    try:
        with _signals_as_exit():
            yield lock
    finally:
        try:
            with contextlib.suppress(OSError):
                lock.unlink()  # before closing: a run that opened this file meanwhile sees it is gone and retries
        finally:
            os.close(fd)


def _lock_busy(lock: Path, out_dir: Path) -> OutputError:
    try:
        owner = lock.read_text().strip()
    except OSError:
        owner = ""
    who = f" (process {owner})" if owner.isdigit() else ""
    return OutputError(
        f"Another evaltool run{who} is writing to '{out_dir}' (lock file '{lock}'). Wait for it to finish or "
        "choose another folder with --out; if no evaltool run is writing there, the lock is stale: delete it."
    )


def _take_flock(lock: Path, out_dir: Path) -> int:
    """Open ``lock`` and hold an exclusive ``flock`` on it; returns the descriptor."""
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise write_fault(exc, lock.parent) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise _lock_busy(lock, out_dir) from None
        except OSError:  # a file system without flock: fall back to an exclusive file
            os.close(fd)
            return _take_exclusive(lock, out_dir)
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)  # the previous owner removed the file while we opened it: try again


def _take_exclusive(lock: Path, out_dir: Path) -> int:
    """Create ``lock`` exclusively (taking over one whose process is gone); returns the descriptor."""
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if _lock_owner_alive(lock):
                raise _lock_busy(lock, out_dir) from None
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()  # stale: its process is gone
            continue
        except OSError as exc:
            raise write_fault(exc, lock.parent) from None
        os.write(fd, f"{os.getpid()}\n".encode())
        return fd
    raise _lock_busy(lock, out_dir)


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
    """Turn SIGTERM (and SIGHUP) into ``SystemExit(128 + signal)`` so the temporary folder is removed.

    SIGINT already raises ``KeyboardInterrupt``.  Handlers are only installed in the main thread and the
    previous ones are restored afterwards.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _exit(signum, frame):
        raise SystemExit(128 + signum)

    previous = {sig: signal.signal(sig, _exit) for sig in CLEANUP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _remove_quietly(tmp: Path) -> None:
    """Remove evaltool's temporary folder; a second signal cannot interrupt the removal (it is delivered after)."""
    blockable = hasattr(signal, "pthread_sigmask") and threading.current_thread() is threading.main_thread()
    held = (*CLEANUP_SIGNALS, signal.SIGINT)
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held) if blockable else None
    try:
        shutil.rmtree(tmp, ignore_errors=True)
    finally:
        if previous is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextlib.contextmanager
def atomic_folder(out_dir: Path, *, overwrite: bool = False, protected: Iterable[Path] = ()) -> Iterator[Path]:
    """Yield a temporary folder that becomes ``out_dir`` on success.

    The temporary folder (``.NAME.partial-PID-XXXX`` beside the target) is removed on any failure, a signal
    included; a failed write (no space, read-only, no permission) becomes a one-line :class:`OutputError`.
    The target is replaced only if it is evaltool's own output (see :func:`check_output_folder`); a folder
    that appeared at the target while writing is never touched, not even an empty one.
    """
    out_dir = Path(out_dir)
    protected = list(protected)
    check_output_folder(out_dir, overwrite, protected=protected)
    existed = out_dir.exists() or out_dir.is_symlink()
    parent = out_dir.parent
    with _signals_as_exit():
        try:
            parent.mkdir(parents=True, exist_ok=True)
            tmp = parent / f".{out_dir.name}.partial-{os.getpid()}-{secrets.token_hex(4)}"
            tmp.mkdir()
        except OSError as exc:
            raise write_fault(exc, out_dir) from None
        try:
            yield tmp
            if _marker(tmp) is None:  # a results folder's manifest is its marker already
                _write_marker(tmp)
            _move_into_place(tmp, out_dir, existed=existed, overwrite=overwrite, protected=protected)
        except OutputError:
            _remove_quietly(tmp)
            raise
        except OSError as exc:
            _remove_quietly(tmp)
            raise write_fault(exc, out_dir) from None
        except BaseException:
            _remove_quietly(tmp)
            raise


def _appeared(out_dir: Path) -> OutputError:
    return OutputError(
        f"'{out_dir}' appeared while the results were being written; it was left untouched and nothing was "
        "written. Choose another folder with --out, or rerun."
    )


def _move_into_place(tmp: Path, out_dir: Path, *, existed: bool, overwrite: bool, protected: list[Path]) -> None:
    """Rename the finished folder onto ``out_dir``, checking again that nothing foreign is there now."""
    if not existed:
        try:
            rename_noreplace(tmp, out_dir)
        except FileExistsError:
            raise _appeared(out_dir) from None
        return
    if not (out_dir.exists() or out_dir.is_symlink()):  # the old results were moved away meanwhile
        try:
            rename_noreplace(tmp, out_dir)
        except FileExistsError:
            raise _appeared(out_dir) from None
        return
    check_output_folder(out_dir, overwrite, protected=protected)  # still evaltool's own?
    old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}-{secrets.token_hex(4)}"
    os.rename(out_dir, old)
    foreign = foreign_file(old)  # a file added between the check and the move
    if foreign is not None:
        _restore(old, out_dir)
        raise OutputError(f"--overwrite refused: '{out_dir}' changed while the results were written ({foreign}).")
    try:
        rename_noreplace(tmp, out_dir)
    except OSError:
        _restore(old, out_dir)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _restore(old: Path, out_dir: Path) -> None:
    """Put the previous output folder back at ``out_dir`` (or say where it is kept)."""
    try:
        rename_noreplace(old, out_dir)
    except OSError:
        raise OutputError(
            f"'{out_dir}' appeared while the results were being written; it was left untouched, and the "
            f"previous results are kept in '{old}'."
        ) from None


def rename_noreplace(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst``, raising ``FileExistsError`` if ``dst`` exists, even as an empty folder.

    ``os.rename`` of a folder onto an empty folder silently replaces it (POSIX).  On Linux this uses
    ``renameat2(RENAME_NOREPLACE)``, which checks and renames in one step; elsewhere (or on a file system
    without it) the check comes just before the rename.
    """
    func = _renameat2()
    if func is not None:
        at_fdcwd, rename_noreplace_flag = -100, 1  # <fcntl.h>, <linux/fs.h>
        if func(at_fdcwd, os.fsencode(src), at_fdcwd, os.fsencode(dst), rename_noreplace_flag) == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.ENOSYS, errno.EINVAL):
            raise OSError(code, os.strerror(code), str(src), None, str(dst))
    if os.path.lexists(dst):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(dst))
    os.rename(src, dst)


@functools.cache
def _renameat2() -> Any:
    """libc's ``renameat2`` (Linux, glibc 2.28+), or ``None``."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        func = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    func.restype = ctypes.c_int
    return func


def csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells (and column names) cannot run as spreadsheet formulas.

    A text value starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return gets a leading ``'``
    (the OWASP CSV-injection rule); numbers, including negative ones, are left as numbers.
    """
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if not (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)):
            continue
        text = values.map(lambda v: isinstance(v, str) and v.startswith(FORMULA_START)).astype(bool)
        if text.any():
            out[column] = values.where(~text, "'" + values.astype("string"))
    return out.rename(columns=lambda c: f"'{c}" if isinstance(c, str) and c.startswith(FORMULA_START) else c)


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
