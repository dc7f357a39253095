"""The one helper thread of the staggered DiD's inner loops.

The estimator's heavy steps are compiled loops (numba, GIL released) and numpy / BLAS calls that release
the GIL, so a second thread doubles their speed on a two-core machine.  One worker thread is started on
first use and kept for the process (starting threads for every fit costs more than it saves); work is
always split the same way whether or not the helper exists, so results never depend on the number of cores.

The thread belongs to the process that started it: a child made by ``fork`` (multiprocessing workers)
inherits the pool object but not its thread, so work sent to it would wait forever.  The pool is therefore
keyed on the process id and forgotten in a forked child (``os.register_at_fork``); the child starts its own.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")
U = TypeVar("U")


def available() -> bool:
    """Whether a helper thread can run beside this one (more than one core)."""
    return (os.cpu_count() or 1) > 1


_POOL: dict[int, ThreadPoolExecutor] = {}


def _pool() -> ThreadPoolExecutor:
    pool = _POOL.get(os.getpid())
    if pool is None:
        pool = _POOL[os.getpid()] = ThreadPoolExecutor(max_workers=1, thread_name_prefix="evaltool-helper")
    return pool


def _forget_in_child() -> None:
    _POOL.clear()  # the parent's thread does not exist here


os.register_at_fork(after_in_child=_forget_in_child)


def submit(task: Callable[[], T]) -> Future[T]:
    """Run ``task`` on the helper thread."""
    return _pool().submit(task)


def run_both(first: Callable[[], T], second: Callable[[], U]) -> tuple[T, U]:
    """``first`` on the helper thread and ``second`` on this one (one after the other with a single core).

    Returns both results; an exception of either is raised here (the helper's after ``second`` ends).
    """
    if not available():
        return first(), second()
    pending = submit(first)
    try:
        second_result = second()
    except BaseException:
        wait([pending])  # never leave the helper working on data the caller is about to drop
        raise
    return pending.result(), second_result
