"""Scale: many files on both cores, and big inputs (issue: Scale).

Prints, in one run: `traceconv export` throughput for 1, 2 and N files with -j1 vs -j2 (target
≥ 1.6x on 2 cores for ≥ 4 files) and the peak RSS of a worker; `torch2perfetto` -j1 vs -j2 on
the same files; then each command's throughput on one generated Kineto trace of --kineto-mb
and an OTel dump of --otel-spans (defaults are modest; the issue's sizes are --kineto-mb 1024
--otel-spans 1000000, which take minutes). Inputs are generated here, never committed.

    python benchmarks/bench_scale.py
    python benchmarks/bench_scale.py --kineto-mb 1024 --otel-spans 1000000
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RUNNER, run_cli, table  # noqa: E402

HERE = Path(__file__).resolve().parent


def gen_kineto(path: str, mb: float, seed: int = 0, rank: int = 0) -> None:
    if not os.path.exists(path):
        subprocess.run([sys.executable, str(HERE / "make_kineto_trace.py"), "--mb", str(mb), "-o", path, "--seed", str(seed), "--rank", str(rank)],
                       check=True, capture_output=True)


def export(files: list[str], out: str, jobs: int) -> tuple[float, float]:
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", RUNNER, "export", *files, "-o", out, "-j", str(jobs)], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(proc.stderr)
    m = re.search(r"peak RSS of a worker (\d+) MB", proc.stderr)
    return wall, float(m.group(1)) if m else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--file-mb", type=float, default=40)
    ap.add_argument("--kineto-mb", type=float, default=200)
    ap.add_argument("--otel-spans", type=int, default=200_000)
    ap.add_argument("--dir", default="/tmp/traceconv_bench/scale")
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    files = []
    for r in range(args.files):
        p = os.path.join(args.dir, f"run-TP-{r}.trace.json")
        gen_kineto(p, args.file_mb, seed=r, rank=r)
        files.append(p)
    mb_each = os.path.getsize(files[0]) / 2**20
    rows = []
    for n in sorted({1, 2, args.files}):
        w1, rss1 = export(files[:n], os.path.join(args.dir, "ds1"), 1)
        w2, rss2 = export(files[:n], os.path.join(args.dir, "ds2"), 2)
        rows.append((f"export {n} file(s)", f"{w1:.2f}", f"{w2:.2f}", f"{w1 / w2:.2f}x", f"{n * mb_each / w2:.0f}", f"{max(rss1, rss2):.0f}"))
    t1, _ = run_cli(["-q", "torch2perfetto", *files, "-j", "1", "-o", os.path.join(args.dir, "m.pftrace")])
    t2, rss = run_cli(["-q", "torch2perfetto", *files, "-j", "2", "-o", os.path.join(args.dir, "m.pftrace")])
    rows.append((f"torch2perfetto {args.files} files (merged output)", f"{t1:.2f}", f"{t2:.2f}", f"{t1 / t2:.2f}x", f"{args.files * mb_each / t2:.0f}", f"{rss:.0f}"))
    print(f"{args.files} generated Kineto files of {mb_each:.0f} MB each")
    print(table(rows, ("command", "-j1 s", "-j2 s", "speedup", "MB/s (-j2)", "peak RSS MB")))
    four = [r for r in rows if r[0] == f"export {args.files} file(s)"]
    if args.files >= 4 and four:
        s = float(four[0][3].rstrip("x"))
        print(f"target: >= 1.6x with -j2 for >= 4 files -> {'MET' if s >= 1.6 else 'NOT MET'} ({s:.2f}x)")

    big = os.path.join(args.dir, f"big{int(args.kineto_mb)}.trace.json")
    gen_kineto(big, args.kineto_mb)
    size = os.path.getsize(big) / 2**20
    dump = os.path.join(args.dir, f"otel{args.otel_spans // 1000}k.jsonl")
    if not os.path.exists(dump):
        subprocess.run([sys.executable, str(HERE / "make_otel_dump.py"), "--spans", str(args.otel_spans), "-o", dump], check=True, capture_output=True)
    osize = os.path.getsize(dump) / 2**20
    big_rows = []
    for name, argv, mb in (
        ("torch2perfetto", ["torch2perfetto", big, "-o", os.path.join(args.dir, "big.pftrace")], size),
        ("steps", ["steps", big, "--format", "csv", "-o", os.path.join(args.dir, "steps.csv")], size),
        ("export", ["export", big, "-o", os.path.join(args.dir, "bigds"), "--force"], size),
        ("otel2perfetto", ["otel2perfetto", dump, "-o", os.path.join(args.dir, "otel.pftrace")], osize),
        ("requests", ["requests", dump, "--format", "csv", "-o", os.path.join(args.dir, "req.csv")], osize),
    ):
        w, r = run_cli(["-q", *argv])
        big_rows.append((name, f"{mb:.0f}", f"{w:.2f}", f"{mb / w:.1f}", f"{r:.0f}"))
    print(f"big inputs: Kineto {size:.0f} MB, OTel dump {args.otel_spans:,} spans ({osize:.0f} MB)")
    print(table(big_rows, ("command", "input MB", "seconds", "MB/s", "peak RSS MB")))


if __name__ == "__main__":
    main()
