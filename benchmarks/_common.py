"""Helpers for the benchmark scripts: timing, child-process peak RSS, a results table."""

from __future__ import annotations

import subprocess
import sys
import time

RUNNER = (
    "import resource, sys\n"
    "from traceconv.cli import main\n"
    "rc = main(sys.argv[1:])\n"
    "print('MAXRSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
    "print('WORKER_MAXRSS_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
    "sys.exit(rc)\n"
)


def run_cli(args: list[str]) -> tuple[float, float]:
    """Run `traceconv ARGS` in a fresh process: (wall seconds, peak RSS MB of that process).

    The largest worker process's peak (forked encoders and readers share the parent's pages
    until they touch them) is kept in `LAST_WORKER_RSS_MB`."""
    global LAST_WORKER_RSS_MB
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", RUNNER, *args], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"traceconv {' '.join(args)} failed:\n{proc.stderr}")
    rss = [int(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("MAXRSS_KB")]
    workers = [int(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("WORKER_MAXRSS_KB")]
    LAST_WORKER_RSS_MB = workers[-1] / 1024 if workers else float("nan")
    return wall, rss[-1] / 1024 if rss else float("nan")


LAST_WORKER_RSS_MB = float("nan")


def timed(fn, *args):
    t0 = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - t0, result


def table(rows: list[tuple], header: tuple) -> str:
    cells = [tuple(str(c) for c in header)] + [tuple(str(c) for c in r) for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in cells)
