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


def compile_bytecode() -> str:
    """Compile traceconv's modules to bytecode once, as `pip install` does for a regular install
    (an editable one, or PYTHONDONTWRITEBYTECODE=1, would otherwise compile them in every timed
    run); and say whether its C accelerators are built."""
    import compileall
    import importlib.util
    from pathlib import Path

    import traceconv

    root = Path(traceconv.__file__).resolve().parent
    for pkg in (root, root.parent / "analyzers"):
        if pkg.is_dir():
            compileall.compile_dir(str(pkg), quiet=1)
    built = [m for m in ("_otlp_json", "_wire", "_lanes") if importlib.util.find_spec(f"traceconv.{m}") is not None]
    return f"C accelerators: {', '.join(built) if built else 'none built (pure Python)'}"


def run_cli(args: list[str], env: dict[str, str] | None = None, tree_pss: bool = False) -> tuple[float, float]:
    """Run `traceconv ARGS` in a fresh process: (wall seconds, peak RSS MB of that process,
    the kernel's own count).

    The largest worker process's peak (forked encoders and readers share the parent's pages
    until they touch them) is kept in `LAST_WORKER_RSS_MB`. With `tree_pss`, the peak of the
    whole process tree's memory, sampled every 50 ms as the sum of PSS (shared pages counted
    once), goes in `LAST_TREE_PSS_MB`; the sampling walks the processes' page tables and slows
    them down, so timed runs of one process leave it off."""
    global LAST_WORKER_RSS_MB, LAST_TREE_PSS_MB
    import psutil

    t0 = time.perf_counter()
    import os

    proc = subprocess.Popen([sys.executable, "-c", RUNNER, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=None if env is None else {**os.environ, **env})
    tree_peak = 0
    try:
        root = psutil.Process(proc.pid)
        while tree_pss and proc.poll() is None:
            try:
                tree_peak = max(tree_peak, sum(q.memory_full_info().pss for q in [root, *root.children(recursive=True)]))
            except psutil.Error:
                pass
            time.sleep(0.05)
    except psutil.Error:
        pass
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"traceconv {' '.join(args)} failed:\n{err}")
    rss = [int(line.split()[1]) for line in err.splitlines() if line.startswith("MAXRSS_KB")]
    workers = [int(line.split()[1]) for line in err.splitlines() if line.startswith("WORKER_MAXRSS_KB")]
    LAST_WORKER_RSS_MB = workers[-1] / 1024 if workers else float("nan")
    LAST_TREE_PSS_MB = tree_peak / 2**20 if tree_peak else float("nan")
    return wall, rss[-1] / 1024 if rss else float("nan")


LAST_WORKER_RSS_MB = float("nan")
LAST_TREE_PSS_MB = float("nan")


def timed(fn, *args):
    t0 = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - t0, result


def table(rows: list[tuple], header: tuple) -> str:
    cells = [tuple(str(c) for c in header)] + [tuple(str(c) for c in r) for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in cells)
