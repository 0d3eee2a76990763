"""Protobuf wire encoding, vectorised over many messages at once.

Perfetto traces are a stream of small `TracePacket` messages. Encoding them one by one through
the protobuf runtime costs ~3 µs each; here whole columns of packets are built with numpy: every
field of every row is a *piece* (a byte range, possibly empty) and `concat` lays the pieces of
each row side by side. `encode_message` is a tiny scalar encoder for the few messages that are
not worth vectorising (descriptors, interned strings).

Where the optional C module `traceconv._wire` is built, `varint` and `concat` (and so
`pack_dense`, `append_tails`) run there: the same bytes, without numpy's temporaries.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

try:
    from traceconv import _wire
except ImportError:  # (built without a C compiler)
    _wire = None
if os.environ.get("TRACECONV_NO_C"):
    _wire = None

_SHIFTS = np.arange(10, dtype=np.uint64) * np.uint64(7)
_THRESHOLDS = np.array([1 << (7 * k) for k in range(1, 10)], dtype=np.uint64)


@dataclass(frozen=True)
class Pieces:
    """One byte range per row: row i is ``data[start[i] : start[i] + length[i]]``.

    ``width`` is set for fixed-width pieces whose row i starts at ``i * width`` (a dense
    matrix), or at 0 for a constant (``const``); ragged pieces have ``width = None``.
    """

    data: np.ndarray  # uint8
    start: np.ndarray  # int64
    length: np.ndarray  # int64
    width: int | None = None
    const: bool = False

    @staticmethod
    def constant(value: bytes, n: int, mask: np.ndarray | None = None) -> Pieces:
        length = np.full(n, len(value), dtype=np.int64)
        if mask is not None:
            length[~mask] = 0
        return Pieces(np.frombuffer(value, dtype=np.uint8), np.zeros(n, dtype=np.int64), length, len(value), True)

    @staticmethod
    def ragged(data: np.ndarray, offsets: np.ndarray) -> Pieces:
        """Row i is ``data[offsets[i]:offsets[i+1]]`` (Arrow's binary layout)."""
        offsets = offsets.astype(np.int64, copy=False)
        return Pieces(data, offsets[:-1], np.diff(offsets))

    @staticmethod
    def dense(matrix: np.ndarray, length: np.ndarray) -> Pieces:
        n, w = matrix.shape
        return Pieces(np.ascontiguousarray(matrix).ravel(), np.arange(n, dtype=np.int64) * w, length, w)

    def masked(self, mask: np.ndarray) -> Pieces:
        return Pieces(self.data, self.start, np.where(mask, self.length, 0), self.width, self.const)

    def slot(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows lo..hi of a fixed-width piece as a (m, w) byte matrix, and the length per row."""
        length = self.length[lo:hi]
        m = hi - lo
        if self.const:
            return np.broadcast_to(self.data[None, :], (m, self.width)), length
        n = self.start.shape[0]
        return self.data.reshape(n, self.width)[lo:hi], length


def ragged_bytes(blobs: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Byte strings as one ragged column: (data, offsets), row i ``data[offsets[i]:offsets[i+1]]``."""
    offsets = np.zeros(len(blobs) + 1, np.int64)
    np.cumsum(np.fromiter(map(len, blobs), np.int64, len(blobs)), out=offsets[1:])
    return np.frombuffer(b"".join(blobs), np.uint8), offsets


def varint(values: np.ndarray, mask: np.ndarray | None = None) -> Pieces:
    """Varints of unsigned 64-bit values (negative int64 are encoded as two's complement)."""
    v = np.ascontiguousarray(values).astype(np.uint64, copy=False)
    if _wire is not None:
        mat, length, w = _wire.varint(v, None if mask is None else np.ascontiguousarray(mask, bool))
        return Pieces.dense(np.frombuffer(mat, np.uint8).reshape(-1, w), np.frombuffer(length, np.int64))
    length = np.ones(v.shape[0], dtype=np.int64)
    for t in _THRESHOLDS:
        hit = v >= t
        if not hit.any():
            break
        length += hit
    w = int(length.max()) if v.shape[0] else 1
    if w == 1:  # (all below 128: the bytes are the values)
        return Pieces.dense(v.astype(np.uint8).reshape(-1, 1), length if mask is None else np.where(mask, length, 0))
    mat = ((v[:, None] >> _SHIFTS[None, :w]) & np.uint64(0x7F)).astype(np.uint8)
    if w > 1:
        mat |= (np.arange(w)[None, :] < (length[:, None] - 1)).astype(np.uint8) << 7
    if mask is not None:
        length = np.where(mask, length, 0)
    return Pieces.dense(mat, length)


def fixed64(values: np.ndarray, mask: np.ndarray | None = None) -> Pieces:
    v = np.ascontiguousarray(values).astype("<u8", copy=False)
    n = v.shape[0]
    length = np.full(n, 8, dtype=np.int64) if mask is None else np.where(mask, 8, 0).astype(np.int64)
    return Pieces(v.view(np.uint8), np.arange(n, dtype=np.int64) * 8, length, 8)


def tag(field: int, wire_type: int) -> bytes:
    return encode_varint((field << 3) | wire_type)


BATCH_BYTES = 1 << 23  # bytes handled per vectorised step (bounds temporary memory)


def concat(pieces: list[Pieces]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate the pieces of each row, row after row.

    Returns ``(data, offsets)``: row i is ``data[offsets[i]:offsets[i+1]]``. Runs of
    fixed-width pieces are packed as byte matrices compacted by a mask; the resulting runs and
    the ragged pieces are then copied into place with computed byte indices, in batches.
    """
    if _wire is not None:
        return native_join(pieces)
    lead = next((k for k, p in enumerate(pieces) if p.width is None), len(pieces))
    if 0 < lead < len(pieces) and all(p.width is None for p in pieces[lead:]):  # (ragged pieces last)
        return append_tails(pack_dense(pieces[:lead]), pieces[lead:])
    runs: list[Pieces] = []
    dense: list[Pieces] = []
    for p in pieces:
        if p.width is not None:
            dense.append(p)
            continue
        if dense:
            runs.append(Pieces.ragged(*pack_dense(dense)))
            dense = []
        runs.append(p)
    if dense:
        packed = pack_dense(dense)
        if not runs:
            return packed
        runs.append(Pieces.ragged(*packed))
    if len(runs) == 1 and np.array_equal(runs[0].start[1:], runs[0].start[:-1] + runs[0].length[:-1]):
        r = runs[0]
        begin = int(r.start[0]) if len(r.start) else 0
        data = r.data[begin : begin + int(r.length.sum())]
        offsets = np.zeros(len(r.length) + 1, np.int64)
        np.cumsum(r.length, out=offsets[1:])
        return data, offsets
    return _interleave(runs)


def native_join(pieces: list[Pieces]) -> tuple[np.ndarray, np.ndarray]:
    """`concat` in C (`_wire.join`): a copy per piece and row."""
    data, offsets = _wire.join([(np.ascontiguousarray(p.data, np.uint8), np.ascontiguousarray(p.start, np.int64),
                                 np.ascontiguousarray(p.length, np.int64)) for p in pieces])
    return np.frombuffer(data, np.uint8), np.frombuffer(offsets, np.int64)


def pack_dense(pieces: list[Pieces]) -> tuple[np.ndarray, np.ndarray]:
    """Fixed-width pieces side by side per row: each batch of rows is laid out as one byte matrix
    with a mask of the bytes in use, then compacted."""
    if _wire is not None:
        return native_join(pieces)
    n = pieces[0].length.shape[0]
    lengths = np.zeros(n, dtype=np.int64)
    for p in pieces:
        lengths += p.length
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    out = np.empty(int(offsets[-1]), dtype=np.uint8)
    width = sum(p.width for p in pieces)  # type: ignore[misc]
    step = max(1, BATCH_BYTES // max(width, 1))
    widest = max(p.width for p in pieces)  # type: ignore[type-var]
    small = np.int16 if widest < (1 << 15) else np.int64  # (the mask's comparison in the narrow type: ~2x faster)
    cols = np.arange(widest, dtype=small)
    full = [bool(len(p.length)) and int(p.length.min()) == p.width for p in pieces]  # (every row uses all its bytes)
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        mat = np.empty((hi - lo, width), np.uint8)
        used = np.empty((hi - lo, width), bool)
        c = 0
        for p, whole in zip(pieces, full):
            piece, length = p.slot(lo, hi)
            w = piece.shape[1]
            mat[:, c : c + w] = piece
            if whole:
                used[:, c : c + w] = True
            else:
                np.less(cols[None, :w], length.astype(small)[:, None], out=used[:, c : c + w])
            c += w
        out[offsets[lo] : offsets[hi]] = mat[used]
    return out, offsets


def _interleave(pieces: list[Pieces]) -> tuple[np.ndarray, np.ndarray]:
    """Ragged pieces side by side per row, as one gather from their joined buffers."""
    bases = np.cumsum([0] + [p.data.shape[0] for p in pieces[:-1]])
    buf = np.concatenate([p.data for p in pieces])
    seg_len = np.stack([p.length for p in pieces], axis=1)
    seg_src = np.stack([p.start + b for p, b in zip(pieces, bases)], axis=1)
    return gather_segments(buf, seg_src, seg_len)


def gather_segments(buf: np.ndarray, seg_src: np.ndarray, seg_len: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row i is ``buf[seg_src[i, 0]:+seg_len[i, 0]] + buf[seg_src[i, 1]:+seg_len[i, 1]] + …``.

    The output is a sequence of segments, so each output byte's source is ``its position +
    (segment source − segment destination)``: one repeat, one add, one gather, in batches.
    """
    n = seg_len.shape[0]
    row_len = seg_len.sum(axis=1)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(row_len, out=offsets[1:])
    out = np.empty(int(offsets[-1]), dtype=np.uint8)
    itype = np.int32 if buf.shape[0] < (1 << 31) - 1 and out.shape[0] < (1 << 31) - 1 else np.int64
    step = max(1, BATCH_BYTES // max(int(row_len.mean()) if n else 1, 1))
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        lens = seg_len[lo:hi].ravel()
        srcs = seg_src[lo:hi].ravel()
        keep = lens > 0
        lens, srcs = lens[keep], srcs[keep]
        dsts = np.cumsum(lens) - lens
        idx = np.repeat((srcs - dsts).astype(itype), lens)
        idx += np.arange(int(offsets[hi] - offsets[lo]), dtype=itype)
        out[offsets[lo] : offsets[hi]] = buf[idx]
    return out, offsets


def append_tails(head: tuple[np.ndarray, np.ndarray], tails: list[Pieces]) -> tuple[np.ndarray, np.ndarray]:
    """Row i of `head` (data, offsets), then row i of each tail, row after row: ``(data,
    offsets)`` like `concat`'s.

    Only the tails' bytes are moved one by one (a computed destination each); the head's fill
    the remaining places in order, through a mask.
    """
    if _wire is not None:
        return native_join([Pieces.ragged(*head), *tails])
    data, offsets = head
    head_len = np.diff(offsets)
    row_len = head_len + sum((t.length for t in tails), np.zeros(len(head_len), np.int64))
    out_offsets = np.zeros(len(row_len) + 1, np.int64)
    ends = out_offsets[1:]
    np.cumsum(row_len, out=ends)
    total = int(ends[-1]) if len(ends) else 0
    if total == len(data):
        return data, out_offsets
    out = np.empty(total, np.uint8)
    is_tail = np.zeros(total, bool)
    itype = np.int32 if total < (1 << 31) - 1 and max(t.data.shape[0] for t in tails) < (1 << 31) - 1 else np.int64
    at = ends - row_len + head_len  # where each row's next tail goes
    for t in tails:
        keep = t.length > 0
        lens = t.length[keep]
        n = int(lens.sum())
        if n:
            before = np.cumsum(lens) - lens  # (bytes of this tail in earlier rows)
            step = np.arange(n, dtype=itype)
            dst = np.repeat((at[keep] - before).astype(itype), lens)
            dst += step
            src = t.start[keep]
            if np.array_equal(src[1:], src[:-1] + lens[:-1]):  # (already row after row)
                out[dst] = t.data[src[0] : src[0] + n]
            else:
                idx = np.repeat((src - before).astype(itype), lens)
                idx += step
                out[dst] = t.data[idx]
            is_tail[dst] = True
        at += t.length
    out[~is_tail] = data
    return out, out_offsets


# ---- scalar encoder for the few non-vectorised messages ---------------------------------


def encode_varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


Field = tuple[int, object]


def encode_message(fields: list[Field]) -> bytes:
    """Encode ``[(field_number, value), ...]``.

    int → varint, bool → varint, bytes/str → LEN, list of fields → nested message,
    ``("fixed64", int)`` → fixed64. ``None`` values are skipped.
    """
    out = bytearray()
    for number, value in fields:
        if value is None:
            continue
        if isinstance(value, bool) or isinstance(value, int):
            out += encode_varint((number << 3) | 0)
            out += encode_varint(int(value))
        elif isinstance(value, str):
            raw = value.encode("utf-8", "replace")
            out += encode_varint((number << 3) | 2) + encode_varint(len(raw)) + raw
        elif isinstance(value, (bytes, bytearray)):
            out += encode_varint((number << 3) | 2) + encode_varint(len(value)) + bytes(value)
        elif isinstance(value, tuple) and value[0] == "fixed64":
            out += encode_varint((number << 3) | 1) + int(value[1]).to_bytes(8, "little", signed=False)
        elif isinstance(value, tuple) and value[0] == "double":
            out += encode_varint((number << 3) | 1) + np.float64(value[1]).tobytes()
        elif isinstance(value, list):
            body = encode_message(value)
            out += encode_varint((number << 3) | 2) + encode_varint(len(body)) + body
        else:  # pragma: no cover - programming error
            raise TypeError(f"cannot encode field {number}: {value!r}")
    return bytes(out)


def frame_packet(packet: bytes) -> bytes:
    """A `Trace.packet` record: field 1, LEN."""
    return b"\x0a" + encode_varint(len(packet)) + packet
