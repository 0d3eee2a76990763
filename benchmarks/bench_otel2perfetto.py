"""otel2perfetto speed and memory on a ≥ 200k-span SGLang-shaped dump, against baselines run in
this same script:

* SGLang's `convert_otel_2_perfetto.py` approach, re-implemented from its description
  (reference/sglang.md §1) in `sglang_baseline.py`: whole-file load, per-span dicts, span tree,
  greedy line layout with sorted interval lists, instants, flows, `json.dump(indent=4)`; and a
  simplified version without layout/flows as a lower bound;
* plain `json.loads` of every line (the in-tree reference: parsing alone).

Targets (issue): ≥ 10x the SGLang approach's spans/s, peak RSS ≤ 150 MB.

    python benchmarks/bench_otel2perfetto.py            # makes /tmp/traceconv_bench/otel200k.jsonl
    python benchmarks/bench_otel2perfetto.py --spans 50000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sglang_baseline  # noqa: E402
import _common  # noqa: E402
from _common import compile_bytecode, run_cli, table, timed  # noqa: E402

HERE = Path(__file__).resolve().parent


def sglang_simplified(path: str, out: str) -> int:
    """A lower bound of SGLang's approach: load + dicts + json.dump, without its layout pass,
    recursion, events' attributes and flows (kept to show how much of its time is parsing)."""
    with open(path) as f:
        docs = [json.loads(line) for line in f if line.strip()]
    spans = {}
    for doc in docs:
        for rs in doc.get("resourceSpans", []):
            for ss in rs.get("scopeSpans", []):
                for sp in ss.get("spans", []):
                    attrs = {a["key"]: next(iter(a["value"].values()), None) for a in sp.get("attributes", [])}
                    spans[sp["spanId"]] = {
                        "name": sp["name"], "parent": sp.get("parentSpanId", ""), "start": int(sp["startTimeUnixNano"]),
                        "end": int(sp["endTimeUnixNano"]), "attrs": attrs, "events": sp.get("events", []),
                    }
    events = []
    for sid, s in spans.items():
        events.append({"ph": "X", "name": s["name"], "cat": "sglang", "pid": 1, "tid": 1,
                       "ts": s["start"] / 1000, "dur": (s["end"] - s["start"] - 1000) / 1000, "args": s["attrs"]})
        for ev in s["events"]:
            events.append({"ph": "i", "name": ev.get("name"), "pid": 1, "tid": 1, "ts": int(ev["timeUnixNano"]) / 1000})
    with open(out, "w") as f:
        json.dump(events, f, indent=4)
    return len(spans)


def plain_json(path: str) -> int:
    n = 0
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                json.loads(line)
                n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spans", type=int, default=200_000)
    ap.add_argument("--dir", default="/tmp/traceconv_bench")
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    dump = os.path.join(args.dir, f"otel{args.spans // 1000}k.jsonl")
    if not os.path.exists(dump):
        print(f"generating {dump} ...", file=sys.stderr)
        subprocess.run([sys.executable, str(HERE / "make_otel_dump.py"), "--spans", str(args.spans), "-o", dump], check=True)
    size_mb = os.path.getsize(dump) / 2**20
    accel = compile_bytecode()

    # the main row: the median of three runs (one run of ~1 s moves with the machine's noise;
    # the baseline's ~20 s average it out); peak RSS, the largest of the three
    runs = [run_cli(["-q", "otel2perfetto", dump, "-o", os.path.join(args.dir, "out.pftrace")]) for _ in range(3)]
    children_rss = _common.LAST_WORKER_RSS_MB  # (0: the conversion ran in one process)
    ours_pf, rss_pf = statistics.median(w for w, _ in runs), max(r for _, r in runs)
    ours_js, rss_js = run_cli(["-q", "otel2perfetto", dump, "--format", "json", "-o", os.path.join(args.dir, "out.json")])
    array = os.path.join(args.dir, f"otel{args.spans // 1000}k_array.json")  # (the same documents as one JSON array)
    if not os.path.exists(array):
        with open(dump, "rb") as src, open(array, "wb") as dst:
            dst.write(b"[\n" + b",\n".join(line.rstrip(b"\n") for line in src if line.strip()) + b"\n]\n")
    ours_arr, rss_arr = run_cli(["-q", "otel2perfetto", array, "-o", os.path.join(args.dir, "out_array.pftrace")])
    ours_py, rss_py = run_cli(["-q", "otel2perfetto", dump, "-o", os.path.join(args.dir, "out_py.pftrace")], env={"TRACECONV_NO_C": "1"})
    t_json, _ = timed(plain_json, dump)
    t_base, n_spans = timed(sglang_baseline.convert, dump, os.path.join(args.dir, "sglang_style.json"))
    t_simple, _ = timed(sglang_simplified, dump, os.path.join(args.dir, "sglang_simplified.json"))

    rows = [
        ("SGLang converter's approach (sglang_baseline.py)", f"{t_base:.2f}", f"{n_spans / t_base:,.0f}", "1.0x", "-"),
        ("  simplified: no layout/flows (lower bound)", f"{t_simple:.2f}", f"{n_spans / t_simple:,.0f}", f"{t_base / t_simple:.1f}x", "-"),
        ("plain json.loads per line (reference)", f"{t_json:.2f}", f"{n_spans / t_json:,.0f}", f"{t_base / t_json:.1f}x", "-"),
        ("traceconv otel2perfetto → .pftrace", f"{ours_pf:.2f}", f"{n_spans / ours_pf:,.0f}", f"{t_base / ours_pf:.1f}x", f"{rss_pf:.0f}"),
        ("traceconv otel2perfetto --format json", f"{ours_js:.2f}", f"{n_spans / ours_js:,.0f}", f"{t_base / ours_js:.1f}x", f"{rss_js:.0f}"),
        ("traceconv otel2perfetto, the dump as one JSON array", f"{ours_arr:.2f}", f"{n_spans / ours_arr:,.0f}", f"{t_base / ours_arr:.1f}x", f"{rss_arr:.0f}"),
        ("traceconv otel2perfetto, without C (TRACECONV_NO_C=1)", f"{ours_py:.2f}", f"{n_spans / ours_py:,.0f}", f"{t_base / ours_py:.1f}x", f"{rss_py:.0f}"),
    ]
    print(f"dump: {dump} ({size_mb:.1f} MB, {n_spans:,} spans); wall times include process start for traceconv; {accel}")
    print(f"traceconv → .pftrace, three runs: {', '.join(f'{w:.2f} s' for w, _ in runs)} (the table has their median)")
    print(table(rows, ("method", "seconds", "spans/s", "vs SGLang", "peak RSS MB")))
    print(f"target: >= 10x SGLang approach -> {'MET' if t_base / ours_pf >= 10 else 'NOT MET'} ({t_base / ours_pf:.1f}x); "
          f"peak RSS <= 150 MB -> {'MET' if rss_pf <= 150 else 'NOT MET'} ({rss_pf:.0f} MB; "
          f"{'no child processes' if not children_rss else f'largest child {children_rss:.0f} MB'}); "
          f"vs plain json.loads: {t_json / ours_pf:.2f}x its speed")


if __name__ == "__main__":
    main()
