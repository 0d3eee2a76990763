"""Work spread over forked worker processes, results in input order.

Workers are forked (no re-import, they inherit the parent's arrays) and reset SIGTERM/SIGHUP
to the default action, so ending the pool always ends them: a handler inherited from the
parent (the CLI's clean-exit handler) could otherwise keep a worker alive and the parent
waiting for it.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def can_fork() -> bool:
    return "fork" in mp.get_all_start_methods()


def _default_signals() -> None:
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def imap_forked(fn: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """``map(fn, items)`` in `workers` forked processes (`fn` must be a module-level function;
    its arguments and results are pickled). Runs here when `workers` <= 1 or fork is missing."""
    items = list(items)
    if workers <= 1 or len(items) < 2 or not can_fork():
        yield from map(fn, items)
        return
    with mp.get_context("fork").Pool(min(workers, len(items)), initializer=_default_signals) as pool:
        yield from pool.imap(fn, items)
