"""Kineto / Chrome trace events: the typed event, exact µs → ns, and one block of events → columns.

`add_slices` turns the complete (X) and instant (i/I) events of a block into slice columns with
a few C-level passes instead of Python per event: times are parsed as text, vectorised, when
they are plain numbers with up to 3 decimals (Kineto's ``digits.ddd``; anything else one by one
with `time_ns`), names, categories and tracks are interned through their dicts with `map`, args
are joined as one blob and ``correlation`` ids decoded in one call.
"""

from __future__ import annotations

from decimal import Decimal
from itertools import compress
from typing import Any, Union

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from traceconv.model.trace import INSTANT, TraceBuilder
from traceconv.readers.json_salvage import JSON_ERRORS

GPU_CATEGORIES = frozenset(["kernel", "gpu_memcpy", "gpu_memset", "gpu_user_annotation", "Kernel", "Memcpy", "Memset"])
CORRELATED = frozenset(["cuda_runtime", "cuda_driver", "kernel", "gpu_memcpy", "gpu_memset", "Runtime", "Kernel", "Memcpy", "Memset"])
LAUNCH_CATEGORIES = frozenset(["cuda_runtime", "cuda_driver", "Runtime"])


Scalar = Union[str, int, float, bool, None]  # hashable: these become dict keys


class Event(msgspec.Struct, gc=False):  # (decoded JSON holds no cycles: not tracked, faster)
    ph: str = ""
    name: Scalar = ""
    cat: Scalar = ""
    pid: Scalar = 0
    tid: Scalar = 0
    ts: msgspec.Raw = msgspec.Raw()  # empty when absent
    dur: msgspec.Raw = msgspec.Raw()
    id: Scalar = None
    bp: Any = None
    s: Any = None
    args: msgspec.Raw = msgspec.Raw()


class Correlation(msgspec.Struct, gc=False):
    correlation: Union[int, None] = None


decode_events = msgspec.json.Decoder(list[Event]).decode
decode_correlation = msgspec.json.Decoder(Correlation).decode
_decode_corrs = msgspec.json.Decoder(list[Correlation]).decode

MAX_NS = 1 << 62  # |ts|, |dur| beyond ~146 years are not times: the event is skipped


def us_to_ns(raw: bytes) -> int:
    """Exact ns from a JSON number of µs (``4457696249763.410`` → 4457696249763410).

    Raises ValueError for anything that is not a number of plausible size (|ns| < 2^62)."""
    i = raw.find(b".")
    if i > 0 and len(raw) - i == 4 and raw[0] != 45 and raw[i + 1 :].isdigit():  # Kineto's form, fast (JSON numbers: digits)
        ns = int(raw[:i]) * 1000 + int(raw[i + 1 :])
        if ns < MAX_NS:
            return ns
    ns = _us_to_ns(raw)
    if not -MAX_NS < ns < MAX_NS:
        raise ValueError(f"implausible time {raw[:40]!r}")
    return ns


def _us_to_ns(raw: bytes) -> int:
    if raw[:1] == b"-":
        return -_us_to_ns(raw[1:])
    i = raw.find(b".")
    if i < 0:
        if b"e" in raw or b"E" in raw:
            return _decimal_ns(raw)
        return int(raw) * 1000
    frac = raw[i + 1 :]
    if len(frac) <= 3 and frac.isdigit():
        return int(raw[:i] or b"0") * 1000 + int(frac + b"00"[: 3 - len(frac)] if len(frac) < 3 else frac)
    return _decimal_ns(raw)


def _decimal_ns(raw: bytes) -> int:
    try:
        d = Decimal(raw.decode("ascii"))
    except (ArithmeticError, UnicodeDecodeError):
        raise ValueError(f"not a number: {raw[:40]!r}") from None
    if not d.is_finite() or abs(d) >= MAX_NS:  # also keeps 1e999999 from becoming a huge int
        raise ValueError(f"implausible time {raw[:40]!r}")
    return int((d * 1000).to_integral_value())


def time_ns(raw: bytes, stats) -> int:
    """`us_to_ns`, also accepting numbers written as JSON strings (``"ts": "12.5"``, counted)."""
    try:
        return us_to_ns(raw)
    except ValueError:
        if raw[:1] == b'"' and raw[-1:] == b'"' and len(raw) > 2:
            ns = us_to_ns(raw[1:-1].strip())
            stats["kineto_number_as_string"] += 1
            return ns
        raise


class TrackTable:
    """(pid, tid) of one file → track ids, created on first use."""

    def __init__(self) -> None:
        self.ids: dict[tuple, int] = {}
        self.gpu: set[tuple] = set()

    def get(self, pid, tid) -> int:
        key = (pid, tid)
        t = self.ids.get(key)
        if t is None:
            t = self.ids[key] = len(self.ids)
        return t


SLICE_PHASES = frozenset(["X", "i", "I"])
ORDERED_PHASES = frozenset(["B", "E", "C"])  # events whose order against the slices matters
_DOT, _ZERO = ord("."), ord("0")
_SCALE = np.array([1000, 100, 10, 1], np.int64)  # ns per unit of the last digit, by decimals
_INT64 = 1 << 63


def us_column(raws: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ns (int64) for each raw JSON number of µs, where that was done here, and the raw lengths.
    Plain numbers are parsed here: digits with up to 3 decimals (Kineto writes 3, other Chrome
    trace writers 0-3), below 10^18 ns; the rest (signs, exponents, strings, more decimals) is
    left to `time_ns`."""
    n = len(raws)
    lens = np.fromiter(map(len, raws), np.int64, n)
    ends = np.cumsum(lens)
    text = np.frombuffer(b"".join(raws), np.uint8)
    digit = (text - _ZERO) < 10  # (uint8 wraps: one compare)
    before = np.concatenate(([0], np.cumsum(~digit)))  # non-digits before each byte
    starts = ends - lens
    count = before[ends] - before[starts]  # non-digits per number
    # decimals: 3 where the one non-digit sits 4 from the end (Kineto: checked first, cheaply)
    one = count == 1
    decimals = np.where(one & (lens >= 5) & (text[np.maximum(ends - 4, 0)] == _DOT if len(text) else False), 3, 0)
    other = np.flatnonzero(one & (decimals == 0))
    dot_ok = one & (decimals == 3)
    if len(other):  # the position of their non-digit: where the running count steps
        at = np.searchsorted(before, before[starts[other]] + 1) - 1
        good = (text[at] == _DOT) & (at > starts[other])
        decimals[other] = np.where(good, ends[other] - 1 - at, 0)
        dot_ok[other] = good
    width = lens - count  # digits
    ok = (lens > 0) & ((count == 0) | (dot_ok & (decimals >= 1) & (decimals <= 3))) & (width + 3 - decimals <= 18)
    ns = np.zeros(n, np.int64)
    if ok.any():
        # the digits of the good numbers (dot dropped), parsed as integers by Arrow, then scaled
        keep = np.repeat(ok, lens) & digit
        offsets = np.zeros(int(ok.sum()) + 1, np.int32)
        np.cumsum(width[ok], out=offsets[1:])
        digits = pa.StringArray.from_buffers(len(offsets) - 1, pa.py_buffer(offsets), pa.py_buffer(text[keep].tobytes()))
        ns[ok] = pc.cast(digits, pa.int64()).to_numpy() * _SCALE[decimals[ok]]
    return ns, ok, lens


def add_slices(b: TraceBuilder, tracks: TrackTable, raw_track: list[int], events: list[Event], phs: list[str], stats) -> int:
    """Append X / i / I `events` (phases `phs`; from a block holding no B, E or C events, whose
    order against these would matter) as slices; returns how many were skipped for want of a
    usable ts."""
    is_x = np.fromiter(map("X".__eq__, phs), bool, len(events))
    ts, ts_ok, _ = us_column([e.ts for e in events])
    dur, dur_ok, dur_lens = us_column([e.dur for e in events])
    dur_empty = dur_lens == 0
    dur[dur_empty] = 0
    dur[~is_x] = INSTANT
    slow = ~ts_ok | (is_x & ~dur_ok & ~dur_empty)
    keep = None
    if slow.any():  # other forms: one by one, as `time_ns` reads them; unusable → skipped
        keep = np.ones(len(events), bool)
        for k in np.flatnonzero(slow).tolist():
            e = events[k]
            try:
                if not len(e.ts):
                    raise ValueError
                ts[k] = time_ns(bytes(e.ts), stats)
                if is_x[k] and len(e.dur):
                    dur[k] = time_ns(bytes(e.dur), stats)
            except ValueError:
                keep[k] = False
        if keep.all():
            keep = None
        else:
            events = list(compress(events, keep.tolist()))
            ts, dur, is_x = ts[keep], dur[keep], is_x[keep]
    negative = is_x & (dur < 0)
    if negative.any():
        stats["kineto_negative_duration"] += int(negative.sum())
        dur[negative] = 0
    n = len(events)
    b.ts.frombytes(ts.tobytes())
    b.dur.frombytes(dur.tobytes())
    b.parent.frombytes(np.full(n, -1, np.int64).tobytes())
    b.name.fromlist(b.names.codes_of([e.name for e in events]))
    cats = b.categories.codes_of([e.cat for e in events])
    b.cat.fromlist(cats)
    keys = [(e.pid, e.tid) for e in events]
    track_ids = list(map(tracks.ids.get, keys))
    if None in track_ids:
        for k, t in enumerate(track_ids):
            if t is None:
                track_ids[k] = tracks.get(*keys[k])
    raw_track += track_ids
    values = b.categories.values
    cat_codes = np.array(cats, np.int64)
    is_gpu = np.array([v in GPU_CATEGORIES for v in values], bool)[cat_codes]
    if is_gpu.any():
        tracks.gpu.update(compress(keys, is_gpu.tolist()))
    args = [e.args for e in events]
    lens = np.fromiter(map(len, args), np.int64, n)
    b.args_end.frombytes((np.cumsum(lens) + len(b.args_json)).tobytes())
    b.args_json += b"".join(args)
    corr = np.full(n, -1, np.int64)
    wanted = np.array([v in CORRELATED for v in values], bool)[cat_codes] & (lens > 0)
    if wanted.any():
        rows = np.flatnonzero(wanted)
        corr[rows] = _correlations(list(compress(args, wanted.tolist())), stats)
    b.correlation.frombytes(corr.tobytes())
    return 0 if keep is None else int((~keep).sum())


def _correlations(args: list, stats) -> np.ndarray | list[int]:
    """``args.correlation`` of each raw args object, -1 where missing or not an int64."""
    try:
        found = [c.correlation for c in _decode_corrs(b"[" + b",".join(args) + b"]")]
    except JSON_ERRORS:  # an args value that is not an object of that shape: one by one
        found = []
        for raw in args:
            try:
                found.append(decode_correlation(raw).correlation)
            except JSON_ERRORS:
                found.append(None)
    if None not in found:
        try:
            return np.array(found, np.int64)
        except OverflowError:
            pass
    out = []
    for c in found:
        if c is None:
            out.append(-1)
        elif -_INT64 <= c < _INT64:
            out.append(c)
        else:  # beyond int64: no flow for it (args keep it)
            stats["kineto_correlation_out_of_range"] += 1
            out.append(-1)
    return out
