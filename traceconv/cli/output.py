"""Paths, stderr and output files: the only place that touches them.

* inputs: files, directories (every file inside, sorted), globs, ``-`` for stdin;
* outputs: written to a temporary file beside the target and renamed into place, so an
  interrupted run leaves nothing behind; an output that is one of the inputs is refused;
* status lines (``Wrote …``, warnings, the run summary) go to stderr, silenced by ``-q``.
"""

from __future__ import annotations

import glob
import gzip
import os
import shutil
import stat
import sys
import tempfile
from contextlib import contextmanager
from typing import BinaryIO, Iterator

import click

from traceconv.errors import TraceconvError, one_line

_quiet = False


def set_quiet(quiet: bool) -> None:
    global _quiet
    _quiet = quiet


def status(message: str) -> None:
    if not _quiet:
        click.echo(one_line(message), err=True)


def warn(message: str) -> None:
    click.echo(f"warning: {one_line(message)}", err=True)


def read_notes(trace) -> None:
    """An analysis command's account of its input: the reader's warnings, and the run summary
    table (dropped/repaired items by reason) when the input was damaged."""
    from traceconv.writers.summary import summary_table

    for w in trace.warnings:
        warn(w)
    if trace.damage:
        for line in summary_table(trace):
            status(line)


def expand_inputs(inputs: tuple[str, ...], suffixes: tuple[str, ...] = (), prefer: str | None = None) -> list[str]:
    """Files from paths, directories and globs (``-`` stays ``-``).

    In a directory: files with one of `suffixes`; if some names contain `prefer` (e.g.
    ``.trace.json``), only those (so ground-truth or settings JSON beside traces is skipped).
    """
    out: list[str] = []
    for item in inputs:
        if item == "-":
            if _stdin_is_endless_device():
                raise TraceconvError("standard input is a device, not a trace (its data never ends)", source="-")
            out.append("-")
        elif _is_gputrace(item):
            raise TraceconvError(f"this is {GPUTRACE}", source=item)
        elif os.path.isdir(item) and os.path.isfile(os.path.join(item, "_traceconv.json")):
            out.append(item)  # a traceconv Parquet dataset is one input
        elif os.path.isdir(item):
            files = sorted(
                os.path.join(item, f)
                for f in os.listdir(item)
                if os.path.isfile(os.path.join(item, f)) and (not suffixes or f.lower().endswith(suffixes))
            )
            if prefer and any(prefer in os.path.basename(f) for f in files):
                files = [f for f in files if prefer in os.path.basename(f)]
            if not files:
                if any(_is_gputrace(f) for f in os.listdir(item)):
                    raise TraceconvError(f"directory holds no trace files, only {GPUTRACE}", source=item)
                raise TraceconvError("directory holds no trace files", source=item)
            out += files
        elif not os.path.exists(item) and glob.has_magic(item):
            matches = sorted(glob.glob(item))
            if not matches:
                raise TraceconvError("no file matches this pattern", source=item)
            for m in matches:
                if _is_gputrace(m):
                    raise TraceconvError(f"this is {GPUTRACE}", source=m)
            out += matches
        elif not os.path.exists(item):
            raise TraceconvError("no such file", source=item)
        elif _is_device(item):
            raise TraceconvError("is a device, not a trace file (its data never ends)", source=item)
        else:
            out.append(item)
    return out


def _stdin_is_endless_device() -> bool:
    """Standard input redirected from a device such as /dev/zero (a terminal is fine)."""
    try:
        fd = sys.stdin.fileno()
        mode = os.fstat(fd).st_mode
    except (OSError, ValueError, AttributeError):  # (no real descriptor: an embedding, a test runner)
        return False
    return (stat.S_ISCHR(mode) or stat.S_ISBLK(mode)) and not os.isatty(fd) and os.path.realpath(f"/proc/self/fd/{fd}") != "/dev/null"


def _is_device(path: str) -> bool:
    """A character or block device (/dev/zero, /dev/urandom, a disk); pipes and FIFOs are fine."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISBLK(mode)


GPUTRACE = ("an Xcode GPU capture (.gputrace, as MLX's mx.metal.start_capture writes): it holds Metal command "
            "buffers, not a timeline, and cannot be converted; open it in Xcode, or profile with the PyTorch "
            "profiler (SGLang /start_profile, bench_one_batch --profile on CUDA/ROCm) and convert that Kineto trace")


def _is_gputrace(path: str) -> bool:
    return os.path.basename(path.rstrip("/" + os.sep)).lower().endswith(".gputrace")


def open_input(path: str):
    """A path, or stdin's binary stream for ``-``."""
    return sys.stdin.buffer if path == "-" else path


def default_output(first_input: str, suffix: str) -> str:
    if first_input == "-":
        return "stdin" + suffix
    base = os.path.basename(first_input.rstrip("/")) or "trace"
    for ext in (".gz", ".zst", ".jsonl", ".json", ".pb", ".txt", ".trace"):
        if base.lower().endswith(ext):
            base = base[: -len(ext)]
    return base + suffix


def check_not_input(output: str, inputs: list[str]) -> None:
    if output == "-":
        return
    out_real = os.path.realpath(output)
    for item in inputs:
        if item == "-":
            continue
        same = os.path.realpath(item) == out_real
        if not same and os.path.exists(output):
            try:
                same = os.path.samefile(item, output)
            except OSError:
                same = False
        if same:
            raise TraceconvError("refusing to write the output over an input", source=output)


@contextmanager
def atomic_output(path: str) -> Iterator[BinaryIO]:
    """A binary stream that becomes `path` only when the block succeeds (``.gz`` → gzip).

    On Linux the data goes to an anonymous file (``O_TMPFILE``) that gets a name only once it
    is complete, so even a SIGKILL or a power cut leaves nothing behind; elsewhere a temporary
    file beside the target, removed on errors, SIGTERM and SIGHUP.
    """
    if path == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
        fd = _anonymous_file(directory)
        tmp = None
        if fd is None:
            fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    except OSError as e:
        raise TraceconvError(f"cannot write here: {e.strerror}", source=path) from None
    ok = False
    try:
        with _terminate_cleanly(), os.fdopen(fd, "wb", buffering=1 << 20) as raw:
            if path.endswith(".gz"):
                with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as gz:
                    yield gz  # type: ignore[misc]
            else:
                yield raw
            raw.flush()
            if tmp is None:
                tmp = _name_anonymous(fd, directory, path)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # like open(): mkstemp's 0600 would surprise users
        os.replace(tmp, path)
        ok = True
    except OSError as e:
        if isinstance(e, TraceconvError):
            raise
        raise TraceconvError(f"cannot write: {e.strerror or e}", source=path) from None
    finally:
        if not ok and tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def _anonymous_file(directory: str) -> int | None:
    """An unnamed file in `directory` (Linux ``O_TMPFILE``), or None where unsupported."""
    flag = getattr(os, "O_TMPFILE", 0)
    if not flag:
        return None
    try:
        return os.open(directory, flag | os.O_RDWR, 0o600)
    except OSError:  # a file system without O_TMPFILE (EOPNOTSUPP, EISDIR on old kernels)
        return None


def _name_anonymous(fd: int, directory: str, path: str) -> str:
    """Give the finished anonymous file a temporary name beside `path` (then renamed over it):
    linkat through /proc, or with AT_EMPTY_PATH, or (where both are refused) a copy."""
    for _ in range(100):
        tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.urandom(4).hex()}.tmp")
        try:
            os.link(f"/proc/self/fd/{fd}", tmp, follow_symlinks=True)
            return tmp
        except FileExistsError:
            continue
        except OSError:
            pass
        if _linkat_empty_path(fd, tmp):
            return tmp
        try:
            with open(tmp, "xb") as out, os.fdopen(os.dup(fd), "rb") as src:
                src.seek(0)
                shutil.copyfileobj(src, out, 1 << 20)
            return tmp
        except FileExistsError:
            continue
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    raise OSError(f"cannot name the output in {directory}")


def _linkat_empty_path(fd: int, dest: str) -> bool:
    """linkat(fd, "", AT_FDCWD, dest, AT_EMPTY_PATH): allowed to root, and to the opener on
    recent kernels."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.linkat(fd, b"", -100, os.fsencode(dest), 0x1000) == 0  # AT_FDCWD, AT_EMPTY_PATH
    except (OSError, AttributeError):
        return False


@contextmanager
def _terminate_cleanly() -> Iterator[None]:
    """SIGTERM/SIGHUP (a CI timeout, a closed terminal) unwind like an exception while an output
    is being written, so the temporary file is removed; exit status 128 + signal."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    old = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


def return_freed_memory() -> None:
    """Give the C heap's free pages back to the OS (glibc ``malloc_trim``). Reading leaves
    fragmented free blocks behind that the writer's large arrays cannot reuse; returned,
    they no longer add to the peak RSS (~100 MB less on a 500 MB Kineto trace)."""
    from traceconv.forked import trim_heap

    trim_heap()


def human_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"
