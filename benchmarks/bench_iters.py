"""Benchmark the SGLang scheduler-log parser (analyzers.sglang_log) and the iteration checks.

Usage::

    . .venv/bin/activate
    python benchmarks/bench_iters.py                 # ~1 GB log in /tmp (generated once, ~1.5 min)
    python benchmarks/bench_iters.py --mb 100        # a quick run
    python benchmarks/bench_iters.py --mb 100 --workers 1

The log comes from fixtures/make_sglang_logs.py (`write_big`: the simulated scheduler with
overlap and the pre-fix labelling, DP=2, every decode batch logged, the new/spec/PD/MFU line
styles in turn, uvicorn and other loggers' lines in between: the densest realistic case for
the parser). It is written to /tmp and not committed; an existing file of the right size is
reused.

Printed: MB/s of `parse_log` with the default worker processes and with one process, the
in-process baseline (`for line in f: pass` over the same file, page cache warm) and the
ratios to it, the CPU seconds used (this process and its workers: MB per CPU-second is the
throughput one free core gives, whatever else runs on the machine), the time of
`iterations.check` on the parsed frame, the load average, and the 50 MB/s target.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_MB_S = 50.0


def _generator():
    spec = importlib.util.spec_from_file_location("make_sglang_logs", ROOT / "fixtures" / "make_sglang_logs.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_sglang_logs", mod)
    spec.loader.exec_module(mod)
    return mod


def ensure_log(path: Path, mb: float) -> Path:
    want = int(mb * 1e6)
    if path.exists() and abs(path.stat().st_size - want) < 2e6 + want * 0.01:
        return path
    gen = _generator()
    t0 = time.perf_counter()
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb", buffering=1 << 22) as f:
        n = gen.write_big(f, want)
    os.replace(tmp, path)
    print(f"generated {path} ({n / 1e6:.0f} MB) in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return path


def baseline(path: Path) -> float:
    t0 = time.perf_counter()
    with open(path, "rb") as f:
        for _line in f:
            pass
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=1024, help="log size in MB (default 1024)")
    ap.add_argument("--path", help="log file (default /tmp/sglang_bench_<mb>mb.log)")
    ap.add_argument("--workers", type=int, default=None, help="parser processes (default: analyzers.sglang_log.default_workers())")
    ap.add_argument("--repeat", type=int, default=1, help="runs per measurement (the best is kept)")
    ap.add_argument("--no-check", action="store_true", help="skip timing iterations.check")
    args = ap.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    from analyzers import iterations, sglang_log

    path = ensure_log(Path(args.path or f"/tmp/sglang_bench_{int(args.mb)}mb.log"), args.mb)
    size_mb = path.stat().st_size / 1e6
    workers = sglang_log.default_workers() if args.workers is None else args.workers
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()

    baseline(path)  # warm the page cache
    t_base = min(baseline(path) for _ in range(args.repeat))

    def cpu() -> float:
        a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime

    def parse(w: int):
        best, df, cpu_s = None, None, None
        for _ in range(args.repeat):
            df = None
            c0, t0 = cpu(), time.perf_counter()
            with open(path, "rb") as f:
                df = sglang_log.parse_log(f, workers=w)
            dt, dc = time.perf_counter() - t0, cpu() - c0
            if best is None or dt < best:
                best, cpu_s = dt, dc
        return best, cpu_s, df

    t_par, c_par, df = parse(workers)
    rows = [("parse_log", workers, t_par, c_par)]
    if workers != 1:
        del df
        t_one, c_one, df = parse(1)
        rows.append(("parse_log", 1, t_one, c_one))

    print(f"log: {path} ({size_mb:.0f} MB, {df.attrs['stats']['lines']:,} lines, {len(df):,} batch lines, "
          f"{len(df.columns)} columns); {cores} cores; load {os.getloadavg()[0]:.1f}")
    print(f"baseline `for line in f: pass`: {size_mb / t_base:8.1f} MB/s ({t_base:.2f} s)")
    for name, w, t, c in rows:
        print(f"{name} (workers={w}):         {size_mb / t:8.1f} MB/s ({t:.2f} s)  ratio to baseline {t_base / t:.3f}; "
              f"{c:.1f} CPU-s = {size_mb / c:.1f} MB per CPU-second")
    if not args.no_check:
        t0 = time.perf_counter()
        res = iterations.check(df)
        t_check = time.perf_counter() - t0
        print(f"iterations.check: {len(df) / t_check / 1e6:.2f} M lines/s ({t_check:.2f} s): {res.verdict()}")
    best = size_mb / min(t for _, _, t, _ in rows)
    print(f"target ≥ {TARGET_MB_S:.0f} MB/s: {'PASS' if best >= TARGET_MB_S else 'FAIL'} ({best:.1f} MB/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
