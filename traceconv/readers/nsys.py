"""Nsight Systems SQLite exports (``nsys export --type sqlite report.nsys-rep``) → `Trace`.

Read with the standard library's ``sqlite3``, read-only. The export's tables are created
lazily and their columns change between nsys versions, so every table and column is looked up
first; what is absent is listed in ``metadata["nsys"]`` and, where it limits the result, said
in ``warnings``.

Tables read:

* ``StringIds`` (names by id), ``ThreadNames``, ``PROCESSES`` (2021+);
* ``NVTX_EVENTS``: push/pop and start/end ranges (also the NVTXT variants), marks, domains
  (``NvtxDomainCreate`` rows, or the old ``DomainStrings`` table) and categories; the text is
  ``StringIds[textId]`` when registered, else the inline ``text`` (as nsys' own reports do);
* ``CUPTI_ACTIVITY_KIND_RUNTIME`` (and ``…_DRIVER`` where it is a table of its own): CUDA API
  calls (``eventClass`` 1 = driver API);
* ``CUPTI_ACTIVITY_KIND_KERNEL`` / ``…_MEMCPY`` / ``…_MEMSET``, and ``…_GRAPH_TRACE`` (whole
  CUDA-graph executions under ``--cuda-graph-trace=graph``);
* ``TARGET_INFO_GPU`` / ``TARGET_INFO_CUDA_GPU`` (GPU names), ``TARGET_INFO_SESSION_START_TIME``,
  ``ANALYSIS_DETAILS``, ``META_DATA_EXPORT`` (clock and versions); ``ENUM_NSYS_EVENT_TYPE`` when
  present resolves the NVTX event type ids by name.

The result has the shape `read_kineto` gives, so the analyzers work unchanged: one process per
OS process that has NVTX, CUDA API or GPU activity, named with its ranks when its thread names,
process name or NVTX carry them (``TP0 [145] python3``), holding its CPU threads (NVTX ranges
nest by time; CUDA API calls, category ``cuda_runtime`` / ``cuda_driver``) and its GPU streams
(``GPU 0 stream 7``: categories ``kernel``, ``gpu_memcpy``, ``gpu_memset``, ``cuda_graph``).
``globalTid`` is decoded as documented: pid = (globalTid >> 24) & 0xFFFFFF, tid = globalTid &
0xFFFFFF (the upper bits name the host/VM, so processes are keyed by globalTid & ~0xFFFFFF).
Every GPU op keeps its ``correlationId`` in the ``correlation`` column and gets a flow from the
API call with that id in the same process (one per kernel: a graph launch fans out).

NVTX ranges have category ``nvtx``, name = text, the domain as the ``domain`` arg. A start/end
range that ends on another thread is put on a process-level track ``NVTX start/end ranges
(cross-thread)``, as nsys excludes those from kernel attribution. A range never closed runs to
the last NVTX timestamp of the export (nsys' rule), with arg ``unclosed``.

Time: export timestamps are int64 ns on the session's clock. With
``TARGET_INFO_SESSION_START_TIME.utcEpochNs`` they are moved to Unix epoch ns (minus the
session start ``systemClockNs`` / ``ANALYSIS_DETAILS.startTime`` unless the export was
normalised); without it they stay relative and a warning says so. The shift applied is
``metadata["nsys"]["clock_offset_ns"]`` (model ts = export ts + offset).
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from traceconv.errors import MalformedTraceError, UnsupportedFormatError
from traceconv.model.merge import take_slices
from traceconv.model.ranks import Ranks
from traceconv.model.trace import INSTANT, ArgKind, Trace, TraceBuilder, TrackKind
from traceconv.readers.source import SQLITE_MAGIC


RUNTIME = "CUPTI_ACTIVITY_KIND_RUNTIME"
DRIVER = "CUPTI_ACTIVITY_KIND_DRIVER"
KERNEL = "CUPTI_ACTIVITY_KIND_KERNEL"
MEMCPY = "CUPTI_ACTIVITY_KIND_MEMCPY"
MEMSET = "CUPTI_ACTIVITY_KIND_MEMSET"
GRAPH_TRACE = "CUPTI_ACTIVITY_KIND_GRAPH_TRACE"
NVTX = "NVTX_EVENTS"
NSYS_TABLES = ("StringIds", NVTX, RUNTIME, DRIVER, KERNEL, MEMCPY, MEMSET, GRAPH_TRACE, "ThreadNames", "TARGET_INFO_SESSION_START_TIME")

# NVTX_EVENTS.eventType (ENUM_NSYS_EVENT_TYPE; looked up by name when the export has the enum)
EVENT_TYPE_DEFAULTS = {
    "NvtxCategory": 33,
    "NvtxMark": 34,
    "NvtxPushPopRange": 59,
    "NvtxStartEndRange": 60,
    "NvtxtCategory": 64,
    "NvtxtMark": 65,
    "NvtxtPushPopRange": 70,
    "NvtxtStartEndRange": 71,
    "NvtxDomainCreate": 75,
}
PUSHPOP = ("NvtxPushPopRange", "NvtxtPushPopRange")
STARTEND = ("NvtxStartEndRange", "NvtxtStartEndRange")
MARKS = ("NvtxMark", "NvtxtMark")
CATEGORIES = ("NvtxCategory", "NvtxtCategory")

# ENUM_CUDA_MEMCPY_OPER labels, for exports without the enum table
MEMCPY_KINDS = {
    0: "Unknown", 1: "Host-to-Device", 2: "Device-to-Host", 3: "Host-to-Array", 4: "Array-to-Host",
    5: "Array-to-Array", 6: "Array-to-Device", 7: "Device-to-Array", 8: "Device-to-Device",
    9: "Host-to-Host", 10: "Peer-to-Peer", 11: "Unified Host-to-Device", 12: "Unified Device-to-Host",
    13: "Unified Device-to-Device",
}

CROSS_THREAD_TRACK = "NVTX start/end ranges (cross-thread)"
_API_VERSION = re.compile(r"_v\d+$")
_RANK = re.compile(r"(?<![A-Za-z0-9])(TP|DP|PP|EP)[-_ =]?(\d+)(?![0-9])")
PID_MASK = ~0xFFFFFF  # globalTid → the globalPid form (host/VM id + pid)


def decode_global_tid(gtid: int) -> tuple[int, int]:
    """(pid, tid) from a serialized GlobalId, as NVIDIA documents it."""
    return (gtid >> 24) & 0xFFFFFF, gtid & 0xFFFFFF


def is_nsys_sqlite(path) -> bool:
    """True for a SQLite file (the caller then checks the tables)."""
    try:
        with open(path, "rb") as f:
            return f.read(16) == SQLITE_MAGIC
    except OSError:
        return False


def read_nsys(src, *, name: str | None = None) -> Trace:
    """Read an Nsight Systems SQLite export (a path; a binary stream is spilled to a temp file)."""
    tmp = None
    if isinstance(src, (str, os.PathLike)):
        path = os.fspath(src)
        name = name or path
    else:
        name = name or getattr(src, "name", "<stream>")
        fd, tmp = tempfile.mkstemp(suffix=".sqlite")
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
        path = tmp
    try:
        if os.path.isdir(path):
            raise MalformedTraceError("is a directory, not a trace file", source=name)
        if not os.path.exists(path):
            raise MalformedTraceError("no such file", source=name)
        if not is_nsys_sqlite(path):
            raise UnsupportedFormatError("not a SQLite file (export the report with `nsys export --type sqlite`)", source=name)
        try:
            con = sqlite3.connect(Path(path).resolve().as_uri() + "?mode=ro&immutable=1", uri=True)
        except sqlite3.Error as e:
            raise MalformedTraceError(f"cannot open the nsys export as SQLite ({e})", source=name) from None
        con.text_factory = _text  # a damaged export may hold invalid UTF-8
        try:
            _REPAIRED[0] = 0
            trace = _Reader(con, str(name)).read()
            if _REPAIRED[0]:
                trace.stats["nsys_non_numeric_values"] += _REPAIRED[0]
                trace.warnings.append(f"{name}: {_REPAIRED[0]} numeric cells held NULL, text or out-of-range values; read as -1")
            return trace
        except sqlite3.DatabaseError as e:
            raise MalformedTraceError(f"damaged SQLite file, cannot read it as an nsys export ({e})", source=name) from None
        finally:
            con.close()
    finally:
        if tmp:
            os.unlink(tmp)


@dataclass
class _Proc:
    key: int  # globalTid & ~0xFFFFFF
    pid: int
    threads: set = field(default_factory=set)  # globalTids
    streams: set = field(default_factory=set)  # (device, stream)
    cross_thread: bool = False


_REPAIRED = [0]  # numeric cells that held NULL or text (damaged/odd exports), reset per read


_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1


def _text(raw: bytes) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        _REPAIRED[0] += 1
        return raw.decode("utf-8", "replace")


def _int_or_none(v):
    """An integer cell, or None (counted) when it holds NULL, text or bytes."""
    try:
        iv = int(v)
    except (TypeError, ValueError, OverflowError):
        _REPAIRED[0] += v is not None
        return None
    if not _I64_MIN <= iv <= _I64_MAX:
        _REPAIRED[0] += 1
        return None
    return iv


def _np(values, dtype=np.int64) -> np.ndarray:
    if not len(values):
        return np.zeros(0, dtype)
    try:
        return np.array(values, dtype=dtype)
    except (TypeError, ValueError, OverflowError):
        out = []
        for v in values:
            iv = _int_or_none(v)
            if iv is None:
                _REPAIRED[0] += v is None  # (_int_or_none counted the others)
                iv = -1
            out.append(iv)
        return np.array(out, dtype=dtype)


class _Reader:
    def __init__(self, con: sqlite3.Connection, name: str) -> None:
        self.con = con
        self.name = name
        self.b = TraceBuilder()
        self.schema: dict[str, list[str]] = {}
        self.strings: dict[int, str] = {}
        self.missing_columns: list[str] = []
        self.damaged: list[np.ndarray] = []  # rows whose start cell was unreadable
        self.procs: dict[int, _Proc] = {}
        self.offset = 0
        # per slice, in builder order: the raw keys that become track ids at the end
        self.cpu_rows: list[tuple[np.ndarray, np.ndarray]] = []  # (rows, globalTid)
        self.gpu_rows: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []  # rows, pkey, device, stream
        self.cross_rows: list[tuple[np.ndarray, np.ndarray]] = []  # rows, pkey
        self.counts: Counter = Counter()

    # -- schema ----------------------------------------------------------------------------
    def _load_schema(self) -> None:
        try:
            names = [r[0] for r in self.con.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")]
        except sqlite3.DatabaseError as e:
            raise MalformedTraceError(f"damaged SQLite file, cannot read it as an nsys export ({e})", source=self.name) from None
        for t in names:
            self.schema[t] = [r[1] for r in self.con.execute(f'PRAGMA table_info("{t}")')]
        if not any(t in self.schema for t in NSYS_TABLES):
            raise UnsupportedFormatError(
                "an SQLite file without nsys export tables (StringIds, NVTX_EVENTS, CUPTI_ACTIVITY_KIND_*): not an Nsight Systems export",
                source=self.name,
            )

    def has(self, table: str, column: str | None = None) -> bool:
        cols = self.schema.get(table)
        return cols is not None and (column is None or column in cols)

    def col(self, table: str, column: str, default: str = "NULL") -> str:
        """`column` (NULLs read as `default`) if the table has it, else `default` (and the
        absence is recorded)."""
        if self.has(table, column):
            return f'coalesce("{column}", {default})' if default != "NULL" else f'"{column}"'
        self.missing_columns.append(f"{table}.{column}")
        return default

    def rows(self, sql: str, params=()) -> list[tuple]:
        return self.con.execute(sql, params).fetchall()

    # -- reading ---------------------------------------------------------------------------
    def read(self) -> Trace:
        self._load_schema()
        if self.has("StringIds"):
            self.strings = {k: v if isinstance(v, str) else str(v) for k, v in self.rows("SELECT id, value FROM StringIds") if v is not None}
        meta = self._export_meta()
        clock = self._clock(meta)
        self.event_types = self._event_types()
        self._nvtx()
        self._api()
        self._gpu_ops()
        self._finish()
        absent = [t for t in (NVTX, RUNTIME, KERNEL, MEMCPY, MEMSET, GRAPH_TRACE, "StringIds", "ThreadNames", "PROCESSES",
                              "TARGET_INFO_SESSION_START_TIME") if t not in self.schema]
        self._warn_missing(absent)
        b = self.b
        b.metadata.update(
            format="nsys",
            sources=[{"name": self.name, "clock": clock, "base_time_ns": self.offset, "events": b.num_slices, "nsys_version": meta.get("EXPORT_PRODUCT_VERSION")}],
            nsys={
                "clock_offset_ns": self.offset,
                "clock": clock,
                "version": meta.get("EXPORT_PRODUCT_VERSION"),
                "schema_version": meta.get("EXPORT_SCHEMA_VERSION"),
                "absent_tables": absent,
                "missing_columns": sorted(set(self.missing_columns)),
                "gpus": {str(k): v for k, v in sorted(self.gpu_names.items())},
                "counts": dict(self.counts),
                "tables_not_converted": sorted(t for t in self.schema if t.startswith(("CUPTI_ACTIVITY_KIND_", "OSRT_", "CUDNN", "CUBLAS", "NCCL", "MPI_", "SCHED_", "COMPOSITE_")) and t not in (RUNTIME, DRIVER, KERNEL, MEMCPY, MEMSET, GRAPH_TRACE)),
            },
        )
        trace = b.build()
        if self.damaged:
            keep = np.ones(trace.num_slices, bool)
            keep[np.concatenate(self.damaged)] = False
            trace = take_slices(trace, keep)
            dropped = trace.stats.pop("filtered_out_slices")  # (this reader filters nothing else)
            trace.stats["nsys_unreadable_start_dropped"] += dropped
            trace.warnings.append(f"{self.name}: {dropped} events have no readable start time (NULL, text or out of range); dropped")
        return trace.validate()

    def _export_meta(self) -> dict[str, str]:
        if not self.has("META_DATA_EXPORT"):
            return {}
        return {str(k): str(v) for k, v in self.rows("SELECT name, value FROM META_DATA_EXPORT")}

    def _clock(self, meta: dict[str, str]) -> str:
        utc = start = None
        if self.has("TARGET_INFO_SESSION_START_TIME", "utcEpochNs"):
            row = self.con.execute(
                f"SELECT utcEpochNs, {self.col('TARGET_INFO_SESSION_START_TIME', 'systemClockNs')} FROM TARGET_INFO_SESSION_START_TIME"
            ).fetchone()
            if row:
                utc, start = row
        if start is None and self.has("ANALYSIS_DETAILS", "startTime"):
            row = self.con.execute("SELECT startTime FROM ANALYSIS_DETAILS").fetchone()
            start = row[0] if row else None
        normalised = meta.get("EXPORT_PARAM_TIME_NORMALIZE", "").lower() == "true"
        if utc is None:
            self.b.warnings.append(
                f"{self.name}: no TARGET_INFO_SESSION_START_TIME: timestamps stay on the session's relative clock (ns), not Unix epoch"
            )
            return "relative (session clock, no epoch anchor in the export)"
        utc_i, start_i = _int_or_none(utc), _int_or_none(start)
        if utc_i is None:
            return "relative (session clock; the epoch anchor is not a number)"
        offset = utc_i if normalised or start_i is None else utc_i - start_i
        if not 0 <= offset < 1 << 62:  # after 1970 and before 2116: anything else is a damaged anchor
            self.b.warnings.append(f"{self.name}: the session's epoch anchor ({offset} ns) is out of range; timestamps stay on the session's relative clock")
            self.b.stats["nsys_non_numeric_values"] += 1
            return "relative (session clock; the epoch anchor is out of range)"
        self.offset = offset
        if normalised or start_i is None:
            return "epoch (utcEpochNs + export ts)"
        return "epoch (utcEpochNs + export ts - session start systemClockNs)"

    def _event_types(self) -> dict[str, int]:
        types = dict(EVENT_TYPE_DEFAULTS)
        if self.has("ENUM_NSYS_EVENT_TYPE", "name") and self.has("ENUM_NSYS_EVENT_TYPE", "id"):
            for id_, name in self.rows("SELECT id, name FROM ENUM_NSYS_EVENT_TYPE"):
                if name in types and _int_or_none(id_) is not None:
                    types[name] = int(id_)
        return types

    # -- NVTX ------------------------------------------------------------------------------
    def _nvtx(self) -> None:
        if not self.has(NVTX):
            return
        et = self.event_types
        t = NVTX
        for c in ("start", "eventType"):
            if not self.has(t, c):
                self.b.warnings.append(f"{self.name}: NVTX_EVENTS has no {c} column; NVTX skipped")
                return
        has_tid, has_text = self.has(t, "textId"), self.has(t, "text")
        join = "LEFT JOIN StringIds s ON s.id = n.textId" if has_tid and self.has("StringIds") else ""
        if join:
            text_expr = "CAST(coalesce(s.value, n.text) AS TEXT)" if has_text else "CAST(s.value AS TEXT)"
        elif has_tid:
            text_expr = "CAST(coalesce(n.text, n.textId) AS TEXT)" if has_text else "CAST(n.textId AS TEXT)"
        else:
            text_expr = "CAST(n.text AS TEXT)" if has_text else "NULL"
        for c in ("textId", "text", "end", "globalTid", "endGlobalTid", "domainId", "category"):
            if not self.has(t, c):
                self.missing_columns.append(f"{t}.{c}")
        g = lambda c: f"n.{c}" if self.has(t, c) else "NULL"  # noqa: E731
        payload_cols = [c for c in ("int64Value", "uint64Value", "int32Value", "uint32Value", "doubleValue", "floatValue") if self.has(t, c)]
        payload = f"coalesce({', '.join('n.' + c for c in payload_cols)})" if payload_cols else "NULL"
        # domains and categories (names per process)
        domains: dict[tuple[int, int], str] = {}
        dom_ids = {et["NvtxDomainCreate"]}
        for dom, gtid, text in self.rows(
            f"SELECT {g('domainId')}, {g('globalTid')}, {text_expr} FROM {t} n {join} WHERE n.eventType IN ({','.join(map(str, dom_ids))})"
        ):
            dom_i = _int_or_none(dom)
            if dom_i is not None and text is not None:
                domains.setdefault(((_int_or_none(gtid) or 0) & PID_MASK, dom_i), text)
        domain_any: dict[int, str] = {}
        if self.has("DomainStrings", "id") and self.has("DomainStrings", "domainName"):
            domain_any = {_int_or_none(i): str(n) for i, n in self.rows("SELECT id, domainName FROM DomainStrings") if n is not None}
        for (_, dom), text in domains.items():
            domain_any.setdefault(dom, text)
        cats: dict[tuple[int, int], str] = {}
        cat_types = [et[c] for c in CATEGORIES]
        if self.has(t, "category"):
            for cat, gtid, text in self.rows(
                f"SELECT n.category, {g('globalTid')}, {text_expr} FROM {t} n {join} WHERE n.eventType IN ({','.join(map(str, cat_types))})"
            ):
                cat_i = _int_or_none(cat)
                if cat_i is not None and text is not None:
                    cats[((_int_or_none(gtid) or 0) & PID_MASK, cat_i)] = text
        range_types = [et[c] for c in PUSHPOP + STARTEND]
        mark_types = [et[c] for c in MARKS]
        startend = {et[c] for c in STARTEND}
        rows = self.rows(
            f"SELECT n.start, coalesce({g('end')}, -1), n.eventType, coalesce({g('globalTid')}, -1), coalesce({g('endGlobalTid')}, -1), "
            f"{text_expr}, {g('domainId')}, "
            f"{g('category')}, {payload} FROM {t} n {join} "
            f"WHERE n.eventType IN ({','.join(map(str, range_types + mark_types))}) ORDER BY n.rowid"
        )
        other = self.con.execute(
            f"SELECT count(*) FROM {t} WHERE eventType NOT IN ({','.join(map(str, range_types + mark_types + cat_types + sorted(dom_ids)))})"
        ).fetchone()[0]
        if other:
            self.counts["nvtx_other_events_skipped"] = int(other)
        if not rows:
            return
        b = self.b
        start, end, etype, gtid, end_gtid, text, dom, cat, pay = zip(*rows)
        start = _np(start)
        etype_a = _np(etype)
        gtid_a = _np(gtid)
        is_mark = np.isin(etype_a, mark_types)
        end_a = _np(end)
        unclosed = (~is_mark) & (end_a < 0)
        is_range = ~is_mark
        max_ts = int(max(start[is_range].max(initial=0), end_a[is_range].max(initial=0)))  # where unclosed ranges end
        end_a = np.where(unclosed, max_ts, end_a)
        self._dur(start[is_range], end_a[is_range])  # counts ranges that end before they start
        end_a = np.maximum(end_a, start)
        end_gtid_a = _np(end_gtid)
        cross = (~is_mark) & np.isin(etype_a, list(startend)) & (end_gtid_a >= 0) & (end_gtid_a != gtid_a)
        no_thread = gtid_a < 0
        if no_thread.any():
            self.counts["nvtx_without_thread_skipped"] = int(no_thread.sum())
            b.stats["nsys_nvtx_without_thread"] += int(no_thread.sum())
        keep = np.flatnonzero(~no_thread)
        n = len(keep)
        base = b.num_slices
        dur = np.where(is_mark, INSTANT, end_a - start)
        name_code = b.names.code
        codes = np.fromiter((name_code(text[i] if text[i] is not None else "") for i in keep.tolist()), np.int32, n)
        self._append(start[keep], dur[keep], codes, "nvtx", np.full(n, -1, np.int64))
        rows_out = np.arange(base, base + n)
        cpu = ~cross[keep]
        self.cpu_rows.append((rows_out[cpu], gtid_a[keep][cpu]))
        self.cross_rows.append((rows_out[~cpu], gtid_a[keep][~cpu] & PID_MASK))
        for g_ in np.unique(gtid_a[keep][cpu]).tolist():
            self._proc(g_).threads.add(g_)
        for k in np.unique(gtid_a[keep][~cpu] & PID_MASK).tolist():
            self._proc(k).cross_thread = True
        # args: domain, category, payload, unclosed, end thread (sparse: Python over the few)
        for j, i in enumerate(keep.tolist()):
            d = _int_or_none(dom[i])
            if d:
                dname = domains.get((int(gtid_a[i]) & PID_MASK, d)) or domain_any.get(d)
                b.add_arg(base + j, "domain", dname if dname is not None else str(d))
            c = _int_or_none(cat[i])
            if c:
                b.add_arg(base + j, "nvtx_category", cats.get((int(gtid_a[i]) & PID_MASK, c), c))
            p = pay[i]
            if p is not None:
                b.add_arg(base + j, "payload", p if isinstance(p, (int, float)) and _I64_MIN <= p <= _I64_MAX else str(p))
        for j in np.flatnonzero(unclosed[keep]).tolist():
            b.add_arg(base + j, "unclosed", True)
        for j in np.flatnonzero(cross[keep]).tolist():
            i = int(keep[j])
            b.add_arg(base + j, "thread", decode_global_tid(int(gtid_a[i]))[1])
            b.add_arg(base + j, "end_thread", decode_global_tid(int(end_gtid_a[i]))[1])
        self.counts["nvtx_ranges"] = int((~is_mark[keep]).sum())
        self.counts["nvtx_marks"] = int(is_mark[keep].sum())
        if unclosed[keep].any():
            b.stats["nsys_nvtx_unclosed_range"] += int(unclosed[keep].sum())
        if cross[keep].any():
            b.stats["nsys_nvtx_cross_thread_range"] += int(cross[keep].sum())

    # -- CUDA API --------------------------------------------------------------------------
    def _api(self) -> None:
        self.api_key = np.zeros(0, np.int64)  # (process key, correlation) → API slice row, sorted
        self.api_row = np.zeros(0, np.int64)
        self.api_pkey = np.zeros(0, np.int64)
        keys, rows_, prio, pkeys = [], [], [], []
        for table in (RUNTIME, DRIVER):
            if not self.has(table):
                continue
            if not all(self.has(table, c) for c in ("start", "end", "globalTid")):
                self.b.warnings.append(f"{self.name}: {table} lacks start/end/globalTid; CUDA API calls skipped")
                continue
            ec_default = "1" if table == DRIVER else "0"
            res = self.rows(
                'SELECT start, coalesce("end", start), globalTid, '
                f" {self.col(table, 'correlationId', '-1')}, {self.col(table, 'nameId', '-1')}, "
                f"{self.col(table, 'eventClass', ec_default)}, {self.col(table, 'returnValue', '0')} FROM {table} "
                "WHERE globalTid IS NOT NULL ORDER BY rowid"
            )
            if not res:
                continue
            start, end, gtid, corr, name_id, ecls, ret = (_np(c) for c in zip(*res))
            n = len(start)
            uniq, inv = np.unique(name_id, return_inverse=True)
            pool = np.array([self.b.names.code(_API_VERSION.sub("", self.strings.get(int(u), f"nameId {u}"))) for u in uniq.tolist()], np.int32)
            codes = pool[inv]
            base = self.b.num_slices
            cats = np.where(ecls == 1, self.b.categories.code("cuda_driver"), self.b.categories.code("cuda_runtime")).astype(np.int32)
            self._append(start, self._dur(start, end), codes, cats, corr)
            rows_out = np.arange(base, base + n)
            self.cpu_rows.append((rows_out, gtid))
            for g_ in np.unique(gtid).tolist():
                self._proc(g_).threads.add(g_)
            has_corr = corr > 0  # CUPTI ids start at 1; 0 = none
            self._bulk_int(rows_out[has_corr], "correlation", corr[has_corr])
            bad = ret != 0
            if bad.any():
                self._bulk_int(rows_out[bad], "return_value", ret[bad])
            self.counts["cuda_api_calls"] += n
            keys.append(_corr_key(gtid & PID_MASK, corr)[has_corr])
            rows_.append(rows_out[has_corr])
            prio.append(ecls[has_corr])  # runtime (0) before driver (1) for the same id
            pkeys.append((gtid & PID_MASK)[has_corr])
        if keys:
            k = np.concatenate(keys)
            r = np.concatenate(rows_)
            p = np.concatenate(prio)
            order = np.lexsort((p, k))
            self.api_key, self.api_row, self.api_pkey = k[order], r[order], np.concatenate(pkeys)[order]

    # -- GPU activity ----------------------------------------------------------------------
    def _gpu_ops(self) -> None:
        self.gpu_names = self._gpu_names()
        if self.has(KERNEL):
            self._kernels()
        if self.has(MEMCPY):
            self._memops(MEMCPY, "gpu_memcpy")
        if self.has(MEMSET):
            self._memops(MEMSET, "gpu_memset")
        if self.has(GRAPH_TRACE):
            self._graphs()

    def _gpu_names(self) -> dict[int, str]:
        out: dict[int, str] = {}
        for table, dev_cols in (("TARGET_INFO_CUDA_GPU", ("deviceId", "cudaId", "id")), ("TARGET_INFO_GPU", ("cuDevice", "deviceId", "id"))):
            if not self.has(table, "name"):
                continue
            dev = next((c for c in dev_cols if self.has(table, c)), None)
            if dev is None:
                continue
            for d, n in self.rows(f'SELECT "{dev}", name FROM {table}'):
                if _int_or_none(d) is not None and n:
                    out.setdefault(int(d), str(n))
        return out

    def _common(self, table: str) -> tuple[str, list[str]] | None:
        need = ("start", "end", "streamId")
        if not all(self.has(table, c) for c in need):
            self.b.warnings.append(f"{self.name}: {table} lacks one of {', '.join(need)}; its rows are skipped")
            return None
        cols = ["start", 'coalesce("end", start)', self.col(table, "deviceId", "0"), self.col(table, "streamId", "0"),
                self.col(table, "correlationId", "-1"), self.col(table, "globalPid", "-1")]
        return ", ".join(cols), cols

    def _kernels(self) -> None:
        common = self._common(KERNEL)
        if common is None:
            return
        name_col = next((c for c in ("demangledName", "name", "shortName", "mangledName") if self.has(KERNEL, c)), None)
        if name_col != "demangledName":
            self.missing_columns.append(f"{KERNEL}.demangledName")
        short = "shortName" if self.has(KERNEL, "shortName") else None
        extra = [
            f'coalesce("{name_col}", -1)' if name_col else "-1",
            f'coalesce("{short}", -1)' if short else "-1",
            *(self.col(KERNEL, c, "0") for c in ("gridX", "gridY", "gridZ", "blockX", "blockY", "blockZ", "registersPerThread")),
            self.col(KERNEL, "staticSharedMemory", "0"),
            self.col(KERNEL, "dynamicSharedMemory", "0"),
            self.col(KERNEL, "graphNodeId", "NULL"),
            self.col(KERNEL, "graphId", "NULL"),
        ]
        res = self.rows(f"SELECT {common[0]}, {', '.join(extra)} FROM {KERNEL} ORDER BY rowid")
        if not res:
            return
        cols = list(zip(*res))
        start, end, dev, stream, corr, gpid = (_np(c) for c in cols[:6])
        name_id = _np(cols[6])
        uniq, inv = np.unique(name_id, return_inverse=True)
        pool = np.array([self.b.names.code(self.strings.get(int(u), f"kernel {u}")) for u in uniq.tolist()], np.int32)
        rows_out = self._gpu_slices(start, end, dev, stream, corr, gpid, pool[inv], "kernel")
        if short:
            sid = _np(cols[7])
            differs = sid != name_id
            if differs.any():
                su, sinv = np.unique(sid[differs], return_inverse=True)
                scodes = np.array([self.b.arg_strings.code(self.strings.get(int(u), str(u))) for u in su.tolist()], np.int32)
                self._bulk_str(rows_out[differs], "short_name", scodes[sinv])
        if self.has(KERNEL, "gridX"):
            self._bulk_triples(rows_out, "grid", cols[8:11])
            self._bulk_triples(rows_out, "block", cols[11:14])
        if self.has(KERNEL, "registersPerThread"):
            self._bulk_int(rows_out, "registers_per_thread", _np(cols[14]))
        smem = _np(cols[15]) + _np(cols[16])
        self._bulk_int(rows_out, "shared_memory", smem)
        for key, values in (("graph_node_id", cols[17]), ("graph_id", cols[18])):
            has = _np([v is not None for v in values], bool)
            if has.any():
                self._bulk_int(rows_out[has], key, _np([v for v in values if v is not None]))
        self.counts["kernels"] = len(rows_out)

    def _memops(self, table: str, category: str) -> None:
        common = self._common(table)
        if common is None:
            return
        if category == "gpu_memcpy":
            extra = [self.col(table, "bytes", "0"), self.col(table, "copyKind", "0")]
        else:
            extra = [self.col(table, "bytes", "0"), self.col(table, "value", "0")]
        res = self.rows(f"SELECT {common[0]}, {', '.join(extra)} FROM {table} ORDER BY rowid")
        if not res:
            return
        cols = list(zip(*res))
        start, end, dev, stream, corr, gpid, nbytes, other = (_np(c) for c in cols)
        if category == "gpu_memcpy":
            labels = dict(MEMCPY_KINDS)
            if self.has("ENUM_CUDA_MEMCPY_OPER", "label"):
                labels.update({_int_or_none(i): str(lbl) for i, lbl in self.rows("SELECT id, label FROM ENUM_CUDA_MEMCPY_OPER")})
            uniq, inv = np.unique(other, return_inverse=True)
            pool = np.array([self.b.names.code(f"[CUDA memcpy {labels.get(int(u), f'kind {u}')}]") for u in uniq.tolist()], np.int32)
            codes = pool[inv]
        else:
            codes = np.full(len(start), self.b.names.code("[CUDA memset]"), np.int32)
        rows_out = self._gpu_slices(start, end, dev, stream, corr, gpid, codes, category)
        self._bulk_int(rows_out, "bytes", nbytes)
        if category == "gpu_memcpy":
            uniq, inv = np.unique(other, return_inverse=True)
            scodes = np.array([self.b.arg_strings.code(labels.get(int(u), str(u))) for u in uniq.tolist()], np.int32)
            self._bulk_str(rows_out, "copy_kind", scodes[inv])
        else:
            self._bulk_int(rows_out, "value", other)
        self.counts["memcpy" if category == "gpu_memcpy" else "memset"] = len(rows_out)

    def _graphs(self) -> None:
        common = self._common(GRAPH_TRACE)
        if common is None:
            return
        res = self.rows(f"SELECT {common[0]}, {self.col(GRAPH_TRACE, 'graphId', '-1')}, {self.col(GRAPH_TRACE, 'graphExecId', '-1')} FROM {GRAPH_TRACE} ORDER BY rowid")
        if not res:
            return
        start, end, dev, stream, corr, gpid, graph, gexec = (_np(c) for c in zip(*res))
        uniq, inv = np.unique(graph, return_inverse=True)
        pool = np.array([self.b.names.code(f"CUDA graph {u}") for u in uniq.tolist()], np.int32)
        rows_out = self._gpu_slices(start, end, dev, stream, corr, gpid, pool[inv], "cuda_graph")
        self._bulk_int(rows_out, "graph_id", graph)
        has = gexec >= 0
        self._bulk_int(rows_out[has], "graph_exec_id", gexec[has])
        self.counts["cuda_graph_executions"] = len(rows_out)

    def _gpu_slices(self, start, end, dev, stream, corr, gpid, codes, category: str) -> np.ndarray:
        """Append GPU ops, find their launch (same process, same correlation id), add flows."""
        n = len(start)
        pkey = np.where(gpid >= 0, gpid & PID_MASK, -1)
        launch = np.full(n, -1, np.int64)
        if len(self.api_key):
            has = corr > 0
            with_pid = has & (pkey >= 0)
            k = _corr_key(np.maximum(pkey, 0), corr)
            pos = np.minimum(np.searchsorted(self.api_key, k), len(self.api_key) - 1)
            hit = with_pid & (self.api_key[pos] == k)
            launch[hit] = self.api_row[pos[hit]]
            # exports without globalPid on GPU rows: by correlation id alone
            no_pid = has & (pkey < 0)
            if no_pid.any():
                corr_only = self.api_key & 0xFFFFFFFF
                order = np.argsort(corr_only, kind="stable")
                c_sorted = corr_only[order]
                p2 = np.minimum(np.searchsorted(c_sorted, corr[no_pid]), len(c_sorted) - 1)
                ok = c_sorted[p2] == corr[no_pid]
                idx = np.flatnonzero(no_pid)
                launch[idx[ok]] = self.api_row[order[p2[ok]]]
                pkey[idx[ok]] = self.api_pkey[order[p2[ok]]]
        pkey = np.where(pkey < 0, 0, pkey)
        base = self.b.num_slices
        self._append(start, self._dur(start, end), codes, category, corr)
        rows_out = np.arange(base, base + n)
        self.gpu_rows.append((rows_out, pkey, dev, stream))
        for p, d, s in set(zip(pkey.tolist(), dev.tolist(), stream.tolist())):
            self._proc(p).streams.add((d, s))
        has_corr = corr > 0
        self._bulk_int(rows_out[has_corr], "correlation", corr[has_corr])
        self._bulk_int(rows_out, "device", dev)
        self._bulk_int(rows_out, "stream", stream)
        ok = launch >= 0
        src, dst = launch[ok], rows_out[ok]
        with np.errstate(over="ignore"):
            fid = (dst.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) ^ corr[ok].astype(np.uint64) | np.uint64(1)
        self.b.f_id.frombytes(fid.tobytes())
        self.b.f_src.frombytes(src.astype(np.int64).tobytes())
        self.b.f_dst.frombytes(dst.astype(np.int64).tobytes())
        missing = int((~ok).sum())
        if missing:
            self.b.stats["nsys_gpu_ops_without_launch"] += missing
        return rows_out

    # -- builder helpers -------------------------------------------------------------------
    def _proc(self, gtid: int) -> _Proc:
        key = gtid & PID_MASK
        p = self.procs.get(key)
        if p is None:
            p = self.procs[key] = _Proc(key, (key >> 24) & 0xFFFFFF)
        return p

    def _dur(self, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        """end - start, 0 (and counted) where an event ends before it starts."""
        dur = end - start
        bad = int((dur < 0).sum())
        if bad:
            self.b.stats["nsys_negative_duration"] += bad
        return np.maximum(dur, 0)

    def _append(self, start, dur, codes, category, corr) -> None:
        """Append slices at session-clock `start` (a negative start is a damaged cell: the row
        is dropped after the read, counted)."""
        b = self.b
        n = len(start)
        unusable = (start < 0) | (start > _I64_MAX - self.offset)
        bad = np.flatnonzero(unusable)
        if len(bad):
            self.damaged.append(bad + b.num_slices)
        ts = np.where(unusable, 0, start) + self.offset
        b.ts.frombytes(np.ascontiguousarray(ts, np.int64).tobytes())
        b.dur.frombytes(np.ascontiguousarray(dur, np.int64).tobytes())
        b.track.frombytes(np.zeros(n, np.int32).tobytes())  # set in _finish
        b.name.frombytes(np.ascontiguousarray(codes, np.int32).tobytes())
        cat = np.full(n, b.categories.code(category), np.int32) if isinstance(category, str) else np.ascontiguousarray(category, np.int32)
        b.cat.frombytes(cat.tobytes())
        b.parent.frombytes(np.full(n, -1, np.int64).tobytes())
        b.correlation.frombytes(np.ascontiguousarray(corr, np.int64).tobytes())

    def _bulk(self, owners, key: str, kind: int, ints=None, dbls=None, strs=None) -> None:
        b = self.b
        n = len(owners)
        if not n:
            return
        b.a_owner.frombytes(np.ascontiguousarray(owners, np.int64).tobytes())
        b.a_key.frombytes(np.full(n, b.arg_keys.code(key), np.int32).tobytes())
        b.a_kind.frombytes(np.full(n, kind, np.int8).tobytes())
        b.a_int.frombytes((np.zeros(n, np.int64) if ints is None else np.ascontiguousarray(ints, np.int64)).tobytes())
        b.a_dbl.frombytes((np.zeros(n, np.float64) if dbls is None else np.ascontiguousarray(dbls, np.float64)).tobytes())
        b.a_str.frombytes((np.full(n, -1, np.int32) if strs is None else np.ascontiguousarray(strs, np.int32)).tobytes())

    def _bulk_int(self, owners, key: str, values) -> None:
        self._bulk(owners, key, ArgKind.INT, ints=values)

    def _bulk_str(self, owners, key: str, codes) -> None:
        self._bulk(owners, key, ArgKind.STRING, strs=codes)

    def _bulk_triples(self, owners, key: str, cols) -> None:
        """``[x, y, z]`` per row as a string arg (one string per distinct triple; a string, not a
        JSON array, keeps the Perfetto writer on its vectorised path)."""
        x, y, z = (_np(c) & 0xFFFFFFFF for c in cols)
        packed = (x << 32) | ((y & 0xFFFF) << 16) | (z & 0xFFFF)  # y, z < 65536 in CUDA
        uniq, inv = np.unique(packed, return_inverse=True)
        codes = np.array([self.b.arg_strings.code(f"[{u >> 32}, {(u >> 16) & 0xFFFF}, {u & 0xFFFF}]") for u in uniq.tolist()], np.int32)
        self._bulk_str(owners, key, codes[inv])

    # -- processes and tracks --------------------------------------------------------------
    def _finish(self) -> None:
        b = self.b
        thread_names = self._thread_names()
        proc_names = self._process_names(thread_names)
        nvtx_names = self._nvtx_names_by_process()
        order = sorted(self.procs.values(), key=lambda p: p.key)
        infos = []
        for p in order:
            pname = proc_names.get(p.key) or thread_names.get(p.key | p.pid) or f"pid {p.pid}"
            sources = [pname] + [thread_names.get(g, "") for g in sorted(p.threads)] + nvtx_names.get(p.key, [])
            ranks = _ranks_from(sources)
            infos.append((p, pname, ranks))
        seen_labels: Counter = Counter(r.label() for _, _, r in infos if r.known)
        track_of_thread: dict[int, int] = {}
        track_of_stream: dict[tuple[int, int, int], int] = {}
        track_of_cross: dict[int, int] = {}
        for p, pname, ranks in infos:
            label = ranks.label() if ranks.known else ""
            if label and seen_labels[label] > 1:
                b.warnings.append(f"{self.name}: several processes carry ranks {label}; told apart by pid")
            name = f"{label} [{p.pid}] {pname}" if label else f"[{p.pid}] {pname}"
            labels = [f"file={os.path.basename(self.name)}", f"pid={p.pid}"]
            devices = sorted({d for d, _ in p.streams})
            labels += [f"GPU {d}: {self.gpu_names[d]}" for d in devices if d in self.gpu_names]
            sort = ranks.sort_index() if ranks.known else (1 << 52) + (0 if p.streams else 1 << 40) + p.pid
            proc = b.add_process(p.pid, name, labels, sort_index=sort)
            order_ix = 0
            for g in sorted(p.threads, key=lambda g: (g & 0xFFFFFF != p.pid, g & 0xFFFFFF)):
                tid = g & 0xFFFFFF
                track_of_thread[g] = b.add_track(proc, tid, thread_names.get(g) or f"thread {tid}", TrackKind.THREAD, sort_index=order_ix)
                order_ix += 1
            if p.cross_thread:
                track_of_cross[p.key] = b.add_track(proc, 0, CROSS_THREAD_TRACK, TrackKind.TRACK, sort_index=order_ix)
                order_ix += 1
            for d, s in sorted(p.streams):
                gpu = f"GPU {d}" if d >= 0 else "GPU"
                track_of_stream[(p.key, d, s)] = b.add_track(proc, s, f"{gpu} stream {s}", TrackKind.GPU_STREAM, sort_index=order_ix)
                order_ix += 1
        track = np.zeros(b.num_slices, np.int32)
        for rows, gtid in self.cpu_rows:
            if len(rows):
                uniq, inv = np.unique(gtid, return_inverse=True)
                track[rows] = np.array([track_of_thread[g] for g in uniq.tolist()], np.int32)[inv]
        for rows, pkey in self.cross_rows:
            if len(rows):
                uniq, inv = np.unique(pkey, return_inverse=True)
                track[rows] = np.array([track_of_cross[k] for k in uniq.tolist()], np.int32)[inv]
        for rows, pkey, dev, stream in self.gpu_rows:
            if len(rows):
                keys = np.stack([pkey, dev, stream], axis=1)
                uniq, inv = np.unique(keys, axis=0, return_inverse=True)
                track[rows] = np.array([track_of_stream[tuple(k)] for k in uniq.tolist()], np.int32)[np.ravel(inv)]
        b.track = _int32_array(track)

    def _thread_names(self) -> dict[int, str]:
        out: dict[int, str] = {}
        if self.has("ThreadNames", "globalTid"):
            if self.has("ThreadNames", "nameId"):
                for gtid, nid in self.rows("SELECT globalTid, nameId FROM ThreadNames ORDER BY rowid"):
                    g, i = _int_or_none(gtid), _int_or_none(nid)
                    if g is not None and nid is not None:
                        out[g] = self.strings.get(i, str(nid)) if i is not None else str(nid)
            elif self.has("ThreadNames", "name"):
                for gtid, name in self.rows("SELECT globalTid, name FROM ThreadNames ORDER BY rowid"):
                    g = _int_or_none(gtid)
                    if g is not None and name:
                        out[g] = str(name)
        return out

    def _process_names(self, thread_names: dict[int, str]) -> dict[int, str]:
        out: dict[int, str] = {}
        if self.has("PROCESSES", "globalPid") and self.has("PROCESSES", "name"):
            for gpid, name in self.rows("SELECT globalPid, name FROM PROCESSES"):
                g = _int_or_none(gpid)
                if g is not None and name:
                    out[g & PID_MASK] = str(name)
        return out

    def _nvtx_names_by_process(self) -> dict[int, list[str]]:
        """Short, non-dict NVTX texts per process (where ranks may be written)."""
        out: dict[int, set] = {}
        names = self.b.names.values
        for rows, gtid in self.cpu_rows:
            if not len(rows):
                continue
            codes = np.frombuffer(self.b.name, dtype=np.int32)[rows]
            pk = gtid & PID_MASK
            pairs = np.unique(np.stack([pk, codes.astype(np.int64)], axis=1), axis=0) if len(rows) else []
            for k, c in pairs.tolist():
                text = names[c]
                if len(text) <= 64 and not text.startswith("{") and _RANK.search(text):
                    out.setdefault(k, set()).add(text)
        return {k: sorted(v) for k, v in out.items()}

    def _warn_missing(self, absent: list[str]) -> None:
        w = self.b.warnings
        n = self.name
        if NVTX not in self.schema:
            w.append(f"{n}: no NVTX_EVENTS table (capture with `nsys profile -t cuda,nvtx`): no ranges, so no layer or step attribution")
        if KERNEL in self.schema and RUNTIME not in self.schema and DRIVER not in self.schema:
            w.append(f"{n}: no CUPTI_ACTIVITY_KIND_RUNTIME table: kernels have no launching call, so no flows and no attribution to ranges")
        if KERNEL not in self.schema and GRAPH_TRACE not in self.schema:
            w.append(f"{n}: no CUPTI_ACTIVITY_KIND_KERNEL table: the export holds no kernels (capture with `-t cuda`)")
        if "StringIds" not in self.schema:
            w.append(f"{n}: no StringIds table: names are shown as ids")
        negative = self.b.stats.get("nsys_negative_duration", 0)
        if negative:
            w.append(f"{n}: {negative} events end before they start; kept with duration 0")
        missing = self.b.stats.get("nsys_gpu_ops_without_launch", 0)
        if missing:
            w.append(f"{n}: {missing} GPU ops have no CUDA API call with their correlation id in the export (cut window or API tracing off); kept, without flows")
        important = [c for c in sorted(set(self.missing_columns)) if c.endswith((".globalPid", ".correlationId", ".textId", ".demangledName", ".globalTid"))]
        if important:
            w.append(f"{n}: this nsys version's export lacks columns {', '.join(important)}; worked around (see metadata['nsys'])")


def _corr_key(pkey: np.ndarray, corr: np.ndarray) -> np.ndarray:
    """One int64 per (process, correlation id): the process key's pid bits above 32 bits of id."""
    pid = (np.asarray(pkey, np.int64) >> 24) & 0xFFFFFF
    host = (np.asarray(pkey, np.int64) >> 48) & 0x7F
    return (host << 56) | (pid << 32) | (np.asarray(corr, np.int64) & 0xFFFFFFFF)


def _ranks_from(texts: list[str]) -> Ranks:
    found: dict[str, Counter] = {}
    for text in texts:
        for k, v in _RANK.findall(text or ""):
            found.setdefault(k, Counter())[int(v)] += 1
    pick = {k: c.most_common(1)[0][0] for k, c in found.items()}
    return Ranks(pick.get("PP"), pick.get("DP"), pick.get("TP"), pick.get("EP"))


def _int32_array(values: np.ndarray):
    from array import array

    a = array("i")
    a.frombytes(np.ascontiguousarray(values, np.int32).tobytes())
    return a
