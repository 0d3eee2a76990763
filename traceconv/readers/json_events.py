"""Stream the events of a big Chrome-trace JSON document without building the document.

`iter_event_chunks` reads the bytes in blocks, finds (vectorised, with numpy) where each
object inside the events array starts and ends — outside strings, honouring escapes — and
yields byte spans of whole events, ready for a typed decoder. Everything outside the events
array (the header: schemaVersion, baseTimeNanoseconds, distributedInfo, …, and a trailing
traceName) is collected and decoded once at the end. Works for pretty-printed (Kineto) and
compact JSON, for ``{"traceEvents": [...]}`` and for a bare ``[...]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from collections.abc import Callable, Iterator, Sized
from typing import BinaryIO

import numpy as np

BLOCK = 1 << 20  # small blocks: less transient memory (~10x the block) and warmer caches
_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_OPEN = np.zeros(256, np.int8)
_OPEN[[ord("{"), ord("[")]] = 1
_OPEN[[ord("}"), ord("]")]] = -1
_INTERESTING = np.zeros(256, bool)
_INTERESTING[[ord("{"), ord("["), ord("}"), ord("]"), _QUOTE]] = True
_BLANKS = b" \t\r\n"  # JSON whitespace (removed to spot `"traceEvents" :` across blocks)
_INTERESTING_TABLE = _INTERESTING.astype(np.uint8).tobytes()  # for bytes.translate: 1 where interesting


@dataclass
class ScanResult:
    header: bytearray = field(default_factory=bytearray)  # the document minus the events
    events_seen: int = 0
    truncated: bool = False
    truncated_at: int = 0  # byte offset where the unfinished part starts
    bare_array: bool = False
    found_events: bool = False
    stray: bool = False  # text other than one comma between events (blanks aside): dropped, not decoded


def iter_event_chunks(
    stream: BinaryIO,
    result: ScanResult,
    block: int = BLOCK,
    decode: Callable[[bytes], Sized | None] | None = None,
    continuation: bool = False,
) -> Iterator[tuple[bytes, Sized | None]]:
    """Yield ``(b"[" + events + b"]", decoded)`` for JSON arrays of whole events, block by block.

    `decoded` is what `decode` returned for the array when the fast path below was taken, else
    None and the caller decodes it. `result.header` holds the rest of the document (with an
    empty events array) once the stream is exhausted.

    Fast path: once a block has been scanned, the text between two events is known (Kineto:
    ``},\\n  {``). A block that starts at an event is cut at the last such separator and handed
    to `decode` (which returns None when the text is not a valid array of objects). A success
    proves the cut: from a known state, a valid sequence of whole objects ends between events.
    A failure (a separator inside a string, a damaged event, the end of the array) rescans the
    block byte by byte.

    `continuation`: the stream starts at an event inside the events array (the second part of
    a file split between processes); `result.header` then collects what follows the array.
    """
    in_string = False
    odd_backslashes = False  # the previous block ended inside an odd run of backslashes
    depth = 0
    event_depth = -1  # objects at this depth are events: 2 for {"traceEvents": [..]}, 1 for [..]
    phase = "header"  # → "events" → "tail"
    key_window = b""  # the last bytes before the current block, blanks removed
    carry = b""  # an unfinished event, carried into the next block
    unscanned = False  # carry starts at an event but its bytes were taken by the fast path, not scanned
    separator = b""  # `}` + the text between two events + `{`, once seen
    fast_misses = 0
    offset = 0
    header = result.header
    gap = bytearray()  # the text since the last event (or the array's "["), blanks dropped: checked where it ends
    gap_commas = 0  # commas the open gap must hold: 1 between events, 0 after "["
    if continuation:
        phase, event_depth, depth = "events", 2, 2
        result.found_events = True
    while True:
        chunk = stream.read(max(block, len(carry)))  # (an event longer than a block: read geometrically more)
        if not chunk and not unscanned:
            break
        data = carry + chunk
        offset += len(chunk)
        if separator and carry and phase == "events" and chunk:
            last = data.rfind(separator)
            if last > 0:
                events = b"".join((b"[", memoryview(data)[: last + 1], b"]"))
                decoded = decode(events)
                if decoded is not None:
                    result.events_seen += len(decoded)
                    yield events, decoded
                    gap.clear()  # (the separator's text: checked when it was learned)
                    gap_commas = 0
                    carry = data[last + len(separator) - 1 :]
                    unscanned = True
                    continue
                fast_misses += 1
                if fast_misses > 8:  # not worth trying: damaged or unusual text
                    separator = b""
        if unscanned:  # scan from the carried event's start, whose state is known
            start, ev_start = 0, -1
            depth, in_string, odd_backslashes = event_depth, False, False
            unscanned = False
        else:
            start, ev_start = len(carry), (0 if carry else -1)
        arr = np.frombuffer(data, dtype=np.uint8)
        pos = np.flatnonzero(np.frombuffer(data[start:].translate(_INTERESTING_TABLE), dtype=np.bool_)) + start  # (translate: ~3x a numpy lookup)
        chars = arr[pos]
        qmask = chars == _QUOTE
        # a quote is escaped when an odd run of backslashes precedes it (rare: checked in Python,
        # and only in blocks holding a backslash-quote)
        if b'\\"' in data or (odd_backslashes and not carry and data[:1] == b'"'):
            qidx = np.flatnonzero(qmask)
            after_backslash = arr[np.maximum(pos[qidx] - 1, 0)] == _BACKSLASH
            if len(qidx) and pos[qidx[0]] == 0:  # (the block's first byte: its backslashes ended the last block)
                after_backslash[0] = odd_backslashes and not carry
            suspects = qidx[after_backslash]
            escaped = False
            for k in suspects.tolist():
                p = int(pos[k]) - 1
                run = 0
                while p >= 0 and arr[p] == _BACKSLASH:
                    run += 1
                    p -= 1
                if p < 0 and not carry and odd_backslashes:
                    run += 1
                if run % 2:
                    qmask[k] = False
                    chars[k] = 0
                    escaped = True
            if escaped:
                real = chars != 0
                pos, chars, qmask = pos[real], chars[real], qmask[real]
        # inside a string: an odd number of quotes before (parity by xor, not a cumsum)
        inside = np.logical_xor.accumulate(qmask) ^ qmask
        if in_string:
            inside = ~inside
        structural = ~qmask & ~inside
        spos = pos[structural]
        delta = _OPEN[chars[structural]].astype(np.int64)
        depth_after = depth + np.cumsum(delta)
        depth_before = depth_after - delta
        cut = start if phase != "events" or not carry else 0
        first_event = 0  # structural index where this block's events part begins
        if phase == "header":
            first_event = len(spos)
            for k in np.flatnonzero(np.minimum(depth_before, depth_after) <= 2).tolist():
                p = int(spos[k])
                if data[p] != ord("["):
                    continue
                if depth_before[k] == 0:
                    result.bare_array = True
                else:
                    if not _text_before(data, p, key_window).endswith(b'"traceEvents":'):
                        continue
                event_depth = int(depth_after[k])
                phase = "events"
                result.found_events = True
                header += data[cut : p + 1]
                header += b"]"
                cut = p + 1
                first_event = k + 1
                gap.clear()
                gap_commas = 0
                break
        if phase == "events":
            # events begin where the depth steps event_depth → +1 and end where it steps back;
            # between them there are only commas and blanks, so all complete events of the
            # block are one slice of it
            d0, d1, sp = depth_before[first_event:], depth_after[first_event:], spos[first_event:]
            close = np.flatnonzero((d0 == event_depth) & (d1 == event_depth - 1))
            lim = int(close[0]) if len(close) else len(sp)
            d0, d1 = d0[:lim], d1[:lim]
            starts = sp[:lim][(d0 == event_depth) & (d1 == event_depth + 1)]
            ends = sp[:lim][(d0 == event_depth + 1) & (d1 == event_depth)]
            if decode is not None and not separator and fast_misses <= 8 and len(ends):
                later = starts[starts > ends[0]]
                if len(later):  # learn the text between two events
                    s = int(later[0])
                    between = data[int(ends[ends < s][-1]) + 1 : s]
                    if between.translate(None, _BLANKS) == b",":
                        separator = b"}" + between + b"{"
            # the text outside the events taken below: before this block's first event (or the
            # "]"), and after its last one
            edge = int(sp[lim]) if len(close) else len(data)
            if ev_start < 0:  # (not inside an event carried over)
                head_end = int(starts[0]) if len(starts) else edge
                gap += data[(cut if first_event else 0) : head_end].translate(None, _BLANKS)
                del gap[2:]  # (two characters are already stray: the gap stays short)
                if len(starts):
                    result.stray |= _stray(gap, gap_commas)
                    gap.clear()
            if len(ends):
                tail_end = int(starts[-1]) if len(starts) and starts[-1] > ends[-1] else edge
                gap[:] = data[int(ends[-1]) + 1 : tail_end].translate(None, _BLANKS)[:2]  # (two: already stray)
                gap_commas = 1
                if tail_end != edge:  # (an event starts after it: the gap is whole)
                    result.stray |= _stray(gap, gap_commas)
                    gap.clear()
            if len(close):
                result.stray |= _stray(gap, 0)  # (no comma before the "]")
                gap.clear()
            if len(ends):
                begin = ev_start if ev_start >= 0 else int(starts[0])
                result.events_seen += len(ends)
                yield b"[" + data[begin : int(ends[-1]) + 1] + b"]", None
            pending = (ev_start >= 0) + len(starts) - len(ends)
            ev_start = (int(starts[-1]) if len(starts) else ev_start) if pending > 0 else -1
            if len(close):
                phase = "tail"
                cut = int(sp[lim]) + 1  # the "]" was already written with the emptied array
                ev_start = -1
        if phase == "events":
            carry = data[ev_start:] if ev_start >= 0 else b""
        else:
            header += data[cut:]
            carry = b""
        if phase == "header":  # the text before a `[`, blanks dropped, to spot `"traceEvents":` across blocks
            key_window = _text_before(data, len(data), key_window)[-64:]
        if len(depth_after):
            depth = int(depth_after[-1])
        in_string = bool(int(qmask.sum()) % 2) ^ in_string
        odd_backslashes = (len(data) - len(data.rstrip(b"\\"))) % 2 == 1
        if phase == "tail":
            # the rest of the document is the header's tail: no more scanning needed
            rest = stream.read()
            header += rest
            offset += len(rest)
            break
    if phase != "tail" and (carry or phase == "events"):
        result.truncated = True
        result.truncated_at = offset - len(carry)


def _stray(gap: bytes | bytearray, commas: int) -> bool:
    """Whether the text between events (blanks dropped) is anything but `commas` commas."""
    return gap != b"," * commas


def _text_before(data: bytes, end: int, earlier: bytes, want: int = 64) -> bytes:
    """At least `want` bytes of text before ``data[end]``, blanks removed, continuing into
    `earlier` (the same from previous blocks) when `data` has too few; cost grows with the
    blanks, not with `end`."""
    size = 2 * want
    while True:
        start = max(0, end - size)
        text = data[start:end].translate(None, _BLANKS)
        if start == 0:
            return earlier + text
        if len(text) >= want:
            return text
        size *= 4


def split_events(chunk: bytes) -> tuple[list[bytes], int]:
    """The events of a ``[` + events + `]`` block from `iter_event_chunks`, one bytes each (the
    slow path, for blocks that do not decode as a whole: damaged or non-standard events); and
    how many of the gaps around them hold other text than their comma (dropped)."""
    from traceconv.readers.json_salvage import structural

    spos, chars = structural(chunk)
    after = np.cumsum(_OPEN[chars].astype(np.int64))
    before = after - _OPEN[chars]
    starts = spos[(before == 1) & (after == 2)].tolist()
    ends = spos[(before == 2) & (after == 1)].tolist()
    events = [chunk[a : b + 1] for a, b in zip(starts, ends)]
    n = len(events)
    lo = [1] + [b + 1 for b in ends[:n]]  # gap k: after event k - 1 (or the "["), before event k (or the "]")
    hi = starts[:n] + [len(chunk) - 1]
    stray = sum(_stray(chunk[a:b].translate(None, _BLANKS), 1 if 0 < k < n else 0) for k, (a, b) in enumerate(zip(lo, hi)))
    return events, stray
