"""torch2perfetto: Kineto traces (real torch CPU runs, GPU-shaped synthetic ones, public real
ones from ../shared/corpus) arrive complete, exact to the ns, with launch → kernel flows."""

from __future__ import annotations

import gzip
import io
import json
import os
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from tests.perfetto_check import decode
from traceconv.cli import main
from traceconv.readers import read_kineto
from traceconv.writers import write_trace

ROOT = Path(__file__).resolve().parent.parent
GPU = ROOT / "fixtures" / "kineto" / "gpu"
CPU = ROOT / "fixtures" / "kineto" / "cpu"
CORPUS = ROOT.parent / "shared" / "corpus" / "kineto"
GPU_TRACES = sorted(GPU.glob("*.trace.json.gz"))


def truth_of(path: Path) -> dict:
    stem = path.name.replace(".trace.json.gz", "").removesuffix(".pt")
    return json.loads((path.parent / f"{stem}.truth.json").read_text())


def expected_events(path: Path) -> tuple[list[tuple[str, str, int, int]], int]:
    """(category, name, start ns, end ns) of every X/i event, computed from the file with
    decimal arithmetic — independently of the reader."""
    doc = json.loads(gzip.open(path).read(), parse_float=Decimal)
    events = doc["traceEvents"] if isinstance(doc, dict) else doc
    base = doc.get("baseTimeNanoseconds", 0) if isinstance(doc, dict) else 0
    out = []
    for e in events:
        if e.get("ph") not in ("X", "i", "I"):
            continue
        start = base + int(Decimal(e["ts"]) * 1000)
        end = start + int(Decimal(e.get("dur", 0)) * 1000) if e["ph"] == "X" else start
        out.append((e.get("cat", ""), str(e.get("name", "")), start, end))
    return out, base


def convert(path, fmt: str = "perfetto") -> bytes:
    trace = read_kineto(path)
    trace.validate()
    buf = io.BytesIO()
    write_trace(trace, buf, fmt)
    return buf.getvalue()


@pytest.mark.parametrize("path", GPU_TRACES, ids=lambda p: p.name)
def test_every_event_arrives_exactly(path):
    d = decode(convert(path))
    got = Counter((s.category, s.name, s.start, s.end) for s in d.slices)
    want, _ = expected_events(path)
    assert got == Counter(want)


@pytest.mark.parametrize("path", GPU_TRACES, ids=lambda p: p.name)
def test_counts_by_category_match_the_generator(path):
    truth = truth_of(path)["counts"]["by_ph_cat"]
    d = decode(convert(path))
    got = Counter(("i" if s.instant else "X") + "/" + s.category for s in d.slices)
    want = {k: v for k, v in truth.items() if k[0] in "Xi"}
    assert dict(got) == want


@pytest.mark.parametrize("path", GPU_TRACES, ids=lambda p: p.name)
def test_launch_to_gpu_op_flows(path):
    truth = truth_of(path)
    d = decode(convert(path))
    flows = d.flows()
    gpu_ops = [s for s in d.slices if s.category in ("kernel", "gpu_memcpy", "gpu_memset", "Kernel", "Memcpy", "Memset")]
    incoming = Counter(id(b) for _, b in flows)
    assert all(incoming[id(op)] == 1 for op in gpu_ops)
    for a, b in flows:
        assert a.args["args"]["correlation"] == b.args["args"]["correlation"]
        assert a.category in ("cuda_runtime", "cuda_driver", "Runtime")
    # a CUDA-graph launch fans out to all its kernels
    for g in truth["edge_cases"].get("cuda_graphs", []):
        out = [b for a, b in flows if a.args["args"]["correlation"] == g["correlation"]]
        assert len(out) == g["n_kernels"]
    assert len(flows) == truth["totals"]["n_gpu_ops"]


def test_ranks_merge_onto_one_timeline_with_rank_names(tmp_path):
    out = tmp_path / "merged.pftrace"
    pair = sorted(GPU.glob("1775078549.99-TP-*-DECODE.trace.json.gz"))
    assert main(["-q", "torch2perfetto", *map(str, pair), "-o", str(out), "-j", "2"]) == 0
    d = decode(out.read_bytes())
    assert sorted(d.process_names) == ["TP0 (DECODE)", "TP1 (DECODE)"]
    # the two files have different baseTimeNanoseconds: absolute times still exact
    want = Counter()
    for p in pair:
        want.update((c, n, s, e) for c, n, s, e in expected_events(p)[0])
    assert Counter((s.category, s.name, s.start, s.end) for s in d.slices) == want
    # flows never cross ranks after re-namespacing: both ends in the same rank process
    def process_of(s):
        uuid = s.track
        while not d.tracks[uuid].HasField("process"):
            uuid = d.tracks[uuid].parent_uuid
        return uuid

    flows = d.flows()
    assert flows and all(process_of(a) == process_of(b) for a, b in flows)
    assert all(a.args["args"]["correlation"] == b.args["args"]["correlation"] for a, b in flows)


def test_real_torch_cpu_traces_keep_step_labels_and_ranks():
    trace = read_kineto(CPU / "1769071195.6634595-TP-1-EXTEND.trace.json.gz")
    names = trace.strings("slices", "name")
    assert any(n.startswith("step[EXTEND") for n in names)
    assert trace.processes.column("name").to_pylist() == ["TP1 (EXTEND)"]
    trace = read_kineto(CPU / "1769071260.4417221-TP-0-DP-1-PP-1.trace.json.gz")
    assert trace.processes.column("name").to_pylist() == ["PP1-DP1-TP0"]
    assert any(n.startswith("step[decode") for n in trace.strings("slices", "name"))


def test_truncated_trace_is_salvaged_with_a_count(tmp_path, capsys):
    raw = gzip.open(GPU_TRACES[0]).read()
    cut = raw[: int(len(raw) * 0.6)]
    bad = tmp_path / "cut.trace.json"
    bad.write_bytes(cut)
    out = tmp_path / "cut.pftrace"
    assert main(["torch2perfetto", str(bad), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "file ends inside the events" in err and "Wrote" in err
    d = decode(out.read_bytes())
    assert len(d.slices) > 0.5 * len(expected_events(GPU_TRACES[0])[0])
    assert main(["torch2perfetto", str(bad), "-o", str(out), "--strict"]) == 1


def test_chrome_json_output_reads_back_exactly(tmp_path):
    path = GPU_TRACES[0]
    out = tmp_path / "x.json"
    out.write_bytes(convert(path, "json"))
    back = read_kineto(out)
    d = decode(io.BytesIO(convert(out)).getvalue())
    want, _ = expected_events(path)
    assert Counter((s.category, s.name, s.start, s.end) for s in d.slices) == Counter(want)
    assert back.flows.num_rows == truth_of(path)["totals"]["n_gpu_ops"]


def test_filters(tmp_path):
    path = GPU_TRACES[0]
    out = tmp_path / "f.pftrace"
    assert main(["-q", "torch2perfetto", str(path), "-o", str(out), "--drop", "python_function", "--drop", "cpu_op"]) == 0
    cats = Counter(s.category for s in decode(out.read_bytes()).slices)
    assert "python_function" not in cats and "cpu_op" not in cats and cats["kernel"] > 0
    assert main(["-q", "torch2perfetto", str(path), "-o", str(out), "--only-gpu"]) == 0
    cats = Counter(s.category for s in decode(out.read_bytes()).slices)
    assert set(cats) <= {"kernel", "gpu_memcpy", "gpu_memset", "gpu_user_annotation"}
    assert main(["-q", "torch2perfetto", str(path), "-o", str(out), "--steps", "0:2"]) == 0
    steps = [s for s in decode(out.read_bytes()).slices if s.name.startswith("step[")]
    assert 2 <= len(steps) <= 3  # the two steps (and a step nested inside one)


def test_bad_inputs_give_one_line_errors(tmp_path, capsys):
    cases = {
        "empty.json": b"",
        "notjson.json": b"\x89PNG\r\n\x1a\n....",
        "noevents.json": b'{"schemaVersion": 1}',
        "corrupt.json.gz": b"\x1f\x8b\x08\x00garbage",
    }
    for name, data in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        assert main(["torch2perfetto", str(p), "-o", str(tmp_path / "o.pftrace")]) == 1, name
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and name in err[0], err


@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is not present (a user's clone has none)")
@pytest.mark.parametrize("name", sorted(p.name for p in CORPUS.glob("*.gz")) if CORPUS.is_dir() else [])
def test_public_real_traces(name):
    path = CORPUS / name
    d = decode(convert(path))
    want, _ = expected_events(path)
    assert Counter((s.category, s.start, s.end) for s in d.slices) == Counter((c, s, e) for c, _, s, e in want)


def test_parallel_encoding_writes_the_same_bytes(monkeypatch, tmp_path):
    """-j N encodes packet chunks in forked workers: the output is byte-identical to -j 1."""
    from traceconv.writers import perfetto

    monkeypatch.setattr(perfetto, "CHUNK", 97)  # many small chunks, uneven last one
    outs = []
    for jobs in ("1", "2", "3"):
        out = tmp_path / f"j{jobs}.pftrace"
        assert main(["-q", "torch2perfetto", *map(str, GPU_TRACES[:2]), "-j", jobs, "-o", str(out)]) == 0
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] == outs[2]
    assert len(decode(outs[0]).slices) > 97 * 8


@pytest.mark.parametrize("block", [7, 64, 1 << 20])
def test_event_scanner_is_independent_of_block_size(block):
    """Events are found whatever the read block: split inside strings, escapes and numbers,
    and events many blocks long (read geometrically larger, not rescanned block by block)."""
    from traceconv.readers.json_events import ScanResult, iter_event_chunks

    events = [
        {"ph": "X", "name": 'a "quoted" \\ name {[', "ts": 1.5, "dur": 2, "pid": 1, "tid": 1, "args": {"s": "}" * 300}},
        {"ph": "X", "name": "long", "ts": 5, "dur": 1, "pid": 1, "tid": 1, "args": {"blob": "x\\" * 5000}},
        {"ph": "i", "name": "i", "ts": 9, "pid": 1, "tid": 1, "s": "t"},
    ]
    doc = json.dumps({"schemaVersion": 1, "traceEvents": events, "traceName": "t"}, indent=2).encode()
    scan = ScanResult()
    got = [e for chunk, _ in iter_event_chunks(io.BytesIO(doc), scan, block=block) for e in json.loads(chunk)]
    assert got == events
    assert json.loads(bytes(scan.header)) == {"schemaVersion": 1, "traceEvents": [], "traceName": "t"}
    assert not scan.truncated


def test_escaped_quote_split_between_blocks():
    """A block that ends in a backslash escapes the quote that starts the next block (found by
    fuzzing: the escape was missed when no event was carried over, e.g. in the header)."""
    from traceconv.readers.json_events import ScanResult, iter_event_chunks

    doc = b'{"traceName": "say \\"[hi]\\" {", "traceEvents": [{"ph": "i", "name": "a", "ts": 1, "pid": 1, "tid": 1}]}'
    cut = doc.index(b'\\"') + 1
    scan = ScanResult()
    got = [e for chunk, _ in iter_event_chunks(io.BytesIO(doc), scan, block=cut) for e in json.loads(chunk)]
    assert got == [{"ph": "i", "name": "a", "ts": 1, "pid": 1, "tid": 1}]
    assert json.loads(bytes(scan.header)) == {"traceName": 'say "[hi]" {', "traceEvents": []}


def _scan(doc: bytes, block: int, fast: bool) -> tuple:
    from traceconv.readers.json_events import ScanResult, iter_event_chunks

    def decode(text: bytes):
        try:
            events = json.loads(text)
        except ValueError:
            return None
        return events if all(isinstance(e, dict) for e in events) else None

    scan = ScanResult()
    events, taken = [], 0
    for chunk, decoded in iter_event_chunks(io.BytesIO(doc), scan, block=block, decode=decode if fast else None):
        taken += decoded is not None
        events += decoded if decoded is not None else json.loads(chunk)
    return (events, bytes(scan.header), scan.truncated, scan.truncated_at, scan.events_seen), taken


FAST_DOCS = {
    # Kineto's layout: events separated by "},\n  {"
    "kineto": json.dumps({"schemaVersion": 1, "traceEvents": [
        {"ph": "X", "name": f"op{i}", "ts": i, "dur": 1, "pid": 1, "tid": 1, "args": {"s": "}" * (i % 7), "l": [{"a": i}] * (i % 3)}}
        for i in range(300)], "traceName": "t"}, indent=2).encode(),
    # compact, with the separator `},{` inside strings and nested lists of objects
    "compact": json.dumps({"traceEvents": [
        {"ph": "X", "name": "a},{b" * (i % 2), "ts": i, "dur": 1, "pid": 1, "tid": 1, "args": {"l": [{"x": 1}, {"y": "},{"}]}}
        for i in range(300)]}, separators=(",", ":")).encode(),
    "bare": json.dumps([{"ph": "i", "ts": i, "name": "n\\"} for i in range(300)], indent=1).encode(),
}


@pytest.mark.parametrize("doc", sorted(FAST_DOCS))
@pytest.mark.parametrize("block", [13, 200, 1000])
def test_fast_path_finds_the_events_the_scanner_finds(doc, block):
    """Cutting blocks at the known text between events (and letting a successful decode prove
    the cut) gives the events, header and truncation point of a byte-by-byte scan, also when the
    separator appears inside strings or nested lists, and for truncated files."""
    text = FAST_DOCS[doc]
    for cut in (len(text), len(text) * 2 // 3, len(text) - 3):
        careful, _ = _scan(text[:cut], 1 << 20, fast=False)
        fast, taken = _scan(text[:cut], block, fast=True)
        assert fast == careful
        if block == 1000 and doc != "compact":
            assert taken >= 3  # the fast path was taken for most blocks


@pytest.mark.parametrize("block", [5, 80, 1 << 20])
def test_trace_events_key_found_across_blocks_and_blanks(block):
    """`"traceEvents" : [` is recognised with any blanks around the colon, split over blocks."""
    from traceconv.readers.json_events import ScanResult, iter_event_chunks

    doc = b'{"x": [[1], [2]], "traceEvents"' + b" " * 100 + b":" + b"\n" * 200 + b'[{"a": 1}]}'
    scan = ScanResult()
    assert [e for chunk, _ in iter_event_chunks(io.BytesIO(doc), scan, block=block) for e in json.loads(chunk)] == [{"a": 1}]
    assert scan.found_events and not scan.bare_array


def test_block_columns_equal_the_event_by_event_path(monkeypatch):
    """Blocks of X/i events go in as columns (`add_slices`); blocks holding B/E/C events one by
    one. Both must give the same trace, also for every odd form of a time, name, category, pid
    and correlation (forced here by treating every phase as ordered)."""
    from traceconv.readers import kineto

    odd = [
        '{"ph": "X", "name": "k", "cat": "kernel", "ts": 1000.125, "dur": 2.5, "pid": 0, "tid": 7, "args": {"correlation": 9}}',
        '{"ph": "X", "name": 5, "cat": 3, "ts": "12.5", "dur": "1", "pid": "p", "tid": 1.5}',
        '{"ph": "X", "name": "n", "cat": "cuda_runtime", "ts": 1e3, "dur": -4, "pid": 1, "tid": 1, "args": {"correlation": 9223372036854775808}}',
        '{"ph": "X", "name": "n", "cat": "cuda_runtime", "ts": 7, "dur": 1.0000001, "pid": 1, "tid": 1, "args": {"correlation": 1.5}}',
        '{"ph": "X", "name": null, "cat": "kernel", "ts": 123456789012345678.9, "dur": 1, "pid": 1, "tid": 1, "args": [1]}',
        '{"ph": "X", "name": "bad", "ts": "x", "dur": 1, "pid": 1, "tid": 1}',
        '{"ph": "X", "name": "no ts", "dur": 1, "pid": 1, "tid": 1}',
        '{"ph": "X", "name": "no dur", "ts": 3.000, "pid": 2, "tid": 2, "args": {"correlation": 4, "x": {"correlation": 5}}}',
        '{"ph": "i", "name": "i", "ts": 5.001, "dur": "junk", "pid": 1, "tid": 1, "s": "t"}',
        '{"ph": "I", "name": true, "cat": "gpu_memcpy", "ts": -5.250, "pid": 0, "tid": 8, "args": {}}',
        '{"ph": "X", "name": "big", "ts": 1000000000000000.000, "dur": 999999999999999.999, "pid": 0, "tid": 7, "args": {"correlation": -3}}',
        '{"ph": "s", "cat": "ac2g", "id": 9, "ts": 1000.125, "pid": 1, "tid": 1}',
        '{"ph": "M", "name": "thread_name", "pid": 0, "tid": 7, "args": {"name": "stream 7"}}',
        '{"ph": "X", "name": "other writers", "cat": "cpu_op", "ts": 12.5, "dur": 0.25, "pid": 1, "tid": 2}',
        '{"ph": "X", "name": "other writers", "cat": "cpu_op", "ts": 999999999999999, "dur": 1.5e-3, "pid": 1, "tid": 2}',
    ]
    body = ",\n  ".join(odd[i % len(odd)] for i in range(400))
    doc = ('{"traceEvents": [\n  ' + body + '\n], "baseTimeNanoseconds": 1000}').encode()

    def read():
        t = kineto.read_kineto(io.BytesIO(doc), name="odd.trace.json")
        return t.slices, t.tracks, t.stats, t.warnings, t.flows

    columns = read()
    monkeypatch.setattr(kineto, "ORDERED_PHASES", frozenset(["X", "i", "I", "B", "E", "C"]))
    one_by_one = read()
    skipped = (4, 5, 6, 11, 12)  # ts beyond 2^62 ns, not a number, missing; not slices
    assert columns[0].num_rows == sum(1 for i in range(400) if i % len(odd) not in skipped)
    assert columns[2]["kineto_number_as_string"] > 0 and columns[2]["kineto_correlation_out_of_range"] > 0
    for a, b in zip(columns, one_by_one):
        assert a == b


def _split_events(n: int) -> list[dict]:
    """Kineto-shaped events: ops, launches and kernels with correlation, ac2g flows, counters,
    instants, and B/E pairs that straddle the middle of the file."""
    events = [{"ph": "M", "name": "process_name", "pid": 1, "tid": 0, "args": {"name": "python"}}]
    events.append({"ph": "B", "name": "long span", "cat": "user_annotation", "ts": 0.5, "pid": 1, "tid": 1})
    for i in range(n):
        t = 10 + 10 * i
        events += [
            {"ph": "X", "cat": "cpu_op", "name": f"aten::op{i % 7}", "pid": 1, "tid": 1 + i % 3, "ts": t, "dur": 5.25, "args": {"External id": i}},
            {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 1, "tid": 1, "ts": t + 1, "dur": 1.5, "args": {"correlation": i}},
            {"ph": "X", "cat": "kernel", "name": f"k{i % 5}", "pid": 0, "tid": 7 + i % 2, "ts": t + 2.125, "dur": 3, "args": {"correlation": i, "stream": 7}},
            {"ph": "s", "cat": "ac2g", "id": i, "pid": 1, "tid": 1, "ts": t + 1, "name": "ac2g", "bp": "e"},
            {"ph": "f", "cat": "ac2g", "id": i, "pid": 0, "tid": 7, "ts": t + 2.125, "name": "ac2g", "bp": "e"},
        ]
        if i % 50 == 0:
            events.append({"ph": "C", "name": "mem", "pid": 1, "tid": 1, "ts": t, "args": {"bytes": i}})
            events.append({"ph": "i", "name": f"mark{i}", "pid": 1, "tid": 2 + i % 2, "ts": t + 0.5, "s": "t"})
        if i > 3 * n // 4:  # threads and names first seen after the middle
            events.append({"ph": "X", "cat": "late_cat", "name": f"late{i % 2}", "pid": 1, "tid": 30 + i % 2, "ts": t, "dur": 1})
        if i == n // 3:
            events.append({"ph": "B", "name": "middle span", "cat": "user_annotation", "ts": t, "pid": 1, "tid": 9})
        if i == 2 * n // 3:
            events += [{"ph": "E", "pid": 1, "tid": 9, "ts": t}, {"ph": "E", "pid": 1, "tid": 1, "ts": t}, {"ph": "E", "pid": 5, "tid": 5, "ts": t}]
    events.append({"ph": "M", "name": "thread_name", "pid": 0, "tid": 7, "args": {"name": "stream 7"}})
    return events


def _as_tables(t) -> tuple:
    return (t.slices.to_pylist(), t.tracks.to_pylist(), t.flows.to_pylist(), t.counters.to_pylist(), t.processes.to_pylist(),
            dict(t.stats), t.warnings, t.metadata)


@pytest.mark.parametrize("case", ["whole", "truncated", "guess inside an event", "damaged after the middle", "stray text after the middle",
                                  "worker fails"])
def test_a_big_file_read_by_two_processes_equals_one(tmp_path, monkeypatch, case):
    """Past SPLIT_MIN, an uncompressed file is read by this process up to an event boundary
    near the middle and by a forked one from there; the trace equals a one-process read, and
    a guessed boundary that is not one (or a failed worker) falls back to one process."""
    from traceconv.readers import kineto

    events = _split_events(1200)
    if case == "guess inside an event":  # an event spanning the middle, holding `},\n  {` text
        events.insert(len(events) // 2, {"ph": "X", "name": "big", "cat": "cpu_op", "pid": 1, "tid": 1, "ts": 1, "dur": 1,
                                         "args": {"l": [{"a": i} for i in range(20000)]}})
    text = json.dumps({"schemaVersion": 1, "baseTimeNanoseconds": 1700000000000000000, "traceEvents": events,
                       "traceName": "x"}, indent=2).encode()
    if case == "truncated":
        text = text[: len(text) * 4 // 5]
    if case == "damaged after the middle":
        i = text.index(b'"aten::op3"', len(text) * 3 // 4)
        text = text[:i] + b'"aten::op\xff3"' + text[i + len(b'"aten::op3"'):]
    if case == "stray text after the middle":  # junk between two events, and two events without their comma
        i = text.index(b"},\n", len(text) * 3 // 4)
        text = text[:i] + b"}, xx\n" + text[i + 3:]
        i = text.index(b"},\n", i + 100)
        text = text[:i] + b"}\n" + text[i + 3:]
    path = tmp_path / "big-TP-0.trace.json"
    path.write_bytes(text)
    monkeypatch.setattr(kineto.threading, "active_count", lambda: 1)  # (threads other tests left behind)
    merged = []
    real_merge = kineto._merge
    monkeypatch.setattr(kineto, "_merge", lambda *a: (merged.append(1), real_merge(*a)))
    if case == "worker fails":
        monkeypatch.setattr(kineto, "_send_rest", lambda *a: os._exit(3))

    monkeypatch.setattr(kineto, "SPLIT_MIN", 1 << 40)
    one = _as_tables(kineto.read_kineto(str(path)))
    assert not merged
    monkeypatch.setattr(kineto, "SPLIT_MIN", 1)
    two = _as_tables(kineto.read_kineto(str(path)))
    assert two == one
    assert bool(merged) == (case in ("whole", "truncated", "damaged after the middle", "stray text after the middle"))
    assert len(one[0]) > 2500
    if case == "truncated":
        assert one[5]["kineto_truncated_events_lost"] == 1
    if case == "whole":
        assert one[5]["chrome_unmatched_end"] == 1 and "chrome_unclosed_begin" not in one[5]
    assert one[5].get("kineto_stray_text", 0) == (2 if case == "stray text after the middle" else 0)


def test_no_second_process_where_forking_is_unsafe_or_pointless(tmp_path, monkeypatch):
    """Other Python threads (a Dask worker), compressed input, or a small file: one process."""
    from traceconv.readers import kineto
    from traceconv.readers.source import open_source

    path = tmp_path / "t.trace.json"
    path.write_bytes(json.dumps({"traceEvents": _split_events(50)}, indent=2).encode())
    gz = tmp_path / "t.trace.json.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))

    def splits(p) -> bool:
        source = open_source(str(p))
        try:
            return kineto._can_split(source)
        finally:
            source.close()

    monkeypatch.setattr(kineto.threading, "active_count", lambda: 1)
    assert not splits(path)  # below SPLIT_MIN
    monkeypatch.setattr(kineto, "SPLIT_MIN", 1)
    assert splits(path) and not splits(gz)
    monkeypatch.setattr(kineto.threading, "active_count", lambda: 2)
    assert not splits(path)
