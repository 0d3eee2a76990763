"""nsys2perfetto / layers speed on a generated SGLang layerwise export (the fixture simulator,
fixtures/make_nsys_fixtures.py, scaled up), against baselines in this same script:

* reading: a bare ``sqlite3`` fetch of the same rows (NVTX, CUDA API, kernels) — our whole read
  (names, tracks, flows, args) should stay within a small multiple of it;
* per-range kernel time: the nsys ``nvtx_kern_sum``-style SQL join (kernel ⋈ launch ⋈
  containing ranges, with a temp index), against `analyzers.layers.by_range`.

    python benchmarks/bench_nsys.py --steps 200 --layers 32
"""

from __future__ import annotations

import argparse
import importlib.util
import sqlite3
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import run_cli, table, timed  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _fixtures():
    spec = importlib.util.spec_from_file_location("make_nsys_fixtures", ROOT / "fixtures" / "make_nsys_fixtures.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["make_nsys_fixtures"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def make_export(path: Path, steps: int, n_layers: int) -> dict:
    fx = _fixtures()
    cap = fx.Capture(schema=fx.MODERN, session_start=5_000_000_000, utc=1_767_225_600_000_000_000)
    cap.processes[4101] = "python3"
    th = cap.thread(4101, 4101, "scheduler_TP0", 5_200_000_000)
    for k in range(steps):
        th.push(f"step[EXTEND bs=1 toks={16 + k % 7}]", registered=True)
        fx.llama_forward(th, 16, dev=0, n_layers=n_layers, tp=1)
        th.pop()
        th.tick(50_000)
    return fx.write(cap, str(path), note="benchmark")["counts"]


def raw_fetch(path: Path) -> int:
    con = sqlite3.connect(path.resolve().as_uri() + "?mode=ro&immutable=1", uri=True)
    n = 0
    for sql in ("SELECT start, end, eventType, globalTid, textId, text, domainId FROM NVTX_EVENTS",
                "SELECT start, end, globalTid, correlationId, nameId, eventClass FROM CUPTI_ACTIVITY_KIND_RUNTIME",
                "SELECT start, end, deviceId, streamId, correlationId, globalPid, demangledName FROM CUPTI_ACTIVITY_KIND_KERNEL"):
        n += len(con.execute(sql).fetchall())
    con.close()
    return n


def sql_join(path: Path) -> int:
    sys.path.insert(0, str(ROOT))
    from tests.test_nsys import sql_kernel_time_per_range

    return len(sql_kernel_time_per_range(path))


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--layers", type=int, default=32)
    args = ap.parse_args(argv)
    from analyzers import layers
    from traceconv.readers import read_nsys

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "bench.sqlite"
        t_gen, counts = timed(make_export, path, args.steps, args.layers)
        size = path.stat().st_size / 1e6
        print(f"export: {size:.1f} MB, {counts['nvtx_ranges']:,} ranges, {counts['kernels']:,} kernels, {counts['cuda_api_calls']:,} API calls "
              f"(generated in {t_gen:.1f} s)", file=sys.stderr)
        t_raw, _ = timed(raw_fetch, path)
        t_read, trace = timed(read_nsys, path)
        t_sql, _ = timed(sql_join, path)
        t_range, _ = timed(layers.by_range, trace)
        t_mod, _ = timed(layers.by_module, trace)
        wall, rss = run_cli(["-q", "nsys2perfetto", str(path), "-o", str(Path(d) / "out.pftrace")])
        rows = [
            ("bare sqlite3 fetch (baseline)", f"{t_raw:.2f}", "1.0x"),
            ("read_nsys", f"{t_read:.2f}", f"{t_read / t_raw:.1f}x"),
            ("SQL nvtx_kern_sum-style join (baseline)", f"{t_sql:.2f}", "1.0x"),
            ("layers.by_range", f"{t_range:.2f}", f"{t_range / t_sql:.2f}x"),
            ("layers.by_module", f"{t_mod:.2f}", f"{t_mod / t_sql:.2f}x"),
            ("traceconv nsys2perfetto (process)", f"{wall:.2f}", f"peak RSS {rss:.0f} MB"),
        ]
        print(table(rows, ("what", "seconds", "ratio")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
