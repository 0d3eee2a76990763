"""steps: attribution on an already-read trace vs the read itself (target: ≤ 0.5x the read
time), on a generated Kineto trace with steps, graph launches and several streams.

    python benchmarks/bench_steps.py --mb 200
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table, timed  # noqa: E402

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--dir", default="/tmp/traceconv_bench")
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    path = os.path.join(args.dir, f"kineto{args.mb}mb.trace.json")
    if not os.path.exists(path):
        subprocess.run([sys.executable, str(HERE / "make_kineto_trace.py"), "--mb", str(args.mb), "-o", path], check=True)

    from analyzers import steps
    from traceconv.readers import read_kineto

    t_read, trace = timed(read_kineto, path)
    t_attr, ops = timed(steps.attribute, trace)
    t_mode, pm = timed(steps.per_mode, trace)
    t_step, ps = timed(steps.per_step, trace)
    rows = [
        ("read_kineto", f"{t_read:.2f}", "1.00"),
        ("steps.attribute (every GPU op → step)", f"{t_attr:.2f}", f"{t_attr / t_read:.2f}"),
        ("steps.per_step", f"{t_step:.2f}", f"{t_step / t_read:.2f}"),
        ("steps.per_mode", f"{t_mode:.2f}", f"{t_mode / t_read:.2f}"),
    ]
    print(f"trace: {path} ({os.path.getsize(path) / 2**20:.0f} MB, {trace.num_slices:,} slices, {len(ops):,} GPU ops, {len(ps):,} steps)")
    print(table(rows, ("step", "seconds", "x read time")))
    print(f"target: attribution <= 0.5x read -> {'MET' if t_attr <= 0.5 * t_read else 'NOT MET'} ({t_attr / t_read:.2f}x); "
          f"per_mode (attribution + aggregation) {t_mode / t_read:.2f}x")


if __name__ == "__main__":
    main()
