"""Generate the damaged/hostile input corpus in ``tests/bad_inputs/cases/`` (and its README table).

Usage::

    . .venv/bin/activate
    python tests/bad_inputs/make_bad_inputs.py               # rewrite cases/ and README.md's table
    python tests/bad_inputs/make_bad_inputs.py --big -o DIR  # also the big cases (10 MB value,
                                                             # 1M-deep nesting, 1 MB log lines)

Every case is a `Case`: a file (or a directory) name, the command that reads it, what it is,
the exit code we expect (0: salvaged, with a warning and counts; 1: a one-line ``error:``
naming the file) and a piece of text stderr must contain. `tests/test_bad_inputs.py` runs
each one through ``traceconv.cli.main``. Big cases (``big=True``) are never committed: the
tests generate them into a temporary directory.

Deterministic: the same inputs (fixtures, zlib/zstandard versions) give the same bytes.
Cases whose command does not exist yet in this checkout are skipped by the tests.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import random
import shutil
import sqlite3
import struct
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Union

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CASES_DIR = HERE / "cases"
README = HERE / "README.md"
FIX = ROOT / "fixtures"

Content = Union[bytes, dict]  # bytes: a file; dict name -> Content: a directory


@dataclass(frozen=True)
class Case:
    name: str  # file or directory name under cases/
    command: str  # otel2perfetto | torch2perfetto | steps | iters | nsys2perfetto
    what: str
    exit: int  # 0 salvaged (warning + counts) or 1 (one-line error naming the file)
    message: str  # text stderr must contain (case-insensitive)
    make: Callable[[], Content] = field(repr=False, compare=False)
    big: bool = False  # generated at test time only (not committed)
    xfail: str | None = None  # a known bug in a reader we do not own: strict xfail until fixed

    @property
    def converts(self) -> bool:
        """Commands that write an output file (``-o``)."""
        return self.command.endswith("2perfetto")


# ---- building blocks --------------------------------------------------------------------------

T0 = 1_767_225_600_123_456_789  # 2026-01-01T00:00:00.123456789Z


def _hex(v: int, width: int) -> str:
    return f"{v:0{width}x}"


def otel_span(i: int, parent: int | None = None, *, start: int | None = None, dur: int = 1_000_000, name: str | None = None,
              attrs: list | None = None, trace: int = 0xA1, **extra) -> dict:
    start = T0 + i * 2_000_000 if start is None else start
    sp = {
        "traceId": _hex(trace, 32),
        "spanId": _hex(0x1000 + i, 16),
        "parentSpanId": _hex(0x1000 + parent, 16) if parent is not None else "",
        "name": name or f"span{i}",
        "kind": 1,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + dur),
        "attributes": attrs if attrs is not None else [
            {"key": "host_id", "value": {"stringValue": "deadbeef"}},
            {"key": "pid", "value": {"intValue": "4200"}},
            {"key": "thread_label", "value": {"stringValue": "Scheduler"}},
            {"key": "tp_rank", "value": {"intValue": "0"}},
        ],
        "status": {},
    }
    sp.update(extra)
    return sp


def otel_doc(spans: list[dict], service: str = "sglang") -> dict:
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
                "scopeSpans": [{"scope": {"name": "sglang server"}, "spans": spans}],
            }
        ]
    }


def jsonl(docs: list[dict]) -> bytes:
    return b"".join(json.dumps(d, separators=(",", ":")).encode() + b"\n" for d in docs)


def good_otel_lines(n_lines: int = 6, per_line: int = 4) -> bytes:
    """A small valid dump: `n_lines` export batches of `per_line` spans (a root and children)."""
    docs = []
    for k in range(n_lines):
        base = k * per_line
        spans = [otel_span(base, attrs=[])] + [otel_span(base + j, base, start=T0 + base * 2_000_000 + j * 1000, dur=500) for j in range(1, per_line)]
        docs.append(otel_doc(spans))
    return jsonl(docs)


def sglang_lines(n: int = 2) -> bytes:
    """The first `n` export batches of the real-SDK SGLang fixture (about 12 KB each)."""
    with open(FIX / "otel" / "sglang_pp2dp2tp2.jsonl", "rb") as f:
        return b"".join(f.readline() for _ in range(n))


def three_dumps() -> bytes:
    """280 KB of distinct JSONL (three fixture dumps): several 128 KB zstd blocks."""
    return sglang_lines(16) + (FIX / "otel" / "pp_stalled.jsonl").read_bytes() + (FIX / "otel" / "pp_level3.jsonl").read_bytes()


def cut_at(data: bytes, marker: bytes, occurrence: int = -1, after: int = 0) -> bytes:
    """`data` cut `after` bytes into the chosen occurrence of `marker`."""
    positions = []
    start = 0
    while (i := data.find(marker, start)) >= 0:
        positions.append(i)
        start = i + 1
    return data[: positions[occurrence] + after]


def gz(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, compresslevel=6) as f:
        f.write(data)
    return buf.getvalue()


def zst(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor(level=3).compress(data)


def flip(data: bytes, at: float, n: int = 16, seed: int = 4) -> bytes:
    """`n` bytes XOR-ed with random values from `at` (a fraction of the length) on."""
    rng = random.Random(seed)
    b = bytearray(data)
    i = int(len(b) * at)
    for k in range(i, min(len(b), i + n)):
        b[k] ^= rng.randrange(1, 256)
    return bytes(b)


def png() -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(b"\x00\x00")) + chunk(b"IEND", b"")


CSV = b"name,ts,dur\nforward,1000,25\ndecode,1025,12\n"


def perfetto_trace() -> bytes:
    """A small Perfetto protobuf trace (a track and two nested slices), built with Perfetto's
    own protos so it does not change when our writer does."""
    from perfetto.protos.perfetto.trace import perfetto_trace_pb2 as pb

    trace = pb.Trace()
    p = trace.packet.add()
    p.trusted_packet_sequence_id = 1
    p.track_descriptor.uuid = 42
    p.track_descriptor.name = "thread"
    for ts, kind, name in ((1000, 1, "outer"), (1100, 1, "inner"), (1200, 2, None), (1500, 2, None)):
        p = trace.packet.add()
        p.trusted_packet_sequence_id = 1
        p.timestamp = ts
        p.track_event.type = kind
        p.track_event.track_uuid = 42
        if name:
            p.track_event.name = name
    return trace.SerializeToString()


# -- Kineto ----------------------------------------------------------------------------------

KINETO_BASE = 1_767_189_312_000_000_000


def kineto_events(steps: int = 6) -> list[dict]:
    """A small Kineto-shaped event list: metadata, step ranges, ops, launches and kernels."""
    ev: list[dict] = [
        {"ph": "M", "name": "process_name", "pid": 7001, "tid": 0, "args": {"name": "python"}},
        {"ph": "M", "name": "thread_name", "pid": 7001, "tid": 7001, "args": {"name": "thread 7001 (python)"}},
        {"ph": "M", "name": "process_name", "pid": 0, "tid": 0, "args": {"name": "GPU 0"}},
        {"ph": "M", "name": "thread_name", "pid": 0, "tid": 7, "args": {"name": "stream 7"}},
    ]
    t = 1_000_000.0
    corr = 100
    for s in range(steps):
        ev.append({"ph": "X", "cat": "user_annotation", "name": f"step[DECODE bs=4 toks=4] [{s}]", "pid": 7001, "tid": 7001,
                   "ts": f"{t:.3f}", "dur": "900.125", "args": {"External id": s}})
        for k in range(4):
            start = t + 10 + k * 200
            ev.append({"ph": "X", "cat": "cpu_op", "name": "aten::mm", "pid": 7001, "tid": 7001, "ts": f"{start:.3f}", "dur": "150.500",
                       "args": {"External id": 1000 + s * 10 + k, "Input Dims": [[4, 4096], [4096, 4096]]}})
            ev.append({"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 7001, "tid": 7001, "ts": f"{start + 20:.3f}",
                       "dur": "5.250", "args": {"correlation": corr, "cbid": 211}})
            ev.append({"ph": "X", "cat": "kernel", "name": "sm90_xmma_gemm_bf16", "pid": 0, "tid": 7, "ts": f"{start + 40:.3f}",
                       "dur": "80.001", "args": {"correlation": corr, "stream": 7, "device": 0, "grid": [132, 1, 1]}})
            ev.append({"ph": "s", "id": corr, "pid": 7001, "tid": 7001, "ts": f"{start + 20:.3f}", "cat": "ac2g", "name": "ac2g"})
            ev.append({"ph": "f", "id": corr, "pid": 0, "tid": 7, "ts": f"{start + 40:.3f}", "cat": "ac2g", "name": "ac2g", "bp": "e"})
            corr += 1
        t += 1000.0
    return ev


def kineto_doc(events: list[dict] | None = None, **header) -> dict:
    doc = {"schemaVersion": 1, "deviceProperties": [{"id": 0, "name": "NVIDIA H100 80GB HBM3"}], "distributedInfo": {"backend": "nccl", "rank": 0, "world_size": 1},
           "baseTimeNanoseconds": KINETO_BASE}
    doc.update(header)
    doc["traceEvents"] = kineto_events() if events is None else events
    return doc


def kineto_text(doc) -> bytes:
    """Pretty-printed like Kineto (one key per line, numbers as written); ``"ts": "1.5"`` strings
    written by `kineto_events` become bare numbers (exact decimal text)."""
    text = json.dumps(doc, indent=2)
    import re

    return re.sub(rb'"(ts|dur)": "(-?[0-9.]+)"', rb'"\1": \2', text.encode())


def kineto_good() -> bytes:
    return kineto_text(kineto_doc())


def with_events(extra: list, **header) -> bytes:
    return kineto_text(kineto_doc(kineto_events(2) + extra, **header))


def raw_events(*events: bytes) -> bytes:
    """A Kineto document whose trailing events are given as raw JSON text (invalid JSON allowed)."""
    head = kineto_text(kineto_doc(kineto_events(2)))
    i = head.rfind(b"]")
    return head[:i].rstrip() + b",\n" + b",\n".join(events) + b"\n" + head[i:]


# -- logs ------------------------------------------------------------------------------------


def log_lines(n: int = 40) -> bytes:
    out = []
    for i in range(n):
        ts = f"2026-09-10 14:03:{i % 60:02d}.{(i * 37) % 1000:03d}"
        if i % 5 == 0:
            out.append(f"[{ts} DP0 TP0] Prefill batch [{i}], #new-seq: 2, #new-token: 512, #cached-token: 0, token usage: 0.01, #running-req: 3, #queue-req: 0")
        else:
            out.append(f"[{ts} DP0 TP0] Decode batch [{i}], #running-req: 4, #token: 2080, token usage: 0.02, cuda graph: True, gen throughput (token/s): 312.5, #queue-req: 0")
        if i % 7 == 0:
            out.append(f"[{ts}] INFO:     127.0.0.1:5000 - \"POST /generate HTTP/1.1\" 200 OK")
    return ("\n".join(out) + "\n").encode()


# -- nsys ------------------------------------------------------------------------------------


def sqlite_bytes(setup: Callable[[sqlite3.Connection], None]) -> bytes:
    import os
    import tempfile

    fd, path = tempfile.mkstemp(suffix=".sqlite")
    os.close(fd)
    try:
        con = sqlite3.connect(path)
        setup(con)
        con.commit()
        con.close()
        return Path(path).read_bytes()
    finally:
        os.unlink(path)


def nsys_like_loose(con: sqlite3.Connection) -> None:
    """nsys tables without NOT NULL constraints, holding NULLs and text where ids and times belong."""
    con.executescript(
        """
        CREATE TABLE StringIds (id INTEGER PRIMARY KEY, value TEXT);
        CREATE TABLE ThreadNames (nameId, priority, globalTid);
        CREATE TABLE CUPTI_ACTIVITY_KIND_KERNEL (start, end, deviceId, contextId, streamId, correlationId, globalPid,
            demangledName, shortName, gridX, gridY, gridZ, blockX, blockY, blockZ);
        INSERT INTO StringIds VALUES (1, 'gemm');
        INSERT INTO ThreadNames VALUES (x'', 0, 'main');
        INSERT INTO CUPTI_ACTIVITY_KIND_KERNEL VALUES (NULL, 2000, 0, 1, 7, 5, 281474976710656000, 1, 1, 1, 1, 1, 1, 1, 1);
        INSERT INTO CUPTI_ACTIVITY_KIND_KERNEL VALUES (3000, 'later', 0, 1, 7, 6, 281474976710656000, 1, 1, 1, 1, 1, 1, 1, 1);
        """
    )


def nsys_wrong_types(con: sqlite3.Connection) -> None:
    """Cells of the wrong type or size where nsys writes ints: what a hand-edited or damaged
    export can hold (SQLite columns take any type)."""
    nsys_like(con)
    con.executescript(
        """
        CREATE TABLE PROCESSES (globalPid, pid, name);
        INSERT INTO PROCESSES VALUES ('p1', 'one', 'python');
        INSERT INTO NVTX_EVENTS (start, end, eventType, text, globalTid) VALUES (950, 990, 59, 12345, 281474976710656001);
        INSERT INTO CUPTI_ACTIVITY_KIND_KERNEL VALUES (1e30, 2e30, 0, 1, 7, 7, 281474976710656000, 2, 2, 1, 1, 1, 1, 1, 1);
        """
    )


def nsys_like(con: sqlite3.Connection) -> None:
    """A few nsys export tables with broken contents (NULL names, end before start, bad ids)."""
    con.executescript(
        """
        CREATE TABLE StringIds (id INTEGER PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE CUPTI_ACTIVITY_KIND_KERNEL (start INTEGER NOT NULL, end INTEGER NOT NULL, deviceId INTEGER,
            contextId INTEGER, streamId INTEGER, correlationId INTEGER, globalPid INTEGER, demangledName INTEGER,
            shortName INTEGER, gridX INTEGER, gridY INTEGER, gridZ INTEGER, blockX INTEGER, blockY INTEGER, blockZ INTEGER);
        CREATE TABLE CUPTI_ACTIVITY_KIND_RUNTIME (start INTEGER NOT NULL, end INTEGER NOT NULL, eventClass INTEGER,
            globalTid INTEGER, correlationId INTEGER, nameId INTEGER, returnValue INTEGER, callchainId INTEGER);
        CREATE TABLE NVTX_EVENTS (start INTEGER NOT NULL, end INTEGER, eventType INTEGER NOT NULL, rangeId INTEGER,
            category INTEGER, color INTEGER, text TEXT, globalTid INTEGER, endGlobalTid INTEGER, textId INTEGER,
            domainId INTEGER, uint64Value INTEGER, int64Value INTEGER, doubleValue REAL, uint32Value INTEGER,
            int32Value INTEGER, floatValue REAL, jsonTextId INTEGER, jsonText TEXT);
        INSERT INTO StringIds VALUES (1, 'cudaLaunchKernel'), (2, 'gemm_kernel');
        INSERT INTO CUPTI_ACTIVITY_KIND_RUNTIME VALUES (1000, 900, 0, 281474976710656001, 5, 1, 0, NULL);
        INSERT INTO CUPTI_ACTIVITY_KIND_RUNTIME VALUES (2000, 2100, 0, 281474976710656001, 6, 999, 0, NULL);
        INSERT INTO CUPTI_ACTIVITY_KIND_KERNEL VALUES (1500, 1400, 0, 1, 7, 5, 281474976710656000, 2, 2, 1, 1, 1, 1, 1, 1);
        INSERT INTO CUPTI_ACTIVITY_KIND_KERNEL VALUES (2500, 9223372036854775807, 0, 1, 7, 6, 281474976710656000, 12345, 12345, 1, 1, 1, 1, 1, 1);
        INSERT INTO NVTX_EVENTS (start, end, eventType, text, globalTid) VALUES (900, NULL, 59, 'step[DECODE]', 281474976710656001);
        INSERT INTO NVTX_EVENTS (start, end, eventType, text, globalTid) VALUES (5000, 100, 59, NULL, 281474976710656001);
        """
    )


# ---- the cases --------------------------------------------------------------------------------


def _otel_cases() -> list[Case]:
    C = lambda *a, **k: Case(*a, **k)  # noqa: E731
    O = "otel2perfetto"  # noqa: E741
    good = good_otel_lines
    sgl = sglang_lines
    cases = [
        C("otel_empty.jsonl", O, "0-byte file", 1, "empty file", lambda: b""),
        C("otel_whitespace.jsonl", O, "only blank lines", 1, "only whitespace", lambda: b"\n \n\t\r\n\n"),
        C("otel_png.jsonl", O, "a PNG image named .jsonl", 1, "not an OTel span dump", png),
        C("otel_table.csv", O, "a CSV table", 1, "not an OTel span dump", lambda: CSV),
        C("otel_perfetto.perfetto-trace", O, "a Perfetto protobuf trace given to the OTel reader", 1, "not an OTel span dump", perfetto_trace),
        C("otel_kineto.json", O, "a PyTorch/Kineto trace given to the OTel reader", 1, "torch2perfetto", kineto_good),
        C("otel_zero.jsonl.gz", O, "0-byte .gz", 1, "empty file", lambda: b""),
        C("otel_gzip_header_only.jsonl.gz", O, "a gzip header and nothing else", 1, "unreadable", lambda: gz(sgl(2))[:10]),
        C("otel_truncated.jsonl.gz", O, "gzip cut at 70% (collector killed mid-write)", 0, "gzip stream damaged", lambda: (lambda z: z[: int(len(z) * 0.7)])(gz(sgl(3)))),
        C("otel_corrupt.jsonl.gz", O, "gzip with 16 bytes overwritten at 80% (bad CRC)", 0, "gzip stream damaged", lambda: flip(gz(sgl(3)), 0.8)),
        C("otel_truncated.jsonl.zst", O, "zstd cut at 70%", 0, "zstd stream damaged", lambda: (lambda z: z[: int(len(z) * 0.7)])(zst(three_dumps()))),
        C("otel_corrupt.jsonl.zst", O, "zstd with 16 bytes overwritten at 70%", 0, "zstd stream damaged", lambda: flip(zst(three_dumps()), 0.7)),
        C("otel_cut_mid_string.jsonl", O, "last line cut inside a string", 0, "last line is incomplete", lambda: cut_at(sgl(2), b'"name":"', -1, 5)),
        C("otel_cut_mid_number.jsonl", O, "last line cut inside a number (flags)", 0, "last line is incomplete",
          lambda: cut_at(sgl(2), b'"flags":', -1, 10)),
        C("otel_cut_mid_event.jsonl", O, "last line cut between two spans", 0, "last line is incomplete", lambda: cut_at(sgl(2), b'},{"traceId"', -1, 2)),
        C("otel_bad_middle_line.jsonl", O, "a garbage line between good lines", 0, "skipped a damaged line",
          lambda: (lambda g: g[: g.index(b"\n") + 1] + b'{"resourceSpans":[{"scopeSpans": nope}\n' + g[g.index(b"\n") + 1 :])(good())),
        C("otel_invalid_utf8.jsonl", O, "an invalid UTF-8 byte in a span name (line 3)", 0, "invalid UTF-8",
          lambda: good().replace(b'"name":"span9"', b'"name":"span\xff9"')),
        C("otel_invalid_utf8_first_line.jsonl", O, "invalid UTF-8 in the first line", 0, "invalid UTF-8",
          lambda: good().replace(b'"name":"span1"', b'"name":"sp\xc3\x28an1"')),
        C("otel_nan_infinity_strings.jsonl", O, "doubleValue \"NaN\", \"Infinity\", \"-Infinity\" (valid OTLP/JSON)", 0, "Converted",
          lambda: jsonl([otel_doc([otel_span(0, attrs=[{"key": k, "value": {"doubleValue": v}} for k, v in (("a", "NaN"), ("b", "Infinity"), ("c", "-Infinity"), ("d", 1.5))])])])),
        C("otel_nan_literal.jsonl", O, "bare NaN / -Infinity literals (invalid JSON, Python's json.dumps writes them) and a vendor field", 0, "non-standard JSON",
          lambda: good(3) + jsonl([otel_doc([otel_span(50, attrs=[{"key": "x", "value": {"doubleValue": "__NAN__"}}, {"key": "y", "value": {"doubleValue": "__INF__"}}], **{"x-vendor": 1})])]).replace(b'"__NAN__"', b"NaN").replace(b'"__INF__"', b"-Infinity")),
        C("otel_time_not_a_number.jsonl", O, "startTimeUnixNano \"yesterday\" in one span", 0, "span_bad_time",
          lambda: good().replace(b'"startTimeUnixNano":"' + str(T0 + 4 * 2_000_000).encode(), b'"startTimeUnixNano":"yesterday', 1)),
        C("otel_times_as_numbers.jsonl", O, "int64 fields as JSON numbers instead of strings (allowed by proto3 JSON)", 0, "Converted",
          lambda: __import__("re").sub(rb'"((?:start|end)TimeUnixNano|intValue)":"(\d+)"', rb'"\1":\2', good())),
        C("otel_strings_as_numbers.jsonl", O, "a span name and a status message as numbers (converted), attributes as a string (span dropped)", 0, "otlp_json_bad_span",
          lambda: good(3) + jsonl([otel_doc([otel_span(40), otel_span(41, 40, name=12345), otel_span(42, 40, status={"code": 2, "message": 7}),
                                             otel_span(43, 40, attrs="oops")])])),
        C("otel_int_value_not_a_number.jsonl", O, "intValue \"12x\" and a 100-digit intValue", 0, "Converted",
          lambda: jsonl([otel_doc([otel_span(0, attrs=[{"key": "a", "value": {"intValue": "12x"}}, {"key": "b", "value": {"intValue": "9" * 100}}])])])),
        C("otel_negative_duration.jsonl", O, "a span that ends before it starts", 0, "end before they start",
          lambda: jsonl([otel_doc([otel_span(0), otel_span(1, 0, dur=-5000)])])),
        C("otel_absurd_times.jsonl", O, "times of 2^64-1 ns, negative, and 10^30", 0, "span_bad_time",
          lambda: jsonl([otel_doc([otel_span(0), otel_span(1, 0, startTimeUnixNano=str(2**64 - 1), endTimeUnixNano=str(2**64 - 1)),
                                   otel_span(2, 0, startTimeUnixNano="-5", endTimeUnixNano="7"), otel_span(3, 0, endTimeUnixNano="1" + "0" * 30)])])),
        C("otel_only_bad_times.jsonl", O, "every span's times unusable: nothing to salvage", 1, "no usable spans",
          lambda: jsonl([otel_doc([otel_span(0, startTimeUnixNano="soon"), otel_span(1, endTimeUnixNano=str(2**64))])])),
        C("otel_absurd_duration.jsonl", O, "a span lasting 290 years (end = 2^63-1 ns)", 0, "Converted",
          lambda: jsonl([otel_doc([otel_span(0, start=1, endTimeUnixNano=str(2**63 - 1)), otel_span(1, 0)])])),
        C("otel_duplicate_span_ids.jsonl", O, "two spans with the same trace and span id", 0, "repeat an earlier span's id",
          lambda: jsonl([otel_doc([otel_span(0), otel_span(1, 0), otel_span(1, 0, name="again")])])),
        C("otel_parent_cycle.jsonl", O, "spans A → B → C → A (a parent cycle)", 0, "span_parent_cycle",
          lambda: jsonl([otel_doc([otel_span(0, 2), otel_span(1, 0), otel_span(2, 1), otel_span(3)])])),
        C("otel_self_parent.jsonl", O, "a span that is its own parent", 0, "span_parent_cycle",
          lambda: jsonl([otel_doc([otel_span(0, 0), otel_span(1, 0)])])),
        C("otel_partial_ranks.jsonl", O, "threads of one process with some ranks missing (found by fuzzing: sorting them crashed)", 0, "Converted",
          lambda: jsonl([otel_doc([otel_span(0), otel_span(1, attrs=[{"key": "host_id", "value": {"stringValue": "deadbeef"}}, {"key": "pid", "value": {"intValue": "4300"}},
                                                                      {"key": "thread_label", "value": {"stringValue": "Scheduler"}}, {"key": "pp_rank", "value": {"intValue": "1"}}]),
                                   otel_span(2, attrs=[{"key": "host_id", "value": {"stringValue": "deadbeef"}}, {"key": "pid", "value": {"intValue": "4301"}},
                                                       {"key": "thread_label", "value": {"stringValue": "Detokenizer"}}])])])),
        C("otel_bad_ids.jsonl", O, "span ids that are neither hex nor base64", 0, "span_bad_id",
          lambda: jsonl([otel_doc([otel_span(0), dict(otel_span(1, 0), spanId="not-an-id!"), dict(otel_span(2, 0), traceId="zz")])])),
        C("otel_signed_hex_ids.jsonl", O, "ids like -000…1, +000…1, 0000_000…1 (Python's int() takes them; found by fuzzing: crashed)", 0, "span_bad_id",
          lambda: jsonl([otel_doc([otel_span(0), dict(otel_span(1, 0), spanId="+000000000001001", links=[{"traceId": "-" + "0" * 30 + "1", "spanId": "0000_00000001000"}]),
                                   dict(otel_span(2, 0), traceId="-" + "0" * 30 + "1")])])),
        C("otel_resource_spans_not_a_list.jsonl", O, "resourceSpans is an object", 1, "not OTLP spans", lambda: b'{"resourceSpans": {"spans": []}}\n'),
        C("otel_array_of_numbers.json", O, "a JSON array of numbers", 1, "not a JSON array of OTLP documents", lambda: b"[1, 2, 3]\n"),
        C("otel_object_without_spans.json", O, "a JSON object without resourceSpans", 1, "not OTLP spans", lambda: b'{"foo": 1, "bar": [1, 2]}\n'),
        C("otel_no_spans.jsonl", O, "valid OTLP with resources but no spans (an idle service)", 0, "no spans",
          lambda: b'{"resourceSpans":[{"resource":{"attributes":[]},"scopeSpans":[]}]}\n'),
        C("otel_jaeger.json", O, "Jaeger's JSON (unsupported)", 1, "Jaeger", lambda: b'{"data": [{"traceID": "abc", "spans": []}]}\n'),
        C("otel_proto_truncated.pb", O, "collector proto dump (4-byte framing) cut mid-message", 0, "file ends inside",
          lambda: (lambda d: d[: int(len(d) * 0.6)])((FIX / "otel" / "sglang_pp2dp2tp2.pb").read_bytes())),
        C("otel_proto_garbage.pb", O, "4 KB of random bytes", 1, "not an OTel span dump", lambda: random.Random(7).randbytes(4096)),
        C("otel_proto_bad_zstd_frame.pb", O, "framed proto whose 2nd message is a corrupt zstd frame", 0, "otlp_proto_bad_message",
          lambda: _bad_zstd_frame()),
        C("otel_console_truncated.txt", O, "ConsoleSpanExporter output cut mid-object", 0, "unreadable JSON from here on",
          lambda: (lambda d: d[: int(len(d) * 0.55)])((FIX / "otel" / "sglang_console.txt").read_bytes())),
        C("otel_console_bad_time.txt", O, "ConsoleSpanExporter output with a non-ISO start_time", 0, "span_bad_time",
          lambda: (FIX / "otel" / "sglang_console.txt").read_bytes().replace(b'"start_time": "2026', b'"start_time": "yesterday 2026', 1)),
        C("otel_console_deep.txt", O, "console output: an object nested 20k deep", 1, "nested too deeply",
          lambda: b'{"name": "x", "context": ' + b'{"a": ' * 20_000 + b"1" + b"}" * 20_000 + b"}\n"),
        C("otel_deep_array.json", O, "a JSON array nested 50k deep", 1, "not a JSON array of OTLP documents", lambda: b"[" * 50_000 + b"]" * 50_000),
        C("otel_line_deep_attribute.jsonl", O, "one line whose attribute is a kvlist nested 2000 deep, between good lines", 0, "skipped a damaged line",
          lambda: (lambda g, deep: g[: g.index(b"\n") + 1] + deep + g[g.index(b"\n") + 1 :])(good(),
                  json.dumps(otel_doc([otel_span(90, attrs=[{"key": "deep", "value": {"kvlistValue": {"values": "__D__"}}}])]), separators=(",", ":")).encode()
                  .replace(b'"__D__"', b'[{"key":"a","value":{"kvlistValue":{"values":' * 2000 + b"[]" + b"}}}]" * 2000) + b"\n")),
        C("otel_directory_without_traces", O, "a directory holding no trace files", 1, "no trace files", lambda: {"notes.md": b"# nothing here\n"}),
        C("otel_mlx_capture.gputrace", O, "an Xcode/MLX GPU capture bundle (seed 004)", 1, "Xcode GPU capture", _gputrace),
    ]
    return cases


def _bad_zstd_frame() -> bytes:
    import zstandard

    lines = sglang_lines(3).splitlines()
    frames = [zstandard.ZstdCompressor().compress(line) for line in lines]
    frames[1] = frames[1][:8] + bytes(b ^ 0x5A for b in frames[1][8:40]) + frames[1][40:]
    return b"".join(struct.pack(">I", len(f)) + f for f in frames)


def _gputrace() -> dict:
    """The shape of an Xcode .gputrace bundle (as MLX's mx.metal.start_capture writes it)."""
    plist = (b'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" '
             b'"http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n<plist version="1.0"><dict>'
             b"<key>(uuid)</key><string>5B8E1C2A-0000-4000-8000-000000000004</string>"
             b"<key>captureVersion</key><integer>6</integer></dict></plist>\n")
    return {"metadata": plist, "unsorted-capture": b"MTSP" + bytes(range(64)), "device-resources-0x1": bytes(128)}


def _kineto_cases() -> list[Case]:
    C = Case
    K = "torch2perfetto"
    good = kineto_good
    cases = [
        C("kineto_empty.json", K, "0-byte file", 1, "empty file", lambda: b""),
        C("kineto_png.trace.json", K, "a PNG image named .trace.json", 1, "not a JSON trace", png),
        C("kineto_table.csv.json", K, "a CSV table named .json", 1, "not a JSON trace", lambda: CSV),
        C("kineto_perfetto.pftrace.json", K, "a Perfetto protobuf trace given to the JSON reader", 1, "not a JSON trace", perfetto_trace),
        C("kineto_otel.json", K, "an OTel JSONL span dump given to the Kineto reader", 1, "otel2perfetto", lambda: good_otel_lines(2)),
        C("kineto_cut_mid_event.trace.json", K, "cut between two keys of an event", 0, "file ends inside the events",
          lambda: cut_at(good(), b'"cat": "kernel"', -3, 10)),
        C("kineto_cut_mid_string.trace.json", K, "cut inside a kernel name", 0, "file ends inside the events",
          lambda: cut_at(good(), b'"sm90_xmma', -5, 6)),
        C("kineto_cut_mid_number.trace.json", K, "cut inside a ts number", 0, "file ends inside the events",
          lambda: cut_at(good(), b'"ts": ', -7, 9)),
        C("kineto_cut_in_header.trace.json", K, "cut before the traceEvents array", 1, "ends before its traceEvents",
          lambda: good()[:150]),
        C("kineto_truncated.trace.json.gz", K, "gzip cut at 70%", 0, "gzip stream damaged", lambda: (lambda z: z[: int(len(z) * 0.7)])(gz(good()))),
        C("kineto_corrupt.trace.json.gz", K, "gzip with 16 bytes overwritten at 85%", 0, "gzip stream damaged", lambda: flip(gz(good()), 0.85)),
        C("kineto_truncated.trace.json.zst", K, "zstd cut at 70%", 0, "zstd stream damaged",
          lambda: (lambda z: z[: int(len(z) * 0.7)])(zst(kineto_text(kineto_doc(kineto_events(40)))))),
        C("kineto_zero.trace.json.gz", K, "0-byte .gz", 1, "empty file", lambda: b""),
        C("kineto_gzip_garbage.trace.json.gz", K, "gzip magic then garbage", 1, "unreadable", lambda: b"\x1f\x8b\x08\x00garbage-garbage-garbage"),
        C("kineto_invalid_utf8.trace.json", K, "invalid UTF-8 in two kernel names", 0, "invalid UTF-8",
          lambda: good().replace(b'"sm90_xmma_gemm_bf16"', b'"sm90_\xff\xfe_gemm"', 2)),
        C("kineto_invalid_utf8_args.trace.json", K, "invalid UTF-8 inside args and process_name metadata (found by fuzzing: crashed after reading)", 0, "invalid UTF-8",
          lambda: good().replace(b'"name": "python"', b'"name": "py\xffthon"', 1).replace(b'"grid": [', b'"g\xfe": 1, "grid": [', 1)),
        C("kineto_nan_infinity.trace.json", K, "NaN in args, Infinity as a dur (Python json.dumps output)", 0, "non-standard JSON",
          lambda: raw_events(b'{"ph": "X", "cat": "cpu_op", "name": "nan_args", "pid": 7001, "tid": 7001, "ts": 900000.5, "dur": 3, "args": {"x": NaN, "y": -Infinity}}',
                             b'{"ph": "X", "cat": "cpu_op", "name": "inf_dur", "pid": 7001, "tid": 7001, "ts": 900001.5, "dur": Infinity}')),
        C("kineto_numbers_as_strings.trace.json", K, "ts and dur written as JSON strings", 0, "kineto_number_as_string",
          lambda: raw_events(b'{"ph": "X", "cat": "cpu_op", "name": "strs", "pid": 7001, "tid": 7001, "ts": "900000.125", "dur": "12.5"}')),
        C("kineto_strings_as_numbers.trace.json", K, "name, cat and ph as numbers; pid as a string", 0, "chrome_unsupported_ph",
          lambda: raw_events(b'{"ph": "X", "cat": 5, "name": 123, "pid": "7001", "tid": 7001, "ts": 900000.5, "dur": 3}',
                             b'{"ph": 88, "name": "numeric ph", "pid": 7001, "tid": 7001, "ts": 900001}')),
        C("kineto_negative_duration.trace.json", K, "an X event with dur -5", 0, "negative duration",
          lambda: with_events([{"ph": "X", "cat": "cpu_op", "name": "neg", "pid": 7001, "tid": 7001, "ts": "900000.000", "dur": "-5.000"}])),
        C("kineto_absurd_times.trace.json", K, "ts 1e300, dur 1e30, ts 1e400 (overflow)", 0, "kineto_bad_events",
          lambda: raw_events(b'{"ph": "X", "cat": "cpu_op", "name": "big_ts", "pid": 7001, "tid": 7001, "ts": 1e300, "dur": 1}',
                             b'{"ph": "X", "cat": "cpu_op", "name": "big_dur", "pid": 7001, "tid": 7001, "ts": 900000, "dur": 1e30}',
                             b'{"ph": "i", "cat": "cpu_op", "name": "inf_ts", "pid": 7001, "tid": 7001, "ts": 1e400}')),
        C("kineto_correlation_beyond_int64.trace.json", K, "a kernel launch whose correlation id is 2^64 - 1 (found by fuzzing: crashed)", 0,
          "kineto_correlation_out_of_range",
          lambda: raw_events(b'{"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 7001, "tid": 7001, "ts": 900000.5, "dur": 3, '
                             b'"args": {"correlation": 18446744073709551615}}')),
        C("kineto_absurd_base_time.trace.json", K, "baseTimeNanoseconds 10^30", 0, "baseTimeNanoseconds",
          lambda: kineto_text(kineto_doc(kineto_events(2), baseTimeNanoseconds=10**30))),
        C("kineto_trace_events_object.trace.json", K, "traceEvents is an object, not a list", 1, "traceEvents is not a list",
          lambda: b'{"schemaVersion": 1, "traceEvents": {"ph": "X"}}'),
        C("kineto_trace_events_number.trace.json", K, "traceEvents is a number", 1, "traceEvents is not a list", lambda: b'{"traceEvents": 5}'),
        C("kineto_no_trace_events.trace.json", K, "a JSON object without traceEvents", 1, "without a traceEvents array", lambda: b'{"schemaVersion": 1}'),
        C("kineto_events_without_ph.trace.json", K, "events without ph", 0, "chrome_unsupported_ph_missing",
          lambda: with_events([{"cat": "cpu_op", "name": "no_ph", "pid": 7001, "tid": 7001, "ts": "900000.000", "dur": "1.000"}] * 3)),
        C("kineto_events_without_ts.trace.json", K, "X, B, E, s, C events without ts", 0, "without a usable ts",
          lambda: with_events([{"ph": p, "cat": "cpu_op", "name": "no_ts", "pid": 7001, "tid": 7001, "id": 1} for p in ("X", "B", "E", "s", "C")])),
        C("kineto_unknown_ph.trace.json", K, "events with ph Z and ph P", 0, "chrome_unsupported_ph_Z",
          lambda: with_events([{"ph": "Z", "name": "zz", "pid": 7001, "tid": 7001, "ts": "900000.000"}, {"ph": "P", "name": "pp", "pid": 7001, "tid": 7001, "ts": "900001.000"}])),
        C("kineto_stray_text.trace.json", K, "junk between two events and two events without a comma (was dropped silently)", 0,
          "kineto_stray_text",
          lambda: raw_events(b'{"ph": "X", "cat": "cpu_op", "name": "a", "pid": 7001, "tid": 7001, "ts": 900000.5, "dur": 3}',
                             b'xx {"ph": "X", "cat": "cpu_op", "name": "b", "pid": 7001, "tid": 7001, "ts": 900010.5, "dur": 3} '
                             b'{"ph": "X", "cat": "cpu_op", "name": "c", "pid": 7001, "tid": 7001, "ts": 900020.5, "dur": 3}')),
        C("kineto_unmatched_begin_end.trace.json", K, "a B without E and an E without B", 0, "chrome_unclosed_begin",
          lambda: with_events([{"ph": "B", "name": "open", "pid": 7001, "tid": 9, "ts": "900000.000"}, {"ph": "E", "pid": 7001, "tid": 10, "ts": "900001.000"}])),
        C("kineto_bad_end_ts.trace.json", K, "an E whose ts is a word", 0, "kineto_bad_events",
          lambda: with_events([{"ph": "B", "name": "open", "pid": 7001, "tid": 9, "ts": "900000.000"}, {"ph": "E", "pid": 7001, "tid": 9, "ts": "later"}])),
        C("kineto_unhashable_fields.trace.json", K, "pid a list, tid an object, cat a list, flow id an object", 0, "Converted",
          lambda: with_events([{"ph": "X", "cat": ["a"], "name": "odd", "pid": [1], "tid": {"t": 2}, "ts": "900000.000", "dur": "1.000"},
                               {"ph": "s", "cat": ["f"], "id": {"x": 1}, "name": "flow", "pid": 7001, "tid": 7001, "ts": "1000010.000"},
                               {"ph": "f", "cat": ["f"], "id": {"x": 1}, "name": "flow", "pid": 7001, "tid": 7001, "ts": "1000220.000", "bp": "e"}])),
        C("kineto_huge_ids.trace.json", K, "pid 10^20, tid -1, sort_index 10^30, Infinity-free huge ints", 0, "Converted",
          lambda: with_events([{"ph": "X", "cat": "cpu_op", "name": "big pid", "pid": 10**20, "tid": -1, "ts": "900000.000", "dur": "1.000"},
                               {"ph": "M", "name": "thread_sort_index", "pid": 7001, "tid": 7001, "args": {"sort_index": 10**30}},
                               {"ph": "M", "name": "process_name", "pid": 7001, "tid": 0, "args": ["not", "a", "dict"]}])),
        C("kineto_bad_flows_and_counters.trace.json", K, "flow events with bad ts, counters with string and NaN-free odd values", 0, "kineto_bad_events",
          lambda: with_events([{"ph": "s", "id": 5, "cat": "fwdbwd", "name": "f", "pid": 7001, "tid": 7001, "ts": "soon"},
                               {"ph": "C", "name": "mem", "pid": 7001, "tid": 7001, "ts": "1000001.000", "args": {"bytes": "12", "ok": 3, "list": [1]}},
                               {"ph": "C", "name": "mem", "pid": 7001, "tid": 7001, "ts": "never", "args": {"ok": 4}},
                               {"ph": "C", "name": "mem2", "pid": 7001, "tid": 7001, "ts": "1000002.000", "args": 7}])),
        C("kineto_duplicate_correlation.trace.json", K, "two launches and three kernels sharing one correlation id", 0, "Converted",
          lambda: (lambda ev: kineto_text(kineto_doc(ev + ev[-6:-2])))(kineto_events(2))),
        C("kineto_empty_events.trace.json", K, "traceEvents: [] (a profile of nothing)", 0, "no events", lambda: b'{"schemaVersion": 1, "traceEvents": []}'),
        C("kineto_only_instants.json", K, "instant events only, no durations (found by fuzzing: the writers' layout crashed)", 0, "0 slices, 2 instants",
          lambda: b'[{"ph": "i", "name": "a", "pid": 1, "tid": 1, "ts": 1}, {"ph": "i", "name": "b", "pid": 1, "tid": 1, "ts": 2}]'),
        C("kineto_bare_array.json", K, "a bare JSON array of events (old Chrome format)", 0, "Converted",
          lambda: json.dumps([{"ph": "X", "name": "a", "pid": 1, "tid": 1, "ts": 1, "dur": 2}, {"ph": "i", "name": "b", "pid": 1, "tid": 1, "ts": 2}]).encode()),
        C("kineto_deep_args.trace.json", K, "an event whose args nest 20k deep, between good events", 0, "kineto_bad_events",
          lambda: raw_events(b'{"ph": "X", "cat": "cpu_op", "name": "deep", "pid": 7001, "tid": 7001, "ts": 900000, "dur": 1, "args": {"a": ' + b"[" * 20_000 + b"]" * 20_000 + b"}}",
                             b'{"ph": "X", "cat": "cpu_op", "name": "after_deep", "pid": 7001, "tid": 7001, "ts": 900002, "dur": 1}')),
        C("kineto_terminal_escapes.trace.json", K, "ANSI escape sequences and newlines in ph, baseTimeNanoseconds and names (none may reach the terminal raw)", 0, "chrome_unsupported_ph_other",
          lambda: kineto_text(kineto_doc(kineto_events(2) + [{"ph": "\u001b[2J\n", "name": "x", "pid": 7001, "tid": 7001, "ts": "900000.000"}],
                                         baseTimeNanoseconds="\u001b[31mred\nline"))),
        C("kineto_mlx_capture.gputrace", K, "an Xcode/MLX GPU capture bundle (seed 004)", 1, "Xcode GPU capture", _gputrace),
        C("kineto_profile_dir_with_gputrace", K, "a profile directory holding only an MLX .gputrace capture", 1, "Xcode GPU capture",
          lambda: {"sglang_prefill.gputrace": _gputrace()}),
        C("steps_truncated.trace.json", "steps", "`traceconv steps` on a truncated trace", 0, "file ends inside the events",
          lambda: cut_at(good(), b'"ph": "X"', -4, 3)),
        C("steps_png.trace.json", "steps", "`traceconv steps` on a PNG", 1, "binary file of another kind", png),
    ]
    return cases


def _log_cases() -> list[Case]:
    C = Case
    L = "iters"
    good = log_lines
    return [
        C("log_empty.log", L, "0-byte log", 1, "'Decode batch' lines", lambda: b""),
        C("log_png.log", L, "a PNG given as a log", 1, "'Decode batch' lines", png),
        C("log_binary_junk.log", L, "batch lines with NUL bytes and random binary between them", 0, "lines, 0 findings",
          lambda: (lambda g: g[:2000] + b"\x00\x01\x02\xff" * 100 + b"\n" + random.Random(3).randbytes(3000) + b"\n" + g[2000:])(good())),
        C("log_invalid_utf8.log", L, "invalid UTF-8 inside batch lines", 0, "40 lines, 0 findings",
          lambda: good().replace(b"cuda graph: True", b"cuda graph: \xff\xfeTrue", 3)),
        C("log_invalid_utf8_rank.log", L, "invalid UTF-8 inside the rank prefix of a batch line (found by the property tests)", 0, "40 lines",
          lambda: good().replace(b" DP0 TP0] Decode", b" DP0 \xffTP0] Decode", 1)),
        C("log_truncated.log", L, "log cut mid-line", 0, "40 lines", lambda: good()[:-37]),
        C("log_truncated.log.gz", L, "gzip log cut at 70%", 0, "gzip stream damaged", lambda: (lambda z: z[: int(len(z) * 0.7)])(gz(good(400)))),
        C("log_crlf.log", L, "Windows line endings", 0, "40 lines, 0 findings", lambda: good().replace(b"\n", b"\r\n")),
        C("log_numbers_as_words.log", L, "#running-req: many, token usage: NaN", 0, "40 lines",
          lambda: good().replace(b"#running-req: 4,", b"#running-req: many,", 2).replace(b"token usage: 0.02", b"token usage: NaN", 2)),
    ]


def _nsys_cases() -> list[Case]:
    C = Case
    N = "nsys2perfetto"
    return [
        C("nsys_zero.sqlite", N, "0-byte .sqlite", 1, "nsys", lambda: b""),
        C("nsys_not_sqlite.sqlite", N, "a JSON file named .sqlite", 1, "nsys", kineto_good),
        C("nsys_empty_db.sqlite", N, "a valid SQLite database with no tables", 1, "nsys", lambda: sqlite_bytes(lambda con: con.execute("CREATE TABLE other (x)"))),
        C("nsys_truncated.sqlite", N, "an nsys-like export cut to its first 2 KB", 1, "nsys", lambda: sqlite_bytes(nsys_like)[:2048]),
        C("nsys_broken_rows.sqlite", N, "nsys tables with ends before starts, NULL names, unknown string ids, int64-max end", 0, "Converted",
          lambda: sqlite_bytes(nsys_like)),
        C("nsys_null_and_text_values.sqlite", N, "NULL and text values in numeric columns (kernel start, ThreadNames ids; found by fuzzing)", 0, "Converted",
          lambda: sqlite_bytes(lambda con: (nsys_like_loose(con)))),
        C("nsys_wrong_type_cells.sqlite", N, "an int as NVTX text, a text pid, a REAL 1e30 kernel start (found by fuzzing)", 0, "Converted",
          lambda: sqlite_bytes(nsys_wrong_types)),
        C("nsys_report.nsys-rep", N, "a binary .nsys-rep report (needs `nsys export --type sqlite`)", 1, "nsys export", lambda: b"NSYS" + bytes(range(256)) * 4),
    ]


def big_cases() -> list[Case]:
    """Generated at test time only (too big to commit)."""
    C = Case
    ten_mb = "v" * (10 << 20)
    return [
        C("big_otel_10mb_attribute.jsonl", "otel2perfetto", "a span with a 10 MB string attribute", 0, "Converted",
          lambda: good_otel_lines(2) + jsonl([otel_doc([otel_span(70, attrs=[{"key": "big", "value": {"stringValue": ten_mb}}])])]), big=True),
        C("big_otel_deep_kvlist.jsonl", "otel2perfetto", "one line: a kvlist attribute nested 1M deep (the only line)", 1, "nested too deeply",
          lambda: json.dumps(otel_doc([otel_span(0, attrs=[{"key": "deep", "value": {"kvlistValue": {"values": "__D__"}}}])]), separators=(",", ":")).encode()
          .replace(b'"__D__"', b'[{"key":"a","value":{"kvlistValue":{"values":' * 1_000_000 + b"[]" + b"}}}]" * 1_000_000) + b"\n", big=True),
        C("big_otel_deep_array.json", "otel2perfetto", "[[[[…]]]] 1M deep", 1, "not a JSON array of OTLP documents", lambda: b"[" * 1_000_000 + b"]" * 1_000_000, big=True),
        C("big_otel_1mb_garbage_line.jsonl", "otel2perfetto", "a 1 MB garbage line between good lines", 0, "skipped a damaged line",
          lambda: (lambda g: g[: g.index(b"\n") + 1] + b"x" * (1 << 20) + b"\n" + g[g.index(b"\n") + 1 :])(good_otel_lines()), big=True),
        C("big_kineto_10mb_arg.trace.json", "torch2perfetto", "an event with a 10 MB string in args", 0, "Converted",
          lambda: with_events([{"ph": "X", "cat": "cpu_op", "name": "big", "pid": 7001, "tid": 7001, "ts": "900000.000", "dur": "1.000", "args": {"s": ten_mb}}]), big=True),
        C("big_kineto_10mb_name.trace.json", "torch2perfetto", "an event whose name is 10 MB", 0, "Converted",
          lambda: with_events([{"ph": "X", "cat": "cpu_op", "name": ten_mb, "pid": 7001, "tid": 7001, "ts": "900000.000", "dur": "1.000"}]), big=True),
        C("big_kineto_deep_events.trace.json", "torch2perfetto", "traceEvents holding [[[[…]]]] 1M deep", 1, "nested too deeply",
          lambda: b'{"traceEvents": ' + b"[" * 1_000_000 + b"]" * 1_000_000 + b"}", big=True),
        C("big_kineto_deep_args.trace.json", "torch2perfetto", "an event with args nested 1M deep, then a good one", 0, "kineto_bad_events",
          lambda: raw_events(b'{"ph": "X", "cat": "cpu_op", "name": "deep", "pid": 7001, "tid": 7001, "ts": 900000, "dur": 1, "args": ' + b'{"a": ' * 1_000_000 + b"1" + b"}" * 1_000_000 + b"}",
                             b'{"ph": "X", "cat": "cpu_op", "name": "after", "pid": 7001, "tid": 7001, "ts": 900002, "dur": 1}'), big=True),
        C("big_log_1mb_lines.log", "iters", "1 MB lines (with and without a batch prefix) between batch lines", 0, "could not be read; skipped",
          lambda: (lambda g: g[:1500] + b"x" * (1 << 20) + b"\n" + b"[2026-09-10 14:03:23 TP0] Decode batch, " + b"#token: 1, " * 100_000 + b"\n" + g[1500:])(log_lines()), big=True),
    ]


def all_cases() -> list[Case]:
    return _otel_cases() + _kineto_cases() + _log_cases() + _nsys_cases()


# ---- writing ----------------------------------------------------------------------------------


def write_content(path: Path, content: Content) -> None:
    if isinstance(content, dict):
        path.mkdir(parents=True, exist_ok=True)
        for name, sub in content.items():
            write_content(path / name, sub)
    else:
        path.write_bytes(content)


def write_cases(dest: Path, cases: list[Case]) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for case in cases:
        p = dest / case.name
        if p.is_dir():
            shutil.rmtree(p)
        write_content(p, case.make())
        out.append(p)
    return out


def readme_table(cases: list[Case]) -> str:
    rows = ["| case | command | what it is | exit | stderr says |", "|---|---|---|---|---|"]
    for c in cases:
        where = "generated at test time" if c.big else ""
        what = c.what + (f" ({where})" if where else "") + (" **known bug: " + c.xfail + "**" if c.xfail else "")
        rows.append(f"| `{c.name}` | `{c.command}` | {what.replace('|', '/')} | {c.exit} | `{c.message}` |")
    return "\n".join(rows) + "\n"


BEGIN, END = "<!-- cases: begin (generated by make_bad_inputs.py) -->\n", "<!-- cases: end -->\n"


def render_readme(text: str, cases: list[Case]) -> str:
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return head + BEGIN + readme_table(cases) + END + tail


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--out", type=Path, default=CASES_DIR, help="where to write the cases (default: tests/bad_inputs/cases)")
    ap.add_argument("--big", action="store_true", help="also write the big cases (never commit them)")
    args = ap.parse_args(argv)
    cases = all_cases()
    if args.out.resolve() == CASES_DIR.resolve():
        if args.big:
            ap.error("--big cases are never committed: give -o DIR")
        if CASES_DIR.exists():
            shutil.rmtree(CASES_DIR)
        if README.exists():
            README.write_text(render_readme(README.read_text(), cases + big_cases()))
    write_cases(args.out, cases + (big_cases() if args.big else []))
    total = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"wrote {len(cases) + (len(big_cases()) if args.big else 0)} cases to {args.out} ({total / 1024:.0f} KB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
