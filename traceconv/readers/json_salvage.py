"""Salvage the complete part of a damaged JSON document (the slow path for damaged input only).

A writer killed mid-write leaves a document cut anywhere: inside a string, a number, between
two keys. `close_truncated` cuts it back to just after the last *complete* element of an array
held under a given key (``"spans"`` for OTLP) and closes every container still open, which
gives valid JSON holding every element that was whole. Strings are honoured (brackets inside
them do not count, escaped quotes are skipped), found with numpy; Python walks only the
brackets.
"""

from __future__ import annotations

import re

import msgspec
import numpy as np

# what damaged or non-standard JSON can raise while being decoded with msgspec
JSON_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError)


def is_utf8(data: bytes) -> bool:
    """Whether `data` is valid UTF-8 (msgspec does not check what it keeps as `Raw`)."""
    if data.isascii():
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True

_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_INTERESTING = np.zeros(256, bool)
_INTERESTING[[ord("{"), ord("["), ord("}"), ord("]"), _QUOTE]] = True
_CLOSE = {ord("{"): b"}", ord("["): b"]"}


def structural(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Positions and bytes of the brackets outside strings."""
    arr = np.frombuffer(data, dtype=np.uint8)
    pos = np.flatnonzero(_INTERESTING[arr])
    chars = arr[pos].copy()
    qmask = chars == _QUOTE
    for k in np.flatnonzero(qmask & (arr[np.maximum(pos - 1, 0)] == _BACKSLASH) & (pos > 0)).tolist():
        p = int(pos[k]) - 1
        run = 0
        while p >= 0 and arr[p] == _BACKSLASH:
            run += 1
            p -= 1
        if run % 2:
            qmask[k] = False
            chars[k] = 0
    real = chars != 0
    pos, chars, qmask = pos[real], chars[real], qmask[real]
    inside = (np.cumsum(qmask) - qmask) % 2 == 1
    keep = ~qmask & ~inside
    return pos[keep], chars[keep]


MAX_DEPTH = 2000  # deeper than any trace format nests: not worth salvaging


def close_truncated(data: bytes, key: bytes, before: int | None = None) -> bytes | None:
    """`data` cut after the last complete element of an array under `key` (ending before byte
    `before`, if given) with its open containers closed; None if there is no such element.

    Vectorised: with the nesting depth after each bracket, an element ends at a ``}`` whose
    container (the last opener at the level it returns to) is a ``[`` right after ``"key":``."""
    pos, chars = structural(data)
    if not len(pos):
        return None
    delta = np.where((chars == 0x7B) | (chars == 0x5B), 1, -1)
    after = np.cumsum(delta)
    if after.max() > MAX_DEPTH or after.min() < 0:
        return None
    n = len(pos)
    idx = np.arange(n, dtype=np.int64)
    # openers sorted by (level inside them, position): "the last opener at level m before j"
    o_idx = idx[delta > 0]
    o_key = after[delta > 0].astype(np.int64) * n + o_idx
    order = np.argsort(o_key, kind="stable")
    o_key, o_idx = o_key[order], o_idx[order]

    def last_opener(level: np.ndarray, j: np.ndarray) -> np.ndarray:
        k = np.searchsorted(o_key, level.astype(np.int64) * n + j, side="right") - 1
        found = (k >= 0) & (o_key[np.maximum(k, 0)] // n == level)
        return np.where(found, o_idx[np.maximum(k, 0)], -1)

    starts = [m.end() - 1 for m in re.finditer(rb'"' + re.escape(key) + rb'"\s*:\s*\[', data)]
    if not starts:
        return None
    keyed = np.zeros(n, bool)  # the "[" of an array under `key`
    at = np.searchsorted(pos, starts)
    at = at[(at < n)]
    keyed[at[pos[at] == np.asarray(starts)[: len(at)]]] = True
    ends = idx[(chars == 0x7D) & (after >= 1)]  # a "}" that closes an object inside a container
    parent = last_opener(after[ends], ends)
    ends = ends[(parent >= 0) & keyed[np.maximum(parent, 0)]]
    if before is not None:
        ends = ends[pos[ends] < before]
    if not len(ends):
        return None
    j = int(ends[-1])
    levels = np.arange(1, int(after[j]) + 1)
    stack = last_opener(levels, np.full(len(levels), j, np.int64))
    if (stack < 0).any():
        return None
    return data[: int(pos[j]) + 1] + b"".join(_CLOSE[int(chars[o])] for o in stack[::-1].tolist())


_BYTE = re.compile(r"\(byte (\d+)\)")


def error_offset(message: str) -> int | None:
    """The byte offset in a msgspec DecodeError message (``... (byte 123)``)."""
    m = _BYTE.search(message)
    return int(m.group(1)) if m else None
