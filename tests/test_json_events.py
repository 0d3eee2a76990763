"""The streaming array scanner (`json_events.iter_event_chunks`): whatever the block size, it
yields every object of a clean array, and it notices text between objects that is not one
comma (which it drops instead of decoding: the OTel reader then reads the array whole)."""

from __future__ import annotations

import io
import json
import random

import msgspec
import pytest

from traceconv.readers.json_events import ScanResult, iter_event_chunks

_typed = msgspec.json.Decoder(list[dict]).decode


def _scan(data: bytes, block: int, fast: bool) -> tuple[list | None, bool]:
    """(objects, whether anything was wrong) — an array that does not decode counts as noticed."""
    scan = ScanResult()

    def decode(b: bytes):
        try:
            return _typed(b)
        except msgspec.DecodeError:
            return None

    out: list = []
    try:
        for chunk, objs in iter_event_chunks(io.BytesIO(data), scan, block=block, decode=decode if fast else None):
            out += objs if objs is not None else _typed(chunk)
    except msgspec.DecodeError:
        return None, True
    return out, scan.stray or scan.truncated


@pytest.mark.parametrize("block", [1, 2, 3, 5, 8, 64, 1 << 20])
@pytest.mark.parametrize("fast", [False, True])
def test_clean_arrays_and_stray_text(block, fast):
    for data in (b"[]", b" [ ] ", b'[{"a":1}]', b'[\n  {"a":1},\n  {"b":[2,"]"]}\n]\n', b'[{"a":"x,5"} ,{"b":"}{"}]'):
        assert _scan(data, block, fast) == (json.loads(data), False), data
    for data in (b'[5, {"a":1}]', b'[{"a":1}, 5]', b'[{"a":1}, null]', b'[{"a":1},,{"b":2}]', b'[{"a":1},]', b'[,{"a":1}]',
                 b'[{"a":1} , 7 , {"b":2}]', b'[{"a":1}{"b":2}]'):
        assert _scan(data, block, fast)[1], data


def test_random_arrays_with_junk_between_objects():
    rng = random.Random(7)
    for trial in range(150):
        n = rng.randint(1, 30)
        objs = [{"k": i, "s": 'a,b}{\\"' * rng.randint(0, 3)} for i in range(n)]
        junk_at = rng.randint(0, n) if trial % 2 else None
        parts = ["["]
        for i, o in enumerate(objs):
            if junk_at == i:
                parts.append(rng.choice(["5,", "null ,", "[1],", ",", "x"]))
            parts.append(json.dumps(o))
            if i < n - 1:
                parts.append(rng.choice([",", ", ", ",\n  ", " ,\n"]))
        if junk_at == n:
            parts.append(rng.choice([",5", ",", " null"]))
        data = ("".join(parts) + "]").encode()
        for block in (1, 7, 64, 1 << 20):
            for fast in (False, True):
                got, noticed = _scan(data, block, fast)
                if junk_at is None:
                    assert (got, noticed) == (objs, False), (data, block, fast)
                else:
                    assert noticed, (data, block, fast)


@pytest.mark.parametrize("chunk, n, stray", [
    (b'[ {"a": 1} ,\n {"b": "},{"} ]', 2, 0),
    (b'[{"a": 1}, xx {"b": 2} {"c": 3}]', 3, 2),
    (b'[,{"a": 1},]', 1, 2),
    (b'[{"a": 1},, {"b": [1, {"c": 2}]}]', 2, 1),
    (b"[]", 0, 0),
    (b"[ 5 ]", 0, 1),
])
def test_split_events_counts_the_gaps_with_other_text(chunk, n, stray):
    from traceconv.readers.json_events import split_events

    events, got = split_events(chunk)
    assert (len(events), got) == (n, stray)
