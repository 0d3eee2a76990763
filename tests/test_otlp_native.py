"""The C reader of OTLP/JSON Lines (`traceconv._otlp_json`) against the msgspec column path it
accelerates: a batch it accepts must become exactly what the Python path makes of it (the same
columns, byte for byte, the same strings interned in the same order into the same pools, the
same resources, status messages and link attributes); a batch it declines is read by the Python
path, so the outcome is the same there too. Every input is read twice, with the C module and with
it switched off (``otel_columns._otlp_json = None``, what ``TRACECONV_NO_C=1`` does), into a
collector (`read_jsonl_columns`), then built; where both decline, end to end too (`read_otel` on
a file: its line-by-line fallback reads into the collector the declined batches left behind).

Random documents are shaped like the Collector ``file`` exporter's (plus legacy and Tempo forms),
with every field sometimes odd: wrong types, nulls, escapes, duplicate keys, ids and times out of
range, damaged bytes. The default budget keeps the file at ~15 s; ``TRACECONV_PROPERTY_SCALE=40``
(~5 min) runs 40 times the examples. Bugs it found are regression tests at the end.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import random
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from traceconv.errors import TraceconvError
from traceconv.model.trace import TABLES, Columns
from traceconv.readers import json_events, otel_columns, read_otel
from traceconv.readers.otel import SpanCollector

NATIVE = otel_columns._otlp_json
pytestmark = pytest.mark.skipif(NATIVE is None, reason="traceconv._otlp_json is not built (or TRACECONV_NO_C is set)")

SCALE = float(os.environ.get("TRACECONV_PROPERTY_SCALE", "1"))
INT64_MAX = (1 << 63) - 1
EPOCH = 1_767_225_600_000_000_000


def budget(n: int) -> settings:
    return settings(max_examples=max(1, int(n * SCALE)), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# ---- reading both ways ------------------------------------------------------------------------


class _Spy:
    """Stands in for the C module: records what each batch's `scan` and `finish` did."""

    def __init__(self) -> None:
        self.outcomes: list[str] = []

    def scan(self, *args):
        r = NATIVE.scan(*args)
        if r is None:
            self.outcomes.append("declined")
        return r

    def finish(self, *args):
        try:
            r = NATIVE.finish(*args)
        except Exception as e:  # (a callback's exception: the batch goes to the Python path)
            self.outcomes.append(type(e).__name__)
            raise
        self.outcomes.append("declined" if r is None else "accepted")
        return r

    def count_objects(self, text):
        return NATIVE.count_objects(text)


@contextmanager
def _native(on: bool, spy: _Spy | None = None, batch: int | None = None):
    patches = [mock.patch.object(otel_columns, "_otlp_json", (spy or NATIVE) if on else None)]
    if batch is not None:
        patches.append(mock.patch.object(otel_columns, "BATCH_BYTES", batch))
    for p in patches:
        p.start()
    try:
        yield
    finally:
        for p in reversed(patches):
            p.stop()


def _collector_state(col: SpanCollector) -> dict[str, Any]:
    """Everything the readers append to a collector, as comparable values (floats as bits)."""
    b = col.b
    out: dict[str, Any] = {}
    for i, a in enumerate(otel_columns._columns(col)):
        out[f"column {i} ({a.typecode})"] = (a.typecode, a.tobytes())
    for name in ("names", "arg_keys", "arg_strings", "categories"):
        pool = getattr(b, name)
        out[f"pool {name}"] = list(pool.values)
        assert pool.codes == {s: k for k, s in enumerate(pool.values)}, name
    out["status_message"] = sorted(col.status_message.items())
    out["l_attrs"] = repr(sorted(col.l_attrs.items()))  # (repr: NaN equals NaN, -0.0 differs from 0.0)
    out["resources"] = repr(col.resources)
    out["resource_index"] = repr(list(col._resource_index.items()))
    out["stats"] = dict(b.stats)
    out["warnings"] = list(b.warnings)
    return out


def _bits(a: np.ndarray) -> Any:
    if a.dtype == object:
        return [list(v) if isinstance(v, (list, tuple)) else v for v in a.tolist()]
    return a.dtype.str, np.ascontiguousarray(a).tobytes()


def _trace_state(trace) -> dict[str, Any]:
    """Every column of every table (dtype and bytes), dictionaries, small tables' rows, stats."""
    out: dict[str, Any] = {}
    for table in TABLES:
        t = trace._tables[table]
        assert isinstance(t, Columns)  # (numpy tables: no Arrow needed to compare them)
        out[f"{table} rows"] = trace.num_rows(table)
        for name in t.columns:
            out[f"{table}.{name}"] = _bits(trace.column(table, name))
        for name in t.dictionaries:
            out[f"{table}.{name} strings"] = trace.strings(table, name)
        for name in t.binary:
            out[f"{table}.{name} binary"] = [(o.tobytes(), d.tobytes()) for o, d in trace.binary_chunks(table, name)]
    for table in ("processes", "tracks"):
        out[f"{table} as rows"] = repr(trace.rows(table))
    out["stats"] = dict(trace.stats)
    out["warnings"] = list(trace.warnings)
    out["metadata"] = repr(trace.metadata)
    return out


def _build(col: SpanCollector) -> Any:
    try:
        return _trace_state(col.build())
    except TraceconvError as e:
        return f"{type(e).__name__}: {e}"
    except Exception as e:  # noqa: BLE001 (a crash of the reader itself, not the C one's: the same both ways is what is asked here)
        return f"crash {type(e).__name__}: {e}"


def _assert_same(got: Any, want: Any, what: str) -> None:
    if isinstance(got, str) or isinstance(want, str):  # (an error)
        assert got == want, what
        return
    assert got.keys() == want.keys(), what
    for k in want:
        assert got[k] == want[k], f"{what}: {k} differs (C: {got[k]!r:.400} / Python: {want[k]!r:.400})"


PREFIX = [(b'{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"pre"}}]},'
           b'"scopeSpans":[{"scope":{"name":"pre"},"spans":[{"traceId":"000102030405060708090a0b0c0d0e0f",'
           b'"spanId":"0001020304050607","name":"a","startTimeUnixNano":"5","endTimeUnixNano":"9",'
           b'"attributes":[{"key":"k","value":{"stringValue":"a"}},{"key":"otel.flags","value":{"intValue":"1"}}],'
           b'"events":[{"timeUnixNano":"6","name":"b","attributes":[{"key":"e","value":{"stringValue":"k"}}]}],'
           b'"links":[{"traceId":"000102030405060708090a0b0c0d0e0f","spanId":"0001020304050607","attributes":[]}]}]}]}]}\n')]


@dataclass
class Outcome:
    n: int | None
    c: list[str]  # what each C `parse` call did
    state: dict


def _views(lines: list[bytes]) -> list[memoryview]:
    """The lines as views into one buffer, as `otel_columns.line_views` gives a file's lines."""
    buf = bytearray(b"".join(lines))
    out, pos = [], 0
    for line in lines:
        out.append(memoryview(buf)[pos : pos + len(line)])
        pos += len(line)
    return out


def read_both(lines: list[bytes], batch: int | None = None, prefix: list[bytes] = (), end_to_end: bool = True,
              views: bool = False) -> Outcome:
    """Read `lines` into a collector with the C reader and without; assert they agree (the
    return value; the collector's columns, pools, resources; if both read them, the built
    trace); where both declined, the same end to end through `read_otel` on a file (its
    fallback reads the lines again, into the same collector). `prefix`: lines read first (by the
    Python path, both times), so the collector does not start empty; `views`: the lines as
    memoryviews into one buffer (as `read_otel` hands them over), not bytes."""
    spy = _Spy()
    results = []
    for on in (True, False):
        col = SpanCollector()
        if prefix:
            with _native(False):
                assert otel_columns.read_jsonl_columns(list(prefix), col) is not None
        with _native(on, spy, batch):
            n = otel_columns.read_jsonl_columns(_views(lines) if views else list(lines), col)
        results.append((n, _collector_state(col), col))
    (n_c, state_c, col_c), (n_py, state_py, col_py) = results
    assert n_c == n_py, f"read_jsonl_columns: C {n_c} / Python {n_py} (C parse: {spy.outcomes})"
    if n_c is None:  # (resources added before the decline stay, unused: the C reader adds them as it goes)
        for state in (state_c, state_py):
            del state["resources"], state["resource_index"]
    _assert_same(state_c, state_py, f"collector (C parse: {spy.outcomes})")
    if n_c is not None:
        _assert_same(_build(col_c), _build(col_py), f"built trace (C parse: {spy.outcomes})")
    if end_to_end and n_c is None:  # (a count: `read_otel` would read the same columns again, and build them as above)
        assert_same_end_to_end(lines, batch)
    return Outcome(n_c, spy.outcomes, state_py)


def _read_file(path: str) -> Any:
    try:
        return _trace_state(read_otel([path]))
    except TraceconvError as e:
        return f"{type(e).__name__}: {e}"
    except Exception as e:  # noqa: BLE001 (see `_build`)
        return f"crash {type(e).__name__}: {e}"


def assert_same_end_to_end(lines: list[bytes], batch: int | None = None) -> None:
    assert_same_file(b"".join(lines), ".jsonl", batch)


def assert_same_file(text: bytes, suffix: str, batch: int | None = None) -> None:
    """`read_otel` of `text` in a file, with the C reader and without: the same trace."""
    fd, path = tempfile.mkstemp(suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text)
        with _native(True, batch=batch):
            got = _read_file(path)
        with _native(False, batch=batch):
            want = _read_file(path)
    finally:
        os.unlink(path)
    _assert_same(got, want, f"read_otel ({suffix})")


# ---- building documents -----------------------------------------------------------------------


class Raw(str):
    """JSON text, written as is (numbers json.dumps can't write, damaged values)."""


class Obj(list):
    """A JSON object as (key, value) pairs: their order is kept, a key may repeat."""


@dataclass
class Style:
    item: str = ","  # between members / items (plus whitespace, `ws`)
    colon: str = ":"
    ws: int = 0  # 0 none, 1 a space here and there, 2 any JSON whitespace anywhere
    ascii: bool = False  # json.dumps' ensure_ascii: non-ASCII as \\u escapes
    escapes: float = 0.0  # chance that a string gets one more character escaped
    key_escapes: float = 0.0  # the same for keys (the C reader declines escaped keys)


def _ws(r: random.Random, s: Style) -> str:
    if s.ws < 2 or r.random() < 0.6:
        return ""
    return "".join(r.choice(" \t\r") for _ in range(r.randint(1, 3)))


def _escape_one(text: str, r: random.Random) -> str:
    """`text` as a JSON string literal with one more character written as an escape."""
    body = json.dumps(text, ensure_ascii=False)[1:-1]
    i = r.randrange(len(text)) if text else None
    if i is None:
        return '"' + body + '"'
    c = text[i]
    if c == "/" and r.random() < 0.5:
        esc = "\\/"
    elif ord(c) >= 0x10000:
        v = ord(c) - 0x10000
        esc = f"\\u{0xD800 + (v >> 10):04x}\\u{0xDC00 + (v & 0x3FF):04X}"
    else:
        esc = f"\\u{ord(c):04x}" if r.random() < 0.5 else f"\\u{ord(c):04X}"
    return '"' + json.dumps(text[:i], ensure_ascii=False)[1:-1] + esc + json.dumps(text[i + 1 :], ensure_ascii=False)[1:-1] + '"'


def _str(text: str, r: random.Random, s: Style, chance: float) -> str:
    if chance and r.random() < chance:
        return _escape_one(text, r) if not s.ascii else json.dumps(text)
    return json.dumps(text, ensure_ascii=s.ascii)


def dump(v: Any, r: random.Random, s: Style) -> str:
    if isinstance(v, Raw):
        return str(v)
    if v is None or isinstance(v, bool):
        return json.dumps(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return json.dumps(v)
    if isinstance(v, str):
        return _str(v, r, s, s.escapes)
    if isinstance(v, (Obj, dict)):
        items = v if isinstance(v, Obj) else list(v.items())
        sep = s.colon if s.ws != 1 else ": "
        parts = [_ws(r, s) + _str(k, r, s, s.key_escapes) + _ws(r, s) + sep + _ws(r, s) + dump(x, r, s) + _ws(r, s) for k, x in items]
        return "{" + (s.item if s.ws != 1 else ", ").join(parts) + ("" if parts else _ws(r, s)) + "}"
    if isinstance(v, (list, tuple)):
        parts = [_ws(r, s) + dump(x, r, s) + _ws(r, s) for x in v]
        return "[" + (s.item if s.ws != 1 else ", ").join(parts) + ("" if parts else _ws(r, s)) + "]"
    raise TypeError(type(v))


def line(doc: Any, style: Style | None = None, seed: int = 0) -> bytes:
    return dump(doc, random.Random(seed), style or Style()).encode() + b"\n"


# ---- strategies -------------------------------------------------------------------------------
# (strategies are made once, `lru_cache` on their factories: hypothesis spends most of its time
# on strategy objects made anew at every draw)

TEXT = st.one_of(
    st.sampled_from(["", "a", "b", "GET /v1/chat", "é", "naïve", "𝄞", "a\nb", "\x00", 'q"uote', "back\\slash", "/", "\u2028", "\uffff", "otel"]),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=6),
)
SMALL_TEXT = st.sampled_from(["", "a", "b", "é", "𝄞", "\x00", "k"])
INT64 = st.integers(-(1 << 63), INT64_MAX)
FLOATS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.0, 1e-300, -1e-300, 5e-324, 1.7976931348623157e308, 1e22, 1e23, 0.1, 2.0 ** 53 + 2, 1.0, -1.0, 123.0]),
)
DECIMAL = st.builds(
    lambda sign, whole, frac, exp: Raw(sign + whole + frac + exp),
    st.sampled_from(["", "-"]),
    st.one_of(st.just("0"), st.integers(1, 10 ** 25).map(str)),
    st.one_of(st.just(""), st.integers(0, 10 ** 20).map(lambda f: "." + str(f).zfill(3))),
    st.one_of(st.just(""), st.builds(lambda e, n: e + str(n), st.sampled_from(["e", "E", "e+", "e-", "E-"]), st.integers(0, 400))),
)
TIME = st.one_of(st.integers(0, 4 * 10 ** 18), st.integers(EPOCH, EPOCH + 10 ** 12))
PERMILLE = st.integers(0, 999)
SEED = st.integers(0, 2 ** 16)
LEAF = st.one_of(st.none(), st.booleans(), st.integers(-(10 ** 25), 10 ** 25), FLOATS, TEXT, DECIMAL)
JUNK = st.recursive(LEAF, lambda inner: st.lists(inner, max_size=3) | st.lists(st.tuples(SMALL_TEXT, inner), max_size=3).map(Obj), max_leaves=5)
"""Any JSON value (for unknown members and wrong types)."""


def chance(draw, p: float) -> bool:
    return p > 0 and draw(PERMILLE) < p * 1000


def pick(draw, options: list) -> Any:
    return options[draw(st.integers(0, len(options) - 1))]


IDS = {8: ["0001020304050607", "1111111111111111", "aaaaaaaaaaaaaaaa", "ffffffffffffffff"],
       16: ["000102030405060708090a0b0c0d0e0f", "4bf92f3577b34da6a3ce929d0e0e4736", "ffffffffffffffffffffffffffffffff"]}
HEX = {n: st.sampled_from(IDS[n]) | st.binary(min_size=n, max_size=n).map(bytes.hex) for n in (8, 16)}


def _odd_ids(h: str) -> list:
    return [h.upper(), h[:-1], h + "0", "0x" + h, "0X" + h[2:], base64.b64encode(bytes.fromhex(h)).decode(),
            base64.b64encode(bytes.fromhex(h) + b"x").decode(), h[:4] + " " + h[5:], "g" + h[1:], "-" + h[1:], "+" + h[1:],
            h[:2] + "_" + h[3:], "é" + h[2:], Raw("null"), int(h[:8], 16), Raw("1.5"), True, [h], Obj([("id", h)])]


@lru_cache(None)
def ids(nbytes: int, w: float, parent: bool = False) -> st.SearchStrategy:
    @st.composite
    def draw_id(draw) -> Any:
        if not chance(draw, w):
            if parent and draw(st.booleans()):
                return ""
            return draw(HEX[nbytes])
        return pick(draw, _odd_ids(draw(HEX[nbytes])))
    return draw_id()


ODD_TIMES = st.one_of(
    st.integers(-(10 ** 20), -1), st.integers(-(10 ** 20), -1).map(str),
    st.integers(INT64_MAX - 2, 10 ** 21), st.integers(INT64_MAX - 2, 10 ** 21).map(str),
    st.sampled_from([" 5", "5 ", "+5", "1_000", "0x10", "5.0", "", "abc", "٣", "-0", "007", "00", "-", "+", " ", "- 5", "-9223372036854775808",
                     "-9223372036854775809", "9223372036854775807", "18446744073709551616", "1e9", "\u0035"]),
    st.sampled_from([Raw("1.5"), Raw("1e9"), Raw("-0"), Raw("0"), Raw("1E2"), Raw("10.0"), Raw("null"), True, False, [], Obj()]),
)


@lru_cache(None)
def times(w: float) -> st.SearchStrategy:
    @st.composite
    def draw_time(draw) -> Any:
        if not chance(draw, w):
            t = draw(TIME)
            return str(t) if draw(st.integers(0, 3)) else t
        return draw(ODD_TIMES)
    return draw_time()


ODD_INTS = st.one_of(
    st.integers(-(1 << 40), -1), st.sampled_from([INT64_MAX, -(1 << 63), 1 << 63, (1 << 64) - 1, 1 << 64, 10 ** 30]),
    st.sampled_from(["1", "0", "x", Raw("1.0"), Raw("1e3"), Raw("-0"), Raw("null"), True, 1.5, Obj(), []]),
)
PLAIN_INTS = st.sampled_from([0, 0, 0, 1, 2, 3, 255]) | st.integers(0, 1 << 31)


@lru_cache(None)
def ints(w: float) -> st.SearchStrategy:
    """An int field (flags, dropped counts): JSON numbers only in OTLP's structs."""
    @st.composite
    def draw_int(draw) -> Any:
        return draw(ODD_INTS) if chance(draw, w) else draw(PLAIN_INTS)
    return draw_int()


KIND_NAMES = ["SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER", "SPAN_KIND_CLIENT", "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER"]
STATUS_NAMES = ["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"]
ODD_CODES = st.one_of(
    st.integers(-200, 300), st.sampled_from([1 << 63, -(1 << 63), 10 ** 20, 127, 128, -1]),
    st.sampled_from(["SPAN_KIND_BOGUS", "span_kind_server", "2", "", "OK", "UNSET", "ERROR", "STATUS_CODE_OK", "SPAN_KIND_CLIENT",
                     Raw("1.0"), Raw("2e0"), Raw("-0"), Raw("null"), True, [], Obj()]),
)


@lru_cache(None)
def codes(w: float, names: tuple[str, ...]) -> st.SearchStrategy:
    plain = st.integers(0, len(names) - 1) | st.sampled_from(names)

    @st.composite
    def draw_code(draw) -> Any:
        return draw(ODD_CODES) if chance(draw, w) else draw(plain)
    return draw_code()


ODD_MEMBERS = ["x", "unknown", "spans", "name ", "Name", "é", "value", "key", "attributes"]


def obj(draw, pairs: list[tuple[str, Any]], w: float) -> Obj:
    """An object of `pairs` (None values left out), sometimes shuffled, with unknown members or a
    member repeated."""
    pairs = [(k, v) for k, v in pairs if v is not None]
    if chance(draw, 0.3):
        random.Random(draw(SEED)).shuffle(pairs)
    if chance(draw, w):
        pairs.insert(draw(st.integers(0, len(pairs))), (pick(draw, ODD_MEMBERS), draw(JUNK)))
    if pairs and chance(draw, w / 3):
        pairs.append(pick(draw, pairs))  # a duplicate member (msgspec: the last wins)
    return Obj(pairs)


VALUE_KINDS = ["s", "s", "s", "i", "i", "d", "b", "a", "kv", "bytes"]
VALUE_FIELDS = ["stringValue", "intValue", "doubleValue", "boolValue", "bytesValue", "arrayValue", "kvlistValue"]
VALUE_TEXTS = ["NaN", "Infinity", "-Infinity", "1.5", "x", " 5", "+5", "1_000", "0x10", "", "1e3", "٣", "\t7",
               "9223372036854775808", "-9223372036854775809", "-9223372036854775808", "-0", "007", "-", "+", " ", "- 5"]
ODD_VALUES = ["empty", "null", "two", "wrong", "text", "intrange", "deep", "nullfield", "unknown"]


@lru_cache(None)
def any_values(w: float, depth: int = 0) -> st.SearchStrategy:
    @st.composite
    def draw_value(draw) -> Any:
        kind = pick(draw, VALUE_KINDS if depth < 2 else VALUE_KINDS[:6])
        if kind == "s":
            pairs = [("stringValue", draw(TEXT))]
        elif kind == "i":
            v = draw(INT64 | st.sampled_from([0, -1, INT64_MAX, -(1 << 63)]))
            pairs = [("intValue", str(v) if draw(st.booleans()) else v)]
        elif kind == "d":
            pairs = [("doubleValue", draw(DECIMAL if w and draw(st.booleans()) else FLOATS))]
        elif kind == "b":
            pairs = [("boolValue", draw(st.booleans()))]
        elif kind == "a":
            pairs = [("arrayValue", Obj([("values", draw(st.lists(any_values(w, depth + 1), max_size=3)))]))]
        elif kind == "kv":
            pairs = [("kvlistValue", Obj([("values", draw(st.lists(key_values(w, depth + 1), max_size=2)))]))]
        else:
            pairs = [("bytesValue", base64.b64encode(draw(st.binary(max_size=6))).decode())]
        if chance(draw, w):
            odd = pick(draw, ODD_VALUES)
            if odd == "empty":
                return Obj()
            if odd == "null":
                return None if draw(st.booleans()) else Raw("null")
            if odd == "two":
                other = list(draw(any_values(0.0, 2)))
                pairs = pairs + other if draw(st.booleans()) else other + pairs
            elif odd == "wrong":
                pairs = [(pick(draw, VALUE_FIELDS), draw(JUNK))]
            elif odd == "text":  # (after another member: the C reader hands the value to value_cb)
                pairs = [("x", 0)] * draw(st.booleans()) + [(pick(draw, ["doubleValue", "intValue"]), pick(draw, VALUE_TEXTS))]
            elif odd == "intrange":
                v = pick(draw, [1 << 63, -(1 << 63) - 1, (1 << 64) - 1, 1 << 64, 10 ** 30, -(10 ** 30)])
                pairs = [("intValue", str(v) if draw(st.booleans()) else v)]
            elif odd == "deep":
                d = draw(st.integers(60, 70))
                pairs = [("arrayValue", Raw('{"values":' + "[" * d + "]" * d + "}"))]
            elif odd == "nullfield":
                pairs = [(pairs[0][0], Raw("null"))] + ([("stringValue", "s")] if draw(st.booleans()) else [])
            else:
                pairs = pairs + [("unknownValue", draw(JUNK))]
        return obj(draw, pairs, w / 4)
    return draw_value()


KEYS = TEXT | st.sampled_from(["service.name", "process.pid", "host.name", "thread.id", "thread.name", "pid", "host_id",
                               "thread_label", "tp_rank", "otel.flags", "otel.trace_state"])
ODD_KVS = ["nokey", "novalue", "nullkey", "nullvalue", "notobj"]


@lru_cache(None)
def key_values(w: float, depth: int = 0) -> st.SearchStrategy:
    @st.composite
    def draw_kv(draw) -> Any:
        pairs: list = [("key", draw(KEYS)), ("value", draw(any_values(w, depth)))]
        if chance(draw, w):
            odd = pick(draw, ODD_KVS)
            if odd == "nokey":
                pairs = pairs[1:]
            elif odd == "novalue":
                pairs = pairs[:1]
            elif odd == "nullkey":
                pairs[0] = ("key", Raw("null"))
            elif odd == "nullvalue":
                pairs[1] = ("value", Raw("null"))
            else:
                return draw(JUNK)
        return obj(draw, pairs, w / 2)
    return draw_kv()


@lru_cache(None)
def attr_lists(w: float, max_size: int = 3) -> st.SearchStrategy:
    return st.lists(key_values(w), max_size=max_size)


EVENT_NAMES = st.sampled_from(["ev", "exception", "é", ""]) | TEXT


@lru_cache(None)
def events(w: float) -> st.SearchStrategy:
    @st.composite
    def draw_event(draw) -> Any:
        pairs = [("timeUnixNano", draw(times(w / 2)) if not chance(draw, 0.1) else None), ("name", draw(EVENT_NAMES)),
                 ("attributes", draw(attr_lists(w, 2)) if draw(st.booleans()) else None),
                 ("droppedAttributesCount", draw(ints(w)) if chance(draw, 0.2) else None)]
        return obj(draw, pairs, w)
    return draw_event()


@lru_cache(None)
def links(w: float) -> st.SearchStrategy:
    @st.composite
    def draw_link(draw) -> Any:
        with_attrs = pick(draw, ["none", "empty", "some"])
        pairs = [("traceId", draw(ids(16, w))), ("spanId", draw(ids(8, w))),
                 ("traceState", pick(draw, ["", "k=v"]) if chance(draw, 0.3) else None),
                 ("attributes", None if with_attrs == "none" else [] if with_attrs == "empty" else draw(attr_lists(w, 2))),
                 ("droppedAttributesCount", draw(ints(w)) if chance(draw, 0.2) else None),
                 ("flags", draw(ints(w)) if chance(draw, 0.2) else None)]
        return obj(draw, pairs, w)
    return draw_link()


ODD_STATUSES = [Raw("null"), Obj(), Obj([("code", Raw("null"))]), Obj([("message", Raw("null"))]), Obj([("message", 5)]),
                [], "ERROR", Obj([("code", 2), ("message", "")])]
MESSAGES = st.sampled_from(["", "boom", "é"]) | TEXT


@lru_cache(None)
def statuses(w: float) -> st.SearchStrategy:
    @st.composite
    def draw_status(draw) -> Any:
        if chance(draw, w):
            return pick(draw, ODD_STATUSES)
        pairs = [("code", draw(codes(w, tuple(STATUS_NAMES))) if draw(st.integers(0, 3)) else None),
                 ("message", draw(MESSAGES) if draw(st.booleans()) else None)]
        return obj(draw, pairs, w)
    return draw_status()


SPAN_NAMES = st.sampled_from(["GET /x", "prefill", "decode", "é", "", "𝄞"]) | TEXT
TRACE_STATES = st.sampled_from(["", "rojo=00f067aa0ba902b7", "é=1"]) | TEXT


@lru_cache(None)
def spans(w: float) -> st.SearchStrategy:
    fields = [
        ("traceId", 0.95, ids(16, w)), ("spanId", 0.95, ids(8, w)), ("parentSpanId", 0.7, ids(8, w, True)),
        ("traceState", 0.15, TRACE_STATES), ("name", 0.95, SPAN_NAMES), ("kind", 0.8, codes(w, tuple(KIND_NAMES))),
        ("startTimeUnixNano", 0.95, times(w)), ("endTimeUnixNano", 0.95, times(w)), ("attributes", 0.8, attr_lists(w)),
        ("droppedAttributesCount", 0.15, ints(w)), ("events", 0.3, st.lists(events(w), max_size=2)),
        ("droppedEventsCount", 0.1, ints(w)), ("links", 0.25, st.lists(links(w), max_size=2)), ("droppedLinksCount", 0.1, ints(w)),
        ("status", 0.5, statuses(w)), ("flags", 0.3, ints(w)),
    ]

    @st.composite
    def draw_span(draw) -> Any:
        return obj(draw, [(k, draw(s) if chance(draw, p) else None) for k, p, s in fields], w)
    return draw_span()


ODD_SCOPES = [Raw("null"), Obj(), Obj([("name", "")]), Obj([("name", Raw("null"))]), Obj([("name", 5)]), Obj([("attributes", Raw("null"))]), []]
SCOPE_NAMES = st.sampled_from(["sglang", "opentelemetry.instrumentation.fastapi", "", "é"]) | SMALL_TEXT


@lru_cache(None)
def scopes(w: float) -> st.SearchStrategy:
    @st.composite
    def draw_scope(draw) -> Any:
        if chance(draw, w):
            return pick(draw, ODD_SCOPES)
        pairs = [("name", draw(SCOPE_NAMES)), ("version", pick(draw, ["1.0", ""]) if draw(st.booleans()) else None),
                 ("attributes", draw(attr_lists(w, 2)) if chance(draw, 0.2) else None)]
        return obj(draw, pairs, w)
    return draw_scope()


@lru_cache(None)
def scope_spans(w: float, legacy: bool) -> st.SearchStrategy:
    name, other = ("instrumentationLibrary", "scope") if legacy else ("scope", "instrumentationLibrary")

    @st.composite
    def draw_scope_spans(draw) -> Any:
        pairs = [(name, draw(scopes(w)) if chance(draw, 0.85) else None), ("spans", draw(st.lists(spans(w), max_size=3))),
                 ("schemaUrl", "https://opentelemetry.io/schemas/1.21.0" if chance(draw, 0.2) else None)]
        if chance(draw, w / 2):  # both scope forms
            pairs.append((other, draw(scopes(w))))
        return obj(draw, pairs, w)
    return draw_scope_spans()


RESOURCES = [
    [("service.name", "sglang")],
    [("service.name", "sglang"), ("process.pid", 7)],
    [("host.name", "h1"), ("process.pid", 8), ("service.instance.id", "i-1")],
    [],
]
ODD_RESOURCES = [Raw("null"), Obj(), Obj([("attributes", [])]), Obj([("attributes", Raw("null"))]), Obj([("droppedAttributesCount", 2)]),
                 Obj([("droppedAttributesCount", Raw("1.5"))]), []]


@lru_cache(None)
def resources(w: float) -> st.SearchStrategy:
    @st.composite
    def draw_resource(draw) -> Any:
        if chance(draw, w):
            return pick(draw, ODD_RESOURCES)
        if draw(st.booleans()):
            attrs: Any = draw(attr_lists(w, 3))
        else:
            attrs = [Obj([("key", k), ("value", Obj([("stringValue" if isinstance(v, str) else "intValue", v)]))]) for k, v in pick(draw, RESOURCES)]
        return obj(draw, [("attributes", attrs), ("droppedAttributesCount", draw(ints(w)) if chance(draw, 0.1) else None)], w)
    return draw_resource()


@lru_cache(None)
def resource_spans(w: float) -> st.SearchStrategy:
    @st.composite
    def draw_resource_spans(draw) -> Any:
        legacy = chance(draw, 0.2)
        pairs = [("resource", draw(resources(w)) if chance(draw, 0.9) else None),
                 ("instrumentationLibrarySpans" if legacy else "scopeSpans", draw(st.lists(scope_spans(w, legacy), max_size=2))),
                 ("schemaUrl", "" if chance(draw, 0.1) else None)]
        if chance(draw, w):  # both lists, or the other one empty
            other = "scopeSpans" if legacy else "instrumentationLibrarySpans"
            pairs.append((other, [] if draw(st.booleans()) else draw(st.lists(scope_spans(w, not legacy), max_size=1))))
        return obj(draw, pairs, w)
    return draw_resource_spans()


ODD_DOCUMENTS = ["both", "null", "neither", "nullfirst", "notlist", "notobj"]


@lru_cache(None)
def documents(w: float) -> st.SearchStrategy:
    @st.composite
    def draw_document(draw) -> Any:
        groups = draw(st.lists(resource_spans(w), max_size=2))
        top = "batches" if chance(draw, 0.15) else "resourceSpans"
        pairs = [(top, groups)]
        if chance(draw, w):
            odd = pick(draw, ODD_DOCUMENTS)
            if odd == "both":
                pairs.append(("batches" if top == "resourceSpans" else "resourceSpans", pick(draw, [[], Raw("null")])))
            elif odd == "null":
                pairs = [(top, Raw("null"))]
            elif odd == "neither":
                pairs = [("traceEvents", [])]
            elif odd == "nullfirst":
                pairs = [("resourceSpans", Raw("null")), ("batches", groups)]
            elif odd == "notlist":
                pairs = [(top, Obj())]
            else:
                return draw(JUNK)
        return obj(draw, pairs, w)
    return draw_document()


def styles(key_escapes: bool) -> st.SearchStrategy:
    return st.builds(Style, ws=st.sampled_from([0, 0, 1, 2]), ascii=st.booleans(), escapes=st.sampled_from([0.0, 0.0, 0.1, 0.5]),
                     key_escapes=st.sampled_from([0.0, 0.0, 0.0, 0.05] if key_escapes else [0.0]))


STYLES = {True: styles(True), False: styles(False)}
ODD_LINES = [b"\n", b"   \n", b"\t\r\n", b"\x0b\x0c\n", b"garbage\n", b"[]\n", b"{}\n", b"null\n", b'{"resourceSpans": [\n',
             b"\xff\xfe\n", b'{"resourceSpans":[]}{"resourceSpans":[]}\n', b"\xef\xbb\xbf{\"resourceSpans\":[]}\n", b'{"resourceSpans":[]}\x00\n']
WEIRDNESS = st.sampled_from([0.0, 0.0, 0.02, 0.1, 0.3])
MUTATION_BYTES = st.sampled_from(list(b'{}[]",:\\0-.e \x00\xff\xc3')) | st.integers(0, 255)


@st.composite
def jsonl(draw, w: float | None = None) -> tuple[list[bytes], float]:
    """JSON lines: documents (each written in its own style), sometimes blank or odd lines, and
    with weirdness `w` > 0 keys escaped, and sometimes a byte inserted, deleted or changed."""
    if w is None:
        w = draw(WEIRDNESS)
    out = []
    for _ in range(draw(st.integers(1, 3))):
        if chance(draw, w / 3):
            out.append(pick(draw, ODD_LINES))
            continue
        text = line(draw(documents(w)), draw(STYLES[w > 0]), draw(SEED))
        if chance(draw, w / 2):
            data = bytearray(text[:-1])
            at = draw(st.integers(0, len(data)))
            how = pick(draw, ["insert", "delete", "replace"])
            byte = draw(MUTATION_BYTES)
            if how == "insert":
                data.insert(at, byte)
            elif at < len(data):
                if how == "delete":
                    del data[at]
                else:
                    data[at] = byte
            text = bytes(data) + b"\n"
        out.append(text)
    if out and chance(draw, 0.2):
        out[-1] = out[-1].rstrip(b"\n")  # (a last line without its newline)
    return out, w


# ---- properties -------------------------------------------------------------------------------


@budget(40)
@given(case=jsonl(w=0.0))
def test_clean_documents_are_read_by_c_exactly_as_by_python(case):
    lines, _ = case
    out = read_both(lines)
    assert out.n is not None
    # (a clean document, written any way json.dumps can, with escaped strings but plain keys and
    # JSON numbers: the C reader must not need to decline it)
    assert out.c == ["accepted"], out.c


@budget(70)
@given(case=jsonl(), batch=st.sampled_from([None, None, 1, 200, 2000]), views=st.booleans())
def test_any_jsonl_reads_the_same_with_and_without_c(case, batch, views):
    lines, _ = case
    out = read_both(lines, batch=batch, views=views)
    event(f"C reader: {'/'.join(sorted(set(out.c))) or 'not called'}")


@budget(20)
@given(case=jsonl(), batch=st.sampled_from([None, 1, 300]))
def test_the_same_after_an_earlier_input(case, batch):
    lines, _ = case
    read_both(lines, batch=batch, prefix=PREFIX, end_to_end=False)


@budget(40)
@given(case=jsonl(), batch=st.sampled_from([None, 1, 300]), block=st.sampled_from([None, 64, 1000]))
def test_json_arrays_read_the_same_with_and_without_c(case, batch, block):
    """The same documents as one JSON array: the block scanner cuts it into runs (the C reader
    proves its cuts with `count_objects`) and each batch of runs is parsed whole."""
    lines, _ = case
    text = b"[" + b",\n".join(ln.strip() for ln in lines if ln.strip()) + b"]\n"
    cut = json_events.iter_event_chunks if block is None else functools.partial(json_events.iter_event_chunks, block=block)
    with mock.patch.object(json_events, "iter_event_chunks", cut):
        assert_same_file(text, ".json", batch)


def test_count_objects_checks_the_array():
    assert NATIVE.count_objects(b' [ {"a": [1, {}]} , {} ] ') == 2
    assert NATIVE.count_objects(b"[]") == 0
    for bad in (b"[1]", b"[{}", b"[{}] x", b"{}", b"[{},]", b'[{"a":"\\x"}]', b"[" + b"[" * 70 + b"]" * 70 + b"]"):
        assert NATIVE.count_objects(bad) is None, bad


@budget(60)
@given(values=st.lists(st.one_of(DECIMAL, FLOATS), min_size=1, max_size=8), style=STYLES[False])
def test_doubles_become_the_same_bits(values, style):
    attrs = [Obj([("key", f"d{i}"), ("value", Obj([("doubleValue", v)]))]) for i, v in enumerate(values)]
    lines = [line(_doc([_span(attributes=attrs)]), style)]
    read_both(lines, end_to_end=False)


@budget(20)
@given(many=st.lists(st.tuples(SMALL_TEXT, SMALL_TEXT, SMALL_TEXT), min_size=1, max_size=40), batch=st.sampled_from([None, 1, 400]))
def test_strings_are_interned_in_the_same_order(many, batch):
    """Names, keys and values repeating across spans, events, lines and batches."""
    lines = []
    for i, (a, b, c) in enumerate(many):
        sp = _span(name=a, attributes=[_kv(b, c), _kv(c, {"intValue": str(i)}), _kv(a, {"arrayValue": {"values": [{"stringValue": b}]}})],
                   events=[Obj([("timeUnixNano", "7"), ("name", c), ("attributes", [_kv(b, a), _kv("x", {"bytesValue": "AAE="})])])],
                   traceState=b)
        lines.append(line(_doc([sp], scope=c, resource=[_kv("service.name", a)])))
    out = read_both(lines, batch=batch)
    assert out.c and set(out.c) == {"accepted"}


# ---- deterministic cases ----------------------------------------------------------------------


def _kv(key: str, value: Any) -> Obj:
    if isinstance(value, str):
        value = {"stringValue": value}
    return Obj([("key", key), ("value", value)])


def _span(**fields: Any) -> Obj:
    base = {"traceId": IDS[16][1], "spanId": IDS[8][0], "parentSpanId": "", "name": "s", "kind": 2,
            "startTimeUnixNano": "1767225600000000000", "endTimeUnixNano": "1767225600000001000"}
    base.update(fields)
    return Obj((k, v) for k, v in base.items() if v is not OMIT)


def _doc(spans: list, scope: Any = "sc", resource: Any = None, key: str = "resourceSpans") -> Obj:
    res = Obj([("attributes", resource if resource is not None else [_kv("service.name", "svc")])])
    return Obj([(key, [Obj([("resource", res), ("scopeSpans", [Obj([("scope", Obj([("name", scope)])), ("spans", spans)])])])])])


OMIT = object()


def _one(span: Any = None, **kw: Any) -> list[bytes]:
    return [line(_doc([span if span is not None else _span(**kw)]))]


def _attr(value: Any) -> list[bytes]:
    return _one(attributes=[_kv("a", value), _kv("b", "after")])


CANONICAL = {
    "minimal": _one(),
    "all fields": _one(traceState="k=v", flags=257, droppedAttributesCount=1, droppedEventsCount=2, droppedLinksCount=3,
                       status={"code": 2, "message": "boom"}, parentSpanId=IDS[8][1],
                       events=[Obj([("timeUnixNano", "5"), ("name", "e"), ("attributes", [_kv("x", "y")]), ("droppedAttributesCount", 1)])],
                       links=[Obj([("traceId", IDS[16][0]), ("spanId", IDS[8][1]), ("attributes", [_kv("l", "v")])]),
                              Obj([("traceId", IDS[16][0]), ("spanId", IDS[8][2])])]),
    "kind names": _one(kind="SPAN_KIND_CLIENT", status={"code": "STATUS_CODE_ERROR"}),
    "status short names": _one(status={"code": "ERROR", "message": "m"}),
    "kind out of range": _one(kind=200, status={"code": -3}),
    "unknown kind name": _one(kind="SPAN_KIND_BOGUS"),
    "kind as digit text": _one(kind="2", status={"code": "2"}),
    "times as ints": _one(startTimeUnixNano=5, endTimeUnixNano=9),
    "time zero and max": _one(startTimeUnixNano="0", endTimeUnixNano=str(INT64_MAX)),
    "end before start": _one(startTimeUnixNano="10", endTimeUnixNano="5"),
    "time with leading zeros": _one(startTimeUnixNano="007", endTimeUnixNano="-0"),
    "uppercase hex ids": _one(traceId=IDS[16][1].upper(), spanId="ABCDEF0123456789", parentSpanId="AbCdEf0123456789"),
    "empty ids": _one(traceId="", spanId="", parentSpanId=""),
    "no fields": [line(_doc([Obj()]))],
    "string attr": _attr({"stringValue": "x"}),
    "int attr as text": _attr({"intValue": "-42"}),
    "int attr extremes": _one(attributes=[_kv("a", {"intValue": str(INT64_MAX)}), _kv("b", {"intValue": -(1 << 63)}),
                                          _kv("c", {"intValue": "-9223372036854775808"})]),
    "double attrs": _one(attributes=[_kv(str(i), {"doubleValue": v}) for i, v in enumerate(
        [-0.0, 0.0, 1e-300, 5e-324, 1.7976931348623157e308, 0.1, 3, -0, 2 ** 53 + 1, Raw("-0"), Raw("1E5"), Raw("1e-400"), Raw("-1e-400"),
         Raw("0.30000000000000004"), Raw("123456789012345678.5e-3"), Raw("2.2250738585072011e-308")])]),
    "bool attrs": _one(attributes=[_kv("t", {"boolValue": True}), _kv("f", {"boolValue": False})]),
    "array and kvlist": _attr({"arrayValue": {"values": [{"intValue": "1"}, {"doubleValue": 1.5}, {"kvlistValue": {"values": [_kv("k", "v")]}}]}}),
    "bytes": _attr({"bytesValue": "AAEC"}),
    "empty value": _attr(Obj()),
    "null value": _attr(Raw("null")),
    "no value": _one(attributes=[Obj([("key", "a")])]),
    "no key": _one(attributes=[Obj([("value", {"stringValue": "v"})])]),
    "value before key": _one(attributes=[Obj([("value", {"intValue": 5}), ("key", "k")])]),
    "two fields in a value": _attr(Obj([("intValue", 5), ("stringValue", "s")])),
    "string value null": _attr(Obj([("stringValue", Raw("null"))])),
    "int value null then string": _attr(Obj([("intValue", Raw("null")), ("stringValue", "s")])),
    "unknown field in a value": _attr(Obj([("stringValue", "s"), ("x", [1, {"y": None}])])),
    "unicode and escapes": [line(_doc([_span(name="é𝄞\n\x00\"\\/", attributes=[_kv("ü", "é\u2028\x00")])]), Style(escapes=1.0)),
                            line(_doc([_span(name="é𝄞")]), Style(ascii=True))],
    "surrogate pair escape": [(b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"\\ud834\\udd1e","attributes":'
                               b'[{"key":"\\u00e9","value":{"stringValue":"\\uD834\\uDD1E\\u0000\\n"}}]}]}]}]}\n')],
    "legacy instrumentationLibrarySpans": [line(Obj([("resourceSpans", [Obj([("instrumentationLibrarySpans", [
        Obj([("instrumentationLibrary", Obj([("name", "lib")])), ("spans", [_span()])])])])])]))],
    "tempo batches": [line(_doc([_span()], key="batches"))],
    "empty scopeSpans then legacy": [line(Obj([("resourceSpans", [Obj([("scopeSpans", []), ("instrumentationLibrarySpans", [
        Obj([("spans", [_span()])])])])])]))],
    "scope and instrumentationLibrary": [line(Obj([("resourceSpans", [Obj([("scopeSpans", [
        Obj([("instrumentationLibrary", Obj([("name", "il")])), ("scope", Obj([("name", "")])), ("spans", [_span()])])])])])]))],
    "null scope": [line(Obj([("resourceSpans", [Obj([("scopeSpans", [Obj([("scope", Raw("null")), ("instrumentationLibrary", Obj([("name", "il")])),
                                                                           ("spans", [_span()])])])])])]))],
    "scope with attributes and version": [line(Obj([("resourceSpans", [Obj([("scopeSpans", [
        Obj([("scope", Obj([("name", "s"), ("version", "1"), ("attributes", [_kv("a", "b")])])), ("spans", [_span()])])])])])]))],
    "no resource": [line(Obj([("resourceSpans", [Obj([("scopeSpans", [Obj([("spans", [_span()])])])])])]))],
    "null resource": [line(Obj([("resourceSpans", [Obj([("resource", Raw("null")), ("scopeSpans", [Obj([("spans", [_span()])])])])])]))],
    "resource spelled differently": [line(_doc([_span()], resource=[_kv("service.name", "svc")]), Style(ws=1)),
                                     line(_doc([_span()], resource=[_kv("service.name", "svc")]), Style(ws=2), seed=3),
                                     line(_doc([_span()], resource=[_kv("service.name", "svc")]), Style(escapes=1.0), seed=4)],
    "empty groups": [line(Obj([("resourceSpans", [])])), line(Obj([("resourceSpans", [Obj()])])),
                     line(Obj([("resourceSpans", [Obj([("scopeSpans", [Obj()])])])]))],
    "unknown members everywhere": [line(Obj([("x", 1), ("resourceSpans", [Obj([("y", [1.5e300, None]), ("scopeSpans", [Obj([
        ("z", Obj([("a", "b")])), ("spans", [_span(unknown=[1, "2", {"3": 4}], spans=[], Name="n")])])])])]), ("w", 123456789012345678901234567890)]))],
    "whitespace everywhere": [(b' \t{ "resourceSpans" : [ { "scopeSpans" : [ { "spans" : [ { "name" : "s" , "startTimeUnixNano" : "1" ,'
                               b' "attributes" : [ { "key" : "k" , "value" : { "intValue" : 5 } } ] } ] } ] } ] } \r\n')],
    "blank lines": [b"\n", *_one(), b"   \n", b"\t\n", *_one(name="t")],
    "many lines": [line(_doc([_span(name=f"s{i % 7}", spanId=f"{i:016x}", parentSpanId=f"{max(i - 1, 0):016x}",
                                    attributes=[_kv("i", {"intValue": i}), _kv("m", f"v{i % 5}")])])) for i in range(300)],
    "many distinct strings": [line(_doc([_span(name=f"n{i}", spanId=f"{i + 1:016x}", traceState=f"ts{i}",
                                               attributes=[_kv(f"k{i}", f"v{i}"), _kv("j", {"arrayValue": {"values": [{"intValue": i}]}})],
                                               events=[Obj([("name", f"e{i}"), ("attributes", [_kv(f"ek{i}", f"ev{i}")])])])
                                         for i in range(j, j + 400)], scope=f"scope{j}", resource=[_kv("r", str(j))])) for j in range(0, 2000, 400)],
    "one text from every source": _one(name="t", traceState="[1]", attributes=[_kv("t", "[1]"), _kv("[1]", {"arrayValue": {"values": [{"intValue": 1}]}}),
                                                                              _kv("u", {"bytesValue": "[1]"}), _kv("otel.flags", "otel.trace_state")],
                                       events=[Obj([("name", "t"), ("attributes", [_kv("otel.trace_state", "[1]"), _kv("t", {"kvlistValue": {"values": []}})])])]),
    "time with many leading zeros": _one(startTimeUnixNano="0" * 80 + "5", endTimeUnixNano="-" + "0" * 30),
    "null status": _one(status=Raw("null")),
    "empty status": _one(status=Obj()),
    "a last line without newline": [*_one(), _one(name="last")[0].rstrip(b"\n")],
    "negative flags": _one(flags=-1, droppedAttributesCount=-5),
    "huge float in an unknown member": [b'{"resourceSpans":[],"x":1e999}\n'],
}

ODD = {
    "0x and base64 ids": _one(traceId="0x" + IDS[16][1], spanId=base64.b64encode(bytes(range(8))).decode()),
    "deep unknown member": [b'{"resourceSpans":[],"x":' + b"[" * 100 + b"]" * 100 + b"}\n"],
    "escaped key": [b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"n\\u0061me":"x"}]}]}]}\n'],
    "escaped value key": _attr(Raw('{"string\\u0056alue":"x"}')),
    "escaped id": _one(spanId=Raw('"\\u0030001020304050607"')),
    "duplicate span key": [b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"a","name":"b"}]}]}]}\n'],
    "duplicate attribute key member": _one(attributes=[Obj([("key", "a"), ("key", "b"), ("value", {"stringValue": "v"})])]),
    "duplicate value member": _attr(Obj([("stringValue", "a"), ("stringValue", "b")])),
    "duplicate resourceSpans": [b'{"resourceSpans":[],"resourceSpans":[{"scopeSpans":[{"spans":[{}]}]}]}\n'],
    "both resourceSpans and batches": [line(Obj([("resourceSpans", []), ("batches", [Obj([("scopeSpans", [Obj([("spans", [_span()])])])])])]))],
    "resourceSpans null then batches": [line(Obj([("resourceSpans", Raw("null")), ("batches", [Obj([("scopeSpans", [Obj([("spans", [_span()])])])])])]))],
    "null resourceSpans": [b'{"resourceSpans":null}\n'],
    "neither": [b'{"traceEvents":[]}\n'],
    "both lists": [line(Obj([("resourceSpans", [Obj([("scopeSpans", [Obj([("spans", [_span(name="a")])])]),
                                                    ("instrumentationLibrarySpans", [Obj([("spans", [_span(name="b")])])])])])]))],
    "float time": _one(startTimeUnixNano=Raw("1.5")),
    "float time as int": _one(startTimeUnixNano=Raw("1e9")),
    "bool time": _one(startTimeUnixNano=True),
    "null time": _one(startTimeUnixNano=Raw("null")),
    "time with a space": _one(startTimeUnixNano=" 5"),
    "time with a plus": _one(startTimeUnixNano="+5"),
    "time with underscores": _one(startTimeUnixNano="1_000"),
    "time in hex": _one(startTimeUnixNano="0x10"),
    "time in arabic digits": _one(startTimeUnixNano="٣"),
    "negative time": _one(startTimeUnixNano="-5"),
    "negative int time": _one(endTimeUnixNano=-5),
    "time beyond int64": _one(endTimeUnixNano="9223372036854775808"),
    "int time beyond int64": _one(endTimeUnixNano=1 << 64),
    "time far below int64": _one(endTimeUnixNano="-9223372036854775809"),
    "negative event time": _one(events=[Obj([("timeUnixNano", "-1")])]),
    "float kind": _one(kind=Raw("2.0")),
    "bool kind": _one(kind=True),
    "null kind": _one(kind=Raw("null")),
    "kind beyond int64": _one(kind=1 << 63),
    "float flags": _one(flags=Raw("1.0")),
    "flags beyond int64": _one(flags=1 << 63),
    "flags as text": _one(flags="1"),
    "bool in dropped count": _one(droppedEventsCount=True),
    "int id": _one(spanId=1234),
    "short id": _one(spanId="000102030405060"),
    "long id": _one(traceId=IDS[16][1] + "00"),
    "id with a space": _one(spanId="00010203 4050607"),
    "non-hex id": _one(spanId="000102030405060g"),
    "signed id": _one(spanId="-001020304050607"),
    "base64 id of the wrong size": _one(spanId=base64.b64encode(bytes(9)).decode()),
    "non-ascii id": _one(spanId="é0102030405060"),
    "int value out of range": _one(attributes=[_kv("a", {"intValue": "9223372036854775808"})]),
    "int value far below": _one(attributes=[_kv("a", {"intValue": "-9223372036854775809"})]),
    "int value json out of range": _one(attributes=[_kv("a", {"intValue": 1 << 64})]),
    "int value with space": _attr({"intValue": " 5"}),
    "int value with plus": _attr({"intValue": "+5"}),
    "int value in hex": _attr({"intValue": "0x10"}),
    "int value with underscores": _attr({"intValue": "1_000"}),
    "int value not a number": _attr({"intValue": "abc"}),
    "int value float": _attr({"intValue": 1.5}),
    "int value bool": _attr({"intValue": True}),
    "double value NaN text": _attr({"doubleValue": "NaN"}),
    "double value number text": _attr({"doubleValue": "1.5"}),
    "double value huge": _attr({"doubleValue": Raw("1e999")}),
    "double value huge integer": _attr({"doubleValue": Raw("123456789012345678901234567890")}),
    "double value long text": _attr({"doubleValue": Raw("0." + "1" * 80)}),
    "double value bool": _attr({"doubleValue": True}),
    "bool value as text": _attr({"boolValue": "true"}),
    "string value as int": _attr({"stringValue": 5}),
    "bytes value as int": _attr({"bytesValue": 5}),
    "array value null": _attr({"arrayValue": Raw("null")}),
    "array value deep": _attr({"arrayValue": Raw('{"values":' + "[" * 70 + "]" * 70 + "}")}),
    "null key": _one(attributes=[Obj([("key", Raw("null")), ("value", {"stringValue": "v"})])]),
    "attribute not an object": _one(attributes=[5]),
    "attributes null": _one(attributes=Raw("null")),
    "events null": _one(events=Raw("null")),
    "links null": _one(links=Raw("null")),
    "link attributes null": _one(links=[Obj([("attributes", Raw("null"))])]),
    "status message null": _one(status=Obj([("message", Raw("null"))])),
    "status code null": _one(status=Obj([("code", Raw("null"))])),
    "status a list": _one(status=[]),
    "name null": _one(name=Raw("null")),
    "name an int": _one(name=5),
    "scope name null": [line(_doc([_span()], scope=Raw("null")))],
    "scope a list": [line(Obj([("resourceSpans", [Obj([("scopeSpans", [Obj([("scope", []), ("spans", [_span()])])])])])]))],
    "resource attributes null": [line(Obj([("resourceSpans", [Obj([("resource", Obj([("attributes", Raw("null"))])),
                                                                   ("scopeSpans", [Obj([("spans", [_span()])])])])])]))],
    "resource dropped count float": [line(Obj([("resourceSpans", [Obj([("resource", Obj([("droppedAttributesCount", Raw("1.5"))])),
                                                                       ("scopeSpans", [Obj([("spans", [_span()])])])])])]))],
    "resource dropped count beyond int64": [line(Obj([("resourceSpans", [Obj([("resource", Obj([("droppedAttributesCount", 1 << 63)])),
                                                                              ("scopeSpans", [Obj([("spans", [_span()])])])])])]))],
    "resource attribute bad": [line(_doc([_span()], resource=[_kv("a", {"intValue": "x"})]))],
    "spans null": [b'{"resourceSpans":[{"scopeSpans":[{"spans":null}]}]}\n'],
    "scopeSpans null": [b'{"resourceSpans":[{"scopeSpans":null}]}\n'],
    "not json": [b"garbage\n"],
    "not json later": [*_one(), b"garbage\n", *_one(name="x")],
    "cut line": [*_one(), _one(name="cut")[0][:60] + b"\n", *_one(name="x")],
    "cut last line": [*_one(), _one(name="cut")[0][:60]],
    "array line": [b"[]\n"],
    "two documents on a line": [b'{"resourceSpans":[]}{"resourceSpans":[]}\n'],
    "trailing comma": [b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"a",}]}]}]}\n'],
    "trailing comma in a list": [b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"a"},]}]}]}\n'],
    "leading zero": [b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":02}]}]}]}\n'],
    "leading zero in an unknown member": [b'{"resourceSpans":[],"x":01}\n'],
    "NaN literal": _attr({"doubleValue": Raw("NaN")}),
    "Infinity literal in an unknown member": [b'{"resourceSpans":[],"x":Infinity}\n'],
    "invalid utf-8 in a name": [b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"\xff"}]}]}]}\n'],
    "invalid utf-8 in an unknown member": [b'{"resourceSpans":[],"x":"\xc3("}\n'],
    "overlong utf-8": [b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"\xc0\xaf"}]}]}]}\n'],
    "utf-8 surrogate": [b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"\xed\xa0\x80"}]}]}]}\n'],
    "lone high surrogate escape": [b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"\\ud800"}]}]}]}\n'],
    "lone low surrogate escape": [b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"\\udc00x"}]}]}]}\n'],
    "high surrogate then text": [b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"\\ud800\\u0041"}]}]}]}\n'],
    "bad escape": [b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"\\x41"}]}]}]}\n'],
    "raw control character": [b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"a\tb"}]}]}]}\n'],
    "raw DEL": [b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"a\x7fb"}]}]}]}\n'],
    "nul byte after the document": [b'{"resourceSpans":[]}\x00\n'],
    "BOM": [b'\xef\xbb\xbf{"resourceSpans":[]}\n'],
    "form feed before": [b'\x0c{"resourceSpans":[]}\n'],
    "truncated literal": [b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"status":nul}]}]}]}\n'],
    "literal with tail": [b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"status":nullx}]}]}]}\n'],
    "empty number exponent": [b'{"resourceSpans":[],"x":1e}\n'],
    "minus alone": [b'{"resourceSpans":[],"x":-}\n'],
    "a bad batch after a good one": [*_one(name="good"), *_one(startTimeUnixNano="-1")],
    "a new resource in the line that declines": [line(_doc([_span()], resource=[_kv("r", "1")])),
                                                 line(_doc([_span()], resource=[_kv("r", "2")]))[:-3] + b"\n",
                                                 line(_doc([_span()], resource=[_kv("r", "3")]))],
}


@pytest.mark.parametrize("name", list(CANONICAL))
def test_canonical_cases_are_accepted_by_c_and_read_the_same(name):
    out = read_both(CANONICAL[name])
    assert out.n is not None
    assert out.c and set(out.c) == {"accepted"}, out.c
    read_both(CANONICAL[name], views=True, end_to_end=False)
    assert_same_end_to_end(CANONICAL[name])  # (through `read_otel`: a file's lines, as views)


@pytest.mark.parametrize("name", list(ODD))
def test_odd_cases_read_the_same(name):
    read_both(ODD[name])
    if len(ODD[name]) > 1:
        read_both(ODD[name], batch=1)


@pytest.mark.parametrize("name", ["many lines", "all fields", "blank lines", "resource spelled differently", "unicode and escapes"])
@pytest.mark.parametrize("batch", [1, 700])
def test_canonical_cases_in_small_batches(name, batch):
    out = read_both(CANONICAL[name], batch=batch)
    assert out.n is not None and set(out.c) == {"accepted"}, out.c
    if name == "many lines":
        assert len(out.c) > 10


@budget(60)
@given(case=jsonl(), block=st.integers(1, 300))
def test_line_views_are_the_lines_of_the_file(case, block):
    """What the C reader is handed: `line_views` cuts a file into the lines iterating it gives."""
    import io

    data = b"".join(case[0])
    stream = io.BufferedReader(io.BytesIO(data))
    first = stream.readline()
    got = [bytes(v) for v in otel_columns.line_views(first, stream, block=block)]
    want = list(io.BytesIO(data)) or [b""]
    assert got == want


def test_a_declined_batch_between_accepted_ones_is_read_by_python():
    good = [line(_doc([_span(name=f"g{i}", attributes=[_kv("k", f"v{i}")])])) for i in range(3)]
    odd = ODD["escaped key"]  # (valid: the Python path reads it)
    out = read_both([good[0], *odd, good[1], *odd, good[2]], batch=1)
    assert out.n == 5
    # (a batch is scanned in a thread while the one before it is added: outcomes come in either order)
    assert sorted(out.c) == ["accepted"] * 3 + ["declined"] * 2


def test_a_raising_callback_leaves_the_batch_to_python():
    lines = _one(attributes=[_kv("a", {"doubleValue": "NaN"})])  # (value_cb: _Decline)
    out = read_both(lines)
    assert out.n is None and out.c == ["_Decline"]


def test_env_var_turns_the_c_reader_off():
    import subprocess
    import sys

    code = "from traceconv.readers import otel_columns as m; print(m._otlp_json is None)"
    for env, want in (({"TRACECONV_NO_C": "1"}, "True"), ({}, "False")):
        e = {k: v for k, v in os.environ.items() if k != "TRACECONV_NO_C"} | env
        assert subprocess.run([sys.executable, "-c", code], env=e, capture_output=True, text=True, check=True).stdout.strip() == want


def test_parse_checks_its_arguments():
    pools = (({}, []), ({}, []), ({}, []))
    args = (otel_columns.FIELD_KEYS, otel_columns._value_of, lambda raw: raw, otel_columns._kvs_of, lambda keys: [0] * len(keys))
    with pytest.raises(TypeError):
        NATIVE.parse(["not bytes"], pools, *args)
    with pytest.raises(IndexError):
        NATIVE.parse([b'{"resourceSpans":[]}'], (({}, []),), *args)
    with pytest.raises(TypeError):
        NATIVE.parse((b"{}",), pools, *args)
    assert NATIVE.parse([b"   ", b"\n"], pools, *args) is not None  # (blank lines: nothing)
    assert NATIVE.parse([b""], pools, *args) is None


# ---- real dumps -------------------------------------------------------------------------------

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = sorted(f for f in os.listdir(os.path.join(ROOT, "fixtures", "otel")) if f.endswith(".jsonl"))
BAD_INPUTS = sorted(f for f in os.listdir(os.path.join(ROOT, "tests", "bad_inputs", "cases")) if f.startswith("otel_") and f.endswith(".jsonl"))


def _lines(path: str) -> list[bytes]:
    with open(path, "rb") as f:
        return list(f)


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_dumps_are_accepted_by_c_and_read_the_same(name):
    lines = _lines(os.path.join(ROOT, "fixtures", "otel", name))
    out = read_both(lines)
    if name.endswith(".zstmsg.jsonl"):  # (not JSON Lines: zstd frames; both decline, the reader reads them otherwise)
        assert out.n is None
        return
    assert out.n and set(out.c) == {"accepted"}, out.c
    read_both(lines, batch=4096, end_to_end=False)


@pytest.mark.parametrize("name", BAD_INPUTS)
def test_bad_input_cases_read_the_same(name):
    read_both(_lines(os.path.join(ROOT, "tests", "bad_inputs", "cases", name)))


# ---- bugs found by this suite, fixed: regression tests ---------------------------------------

_A = Obj([("resource", Obj([("attributes", [_kv("service.name", "A")])])), ("scopeSpans", [Obj([("spans", [_span(name="a")])])])])
_B = Obj([("resource", Obj([("attributes", [_kv("service.name", "B")])])), ("scopeSpans", [Obj([("spans", [_span(name="b")])])])])


# (was: the C reader added each resource as it parsed it, so a document it then declined left
# resources the Python path never adds, and later spans other resource indices)
@pytest.mark.parametrize("doc", [Obj([("resourceSpans", [_A]), ("batches", [_B])]), Obj([("batches", [_B]), ("resourceSpans", [_A])]),
                                 Obj([("resourceSpans", [_B]), ("resourceSpans", [_A])])], ids=["both", "batches first", "twice"])
def test_a_declined_document_adds_no_resources(doc):
    read_both([line(doc), line(_doc([_span(name="c")], resource=[_kv("service.name", "C")]))])


# (was: an intValue text handed back to `_value_of` was read alone by numpy, which takes '-', '+',
# ' ' as 0, so the C reader accepted what the Python path, reading the batch with int(), declined)
@pytest.mark.parametrize("value", ["-", "+", " ", "- 5"])
def test_an_int_text_c_hands_to_value_cb_is_read_as_in_the_batch(value):
    # ("x" first: not the one-member value the C reader reads itself)
    read_both([b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[{"key":"a","value":{"x":0,"intValue":"' + value.encode()
               + b'"}},{"key":"b","value":{"intValue":5}}]}]}]}]}\n'])


# (was: the Python fast path read '-', '+', ' ', '- 5' with np.fromstring as 0 / -5, where int()
# and the line-by-line reader refuse them)
@pytest.mark.parametrize("value", ["-", "+", " ", "- 5"])
def test_the_fast_path_reads_int_text_as_the_line_by_line_reader(value):
    with _native(False):
        got = otel_columns.read_jsonl_columns(_one(attributes=[_kv("a", {"intValue": value})]), SpanCollector())
    assert got is None  # (the fast path must decline: the line-by-line reader keeps the text as a string arg)


# (was: `SpanCollector._thread_of` took thread attributes that are ints below -1 for string codes:
# an IndexError, or another attribute's text)
def test_a_negative_int_thread_id_does_not_crash():
    assert_same_end_to_end(_one(attributes=[_kv("thread.id", {"intValue": "-5"})]))
    fd, path = tempfile.mkstemp(suffix=".jsonl")
    with os.fdopen(fd, "wb") as f:
        f.write(_one(attributes=[_kv("thread.id", {"intValue": "-5"})])[0])
    try:
        read_otel([path])
    finally:
        os.unlink(path)
