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

import numpy as np

_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_INTERESTING = np.zeros(256, bool)
_INTERESTING[[ord("{"), ord("["), ord("}"), ord("]"), _QUOTE]] = True
_KEY_BEFORE = re.compile(rb'"((?:[^"\\]|\\.){0,200})"\s*:\s*$')
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


def cut_points(data: bytes, key: bytes) -> list[tuple[int, bytes]]:
    """Every place a complete element of an array under `key` ends, with the closing text that
    makes the prefix valid JSON: ``[(end offset, closers), ...]`` in document order."""
    pos, chars = structural(data)
    stack: list[tuple[int, bool]] = []  # (opening byte, is this an array under `key`)
    out: list[tuple[int, bytes]] = []
    for p, c in zip(pos.tolist(), chars.tolist()):
        if c == 0x7B:  # {
            stack.append((c, False))
        elif c == 0x5B:  # [
            m = _KEY_BEFORE.search(data, max(0, p - 256), p)
            stack.append((c, bool(m) and m.group(1) == key))
        else:
            if not stack or (c == 0x7D) != (stack[-1][0] == 0x7B):
                return out  # brackets do not match: not JSON from here on
            stack.pop()
            if c == 0x7D and stack and stack[-1][1]:
                out.append((p + 1, b"".join(_CLOSE[o] for o, _ in reversed(stack))))
    return out


def close_truncated(data: bytes, key: bytes, before: int | None = None) -> bytes | None:
    """`data` cut after the last complete element of an array under `key` (ending before byte
    `before`, if given) with its open containers closed; None if there is no such element."""
    points = cut_points(data, key)
    if before is not None:
        points = [pt for pt in points if pt[0] <= before]
    if not points:
        return None
    end, closers = points[-1]
    return data[:end] + closers


_BYTE = re.compile(r"\(byte (\d+)\)")


def error_offset(message: str) -> int | None:
    """The byte offset in a msgspec DecodeError message (``... (byte 123)``)."""
    m = _BYTE.search(message)
    return int(m.group(1)) if m else None
