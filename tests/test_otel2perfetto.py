"""otel2perfetto on real OpenTelemetry SDK dumps: every span, attribute and nanosecond arrives.

Ground truth (`*.truth.json`) was recorded from the SDK's in-memory exporter when the fixtures
were made, not by parsing the files (fixtures/README.md)."""

from __future__ import annotations

import io
import json
import os
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from tests.perfetto_check import decode
from traceconv.readers import read_otel
from traceconv.writers import write_trace

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "otel"
TRUTH = json.loads((FIX / "sglang_pp2dp2tp2.truth.json").read_text())
SGLANG_FORMS = [
    "sglang_pp2dp2tp2.jsonl",
    "sglang_pp2dp2tp2.json",
    "sglang_pp2dp2tp2.jsonl.gz",
    "sglang_pp2dp2tp2.jsonl.zst",
    "sglang_pp2dp2tp2.pb",
    "sglang_pp2dp2tp2.zstmsg.pb",
    "sglang_pp2dp2tp2.zstmsg.jsonl",
    "sglang_pp2dp2tp2.varint.pb",
    "sglang_pp2dp2tp2.raw.pb",
]


def convert(*names: str, fmt: str = "perfetto") -> bytes:
    trace = read_otel([FIX / n for n in names])
    trace.validate()
    buf = io.BytesIO()
    write_trace(trace, buf, fmt)
    return buf.getvalue()


@pytest.fixture(scope="module")
def decoded():
    return decode(convert("sglang_pp2dp2tp2.jsonl"))


def spans_of(d):
    return [s for s in d.slices if not s.instant]


@pytest.mark.parametrize("name", SGLANG_FORMS)
def test_every_span_becomes_one_slice_exactly(name):
    d = decode(convert(name))
    got = Counter((s.args["span_id"], s.name, s.start, s.end) for s in spans_of(d))
    want = Counter((s["span_id"], s["name"], s["start_ns"], s["end_ns"]) for s in TRUTH["spans"])
    assert got == want


def test_attributes_events_and_status_survive(decoded):
    by_id = {s.args["span_id"]: s for s in spans_of(decoded)}
    system = {"trace_id", "span_id", "parent_span_id", "otel.kind", "otel.status_code", "otel.status_message",
              "otel.trace_state", "otel.flags"}
    for want in TRUTH["spans"]:
        got = by_id[want["span_id"]]
        user = [k for k in got.args if k not in system and not k.startswith("otel.link.")]
        assert len(user) == want["n_attributes"], want["name"]
        assert got.args["trace_id"] == want["trace_id"]
        assert got.args.get("parent_span_id", "") == want["parent_span_id"]
        if want["status_code"] == 2:
            assert got.args["otel.status_code"] == "ERROR"
    events = Counter(s.name for s in decoded.slices if s.instant and not s.name.startswith("ERROR"))
    assert events == Counter(TRUTH["n_events_by_name"])
    errors = [s for s in decoded.slices if s.instant and s.name.startswith("ERROR")]
    assert len(errors) == TRUTH["n_error_spans"]
    assert all("error" in s.category for s in errors)


def test_thread_names_carry_ranks_and_hosts_do_not_merge(decoded):
    for want in TRUTH["expected_thread_track_names"]:
        assert any(n == want or n.startswith(want + " @") for n in decoded.thread_names), want
    # SGLang's pid attribute repeats across hosts: still one track per (host, pid)
    assert len(decoded.thread_names) == len(TRUTH["threads"])
    for s in spans_of(decoded):
        pass
    per_thread = Counter(decoded.thread_of(s) for s in spans_of(decoded))
    for t in TRUTH["threads"]:
        name = next(n for n in per_thread if n == t["track_name"] or n.startswith(t["track_name"] + " @"))
        assert per_thread[name] == t["n_thread_spans"] + t["n_slices"]
    assert any("-PP1-DP0" in n for n in decoded.process_names)


def test_children_nest_under_their_parents(decoded):
    by_id = {s.args["span_id"]: s for s in spans_of(decoded)}
    truth = {s["span_id"]: s for s in TRUTH["spans"]}
    sticking_out = set(TRUTH["child_ends_after_parent_span_ids"])
    checked = 0
    for sid, want in truth.items():
        p = truth.get(want["parent_span_id"])
        if p is None or p["thread_key"] != want["thread_key"] or want["thread_key"] is None:
            continue
        got = by_id[sid]
        if sid in sticking_out:
            assert got.parent is None or got.parent.args.get("span_id") != p["span_id"]
            continue
        assert got.parent is not None and got.parent.args["span_id"] == p["span_id"], want["name"]
        checked += 1
    assert checked > 100


def test_no_negative_or_shortened_durations(decoded):
    assert all(s.end >= s.start for s in decoded.slices)
    zero = [s for s in spans_of(decoded) if s.args["span_id"] in TRUTH["zero_duration_span_ids"]]
    assert zero and all(s.end == s.start for s in zero)


def test_links_become_flows(decoded):
    flows = decoded.flows()
    assert len(flows) == TRUTH["n_links"] - len(TRUTH["dangling_links"])
    truth = {s["span_id"]: s for s in TRUTH["spans"]}
    for a, b in flows:
        assert a.start <= b.start
    # every flow joins spans of the same request
    assert all(truth[a.args["span_id"]]["trace_id"] == truth[b.args["span_id"]]["trace_id"] for a, b in flows)


def test_orphans_and_roots_are_kept():
    trace = read_otel([FIX / "sglang_pp2dp2tp2.jsonl"])
    assert trace.stats["span_parent_missing"] == TRUTH["n_orphans"] + len(TRUTH["roots_with_external_parent"])
    names = trace.strings("slices", "name")
    assert sum(1 for n in names if n.lstrip().startswith("Req ")) == TRUTH["n_requests"]


def test_spans_without_a_thread_go_to_their_resource_or_childs_host(tmp_path):
    """A span on no thread is drawn in the process of its resource's host; where the resource
    names none and its threads run on several hosts, in its first child's thread's host."""

    def attrs(**kv):
        return [{"key": k, "value": {"stringValue": v} if isinstance(v, str) else {"intValue": str(v)}} for k, v in kv.items()]

    def span(sid, name, parent="", **kv):
        return {"traceId": "ab" * 16, "spanId": f"{sid:016x}", "parentSpanId": f"{parent:016x}" if parent else "", "name": name,
                "startTimeUnixNano": str(1000 + sid), "endTimeUnixNano": str(2000 + sid), "attributes": attrs(**kv)}

    shared = [span(1, "root-a"), span(2, "root-b"), span(3, "root-alone"), span(4, "orphan", parent=99),
              span(5, "t-a", parent=1, thread_label="Scheduler", pid=7, host_id="aaaa"),
              span(6, "t-b", parent=2, thread_label="Scheduler", pid=7, host_id="bbbb")]
    own = [span(8, "root-own")]
    docs = [{"resourceSpans": [{"resource": {"attributes": attrs(**{"service.name": "svc"})}, "scopeSpans": [{"spans": shared}]},
                               {"resource": {"attributes": attrs(**{"service.name": "svc2", "host.name": "hostc"})},
                                "scopeSpans": [{"spans": own}]}]}]
    path = tmp_path / "hosts.jsonl"
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    trace = read_otel([path])
    procs = {p["process_id"]: p for p in trace.rows("processes")}
    tracks = trace.rows("tracks")
    names = trace.strings("slices", "name")
    where = {}
    for name, t in zip(trace.column("slices", "name").tolist(), trace.column("slices", "track_id").tolist()):
        proc = procs[tracks[t]["process_id"]]
        where[names[name]] = (proc["name"], [x for x in proc["labels"] if x.startswith("host=")], tracks[t]["name"])
    assert where["root-a"][1:] == (["host=aaaa"], "Requests")
    assert where["root-b"][1:] == (["host=bbbb"], "Requests")
    assert where["root-alone"][1:] == ([], "Requests")
    assert where["orphan"][1:] == ([], "Spans")
    assert where["root-own"][1:] == (["host=hostc"], "Requests")
    assert where["root-a"][0] == where["t-a"][0] and where["root-b"][0] == where["t-b"][0] != where["t-a"][0]


def test_chrome_json_is_exact_to_the_microsecond_decimal():
    doc = json.loads(convert("sglang_pp2dp2tp2.jsonl", fmt="json"), parse_float=Decimal)
    base = doc["baseTimeNanoseconds"]
    xs = [e for e in doc["traceEvents"] if e["ph"] == "X"]
    assert len(xs) == TRUTH["n_spans"]
    got = Counter((e["args"]["span_id"], base + int(Decimal(e["ts"]) * 1000), int(Decimal(e["dur"]) * 1000)) for e in xs)
    want = Counter((s["span_id"], s["start_ns"], s["end_ns"] - s["start_ns"]) for s in TRUTH["spans"])
    assert got == want


def test_console_exporter_output():
    d = decode(convert("sglang_console.txt"))
    assert len(spans_of(d)) == TRUTH["n_console_spans"]
    truth = {s["span_id"]: s for s in TRUTH["spans"]}
    for s in spans_of(d):
        want = truth[s.args["span_id"]]
        assert abs(s.start - want["start_ns"]) <= 1000  # the exporter prints µs


GENERIC = json.loads((FIX / "generic_service.truth.json").read_text())


@pytest.mark.parametrize("name", ["generic_service.jsonl", "legacy_instrumentation_library.jsonl", "tempo_batches.json"])
def test_generic_services_legacy_keys_and_base64_ids(name):
    d = decode(convert(name))
    spans = spans_of(d)
    assert len(spans) == int(GENERIC["n_spans"])
    assert Counter(s.name for s in spans) == Counter(GENERIC["count_by_name"])
    assert all(len(s.args["trace_id"]) == 32 and len(s.args["span_id"]) == 16 for s in spans)
    assert {p.split()[0] for p in d.process_names} >= {"checkout", "payments"}


def test_rotated_files_resolve_parents_across_files(tmp_path):
    lines = (FIX / "sglang_pp2dp2tp2.jsonl").read_bytes().splitlines(keepends=True)
    half = len(lines) // 2
    (tmp_path / "a.json").write_bytes(b"".join(lines[:half]))
    (tmp_path / "b.json").write_bytes(b"".join(lines[half:]))
    both = read_otel([tmp_path / "a.json", tmp_path / "b.json"])
    one = read_otel([FIX / "sglang_pp2dp2tp2.jsonl"])
    assert both.num_slices == one.num_slices
    assert both.stats["span_parent_missing"] == one.stats["span_parent_missing"]


def test_field_numbers_match_perfetto_protos():
    from perfetto.protos.perfetto.trace import perfetto_trace_pb2 as pb

    from traceconv.writers import perfetto as w

    def num(msg, name):
        return msg.DESCRIPTOR.fields_by_name[name].number

    assert (w.P_TIMESTAMP, w.P_TRACK_EVENT, w.P_SEQ_ID, w.P_INTERNED, w.P_SEQ_FLAGS, w.P_TRACK_DESCRIPTOR) == tuple(
        num(pb.TracePacket, n) for n in ("timestamp", "track_event", "trusted_packet_sequence_id", "interned_data", "sequence_flags", "track_descriptor")
    )
    assert (w.TE_TYPE, w.TE_TRACK_UUID, w.TE_NAME_IID, w.TE_CATEGORY_IIDS, w.TE_DEBUG, w.TE_FLOW_IDS, w.TE_TERMINATING_FLOW_IDS, w.TE_DOUBLE_COUNTER) == tuple(
        num(pb.TrackEvent, n)
        for n in ("type", "track_uuid", "name_iid", "category_iids", "debug_annotations", "flow_ids", "terminating_flow_ids", "double_counter_value")
    )
    assert (w.DA_NAME_IID, w.DA_BOOL, w.DA_UINT, w.DA_INT, w.DA_DOUBLE, w.DA_STRING, w.DA_STRING_IID, w.DA_DICT, w.DA_ARRAY, w.DA_NAME) == tuple(
        num(pb.DebugAnnotation, n)
        for n in ("name_iid", "bool_value", "uint_value", "int_value", "double_value", "string_value", "string_value_iid", "dict_entries", "array_values", "name")
    )


# ---- damaged and wrong input through the CLI -----------------------------------------------

from traceconv.cli import main  # noqa: E402


def _one_error_line(capsys, name: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and name in err[0], err
    return err[0]


def test_truncated_last_line_is_salvaged_with_a_count(tmp_path, capsys):
    data = (FIX / "sglang_pp2dp2tp2.jsonl").read_bytes()
    cut = data[: len(data) - 1000]  # the last line loses its end
    p = tmp_path / "cut.jsonl"
    p.write_bytes(cut)
    out = tmp_path / "cut.pftrace"
    assert main(["otel2perfetto", str(p), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "last line is incomplete" in err and "otlp_json_truncated_last_line" in err
    kept = len(spans_of(decode(out.read_bytes())))
    complete_lines = cut.count(b"\n")
    whole = sum(len(sp["spans"]) for line in data.splitlines()[:complete_lines] for rs in json.loads(line)["resourceSpans"] for sp in rs["scopeSpans"])
    assert whole <= kept < TRUTH["n_spans"]  # complete lines, and the complete spans of the cut one
    assert main(["otel2perfetto", str(p), "-o", str(out), "--strict"]) == 1


def test_damaged_middle_line_is_skipped_with_its_line_number(tmp_path, capsys):
    lines = (FIX / "sglang_pp2dp2tp2.jsonl").read_bytes().splitlines(keepends=True)
    lines[3] = lines[3][:50] + b"\n"
    p = tmp_path / "mid.jsonl"
    p.write_bytes(b"".join(lines))
    assert main(["otel2perfetto", str(p), "-o", str(tmp_path / "o.pftrace")]) == 0
    assert f"{p}:4: skipped a damaged line" in capsys.readouterr().err


@pytest.mark.parametrize(
    "name, data, words",
    [
        ("empty.json", b"", "empty file"),
        ("kineto.json", b'{"traceEvents": []}\n', "torch2perfetto"),
        ("other.json", b'{"hello": "world"}\n', "not OTLP"),
        ("bad.json.gz", b"\x1f\x8b\x08\x00\x00\x00\x00\x00garbage", ""),
        ("random.bin", bytes(range(256)) * 4, "not an OTel span dump"),
        ("png.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "not an OTel span dump"),
    ],
)
def test_bad_input_is_one_line_exit_1(tmp_path, capsys, name, data, words):
    p = tmp_path / name
    p.write_bytes(data)
    assert main(["otel2perfetto", str(p), "-o", str(tmp_path / "o.pftrace")]) == 1
    assert words in _one_error_line(capsys, name)
    assert not (tmp_path / "o.pftrace").exists()


def test_stdin_and_refusing_to_overwrite_an_input(tmp_path, capsys, monkeypatch):
    import io as _io
    import sys

    monkeypatch.setattr(sys, "stdin", _io.TextIOWrapper(_io.BytesIO((FIX / "sglang_pp2dp2tp2.jsonl").read_bytes())))
    out = tmp_path / "stdin.pftrace"
    assert main(["-q", "otel2perfetto", "-", "-o", str(out)]) == 0
    assert len(spans_of(decode(out.read_bytes()))) == TRUTH["n_spans"]
    src = tmp_path / "x.jsonl"
    src.write_bytes((FIX / "sglang_pp2dp2tp2.jsonl").read_bytes())
    assert main(["otel2perfetto", str(src), "-o", str(src)]) == 1
    assert "refusing" in capsys.readouterr().err
    assert src.read_bytes() == (FIX / "sglang_pp2dp2tp2.jsonl").read_bytes()


def test_version_and_help():
    assert main(["--version"]) == 0
    assert main(["otel2perfetto", "--help"]) == 0


def test_otel_conversion_loads_no_arrow_pandas_or_other_readers_but_analyzers_still_can(tmp_path):
    """OTel → Perfetto needs neither pyarrow (~50 MB) nor pandas: neither is imported. When
    something imports pyarrow later, the CLI's setup still runs at that moment (pyarrow's first
    array finds no pandas; the system allocator), and pandas still works for whoever needs it."""
    import subprocess
    import sys

    out = tmp_path / "x.pftrace"
    code = (
        "import sys\n"
        "from traceconv.cli import main\n"
        f"assert main(['-q', 'otel2perfetto', {str(FIX / 'sglang_pp2dp2tp2.jsonl')!r}, '-o', {str(out)!r}]) == 0\n"
        "loaded = [m for m in ('pyarrow', 'pandas', 'traceconv.readers.kineto', 'traceconv.readers.nsys', 'sqlite3') if m in sys.modules]\n"
        "assert not loaded, f'reading OTel loaded {loaded}'\n"
        "import pyarrow as pa\n"
        "assert 'pandas' not in sys.modules, 'pyarrow set-up imported pandas'\n"
        "assert pa.default_memory_pool().backend_name == 'system'\n"
        "df = pa.table({'a': [1, 2]}).to_pandas()\n"
        "import pandas as pd\n"
        "assert pa.types.is_dictionary(pa.array(pd.Series(['x', 'y'], dtype='category')).type)\n"
        "assert list(df['a']) == [1, 2]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path, env={k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"})
    assert out.stat().st_size > 0


def _tables(paths) -> tuple[list, dict]:
    t = read_otel([str(p) for p in paths])
    got = [getattr(t, name).to_pylist() for name in ("slices", "args", "flows", "tracks", "processes")]
    got[1].sort(key=lambda a: a["owner"])  # (stable: each slice's args in their order; the readers interleave slices)
    return got, dict(t.stats)


def test_fast_path_that_fails_late_leaves_no_rows_behind(tmp_path, monkeypatch):
    """The column fast path appends batch by batch; when a later batch fails (a damaged last
    line of a multi-batch file) its rows are rolled back and the line-by-line reader reads the
    file again: the trace equals reading everything line by line, also after an earlier file."""
    from traceconv.readers import otel_columns, otel_dump

    lines = (FIX / "sglang_pp2dp2tp2.jsonl").read_bytes().splitlines(keepends=True)
    big = tmp_path / "big.jsonl"
    copies = (3 * otel_columns.BATCH_BYTES) // sum(map(len, lines)) + 1
    big.write_bytes(b"".join(lines) * copies + lines[0][:40] + b"\n")
    first = FIX / "generic_service.jsonl"

    fast = _tables([first, big])
    monkeypatch.setattr(otel_dump, "read_jsonl_columns", lambda lines, col: None)
    slow = _tables([first, big])
    assert fast == slow
    assert len(fast[0][0]) > 3 * copies and fast[1]["otlp_json_truncated_last_line"] == 1


def _first_span(doc: dict) -> dict:
    return doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]


def _set(path: str, value):
    def change(doc):
        *keys, last = path.split(".")
        obj = _first_span(doc)
        for k in keys:
            obj = obj[int(k)] if isinstance(obj, list) else obj.setdefault(k, {})
        obj[last] = value
    return change


def _add_attr(value: dict):
    return lambda doc: _first_span(doc).setdefault("attributes", []).append({"key": "extra", "value": value})


def _b64_ids(doc):
    import base64

    sp = _first_span(doc)
    for k, n in (("traceId", 16), ("spanId", 8)):
        sp[k] = base64.b64encode(bytes.fromhex(sp[k])).decode()


# (change to the first span of the first line, whether the column fast path takes it)
ODD_INPUTS = {
    "upper_hex_ids": (lambda d: _first_span(d).update(spanId=_first_span(d)["spanId"].upper()), True),
    "0x_ids": (lambda d: _first_span(d).update(spanId="0x" + _first_span(d)["spanId"]), True),
    "base64_ids": (_b64_ids, True),
    "times_as_numbers": (lambda d: _first_span(d).update(startTimeUnixNano=int(_first_span(d)["startTimeUnixNano"])), True),
    "int_as_number": (_add_attr({"intValue": 7}), True),
    "array_kvlist_bytes_empty": (lambda d: [_add_attr(v)(d) for v in ({"arrayValue": {"values": [{"intValue": "1"}, {"stringValue": "a"}]}},
                                                                     {"kvlistValue": {"values": [{"key": "k", "value": {"doubleValue": 1.5}}]}},
                                                                     {"bytesValue": "AAE="}, {}, {"boolValue": False}, {"doubleValue": 2})], True),
    "kind_and_status_as_names": (lambda d: _first_span(d).update(kind="SPAN_KIND_SERVER", status={"code": "STATUS_CODE_ERROR", "message": "boom"}), True),
    "kind_out_of_range": (_set("kind", 300), True),
    "kind_as_digit_text": (_set("kind", "2"), True),
    "times_split_and_empty": (lambda d: [sp.update(startTimeUnixNano=t) for sp, t in
                                         zip(d["resourceSpans"][0]["scopeSpans"][0]["spans"], ("1767225600 124368588", ""))], False),
    "time_with_separator": (_set("endTimeUnixNano", "1767225600124368588,5"), False),
    "dropped_counts_trace_state_flags": (lambda d: _first_span(d).update(droppedAttributesCount=3, droppedEventsCount=1, droppedLinksCount=2,
                                                                        traceState="a=b", flags=1), True),
    "unknown_field": (_set("somethingNew", {"x": 1}), True),
    "negative_time": (_set("startTimeUnixNano", "-5"), False),
    "time_not_a_number": (_set("endTimeUnixNano", "12abc"), False),
    "time_beyond_int64": (_set("endTimeUnixNano", str(1 << 64)), False),
    "bad_id": (_set("spanId", "not an id"), False),
    "double_as_text": (_add_attr({"doubleValue": "1.5"}), False),
    "int_as_text": (_add_attr({"intValue": "twelve"}), False),
    "int_beyond_int64": (_add_attr({"intValue": str(1 << 63)}), False),
}


@pytest.mark.parametrize("form", ["jsonl", "array"])
@pytest.mark.parametrize("case", sorted(ODD_INPUTS))
def test_fast_path_equals_the_line_by_line_reader(tmp_path, monkeypatch, case, form):
    """Whatever the column fast path accepts (JSON Lines, or a streamed JSON array of documents)
    becomes exactly what the span-by-span reader makes of it (spans, args, flows, tracks,
    processes, counts); what it can't take it declines."""
    from traceconv.readers import otel_columns, otel_dump

    change, taken = ODD_INPUTS[case]
    lines = (FIX / "sglang_pp2dp2tp2.jsonl").read_text().splitlines()
    doc = json.loads(lines[0])
    change(doc)
    docs = [lines[1], json.dumps(doc)] + lines[2:]
    path = tmp_path / f"odd.{form}"
    path.write_text("\n".join(docs) + "\n" if form == "jsonl" else "[" + ",\n".join(docs) + "]")
    fast_path = "read_jsonl_columns" if form == "jsonl" else "read_array_columns"
    results = []
    real = getattr(otel_columns, fast_path)
    monkeypatch.setattr(otel_dump, fast_path, lambda d, col: results.append(real(d, col)) or results[-1])
    fast = _tables([path])
    assert (results[0] is not None) == taken
    monkeypatch.setattr(otel_dump, fast_path, lambda d, col: None)
    assert fast == _tables([path])


def test_a_json_array_is_streamed_a_block_at_a_time(tmp_path, monkeypatch):
    """A JSON array of documents larger than the scanner's 1 MB blocks and the column batches is
    read as a stream and gives what the whole-document reader gives."""
    from traceconv.readers import otel_columns, otel_dump

    lines = (FIX / "sglang_pp2dp2tp2.jsonl").read_text().splitlines() * 24
    path = tmp_path / "big.json"
    path.write_text("[\n" + ",\n".join(lines) + "\n]\n")
    assert path.stat().st_size > 3 << 20
    monkeypatch.setattr(otel_columns, "BATCH_BYTES", 1 << 18)
    taken = []
    real = otel_columns.read_array_columns
    monkeypatch.setattr(otel_dump, "read_array_columns", lambda s, col: taken.append(real(s, col)) or taken[-1])
    streamed = _tables([path])
    spans = sum(len(ss["spans"]) for line in lines for rs in json.loads(line)["resourceSpans"] for ss in rs["scopeSpans"])
    assert taken == [spans]
    monkeypatch.setattr(otel_dump, "read_array_columns", lambda s, col: None)
    assert streamed == _tables([path])


@pytest.mark.parametrize("collide", [False, True])
def test_unique_rows_groups_as_numpy_does(collide, monkeypatch):
    """Thread identities are grouped by a hash of each row, checked; on a collision (forced
    here: every row hashed alike) numpy's row-wise unique decides."""
    import numpy as np

    from traceconv.readers import otel

    rng = np.random.default_rng(5)
    m = rng.integers(-3, 3, (500, 7)).astype(np.int64)
    m[:, 3] = rng.integers(0, 2, 500) * (1 << 62)
    if collide:
        real = otel._first_and_group
        monkeypatch.setattr(otel, "_first_and_group", lambda h: real(np.zeros_like(h)))
    first, group = otel._unique_rows(m)
    _, want_first, want_group = np.unique(m, axis=0, return_index=True, return_inverse=True)
    assert sorted(first.tolist()) == sorted(want_first.tolist())
    assert (m[first[group]] == m).all()
    assert len(set(zip(group.tolist(), want_group.ravel().tolist()))) == len(first)  # (the same partition)
