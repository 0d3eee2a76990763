"""Fuzz the Nsight Systems SQLite-export reader and both writers.

Two kinds of input, chosen by the first byte:

* raw bytes written to a file and opened as SQLite (damaged exports, other files);
* a well-formed SQLite database built from the bytes: the tables nsys exports (StringIds,
  NVTX_EVENTS, CUPTI_ACTIVITY_KIND_KERNEL/RUNTIME/MEMCPY/MEMSET, ThreadNames, PROCESSES,
  TARGET_INFO_*), each with rows of fuzzed values — NULLs, int64 extremes, strings where ints
  belong, floats, blobs — which reaches the reader's logic instead of SQLite's page checks.

Usage: see fuzz/README.md."""

import os
import sqlite3
import tempfile

from _common import KnownBugs, TraceconvError, atheris, main, write_both

with atheris.instrument_imports(include=["traceconv"]):
    from traceconv.readers.nsys import read_nsys

# no open crashes (the wrong-type/size cells found earlier were fixed in nsys.py); a new one stops the run
KNOWN = KnownBugs("nsys.py", set())
_TMP = os.path.join(tempfile.gettempdir(), f"fuzz_nsys_{os.getpid()}.sqlite")

TABLES = {
    "StringIds": ["id", "value"],
    "ThreadNames": ["nameId", "priority", "globalTid"],
    "PROCESSES": ["globalPid", "pid", "name"],
    "NVTX_EVENTS": ["start", "end", "eventType", "rangeId", "category", "color", "text", "globalTid", "endGlobalTid",
                    "textId", "domainId", "jsonText"],
    "CUPTI_ACTIVITY_KIND_RUNTIME": ["start", "end", "eventClass", "globalTid", "correlationId", "nameId", "returnValue"],
    "CUPTI_ACTIVITY_KIND_KERNEL": ["start", "end", "deviceId", "contextId", "streamId", "correlationId", "globalPid",
                                   "demangledName", "shortName", "gridX", "gridY", "gridZ", "blockX", "blockY", "blockZ"],
    "CUPTI_ACTIVITY_KIND_MEMCPY": ["start", "end", "deviceId", "streamId", "correlationId", "globalPid", "bytes", "copyKind"],
    "CUPTI_ACTIVITY_KIND_MEMSET": ["start", "end", "deviceId", "streamId", "correlationId", "globalPid", "bytes", "value"],
    "TARGET_INFO_SESSION_START_TIME": ["utcEpochNs", "utcTime", "localTime", "systemClockNs"],
    "TARGET_INFO_GPU": ["id", "name", "busLocation"],
    "ENUM_NSYS_EVENT_TYPE": ["id", "name", "label"],
    "META_DATA_EXPORT": ["name", "value"],
}
EXTREMES = [0, 1, -1, 59, 60, 70, 75, 2**31 - 1, 2**63 - 1, -(2**63), 281474976710656001, 1 << 40]


def _value(fdp: "atheris.FuzzedDataProvider"):
    kind = fdp.ConsumeIntInRange(0, 6)
    if kind == 0:
        return None
    if kind == 1:
        return EXTREMES[fdp.ConsumeIntInRange(0, len(EXTREMES) - 1)]
    if kind == 2:
        return fdp.ConsumeIntInRange(-(2**63), 2**63 - 1)
    if kind == 3:
        return fdp.ConsumeIntInRange(0, 5000)
    if kind == 4:
        return fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 24))
    if kind == 5:
        return fdp.ConsumeRegularFloat()
    return fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 8))


def _build_db(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    con = sqlite3.connect(_TMP)
    try:
        for table, columns in TABLES.items():
            if not fdp.ConsumeBool():
                continue
            cols = [c for c in columns if fdp.ConsumeIntInRange(0, 7)]  # sometimes a column is missing
            if not cols:
                continue
            con.execute(f"CREATE TABLE {table} ({', '.join(cols)})")
            rows = [tuple(_value(fdp) for _ in cols) for _ in range(fdp.ConsumeIntInRange(0, 12))]
            con.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(cols))})", rows)
        con.commit()
    finally:
        con.close()


def test_one_input(data: bytes) -> None:
    if os.path.exists(_TMP):
        os.unlink(_TMP)
    if data[:1] and data[0] & 1:
        _build_db(data[1:])
    else:
        with open(_TMP, "wb") as f:
            f.write(data)
    try:
        trace = read_nsys(_TMP)
    except TraceconvError:
        return
    except Exception as e:
        if KNOWN.tolerate(e):
            return
        raise
    write_both(trace)


if __name__ == "__main__":
    main(test_one_input)
