"""Benchmark: `requests` + `pipeline` analysis vs otel2perfetto conversion of the same spans.

Usage::

    . .venv/bin/activate
    python benchmarks/bench_requests.py                       # makes /tmp/sglang_200k.jsonl if missing
    python benchmarks/bench_requests.py --dump my.jsonl --repeat 5

Target (issue "request stage latency and pipeline view"): analysing >= 200k spans takes no
longer than converting them (``read_otel`` + ``write_trace`` to Perfetto protobuf), measured in
this process on this machine. Printed ratios, best of ``--repeat`` runs each:

* analysis / conversion: ``requests.analyze`` + ``summary()`` + ``pipeline.analyze`` +
  ``in_flight`` on the trace already read, against reading + writing it;
* command / conversion: what ``traceconv requests`` costs end to end (read + analysis) against
  what ``traceconv otel2perfetto`` costs (read + write).

The 200k dump (benchmarks/make_otel_dump.py) has few ``run_batch_cpu`` spans, so the pipeline
path is also timed on a synthetic level-4 trace (``--pp-spans`` run_batch_cpu spans, PP=4,
micro-batches of several requests) built in memory, against writing that trace.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import time
from pathlib import Path

from analyzers import pipeline, requests
from traceconv.model.trace import TraceBuilder, TrackKind
from traceconv.readers import read_otel
from traceconv.writers import write_trace

HERE = Path(__file__).resolve().parent


class _Sink(io.RawIOBase):
    """A binary stream that counts and drops bytes (the writer's cost without the disk's)."""

    def __init__(self) -> None:
        self.n = 0

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self.n += len(b)
        return len(b)


def best(fn, repeat: int):
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def analyse(trace):
    rs = requests.analyze(trace)
    summary = rs.summary()
    view = pipeline.analyze(trace)
    samples = pipeline.in_flight(view)
    return rs, summary, view, samples


def synthetic_pp(n_spans: int, pp: int = 4, n_mb: int = 4, per_mb: int = 8):
    """A level-4 trace: per rank thread, `run_batch_cpu` spans (one per request of each
    micro-batch, identical start/end) with pp_mb_id, under thread spans carrying pp_rank."""
    b = TraceBuilder(span_columns=True)
    proc = b.add_process(1, "sglang")
    tracks = [b.add_track(proc, 4200 + p, f"Scheduler-PP{p}-DP0-TP0", TrackKind.THREAD) for p in range(pp)]
    rounds = max(1, n_spans // (pp * n_mb * per_mb))
    t0 = 1_767_225_600_000_000_000
    step, dur = 400_000, 330_000
    for p, t in enumerate(tracks):
        thread = b.add_slice(t0, (rounds * n_mb + pp + 2) * step, t, "Scheduler [TP 0]  [PP %d]  [DP 0]" % p)
        for key, value in (("tp_rank", 0), ("pp_rank", p), ("dp_rank", 0), ("thread_label", "Scheduler")):
            b.add_arg(thread, key, value)
        for k in range(rounds):
            for m in range(n_mb):
                start = t0 + ((k * n_mb + m) + p) * step
                for _ in range(per_mb):
                    row = b.add_slice(start, dur, t, "run_batch_cpu", parent=thread)
                    b.add_arg(row, "pp_mb_id", m)
    for col in b.span.values():  # span columns: zeros are fine for this benchmark
        col.frombytes(bytes(b.num_slices * col.itemsize))
    return b.build()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dump", type=Path, default=Path("/tmp/sglang_200k.jsonl"))
    parser.add_argument("--spans", type=int, default=200_000, help="spans in a generated dump (default 200000)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pp-spans", type=int, default=200_000, help="run_batch_cpu spans in the synthetic PP trace")
    args = parser.parse_args(argv)

    if not args.dump.exists():
        print(f"making {args.dump} ({args.spans} spans)...", file=sys.stderr)
        subprocess.run([sys.executable, str(HERE / "make_otel_dump.py"), "--spans", str(args.spans), "-o", str(args.dump)],
                       check=True)

    t_read, trace = best(lambda: read_otel([args.dump]), args.repeat)
    t_write, _ = best(lambda: write_trace(trace, _Sink()), args.repeat)
    t_an, (rs, summary, view, samples) = best(lambda: analyse(trace), args.repeat)
    conversion = t_read + t_write
    n_spans = int((trace.column("slices", "dur_ns") >= 0).sum())
    size = os.path.getsize(args.dump) / 1e6
    print(f"dump: {args.dump} ({size:.1f} MB, {n_spans:,} spans, {len(rs.requests):,} requests, "
          f"{len(rs.spans):,} stage spans, {len(view.intervals)} run_batch_cpu intervals)")
    print(f"conversion (read_otel + write_trace): {conversion:.3f} s  (read {t_read:.3f} s, write {t_write:.3f} s)")
    print(f"analysis (requests + summary + pipeline + in_flight): {t_an:.3f} s  ({n_spans / t_an:,.0f} spans/s)")
    r1 = t_an / conversion
    r2 = (t_read + t_an) / conversion
    print(f"ratio analysis / conversion: {r1:.2f}   target <= 1.0: {'PASS' if r1 <= 1.0 else 'FAIL'}")
    print(f"ratio `traceconv requests` / `traceconv otel2perfetto` (both read): {r2:.2f}   target <= 1.0: "
          f"{'PASS' if r2 <= 1.0 else 'FAIL'}")

    pp = synthetic_pp(args.pp_spans)
    t_pw, _ = best(lambda: write_trace(pp, _Sink()), args.repeat)
    t_pa, view = best(lambda: (lambda v: (v, pipeline.in_flight(v)))(pipeline.analyze(pp)), args.repeat)
    v = view[0]
    print(f"synthetic PP4 level-4 trace: {pp.num_slices:,} spans ({v.duplicates:,} duplicates folded into "
          f"{len(v.intervals):,} intervals); pipeline + in_flight {t_pa:.3f} s vs write {t_pw:.3f} s: "
          f"ratio {t_pa / t_pw:.2f}")
    return 0 if max(r1, r2) <= 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
