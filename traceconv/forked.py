"""Work spread over forked worker processes: `imap_forked` (results in input order) and
`fork_writer` (one child writing to a pipe while the parent goes on).

Workers are forked (no re-import; they inherit the parent's arrays) and each takes every
n-th item, sending its results back through its own pipe, in order. There are no queues,
semaphores or helper threads to get stuck: a worker that dies (killed, out of memory) is seen
as an early end of its pipe and reported, and ending the parent's iteration ends the workers.
A worker resets SIGTERM/SIGHUP to their default action and ignores SIGINT (the parent
handles Ctrl-C and stops them).
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
from typing import BinaryIO, Callable, Iterable, Iterator, TypeVar

from traceconv.errors import TraceconvError

T = TypeVar("T")
R = TypeVar("R")


class WorkerDied(TraceconvError):
    """A worker process ended before sending its result."""


_IN_WORKER = False  # set in the processes started here


def in_worker() -> bool:
    """Whether this is a worker started here (which should not fork again: the cores are
    already taken)."""
    return _IN_WORKER


def can_fork() -> bool:
    """Fork where it is safe with numpy/Arrow loaded: not on macOS (system frameworks are not
    fork-safe there; work runs in this process instead) nor Windows (no fork)."""
    return hasattr(os, "fork") and sys.platform != "darwin"


def imap_forked(fn: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """``map(fn, items)`` in up to `workers` forked processes. `fn`'s results (and exceptions)
    are pickled back. Runs here when `workers` <= 1, with one item, or without fork."""
    items = list(items)
    if workers <= 1 or len(items) < 2 or not can_fork():
        yield from map(fn, items)
        return
    n = min(workers, len(items))
    children: list[tuple[int, object]] = []  # (pid, the read end of its pipe)
    try:
        for w in range(n):
            read_fd, write_fd = os.pipe()
            pid = os.fork()
            if pid == 0:  # the worker: never returns into the caller's code
                try:
                    os.close(read_fd)
                    for _, f in children:
                        f.close()  # type: ignore[attr-defined]
                    _run_worker(fn, items[w::n], write_fd)
                finally:
                    os._exit(0)
            os.close(write_fd)
            children.append((pid, os.fdopen(read_fd, "rb")))
        for i in range(len(items)):
            pid, f = children[i % n]
            ok, value = _receive(f, pid)  # type: ignore[arg-type]
            if not ok:
                raise value
            yield value
    finally:
        for pid, f in children:
            f.close()  # type: ignore[attr-defined]
            try:
                os.kill(pid, signal.SIGKILL)  # (done workers are waiting to exit: no harm)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)


def _become_worker() -> None:
    """In a forked process: default SIGTERM/SIGHUP, ignore SIGINT (the parent handles Ctrl-C
    and stops its workers), and no forking again."""
    global _IN_WORKER
    _IN_WORKER = True
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_worker(fn: Callable, items: list, fd: int) -> None:
    _become_worker()
    with os.fdopen(fd, "wb") as out:
        for item in items:
            try:
                message = (True, fn(item))
            except BaseException as e:  # noqa: BLE001 - handed to the parent, which raises it
                message = (False, e)
            try:
                blob = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception as e:  # an exception (or result) that cannot be pickled
                blob = pickle.dumps((False, RuntimeError(f"{type(message[1]).__name__}: {message[1]} ({e})")))
            out.write(len(blob).to_bytes(8, "little"))
            out.write(blob)
            out.flush()
            if not message[0]:
                return


def _receive(f, pid: int) -> tuple[bool, object]:
    head = f.read(8)
    blob = f.read(int.from_bytes(head, "little")) if len(head) == 8 else b""
    if len(head) < 8 or len(blob) < int.from_bytes(head, "little"):
        raise WorkerDied(f"a worker process (pid {pid}) died before sending its result (killed? out of memory?)")
    return pickle.loads(blob)


def fork_writer(fn: Callable[[BinaryIO], None]) -> tuple[int, BinaryIO] | None:
    """Run ``fn(out)`` in a forked process that writes its result to the pipe `out`, while
    this one goes on; returns (pid, the pipe's read end), None where there is no fork. The
    child ends when `fn` returns or raises (a short read tells the reader); `reap` ends it."""
    if not can_fork():
        return None
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_fd)
            _become_worker()
            with os.fdopen(write_fd, "wb") as out:
                fn(out)
        except BaseException:  # noqa: BLE001 - the parent sees the pipe end early
            pass
        finally:
            os._exit(0)
    os.close(write_fd)
    return pid, os.fdopen(read_fd, "rb")


def reap(pid: int, f: BinaryIO) -> None:
    """Close the pipe of a `fork_writer` child and wait for it (killing it if still busy)."""
    f.close()
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.waitpid(pid, 0)


def trim_heap() -> None:
    """Give the C heap's free pages back to the OS (glibc ``malloc_trim``; elsewhere nothing)."""
    import ctypes

    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass
