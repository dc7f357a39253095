"""The one helper thread of the staggered DiD's inner loops.

The estimator's heavy steps are compiled loops (numba, GIL released) and numpy / BLAS calls that release
the GIL, so a second thread doubles their speed on a two-core machine.  One worker thread is started on
first use and kept for the process (starting threads for every fit costs more than it saves); work is
always split the same way whether or not the helper exists, so results never depend on the number of cores.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from functools import cache
from typing import TypeVar

T = TypeVar("T")
U = TypeVar("U")


def available() -> bool:
    """Whether a helper thread can run beside this one (more than one core)."""
    return (os.cpu_count() or 1) > 1


@cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="evaltool-helper")


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
