"""PyTorch profiler (Kineto) and other Chrome Trace Event JSON → `Trace`, streamed.

* The events array is cut into blocks of whole events (`json_events`) and each block decoded
  with typed msgspec structs; ``args`` stay raw JSON bytes (kept verbatim in ``args_json``),
  only ``correlation`` is lifted into a column. A block's X/i events become columns in a few
  C-level passes (`kineto_events.add_slices`); B/E/C events, whose order matters, and
  everything unusual go one by one. A big uncompressed file is read by two processes, split at
  an event boundary near the middle (`_read_split`).
* Time: ``ts``/``dur`` are µs with up to 3 decimals, parsed as text into exact int ns; with
  ``baseTimeNanoseconds`` (torch ≥ 2.4) they are relative to it, older traces carry absolute
  epoch µs; traces with neither are kept relative and flagged.
* One process per file (rank), named by its ranks (``PP0-DP1-TP3 (EXTEND)``), holding the CPU
  threads and the GPU streams; launch → GPU op flows come from ``correlation`` (a CUDA-graph
  launch gets one flow per kernel), the file's ``ac2g`` flow events are counted against them.
"""

from __future__ import annotations

import os
import pickle
import re
import stat
import threading
import zlib
from dataclasses import dataclass
from decimal import Decimal
from itertools import compress
from operator import attrgetter, not_
from typing import Any

import msgspec
import numpy as np

from traceconv.errors import MalformedTraceError, UnsupportedFormatError
from traceconv.forked import can_fork, fork_writer, in_worker, reap, trim_heap
from traceconv.model.ranks import Ranks, as_rank
from traceconv.model.trace import INSTANT, Trace, TraceBuilder, TrackKind
from traceconv.readers.json_events import ScanResult, iter_event_chunks, split_events
from traceconv.readers.json_salvage import JSON_ERRORS, is_utf8
from traceconv.readers.kineto_events import (
    CORRELATED,
    GPU_CATEGORIES,
    LAUNCH_CATEGORIES,
    MAX_NS,
    ORDERED_PHASES,
    SLICE_PHASES,
    Event,
    TrackTable,
    decode_correlation,
    add_slices,
    decode_events,
    time_ns,
    us_to_ns,
)
from traceconv.readers.source import open_source

_decode_any = msgspec.json.Decoder().decode
_decode_event = msgspec.json.Decoder(Event).decode
_encode_exact = msgspec.json.Encoder(decimal_format="number").encode

# SGLang file names: [prefix-]{profile_id}-TP-{tp}[-DP-{dp}][-PP-{pp}][-EP-{ep}][-STAGE].trace.json.gz
_RANK_TOKEN = re.compile(r"(?:^|[-_.])(TP|DP|PP|EP)-(\d+)", re.IGNORECASE)
_STAGE = re.compile(r"-(EXTEND|DECODE|prefill|decode|ForwardMode\.\w+)(?=\.trace|\.json|\.pt|$)")
_BENCH = re.compile(r"_batch(\d+)_input(\d+)_output(\d+)_(prefill|decode)")


@dataclass
class RankInfo:
    ranks: Ranks
    stage: str | None = None
    global_rank: int | None = None
    world_size: int | None = None
    extra: str = ""

    def label(self, fallback: str) -> str:
        name = self.ranks.label()
        if not name and self.global_rank is not None:
            name = f"rank{self.global_rank}"
        name = name or fallback
        if self.stage:
            name += f" ({self.stage})"
        if self.extra:
            name += f" {self.extra}"
        return name


def ranks_from_name(path: str, rank_from: str | None = None) -> RankInfo:
    """Ranks and stage from an SGLang trace file name (or a user regex with named groups)."""
    base = os.path.basename(path)
    if rank_from:
        m = re.search(rank_from, base)
        g = m.groupdict() if m else {}
        return RankInfo(Ranks(as_rank(g.get("pp")), as_rank(g.get("dp")), as_rank(g.get("tp")), as_rank(g.get("ep"))), g.get("stage"))
    found = {k.upper(): int(v) for k, v in _RANK_TOKEN.findall(base)}
    stage = None
    m = _STAGE.search(base)
    if m and found:
        stage = m.group(1).split(".")[-1].upper()
    bench = _BENCH.search(base)
    extra = ""
    if bench:
        stage = bench.group(4).upper()
        extra = f"bs={bench.group(1)} in={bench.group(2)} out={bench.group(3)}"
    return RankInfo(Ranks(found.get("PP"), found.get("DP"), found.get("TP"), found.get("EP")), stage, extra=extra)


def read_kineto(src, *, rank_from: str | None = None, name: str | None = None) -> Trace:
    """Read one Kineto / Chrome JSON trace (path or binary stream) into a `Trace`."""
    source = open_source(src, name)
    try:
        return _read(source, rank_from)
    finally:
        source.close()


def _read(source, rank_from: str | None) -> Trace:
    head = source.peek(256).lstrip()
    if not head:
        raise MalformedTraceError("empty file" if not source.damage else f"unreadable: {source.damage[0]}", source=source.name)
    if head[:1] not in (b"{", b"["):
        raise UnsupportedFormatError("not a JSON trace (Chrome/Kineto traces are JSON objects or arrays)", source=source.name)
    if head[:1] == b"{" and (b'"resourceSpans"' in head or b'"batches"' in head):
        raise UnsupportedFormatError("this is an OTel span dump, not a PyTorch/Chrome trace: use `traceconv otel2perfetto`", source=source.name)
    part = _read_split(source) if _can_split(source) else None
    if part is None:
        part = _Part()
        _read_events(source.stream, part, source.name)
    b, scan, tracks, open_b = part.b, part.scan, part.tracks, part.open_b
    stats, bad, ts_a, counters = b.stats, part.bad, b.ts, part.counters
    for stack in open_b.values():
        for row in stack:
            stats["chrome_unclosed_begin"] += 1
            b.dur[row] = 0
    if bad:
        stats["kineto_bad_events"] += bad
        b.warnings.append(f"{source.name}: skipped {bad} events without a usable ts (missing, not a number or implausible)")
    if scan.stray:  # (at the edges of the scanner's blocks; inside them, counted per gap)
        stats["kineto_stray_text"] += 1
    _warn_counts(b, source.name)
    if scan.truncated:
        stats["kineto_truncated_events_lost"] += 1
        b.warnings.append(
            f"{source.name}: file ends inside the events (offset {scan.truncated_at}); converted the {scan.events_seen} complete "
            "events, lost the unfinished one and anything after it"
        )
    for note in source.damage:
        stats["compressed_stream_damaged"] += 1
        b.warnings.append(f"{source.name}: {note}; kept what came before")
    if not scan.found_events:
        raise _no_events_error(scan, source.name)
    if not len(ts_a) and not counters:
        if stats["kineto_bad_events"]:
            why = " (nested too deeply)" if stats["kineto_event_nested_too_deeply"] else ""
            raise MalformedTraceError(f"no usable events: all {stats['kineto_bad_events']} were damaged{why}", source=source.name)
        b.warnings.append(f"{source.name}: the trace holds no events")
    header = _header(scan, source.name, b)
    if part.correlation_flow_starts:
        b.metadata["ac2g_flow_events"] = part.correlation_flow_starts
    return _finish(b, header, tracks, part.raw_track, part.meta_events, part.flow_events, counters, source.name, rank_from)


class _Part:
    """What reading a file's events (or one part of them) collects, in file-local terms."""

    def __init__(self) -> None:
        self.b = TraceBuilder()
        self.b.args_json = bytearray()
        self.scan = ScanResult()
        self.tracks = TrackTable()
        self.raw_track: list[int] = []  # per slice, mapped to tracks at the end
        self.meta_events: list[Event] = []
        self.flow_events: list[tuple[str, Any, Any, Any, int, str]] = []
        self.counters: list[tuple[int, str, int, bytes]] = []
        self.open_b: dict[int, list[int]] = {}  # track → rows of B events not yet ended
        self.loose_ends: list[tuple[tuple, int]] = []  # ((pid, tid), end) of E events whose B came before this part
        self.correlation_flow_starts = 0
        self.bad = 0


def _read_events(stream, part: _Part, name: str, continuation: bool = False, salvage: bool = True) -> None:
    """Read the events of `stream` into `part` (`continuation`: the stream starts at an event
    inside the events array; `salvage`: keep what came before invalid JSON)."""
    b, scan, tracks, raw_track = part.b, part.scan, part.tracks, part.raw_track
    meta_events, flow_events, counters, open_b = part.meta_events, part.flow_events, part.counters, part.open_b
    correlation_flow_starts = 0
    bad = 0
    stats = b.stats
    ts_a, dur_a, name_a, cat_a, par_a, corr_a = b.ts, b.dur, b.name, b.cat, b.parent, b.correlation
    name_code, cat_code = b.names.code, b.categories.code
    args_blob, args_end = b.args_json, b.args_end
    track_get = tracks.get
    gpu = tracks.gpu
    try:
        for chunk, events in iter_event_chunks(stream, scan, decode=_decode_whole, continuation=continuation):
            if events is None:
                events = _decode_whole(chunk)
                if events is None:
                    events = _decode_leniently(chunk, stats)
            phs = list(map(_ph_of, events))
            phases = set(phs)
            if phases.isdisjoint(ORDERED_PHASES) and not phases.isdisjoint(SLICE_PHASES):
                # no B/E/C: the slices of the block go in as columns, the rest one by one below
                is_slice = list(map(SLICE_PHASES.__contains__, phs))
                bad += add_slices(b, tracks, raw_track, list(compress(events, is_slice)), list(compress(phs, is_slice)), stats)
                rest = list(map(not_, is_slice))
                events, phs = list(compress(events, rest)), list(compress(phs, rest))
            if not phases.isdisjoint(_FLOW_PHASES):
                events, starts = _without_correlation_flows(events, phs)
                correlation_flow_starts += starts
            for e in events:
                ph = e.ph
                if ph == "X" or ph == "i" or ph == "I" or ph == "B":
                    raw_ts = bytes(e.ts)
                    if not raw_ts:
                        bad += 1
                        continue
                    raw_dur = bytes(e.dur) if ph == "X" else b""
                    try:
                        ts = us_to_ns(raw_ts)
                        dur = INSTANT if ph != "X" else (us_to_ns(raw_dur) if raw_dur else 0)
                    except ValueError:  # numbers as strings (counted), else skipped
                        try:
                            ts = time_ns(raw_ts, stats)
                            dur = INSTANT if ph != "X" else (time_ns(raw_dur, stats) if raw_dur else 0)
                        except ValueError:
                            bad += 1
                            continue
                    if dur < 0 and ph == "X":
                        stats["kineto_negative_duration"] += 1
                        dur = 0
                    cat = e.cat if isinstance(e.cat, str) else str(e.cat)
                    t = track_get(e.pid, e.tid)
                    if cat in GPU_CATEGORIES:
                        gpu.add((e.pid, e.tid))
                    row = len(ts_a)
                    ts_a.append(ts)
                    dur_a.append(dur)
                    raw_track.append(t)
                    name_a.append(name_code(e.name if isinstance(e.name, str) else str(e.name)))
                    cat_a.append(cat_code(cat))
                    par_a.append(-1)
                    raw = bytes(e.args)
                    corr = -1
                    if raw:
                        args_blob += raw
                        if cat in CORRELATED:
                            try:
                                c = decode_correlation(raw).correlation
                                if c is not None and -(1 << 63) <= c < (1 << 63):
                                    corr = c
                                elif c is not None:  # beyond int64: no flow for it (args keep it)
                                    stats["kineto_correlation_out_of_range"] += 1
                            except JSON_ERRORS:
                                pass
                    args_end.append(len(args_blob))
                    corr_a.append(corr)
                    if ph == "B":
                        open_b.setdefault(t, []).append(row)
                elif ph == "E":
                    try:
                        end = time_ns(bytes(e.ts), stats)
                    except ValueError:
                        bad += 1
                        continue
                    t = track_get(e.pid, e.tid)
                    stack = open_b.get(t)
                    if not stack:
                        if continuation:  # its B may be in the part before this one
                            part.loose_ends.append(((e.pid, e.tid), end))
                        else:
                            stats["chrome_unmatched_end"] += 1
                        continue
                    row = stack.pop()
                    if end < ts_a[row]:
                        stats["kineto_negative_duration"] += 1
                    b.dur[row] = max(0, end - ts_a[row])
                elif ph == "M":
                    meta_events.append(e)
                elif ph in ("s", "t", "f"):
                    if not len(e.ts):
                        bad += 1
                        continue
                    if e.cat in CORRELATION_FLOWS:  # launch → GPU op: rebuilt from correlation ids
                        correlation_flow_starts += ph == "s"
                        continue
                    try:
                        flow_events.append((ph, e.cat, e.id, (e.pid, e.tid), time_ns(bytes(e.ts), stats), e.bp or ""))
                    except ValueError:
                        bad += 1
                elif ph == "C":
                    if not len(e.ts):
                        bad += 1
                        continue
                    try:
                        counters.append((track_get(e.pid, e.tid), str(e.name), time_ns(bytes(e.ts), stats), bytes(e.args) or b"{}"))
                    except ValueError:
                        bad += 1
                else:
                    stats[f"chrome_unsupported_ph_{_ph_key(ph)}"] += 1
    except MalformedTraceError:
        if not len(ts_a) or not salvage:
            raise
        stats["kineto_bad_events"] += 1
        b.warnings.append(f"{name}: stopped at invalid JSON; kept the {len(ts_a)} events before it")
    part.correlation_flow_starts += correlation_flow_starts
    part.bad += bad


# -- one big uncompressed file read by two processes ----------------------------------------
SPLIT_MIN = 64 << 20  # files at least this big (uncompressed, on disk) are split in two
_BETWEEN_EVENTS = re.compile(rb"\}[ \t\r]*,[ \t\r]*\n[ \t]*\{")  # `},\n  {` as Kineto writes it


def _can_split(source) -> bool:
    """Whether to read `source` with two processes: a big uncompressed file on disk, two cores,
    and a process that may fork (no other Python threads, e.g. a Dask worker's; not already a
    worker of `imap_forked`)."""
    if source.compression is not None or (os.cpu_count() or 1) < 2 or not can_fork() or in_worker():
        return False
    if threading.active_count() > 1:
        return False
    try:
        st = os.fstat(source._raw.fileno())  # type: ignore[union-attr]
        return stat.S_ISREG(st.st_mode) and st.st_size >= SPLIT_MIN and source.stream.tell() == 0
    except (AttributeError, OSError, ValueError):
        return False


def _read_split(source) -> _Part | None:
    """The events read by two processes: this one from the start to an event boundary near
    the middle, a forked one from there on; None (and `source.stream` back at its start)
    when that cannot be done. The boundary is a guess (`_BETWEEN_EVENTS` after the middle)
    proven by this process's scan ending exactly there, between events; the other part is
    then merged as if one process had read on."""
    fd = source._raw.fileno()
    size = os.fstat(fd).st_size
    m = _BETWEEN_EVENTS.search(os.pread(fd, 1 << 20, size // 2))
    if m is None:
        return None
    cut = size // 2 + m.end() - 1  # the `{` of an event, if the guess is right
    child = fork_writer(lambda out: _send_rest(out, fd, cut, source.name))
    if child is None:
        return None
    pid, pipe = child
    part: _Part | None = _Part()
    try:
        try:
            _read_events(_Head(source.stream, cut), part, source.name, salvage=False)
        except MalformedTraceError:
            part = None
        if part is not None and part.scan.found_events and part.scan.truncated and part.scan.truncated_at == cut:
            if _receive_rest(pipe, part, cut):
                return part
    finally:
        reap(pid, pipe)
    source.stream.seek(0)
    return None


class _Head:
    """The first `n` bytes of a stream."""

    def __init__(self, stream, n: int) -> None:
        self.stream, self.left = stream, n

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(self.left if size < 0 else min(size, self.left))
        self.left -= len(data)
        return data


class _From:
    """A file descriptor's bytes from `offset` on (pread: the descriptor's position is untouched)."""

    def __init__(self, fd: int, offset: int) -> None:
        self.fd, self.offset = fd, offset

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            chunks = []
            while chunk := self.read(1 << 24):
                chunks.append(chunk)
            return b"".join(chunks)
        data = os.pread(self.fd, size, self.offset)
        self.offset += len(data)
        return data


class _Pieces:
    """Args JSON kept as the pieces it was added in (the forked part's: sent and freed piece
    by piece, so the two processes never hold it twice)."""

    def __init__(self) -> None:
        self.pieces: list[bytes] = []
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def __iadd__(self, data) -> "_Pieces":
        self.pieces.append(bytes(data))
        self.size += len(data)
        return self


def _send_rest(out, fd: int, cut: int, name: str) -> None:
    """(In the forked process.) Read the events from `cut` on and send them: the part pickled,
    then its args JSON as raw bytes."""
    part = _Part()
    part.b.args_json = _Pieces()  # type: ignore[assignment]
    _read_events(_From(fd, cut), part, name, continuation=True, salvage=False)
    args, part.b.args_json = part.b.args_json, None
    head = pickle.dumps(part, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(len(head).to_bytes(8, "little"))
    out.write(head)
    del head, part
    out.write(len(args).to_bytes(8, "little"))
    pieces, sent = args.pieces, 0
    for i in range(len(pieces)):
        out.write(pieces[i])
        sent += len(pieces[i])
        pieces[i] = b""
        if sent >= 16 << 20:  # what was sent is freed as the other process takes it
            trim_heap()
            sent = 0


def _receive_rest(pipe, into: _Part, cut: int) -> bool:
    """Merge the forked process's part into `into`; False (and `into` unchanged) if it did not
    arrive whole."""
    n = int.from_bytes(pipe.read(8).ljust(8, b"\xff"), "little")
    head = pipe.read(n) if n < (1 << 40) else b""
    if len(head) != n:
        return False
    rest: _Part = pickle.loads(head)
    size = int.from_bytes(pipe.read(8).ljust(8, b"\xff"), "little")
    args = into.b.args_json
    base = len(args)
    while len(args) - base < size:  # (in pieces, straight onto this part's args: no second copy)
        piece = pipe.read(min(1 << 20, size - (len(args) - base)))
        if not piece:
            del args[base:]
            return False
        args += piece
    _merge(into, rest, base, cut)
    return True


def _merge(into: _Part, rest: _Part, args_base: int, cut: int) -> None:
    """Append `rest` (the events after `into`'s) to `into`, as one reader going on would have:
    strings and tracks coded in first-seen order, E events closing B events from before."""
    b, w = into.b, rest.b
    row0 = len(b.ts)
    names = np.array([b.names.code(v) for v in w.names.values] + [0], np.int32)
    cats = np.array([b.categories.code(v) for v in w.categories.values] + [0], np.int32)
    track_of = np.array([into.tracks.get(*key) for key in rest.tracks.ids] + [0], np.int64)
    into.tracks.gpu |= rest.tracks.gpu
    for mine, theirs in ((b.ts, w.ts), (b.dur, w.dur), (b.parent, w.parent), (b.correlation, w.correlation)):
        mine.extend(theirs)
    b.name.frombytes(names[np.frombuffer(w.name, np.int32)].tobytes() if len(w.name) else b"")
    b.cat.frombytes(cats[np.frombuffer(w.cat, np.int32)].tobytes() if len(w.cat) else b"")
    into.raw_track += track_of[np.asarray(rest.raw_track, np.int64)].tolist() if rest.raw_track else []
    b.args_end.frombytes((np.frombuffer(w.args_end, np.int64) + args_base).tobytes() if len(w.args_end) else b"")
    for key, end in rest.loose_ends:  # E events whose B came before the cut
        stack = into.open_b.get(into.tracks.get(*key))
        if not stack:
            b.stats["chrome_unmatched_end"] += 1
            continue
        row = stack.pop()
        if end < b.ts[row]:
            b.stats["kineto_negative_duration"] += 1
        b.dur[row] = max(0, end - b.ts[row])
    for t, rows in rest.open_b.items():
        into.open_b.setdefault(int(track_of[t]), []).extend(r + row0 for r in rows)
    into.meta_events += rest.meta_events
    into.flow_events += rest.flow_events
    into.counters += [(int(track_of[t]), name, ts, args) for t, name, ts, args in rest.counters]
    b.stats.update(w.stats)
    b.warnings += w.warnings
    into.correlation_flow_starts += rest.correlation_flow_starts
    into.bad += rest.bad
    scan, more = into.scan, rest.scan
    scan.events_seen += more.events_seen
    scan.header += more.header
    scan.truncated = more.truncated
    scan.truncated_at = cut + more.truncated_at
    scan.stray |= more.stray


_ph_of, _cat_of, _ts_of = attrgetter("ph"), attrgetter("cat"), attrgetter("ts")
_FLOW_PHASES = frozenset(["s", "t", "f"])


def _without_correlation_flows(events: list[Event], phs: list[str]) -> tuple[list[Event], int]:
    """`events` less the launch → GPU op flow events (ac2g: rebuilt from correlation ids, only
    counted), and how many of those were flow starts."""
    n = len(events)
    drop = np.fromiter(map(_FLOW_PHASES.__contains__, phs), bool, n)
    drop &= np.fromiter(map(CORRELATION_FLOWS.__contains__, map(_cat_of, events)), bool, n)
    drop &= np.fromiter(map(len, map(_ts_of, events)), np.int64, n) > 0  # (no ts: counted as bad below)
    if not drop.any():
        return events, 0
    starts = int((drop & np.fromiter(map("s".__eq__, phs), bool, n)).sum())
    return list(compress(events, (~drop).tolist())), starts


def _decode_whole(chunk: bytes) -> list[Event] | None:
    """The events of a ``[...]`` array of whole events; None if it is not valid JSON of that shape."""
    try:
        if not is_utf8(chunk):  # (Raw fields are not checked by msgspec)
            return None
        return decode_events(chunk)
    except JSON_ERRORS:
        return None


def _ph_key(ph: str) -> str:
    """A stats reason for an unsupported ph (trace text: kept only when short and plain)."""
    if not ph:
        return "missing"
    return ph if len(ph) <= 8 and ph.isascii() and ph.isalnum() else "other"


def _warn_counts(b: TraceBuilder, name: str) -> None:
    """Warnings for what was counted event by event (the counts themselves are in `stats`)."""
    stats = b.stats
    odd_ph = {k[len("chrome_unsupported_ph_"):]: v for k, v in stats.items() if k.startswith("chrome_unsupported_ph_") and v}
    if odd_ph:
        b.warnings.append(f"{name}: skipped {sum(odd_ph.values())} events with a missing or unsupported ph "
                          f"({', '.join(f'{k}: {v}' for k, v in sorted(odd_ph.items()))})")
    if stats["kineto_negative_duration"]:
        b.warnings.append(f"{name}: {stats['kineto_negative_duration']} events had a negative duration: kept with duration 0")
    if stats["kineto_events_repaired"]:
        b.warnings.append(f"{name}: {stats['kineto_events_repaired']} events had non-standard JSON (NaN/Infinity, invalid UTF-8): "
                          "kept, NaN/Infinity in args as null, bad bytes as U+FFFD")
    if stats["kineto_stray_text"]:
        b.warnings.append(f"{name}: skipped the text between events in {stats['kineto_stray_text']} places: not an event (stray "
                          "characters, a missing comma); the events around it are kept")
    if stats["chrome_unmatched_end"] or stats["chrome_unclosed_begin"]:
        b.warnings.append(f"{name}: {stats['chrome_unclosed_begin']} B events never ended (kept with duration 0), "
                          f"{stats['chrome_unmatched_end']} E events had no B")


def _no_events_error(scan: ScanResult, name: str) -> Exception:
    text = bytes(scan.header).strip()
    m = re.search(rb'"traceEvents"\s*:\s*(.)', text)
    if m and m.group(1) != b"[":
        return UnsupportedFormatError("traceEvents is not a list: not a Chrome/Kineto trace", source=name)
    if text and not _parses(text):
        return MalformedTraceError(f"file ends before its traceEvents array (truncated at byte {len(text)}?)", source=name)
    return UnsupportedFormatError("JSON without a traceEvents array: not a Chrome/Kineto trace", source=name)


def _parses(text: bytes) -> bool:
    try:
        _decode_any(text)
    except JSON_ERRORS:
        return False
    return True


def _decode_leniently(chunk: bytes, stats) -> list[Event]:
    """Events one by one (a block that did not decode as a whole): events of the wrong shape
    are normalised, non-standard JSON (NaN, invalid UTF-8) repaired, the rest skipped; all counted."""
    out = []
    events, stray = split_events(chunk)
    if stray:
        stats["kineto_stray_text"] += stray
    for raw in events:
        try:
            if not is_utf8(raw):
                raise UnicodeDecodeError("utf-8", b"", 0, 0, "invalid UTF-8")
            out.append(_decode_event(raw))
            continue
        except msgspec.ValidationError:
            try:
                obj = _decode_any(raw)  # valid JSON, odd types: normalise
            except RecursionError:
                stats["kineto_event_nested_too_deeply"] += 1
                obj = None
            except JSON_ERRORS:
                obj = None
        except RecursionError:
            stats["kineto_event_nested_too_deeply"] += 1
            obj = None
        except JSON_ERRORS:
            obj = _repair(raw)
            if obj is not None:
                stats["kineto_events_repaired"] += 1
        if not isinstance(obj, dict):
            stats["kineto_bad_events"] += 1
            continue
        try:
            out.append(_normalised(obj))
        except (msgspec.ValidationError, TypeError, ValueError, RecursionError):
            stats["kineto_bad_events"] += 1
    return out


def _repair(raw: bytes) -> dict | None:
    """Python's json reads NaN/Infinity (as json.dumps writes them); bad UTF-8 becomes U+FFFD;
    numbers stay exact (Decimal). None if it still is not an event."""
    import json

    try:
        obj = json.loads(raw.decode("utf-8", "replace"), parse_float=Decimal)
    except (ValueError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None


def _normalised(obj: dict) -> Event:
    """An event decoded generically: raw fields re-encoded exactly, unhashable ids as JSON text."""
    raw = {k: msgspec.Raw(_encode_exact(_finite(obj[k]))) for k in ("ts", "dur", "args") if k in obj}
    fields = {}
    for k in ("ph", "name", "cat", "pid", "tid", "id"):
        if k in obj:
            v = obj[k]
            if isinstance(v, Decimal):
                v = float(v)
            if not (v is None or isinstance(v, (str, int, float, bool))) or (k == "ph" and not isinstance(v, str)):
                v = _encode_exact(_finite(v)).decode()
            fields[k] = v
    for k in ("bp", "s"):
        if k in obj:
            fields[k] = _finite(obj[k])
    ev = msgspec.convert(fields, Event)
    for k, v in raw.items():
        setattr(ev, k, v)
    return ev


def _finite(v):
    """NaN/Infinity (not JSON) → None, also inside containers."""
    if isinstance(v, float):
        return v if v == v and v not in (float("inf"), float("-inf")) else None
    if isinstance(v, Decimal):
        return v if v.is_finite() else None
    if isinstance(v, dict):
        return {str(k): _finite(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_finite(x) for x in v]
    return v


def _header(scan: ScanResult, name: str, b: TraceBuilder) -> dict:
    """The document outside the events (schemaVersion, baseTimeNanoseconds, distributedInfo...)."""
    text = bytes(scan.header).strip()
    if scan.bare_array or not text:
        return {}
    try:
        text.decode("utf-8")
    except UnicodeDecodeError:
        text = text.decode("utf-8", "replace").encode()
    # as it is; or truncated: no closing brace, decode the keys before the events
    for candidate in (text, text.rstrip(b", \n\t") + b"}"):
        try:
            doc = _decode_any(candidate)
        except JSON_ERRORS:
            continue
        return doc if isinstance(doc, dict) else {}
    # damaged: keep the clock anchor if it can still be found, and say so
    m = re.search(rb'"baseTimeNanoseconds"\s*:\s*(\d{1,19})(?![\d.eE])', text)
    b.stats["kineto_bad_header"] += 1
    b.warnings.append(f"{name}: the JSON outside traceEvents is damaged; ignored it"
                      + (" except baseTimeNanoseconds" if m else " (no baseTimeNanoseconds: times stay relative)"))
    return {"baseTimeNanoseconds": int(m.group(1))} if m else {}


def _finish(b: TraceBuilder, header: dict, tracks: TrackTable, raw_track, meta_events, flow_events, counters, name: str, rank_from) -> Trace:
    n = len(b.ts)
    base = header.get("baseTimeNanoseconds")
    if base is not None and not (isinstance(base, int) and not isinstance(base, bool) and 0 <= base < MAX_NS):
        b.stats["kineto_bad_base_time"] += 1
        b.warnings.append(f"{name}: ignored an implausible baseTimeNanoseconds ({str(base)[:40]})")
        base = None
    ts = np.frombuffer(b.ts, dtype=np.int64).copy() if n else np.zeros(0, np.int64)
    clock = "relative to baseTimeNanoseconds"
    if isinstance(base, int):
        ts += base
    elif n and ts.min() > 10**18:  # absolute epoch µs → ns
        clock = "absolute epoch µs"
    else:
        clock = "relative, no anchor"
        if n:
            b.warnings.append(f"{name}: timestamps have no clock anchor (no baseTimeNanoseconds); kept as they are — use --align to line ranks up")
    b.ts = _array("q", ts)

    info = ranks_from_name(name, rank_from)
    dist = header.get("distributedInfo") or {}
    if isinstance(dist, dict):
        info.global_rank = as_rank(dist.get("rank"))
        info.world_size = as_rank(dist.get("world_size"))
    stem = os.path.basename(name).split(".trace")[0].split(".json")[0]
    # metadata: names of pids and (pid, tid)
    pnames: dict[Any, str] = {}
    tnames: dict[tuple, str] = {}
    tsort: dict[tuple, int] = {}
    labels_meta: dict[Any, str] = {}
    for e in meta_events:
        try:
            a = _decode_any(bytes(e.args)) if len(e.args) else {}
        except JSON_ERRORS:
            a = {}
        if not isinstance(a, dict):
            continue
        if e.name == "process_name":
            pnames[e.pid] = str(a.get("name", ""))
        elif e.name == "thread_name":
            tnames[(e.pid, e.tid)] = str(a.get("name", ""))
        elif e.name == "thread_sort_index":
            tsort[(e.pid, e.tid)] = as_rank(a.get("sort_index")) or 0
        elif e.name == "process_labels":
            labels_meta[e.pid] = str(a.get("labels", ""))
    # one process for the file; the CPU pid is its pid
    cpu_pids = sorted({k[0] for k in tracks.ids if k not in tracks.gpu and as_rank(k[0]) == k[0] and isinstance(k[0], int)})
    labels = [f"file={os.path.basename(name)}"]
    for key in ("host_name", "baseTimeNanoseconds", "schemaVersion"):
        if key in header:
            labels.append(f"{key}={header[key]}")
    if info.global_rank is not None:
        labels.append(f"rank={info.global_rank}" + (f"/{info.world_size}" if info.world_size else ""))
    labels += [f"pid {p}: {v}" for p, v in labels_meta.items()]
    sort = info.ranks.sort_index() if info.ranks.known else (info.global_rank or 0)
    proc = b.add_process(cpu_pids[0] if cpu_pids else 0, info.label(stem), labels, sort_index=sort)
    # tracks: CPU threads first (by sort index, tid), then GPU streams (device, stream)
    keys = sorted(tracks.ids, key=lambda k: (k in tracks.gpu, tsort.get(k, 0), _sortable(k[0]), _sortable(k[1])))
    track_map = np.zeros(len(tracks.ids), np.int64)
    for order, key in enumerate(keys):
        pid, tid = key
        is_gpu = key in tracks.gpu or (isinstance(tid, str) and tid.startswith("stream"))
        tname = tnames.get(key, "").strip()
        if is_gpu:
            dev = pnames.get(pid, f"GPU {pid}").strip()
            label = f"{dev} {tname or f'stream {tid}'}"
            tid_value = as_rank(tid) if as_rank(tid) is not None else as_rank(str(tid).replace("stream", "").strip()) or 0
        else:
            label = tname or f"thread {tid}"
            if pnames.get(pid) and len(cpu_pids) > 1:
                label = f"{pnames[pid]}: {label}"
            tid_value = as_rank(tid) or 0
        track_map[tracks.ids[key]] = b.add_track(proc, tid_value, label, TrackKind.GPU_STREAM if is_gpu else TrackKind.THREAD, sort_index=order)
    b.track = _array("i", track_map[np.asarray(raw_track, dtype=np.int64)].astype(np.int32) if n else np.zeros(0, np.int32))
    _flows_from_correlation(b, tracks, track_map, flow_events, name)
    _bind_flow_events(b, tracks, ts - (base if isinstance(base, int) else 0), np.asarray(raw_track, dtype=np.int64), flow_events)
    _add_counters(b, counters, track_map, proc, base if isinstance(base, int) else 0)
    b.metadata.update(
        format="kineto",
        sources=[{"name": name, "clock": clock, "base_time_ns": base, "rank": info.global_rank, "ranks": info.ranks.label(), "stage": info.stage, "events": n}],
    )
    return b.build()


def _sortable(v) -> tuple:
    return (0, v, "") if isinstance(v, int) else (1, 0, str(v))


def _array(code: str, values: np.ndarray):
    from array import array

    a = array(code)
    a.frombytes(np.ascontiguousarray(values).tobytes())
    return a


def _flows_from_correlation(b: TraceBuilder, tracks: TrackTable, track_map, flow_events, name: str) -> None:
    """A flow from each launch (runtime/driver call) to every GPU op with its correlation id."""
    n = len(b.ts)
    if not n:
        return
    corr = np.frombuffer(b.correlation, dtype=np.int64)
    cats = b.categories.values
    cat = np.frombuffer(b.cat, dtype=np.int32)
    is_launch_cat = np.array([c in LAUNCH_CATEGORIES for c in cats], bool)
    is_gpu_cat = np.array([c in GPU_CATEGORIES for c in cats], bool)
    launch = np.flatnonzero((corr >= 0) & is_launch_cat[cat])
    ops = np.flatnonzero((corr >= 0) & is_gpu_cat[cat])
    if not len(launch) or not len(ops):
        return
    order = np.argsort(corr[launch], kind="stable")
    lc = corr[launch][order]
    pos = np.minimum(np.searchsorted(lc, corr[ops]), len(lc) - 1)
    hit = lc[pos] == corr[ops]
    src = launch[order][pos[hit]]
    dst = ops[hit]
    with np.errstate(over="ignore"):
        fid = (dst.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) ^ corr[ops][hit].astype(np.uint64) | np.uint64(1)
    b.f_id.frombytes(fid.tobytes())
    b.f_src.frombytes(src.astype(np.int64).tobytes())
    b.f_dst.frombytes(dst.astype(np.int64).tobytes())
    b.stats["kineto_gpu_ops_without_launch"] += int((~hit).sum())


CORRELATION_FLOWS = frozenset(["ac2g", "async"])  # launch → GPU op: rebuilt from correlation ids


def _bind_flow_events(b: TraceBuilder, tracks: TrackTable, ts: np.ndarray, raw_track: np.ndarray, flow_events) -> None:
    """Other flows (``fwdbwd``, user flows): bind each s/t/f event to a slice like trace
    processor does — s/t and f with ``bp: e`` to the deepest slice enclosing it on its thread,
    other f to the next slice that begins there — and chain the events of one id."""
    events = flow_events
    if not events or not len(ts):
        return
    dur = np.frombuffer(b.dur, dtype=np.int64)
    end = ts + np.maximum(dur, 0)
    order = np.lexsort((-end, ts, raw_track))
    t_sorted = raw_track[order]
    starts = ts[order]
    chains: dict[tuple, list[tuple[int, int]]] = {}
    unbound = 0
    for ph, cat, fid, key, fts, bp in events:
        t = tracks.ids.get(key)
        row = -1
        if t is not None:
            lo = int(np.searchsorted(t_sorted, t, "left"))
            hi = int(np.searchsorted(t_sorted, t, "right"))
            if ph == "f" and bp != "e":
                k = lo + int(np.searchsorted(starts[lo:hi], fts, "left"))
                row = int(order[k]) if k < hi else -1
            else:
                k = lo + int(np.searchsorted(starts[lo:hi], fts, "right")) - 1
                while k >= lo and end[order[k]] < fts:
                    k -= 1
                row = int(order[k]) if k >= lo else -1
        if row < 0:
            unbound += 1
            continue
        chains.setdefault((cat, fid), []).append((fts, row))
    for (cat, fid), chain in chains.items():
        chain.sort()
        for (_, a), (_, c) in zip(chain, chain[1:]):
            b.add_flow(_mix_id(zlib.crc32(repr((cat, fid)).encode()) << 20 | len(chain)), a, c)
    if unbound:
        b.stats["chrome_flow_event_unbound"] += unbound


def _mix_id(x: int) -> int:
    x &= (1 << 64) - 1
    x = ((x ^ (x >> 33)) * 0xFF51AFD7ED558CCD) & ((1 << 64) - 1)
    return (x ^ (x >> 33)) | 1


def _add_counters(b: TraceBuilder, counters, track_map, proc: int, base: int) -> None:
    series: dict[tuple[int, str], int] = {}
    for raw_t, cname, ts, raw_args in counters:
        try:
            values = _decode_any(raw_args)
        except JSON_ERRORS:
            continue
        if not isinstance(values, dict):
            continue
        for key, v in values.items():
            if not isinstance(v, (int, float)) or (isinstance(v, int) and abs(v) > 1 << 1000):
                b.stats["kineto_counter_value_not_a_number"] += 1
                continue
            k = (raw_t, f"{cname} {key}" if key != "value" else cname)
            t = series.get(k)
            if t is None:
                t = series[k] = b.add_track(proc, 0, k[1], TrackKind.COUNTER, sort_index=1 << 40)
            b.add_counter(t, ts + base, float(v))
