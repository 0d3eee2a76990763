"""torch2perfetto speed and memory on a generated Kineto trace (same schema as real ones: see
benchmarks/make_kineto_trace.py), against baselines in this same script:

* ``orjson.loads`` of the same uncompressed JSON (target: our read ≤ 2x its wall time);
* Holistic Trace Analysis' load throughput, 11–16 MB/s of JSON per core measured on this
  machine kind (attribution.md §1.4; HTA is not a dependency, so its published figure is used):
  target ≥ 10x, i.e. ≥ 160 MB/s;
* peak RSS for a ≥ 500 MB trace ≤ 0.5 × JSON size + 150 MB;
* several ranks: -j1 vs -j2 (both cores).

    python benchmarks/bench_torch2perfetto.py --mb 500
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402
from _common import run_cli, table, timed  # noqa: E402

HERE = Path(__file__).resolve().parent
HTA_MB_S = 16.0  # upper end of HTA's measured load throughput per core


def orjson_load(path: str) -> int:
    import orjson

    with open(path, "rb") as f:
        return len(orjson.loads(f.read())["traceEvents"])


def warm_up() -> None:
    import pyarrow as pa

    import traceconv.readers  # noqa: F401

    pa.array([0])


def read_only(path: str) -> int:
    from traceconv.readers import read_kineto

    return read_kineto(path).num_slices


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=500)
    ap.add_argument("--dir", default="/tmp/traceconv_bench")
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    big = os.path.join(args.dir, f"kineto{args.mb}mb.trace.json")
    if not os.path.exists(big):
        print(f"generating {big} ...", file=sys.stderr)
        subprocess.run([sys.executable, str(HERE / "make_kineto_trace.py"), "--mb", str(args.mb), "-o", big], check=True)
    size_mb = os.path.getsize(big) / 2**20
    out = os.path.join(args.dir, "k.pftrace")

    wall, rss = run_cli(["-q", "torch2perfetto", big, "-o", out], tree_pss=True)
    worker_rss = _common.LAST_WORKER_RSS_MB
    tree_pss = _common.LAST_TREE_PSS_MB  # (one big file is read by two processes)
    peak = max(rss, tree_pss)
    # once per process, not in the read (HTA's figure is load time too): importing traceconv, and
    # pyarrow's first array, which imports pandas when it is installed (~0.3 s)
    t_import, _ = timed(warm_up)
    t_read, n = timed(read_only, big)
    t_orjson, n_json = timed(orjson_load, big)
    rows = [
        ("orjson.loads (whole document)", f"{t_orjson:.2f}", f"{size_mb / t_orjson:,.0f}", "-"),
        ("traceconv read_kineto (to the model)", f"{t_read:.2f}", f"{size_mb / t_read:,.0f}", "-"),
        ("traceconv torch2perfetto → .pftrace", f"{wall:.2f}", f"{size_mb / wall:,.0f}", f"{rss:.0f}"),
        ("HTA load (published, per core)", f"{size_mb / HTA_MB_S:.2f}", f"{HTA_MB_S:.0f}", "5-7x JSON"),
    ]
    print(f"trace: {big} ({size_mb:.0f} MB, {n_json:,} events, {n:,} slices); importing traceconv.readers and pyarrow's first array took {t_import:.2f} s (not in the read)")
    print(table(rows, ("method", "seconds", "MB/s", "peak RSS MB")))
    rss_target = 0.5 * size_mb + 150
    print(f"targets: read <= 2x orjson.loads -> {'MET' if t_read <= 2 * t_orjson else 'NOT MET'} ({t_read / t_orjson:.2f}x); "
          f">= 10x HTA ({10 * HTA_MB_S:.0f} MB/s) -> {'MET' if size_mb / t_read >= 10 * HTA_MB_S else 'NOT MET'} "
          f"({size_mb / t_read / HTA_MB_S:.1f}x); peak memory <= {rss_target:.0f} MB -> {'MET' if peak <= rss_target else 'NOT MET'} "
          f"(the process's peak RSS {rss:.0f} MB; all its processes together, PSS, {tree_pss:.0f} MB; largest worker's RSS {worker_rss:.0f} MB)")

    # several ranks: 4 files, one core vs both
    ranks = []
    for r in range(4):
        p = os.path.join(args.dir, f"bench-TP-{r}.trace.json")
        if not os.path.exists(p):
            subprocess.run([sys.executable, str(HERE / "make_kineto_trace.py"), "--mb", "40", "-o", p, "--seed", str(r)], check=True)
        ranks.append(p)
    w1, _ = run_cli(["-q", "torch2perfetto", *ranks, "-j", "1", "-o", out])
    w2, _ = run_cli(["-q", "torch2perfetto", *ranks, "-j", "2", "-o", out])
    print(f"4 ranks x 40 MB: -j1 {w1:.2f} s, -j2 {w2:.2f} s ({w1 / w2:.2f}x with both cores)")


if __name__ == "__main__":
    main()
