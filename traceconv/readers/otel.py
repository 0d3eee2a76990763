"""OpenTelemetry spans → `Trace`: identity of processes and threads, parents, events, links.

Format readers (`otel_json`, `otel_proto`) feed a `SpanCollector`; `SpanCollector.build()`
applies the layout rules (reference: decisions.md, sglang.md §2):

* a thread is (host, native thread id): SGLang thread spans carry ``host_id``, ``pid`` (the
  native thread id), ``thread_label`` and ``pp_rank``/``dp_rank``/``tp_rank``; generic services
  carry ``thread.id``/``thread.name``. Spans without thread attributes run on their parent's
  thread; spans with neither go to a per-process "Requests" (trace roots) or "Spans" track;
* a process is (host, resource ``process.pid`` or ``service.instance.id``, else
  ``service.name``);
* every span is kept: roots, thread spans, orphans (counted), duplicates (counted); span events
  become instants on the span's track, links become flows, ERROR status adds an instant.
"""

from __future__ import annotations

import json
import re
from array import array
from typing import Any

import numpy as np

from traceconv.errors import MalformedTraceError
from traceconv.model.ranks import Ranks, as_rank, with_ranks
from traceconv.model.trace import INSTANT, ArgKind, Trace, TraceBuilder, TrackKind, typed_value

THREAD_KEYS = frozenset(
    ["host_id", "pid", "thread_label", "tp_rank", "pp_rank", "dp_rank", "ep_rank", "thread.id", "thread.name"]
)
STATUS_ERROR = 2
MASK64 = (1 << 64) - 1
MAX_TIME = (1 << 63) - 1


class SpanCollector:
    """Columns of spans from any number of inputs; `build()` makes the `Trace`."""

    def __init__(self) -> None:
        b = self.b = TraceBuilder(span_columns=True)
        sp = b.span
        assert sp is not None
        self.trace_hi, self.trace_lo = sp["trace_id_hi"], sp["trace_id_lo"]
        self.span_id, self.parent_span_id = sp["span_id"], sp["parent_span_id"]
        self.kind, self.status = sp["span_kind"], sp["status_code"]
        self.end = array("q")
        self.resource = array("i")
        # resources and scopes, deduplicated
        self.resources: list[dict[str, Any]] = []
        self._resource_index: dict[Any, int] = {}
        # span events, stored apart until build (their rows follow the spans); their
        # attributes use the builder's string pools, owner = event index
        self.ev_span = array("q")
        self.ev_ts = array("q")
        self.ev_name = array("i")
        self.ev_args = ArgColumns()
        # links: this span's row and the linked span's ids; attributes by link index
        self.l_row = array("q")
        self.l_hi = array("Q")
        self.l_lo = array("Q")
        self.l_sid = array("Q")
        self.l_attrs: dict[int, list[tuple[str, Any]]] = {}
        self.status_message: dict[int, str] = {}
        self.sources: list[dict[str, Any]] = []
        self.bad_time_example: tuple | None = None

    # -- validation of what the format readers decoded --------------------------------------
    def times_ok(self, start: int, end: int, raw_start: Any = None, raw_end: Any = None) -> bool:
        """False (and counted as ``span_bad_time``) for a span whose times are not Unix ns that
        fit int64: such a span cannot be placed on a timeline and is skipped."""
        if 0 <= start <= MAX_TIME and 0 <= end <= MAX_TIME:
            return True
        self.b.stats["span_bad_time"] += 1
        if self.bad_time_example is None:
            self.bad_time_example = (str(raw_start)[:40], str(raw_end)[:40])
        return False

    def event_time_ok(self, ts: int) -> bool:
        if 0 <= ts <= MAX_TIME:
            return True
        self.b.stats["span_event_bad_time"] += 1
        return False

    # -- filled by the format readers -------------------------------------------------------
    def add_resource(self, attrs: list[tuple[str, Any]], key: Any = None) -> int:
        key = key if key is not None else json.dumps(attrs, sort_keys=True, default=str)
        idx = self._resource_index.get(key)
        if idx is None:
            idx = self._resource_index[key] = len(self.resources)
            self.resources.append(dict(attrs))
        return idx

    def add_event(self, row: int, ts: int, name: str, attrs: list[tuple[str, Any]]) -> None:
        k = len(self.ev_ts)
        for key, value in attrs:
            self.ev_args.add(k, self.b.arg_keys.code(key), value, self.b.arg_strings)
        self.ev_span.append(row)
        self.ev_ts.append(ts)
        self.ev_name.append(self.b.names.code(name))

    def add_link(self, row: int, trace_id: int, span_id: int, attrs: list[tuple[str, Any]]) -> None:
        if attrs:
            self.l_attrs[len(self.l_row)] = attrs
        self.l_row.append(row)
        self.l_hi.append(trace_id >> 64)
        self.l_lo.append(trace_id & MASK64)
        self.l_sid.append(span_id)

    @property
    def num_spans(self) -> int:
        return len(self.b.ts)

    # -- build ------------------------------------------------------------------------------
    def build(self) -> Trace:
        b = self.b
        n = len(b.ts)
        stats = b.stats
        start = np.frombuffer(b.ts, np.int64) if n else np.zeros(0, np.int64)  # (views, dropped before b.ts grows)
        end = np.frombuffer(self.end, np.int64) if n else np.zeros(0, np.int64)
        bad = end < start
        if bad.any():
            stats["span_end_before_start"] += int(bad.sum())
            b.warnings.append(f"{int(bad.sum())} spans end before they start: kept with duration 0 (their end time is in otel.end_time_unix_nano)")
            for row in np.flatnonzero(bad).tolist():
                b.add_arg(row, "otel.end_time_unix_nano", int(end[row]))
        if stats["span_bad_time"]:
            start_text, end_text = self.bad_time_example or ("?", "?")
            b.warnings.append(f"skipped {stats['span_bad_time']} spans whose times are not Unix nanoseconds "
                              f"(e.g. start {start_text!r}, end {end_text!r})")
        if stats["span_event_bad_time"]:
            b.warnings.append(f"skipped {stats['span_event_bad_time']} span events whose times are not Unix nanoseconds")
        if n == 0:
            lost = stats["span_bad_time"] + stats["otlp_json_bad_span"]
            if lost:  # nothing salvageable: an error, not an empty trace
                names = ", ".join(str(src["name"]) for src in self.sources) or None
                raise MalformedTraceError(f"no usable spans: all {lost} were damaged (times or shape)", source=names)
            b.warnings.append("the input holds no spans")
        dur = end - start
        if bad.any():
            dur[bad] = 0
        del start, end, bad
        b.dur = _array("q", dur)
        del dur

        parent = self._resolve_parents(n)
        thread_of = self._thread_of(n, parent)
        resource = _copy(self.resource, dtype=np.int32) if n else np.zeros(0, np.int32)
        track = self._tracks(n, parent, thread_of, resource)
        b.parent = _array("q", parent)
        b.track = _array("i", track.astype(np.int32))
        del parent, thread_of, resource
        self._add_flows(n)
        self.__dict__.pop("_index", None)  # (the span id index: flows were its last use)
        self._add_instants(track)
        b.metadata["sources"] = self.sources
        b.metadata["format"] = "otel"
        return b.build()

    def _resolve_parents(self, n: int) -> np.ndarray:
        if n == 0:
            self._orphans = np.zeros(0, bool)
            return np.zeros(0, np.int64)
        psid = np.frombuffer(self.parent_span_id, np.uint64)  # (a view: the span columns grow only later)
        _, _, s_hi, s_lo, _ = self._span_index()
        parent = self._lookup(s_hi, s_lo, psid)  # (a span's parent is in its own trace)
        breaks = _break_cycles(parent)  # a span that is its own parent, A → B → A, ...
        cyclic = int(breaks.sum())
        if cyclic:
            self.b.stats["span_parent_cycle"] += cyclic
            self.b.warnings.append(f"{cyclic} spans closed a parent cycle (a span its own ancestor): drawn as roots, "
                                   "their parent_span_id kept")
        orphans = (psid != 0) & (parent < 0) & ~breaks
        self.b.stats["span_parent_missing"] += int(orphans.sum())
        self._orphans = orphans
        return parent

    def _lookup(self, hi: np.ndarray, lo: np.ndarray, sid: np.ndarray) -> np.ndarray:
        """Row of the span with each (trace id, span id), -1 if absent (first of duplicates).

        Searched on one mixed 64-bit key, then checked on the full ids.
        """
        keep, keys, s_hi, s_lo, s_sid = self._span_index()
        if len(keep) == 0 or len(sid) == 0:
            return np.full(len(sid), -1, np.int64)
        needles = _mix(hi, lo, sid)
        if len(needles) > 1024:  # (sorted needles search ~4x faster: the array's cache lines are reused)
            by_key = np.argsort(needles)
            pos = np.empty(len(needles), np.int64)
            pos[by_key] = np.searchsorted(keys, needles[by_key])
            del by_key
        else:
            pos = np.searchsorted(keys, needles)
        del needles
        np.minimum(pos, len(keep) - 1, out=pos)
        row = keep[pos]
        del pos
        found = sid != 0
        for mine, theirs in ((s_hi, hi), (s_lo, lo), (s_sid, sid)):  # (one temporary at a time)
            found &= mine[row] == theirs
        row = row.astype(np.int64, copy=False)
        row[~found] = -1
        return row

    def _span_index(self) -> tuple[np.ndarray, ...]:
        """(rows by mixed key without later duplicates, their mixed keys, trace id high, low,
        span id), made once. The ids are views: `build` drops the index before the span columns
        grow again."""
        if not hasattr(self, "_index"):
            n = len(self.span_id)
            s_hi, s_lo, s_sid = (np.frombuffer(a, np.uint64) if n else np.zeros(0, np.uint64) for a in (self.trace_hi, self.trace_lo, self.span_id))
            mixed = _mix(s_hi, s_lo, s_sid)
            order = np.argsort(mixed)  # (not stable, ~2x faster: equal keys are put in row order below)
            mixed = mixed[order]
            dup = np.zeros(n, dtype=bool)
            same = np.flatnonzero(mixed[1:] == mixed[:-1])  # (equal ids sort side by side)
            if len(same):
                order = order[np.lexsort((order, mixed))]
                a, c = order[same], order[same + 1]
                dup[same[(s_hi[a] == s_hi[c]) & (s_lo[a] == s_lo[c]) & (s_sid[a] == s_sid[c])] + 1] = True
            if dup.any():
                self.b.stats["duplicate_span_id"] += int(dup.sum())
                self.b.warnings.append(f"{int(dup.sum())} spans repeat an earlier span's id; all kept")
                self._index = (order[~dup], mixed[~dup], s_hi, s_lo, s_sid)
            else:
                self._index = (order, mixed, s_hi, s_lo, s_sid)
        return self._index

    def _thread_of(self, n: int, parent: np.ndarray) -> np.ndarray:
        """Thread index per span (-1: none), inherited from the nearest ancestor with one.

        Thread attributes are read back from the argument columns, vectorised: Python only
        sees one row per distinct thread.
        """
        b = self.b
        self.threads: list[tuple] = []
        self.thread_info: list[dict[str, Any]] = []
        thread_of = np.full(n, -1, dtype=np.int64)
        codes = {k: b.arg_keys.codes[k] for k in THREAD_KEYS if k in b.arg_keys.codes}
        if codes and n:
            # only the args with a thread key, of spans (not events): a few per thread span
            keys = np.frombuffer(b.a_key, np.int32)  # (a view, gone before anything is appended)
            is_thread_key = np.zeros(len(keys), bool)
            for c in codes.values():
                is_thread_key |= keys == c
            hit = np.flatnonzero(is_thread_key)
            del keys, is_thread_key
            owner = _view_take(b.a_owner, np.int64, hit)
            hit, owner = hit[owner < n], owner[owner < n]
            key = _view_take(b.a_key, np.int32, hit)
            kind = _view_take(b.a_kind, np.int8, hit)
            ival = _view_take(b.a_int, np.int64, hit)
            sval = _view_take(b.a_str, np.int32, hit)
            spans = _distinct(owner)  # the spans holding any of them, in row order
            at = np.searchsorted(spans, owner)
            # per key, its value (an int, or a string's code) and its state: 0 absent, 1 an int,
            # 2 a string (so an int never collides with a string's code)
            cols, state = {}, {}
            for k in THREAD_KEYS:
                v = np.zeros(len(spans), np.int64)
                st = np.zeros(len(spans), np.int64)
                if k in codes:
                    sel = np.flatnonzero(key == codes[k])
                    is_str = kind[sel] == ArgKind.STRING
                    v[at[sel]] = np.where(is_str, sval[sel].astype(np.int64), ival[sel])
                    st[at[sel]] = np.where(is_str, 2, 1)
                cols[k], state[k] = v, st
            has = lambda k: state[k] != 0  # noqa: E731
            res = _view_take(self.resource, np.int32, spans).astype(np.int64)
            sglang = has("pid") & (has("thread_label") | has("host_id"))
            generic = ~sglang & (has("thread.id") | has("thread.name"))
            ident = np.stack(
                [
                    np.where(sglang, 1, np.where(generic, 2, 0)),
                    np.where(sglang, cols["host_id"], res),
                    np.where(sglang, state["host_id"], 1),
                    np.where(sglang, cols["pid"], cols["thread.id"]),
                    np.where(sglang, state["pid"], state["thread.id"]),
                    np.where(sglang, 0, cols["thread.name"]),
                    np.where(sglang, 0, state["thread.name"]),
                ],
                axis=1,
            )
            rows = np.flatnonzero(sglang | generic)  # (indices into `spans`)
            if len(rows):
                ident = ident[rows]
                first, inverse = _unique_rows(ident)
                uniq = ident[first]
                order = np.argsort(first)  # threads numbered in order of first appearance
                rank_of = np.empty(len(order), np.int64)
                rank_of[order] = np.arange(len(order))
                thread_of[spans[rows]] = rank_of[inverse.ravel()]
                strings = b.arg_strings.values
                for u in order.tolist():
                    r = int(rows[first[u]])
                    info = {}
                    for k in THREAD_KEYS:
                        if state[k][r]:
                            v = int(cols[k][r])
                            info[k] = strings[v] if state[k][r] == 2 else v
                    self.threads.append(tuple(uniq[u].tolist()))
                    self.thread_info.append(info)
        # inherit along parent pointers (pointer jumping; cycles stop by the iteration bound)
        cur = thread_of.copy()
        anc = parent.copy()
        for _ in range(64):
            need = (cur < 0) & (anc >= 0)
            if not need.any():
                break
            idx = np.flatnonzero(need)
            cur[idx] = thread_of[anc[idx]]
            still = cur[idx] < 0
            anc[idx] = np.where(still, parent[anc[idx]], -1)
        return cur

    def _tracks(self, n: int, parent: np.ndarray, thread_of: np.ndarray, resource: np.ndarray) -> np.ndarray:
        """Create processes and tracks; return the track of every span."""
        b = self.b
        # each thread's resource and host
        thread_res = np.zeros(len(self.threads), dtype=np.int64)
        rows = np.flatnonzero(thread_of >= 0)
        threads, first = np.unique(thread_of[rows], return_index=True)  # (each thread's first span)
        thread_res[threads] = resource[rows[first]]
        thread_host = [self._host(info, self.resources[thread_res[t]]) for t, info in enumerate(self.thread_info)]
        res_hosts: dict[int, set] = {}
        for t, h in enumerate(thread_host):
            if h:
                res_hosts.setdefault(int(thread_res[t]), set()).add(h)
        multi_host = len({h for h in thread_host if h}) > 1

        processes: dict[tuple, int] = {}
        proc_threads: dict[int, list[tuple[Ranks, str]]] = {}

        def process_for(host: str | None, res: dict[str, Any]) -> int:
            ident = res.get("process.pid", res.get("service.instance.id"))
            service = str(res.get("service.name", "unknown_service"))
            key = (host or "", service, ident)
            proc = processes.get(key)
            if proc is None:
                labels = [f"{k}={v}" for k, v in sorted(res.items())] + ([f"host={host}"] if host else [])
                pid = res.get("process.pid")
                pid = int(pid) if isinstance(pid, int) or (isinstance(pid, str) and pid.isdigit()) else 0
                proc = processes[key] = b.add_process(pid, service, labels)
                proc_threads[proc] = []
                self._proc_meta.append((service, ident, host))
            return proc

        self._proc_meta: list[tuple] = []
        thread_track = np.zeros(len(self.threads), dtype=np.int64)
        for t, info in enumerate(self.thread_info):
            proc = process_for(thread_host[t], self.resources[thread_res[t]])
            label = str(info.get("thread_label", info.get("thread.name", "thread")))
            ranks = Ranks(*(as_rank(info.get(k)) for k in ("pp_rank", "dp_rank", "tp_rank", "ep_rank")))
            name = with_ranks(label, ranks)
            if multi_host and thread_host[t]:
                name += f" @{thread_host[t][:8]}"
            tid = as_rank(info.get("pid", info.get("thread.id"))) or 0
            sort = ranks.sort_index() if ranks.known else (1 << 60)
            thread_track[t] = b.add_track(proc, tid, name, TrackKind.THREAD, sort_index=sort)
            proc_threads[proc].append((ranks, with_ranks(label, ranks)))
        track = np.zeros(n, dtype=np.int64)
        has = thread_of >= 0
        track[has] = thread_track[thread_of[has]]

        # spans without a thread: "Requests" (trace roots) or "Spans", per process; the host
        # comes from the resource, else its threads' single host, else a child's thread
        rows = np.flatnonzero(~has)
        res_of = resource[rows]
        requests = (parent[rows] < 0) & ~self._orphans[rows]
        res_host: dict[int, str | None] = {}  # (absent: the host depends on the span)
        for r in _distinct(res_of).tolist():
            host = self._host({}, self.resources[r])
            hs = res_hosts.get(r, ())
            if host is not None or len(hs) == 1:
                res_host[r] = host if host is not None else next(iter(hs))
        fixed_res = np.zeros(len(self.resources) + 1, bool)
        fixed_res[list(res_host)] = True
        fixed = fixed_res[res_of]
        # the spans whose host is their resource's, grouped by (resource, kind); the others one
        # by one; processes and tracks are made in the order of the spans that first need them
        key = res_of * 2 + requests
        first, group = _first_and_group(np.where(fixed, key, -1))
        todo = [(int(rows[f]), int(key[f]), None, g) for g, f in enumerate(first.tolist()) if fixed[f]]
        if not fixed.all():
            child_host = self._child_hosts(has, parent, thread_of, thread_host)
            todo += [(row, k, child_host.get(row), -1) for row, k in zip(rows[~fixed].tolist(), key[~fixed].tolist())]
        todo.sort(key=lambda item: item[0])
        extra: dict[tuple[int, str], int] = {}
        group_track = np.zeros(len(first), np.int64)
        for row, k, host, g in todo:
            proc = process_for(res_host.get(k >> 1, host), self.resources[k >> 1])
            kind = "Requests" if k & 1 else "Spans"
            t = extra.get((proc, kind))
            if t is None:
                t = extra[(proc, kind)] = b.add_track(proc, 0, kind, TrackKind.TRACK, sort_index=-2 if kind == "Requests" else -1)
            if g >= 0:
                group_track[g] = t
            else:
                track[row] = t
        track[rows[fixed]] = group_track[group[fixed]]
        self._name_processes(proc_threads, multi_host)
        return track

    @staticmethod
    def _child_hosts(has: np.ndarray, parent: np.ndarray, thread_of: np.ndarray, thread_host: list) -> dict[int, str]:
        """Per span without a thread, the host of its first child's thread."""
        child_host: dict[int, str] = {}
        rows = np.flatnonzero(has & (parent >= 0))
        par = parent[rows]
        keep = thread_of[par] < 0
        for r, p in zip(rows[keep].tolist(), par[keep].tolist()):
            child_host.setdefault(p, thread_host[thread_of[r]] or "")
        return child_host

    def _name_processes(self, proc_threads: dict[int, list[tuple[Ranks, str]]], multi_host: bool) -> None:
        """``sglang Scheduler-PP0-DP1-TP0 @deadbeef``: service, its main ranked thread, host."""
        b = self.b
        for proc, (service, ident, host) in enumerate(self._proc_meta):
            threads = sorted(proc_threads.get(proc, []), key=lambda t: (t[0].sort_key(), t[1]))  # (None ranks sort first)
            ranked = [name for ranks, name in threads if ranks.known]
            if ranked:
                who = ranked[0] if len(ranked) == 1 else f"{ranked[0]}…"
                order = threads[0][0].sort_index() if threads[0][0].known else (1 << 60)
            elif threads:
                who = threads[0][1]
                order = 1 << 61
            else:
                who = str(ident)[:8] if ident is not None else ""
                order = 1 << 62
            name = " ".join(x for x in (service, who) if x)
            if host:
                name += f" @{host[:8]}"
            pid, _, labels, _ = b.processes[proc]
            b.processes[proc] = (pid, name, labels, order)

    @staticmethod
    def _host(info: dict[str, Any], res: dict[str, Any] | None) -> str | None:
        h = info.get("host_id")
        if h is None and res is not None:
            h = res.get("host.id", res.get("host.name"))
        return None if h is None else str(h)

    def _add_flows(self, n: int) -> None:
        m = len(self.l_row)
        if not m:
            return
        b = self.b
        rows = _copy(self.l_row, np.int64)
        hi, lo, sid = _copy(self.l_hi, np.uint64), _copy(self.l_lo, np.uint64), _copy(self.l_sid, np.uint64)
        src = self._lookup(hi, lo, sid)
        missing = src < 0
        for k in np.flatnonzero(missing).tolist() + [k for k in self.l_attrs if src[k] >= 0]:
            b.add_arg(int(rows[k]), f"otel.link.{k}", {
                "trace_id": f"{int(hi[k]):016x}{int(lo[k]):016x}", "span_id": f"{int(sid[k]):016x}",
                "attributes": dict(self.l_attrs.get(k, ())),
            })
        if missing.any():
            b.stats["link_target_missing"] += int(missing.sum())
        ok = ~missing
        fid = _flow_ids(src[ok], rows[ok])
        b.f_id.frombytes(fid.tobytes())
        b.f_src.frombytes(src[ok].tobytes())
        b.f_dst.frombytes(rows[ok].tobytes())

    def _add_instants(self, track: np.ndarray) -> None:
        """Span events, then one ``ERROR`` instant per failed span, after the spans' rows."""
        b = self.b
        first = len(b.ts)
        k = len(self.ev_ts)
        if k:
            span = _copy(self.ev_span, np.int64)
            b.ts.frombytes(_copy(self.ev_ts, np.int64).tobytes())
            b.dur.frombytes(np.full(k, INSTANT, np.int64).tobytes())
            b.track.frombytes(track[span].astype(np.int32).tobytes())
            b.name.frombytes(_copy(self.ev_name, np.int32).tobytes())
            b.cat.frombytes(_copy(b.cat, np.int32)[span].tobytes())
            b.parent.frombytes(span.tobytes())
            b.correlation.frombytes(np.full(k, -1, np.int64).tobytes())
            self.ev_args.append_to(b, offset=first)
        status = _copy(self.status, np.int8)[:first]
        for row in np.flatnonzero(status == STATUS_ERROR).tolist():
            msg = self.status_message.get(row, "")
            idx = b.add_slice(self.end[row], INSTANT, int(track[row]), f"ERROR: {msg}" if msg else "ERROR", "otel,error", parent=row)
            b.add_arg(idx, "otel.status_message", msg)
        extra = len(b.ts) - first
        if extra:  # keep the span columns aligned with the slice rows (instants carry zeros)
            for col in b.span.values():  # type: ignore[union-attr]
                col.frombytes(bytes(extra * col.itemsize))
        for row, msg in self.status_message.items():
            b.add_arg(row, "otel.status_message", msg)


class ArgColumns:
    """Typed attribute columns (the layout of `Trace.args`), for rows kept apart until build."""

    def __init__(self) -> None:
        self.owner = array("q")
        self.key = array("i")
        self.kind = array("b")
        self.int = array("q")
        self.dbl = array("d")
        self.str = array("i")

    def add(self, owner: int, key_code: int, value: Any, strings) -> None:
        kind, i, d, s = typed_value(value)
        self.owner.append(owner)
        self.key.append(key_code)
        self.kind.append(kind)
        self.int.append(i)
        self.dbl.append(d)
        self.str.append(strings.code(s) if s is not None else -1)

    def append_to(self, b: TraceBuilder, offset: int) -> None:
        b.a_owner.frombytes((_copy(self.owner, np.int64) + offset).tobytes())
        for src, dst in ((self.key, b.a_key), (self.kind, b.a_kind), (self.int, b.a_int), (self.dbl, b.a_dbl), (self.str, b.a_str)):
            dst.extend(src)


def _break_cycles(parent: np.ndarray) -> np.ndarray:
    """Cut parent cycles in place: the link of one span per cycle (its smallest row) becomes
    -1. Returns the rows whose link was cut.

    Pointer doubling: after k rounds `anc` is the 2^k-th ancestor, -1 once the chain ended; a
    chain still alive after more than n steps runs into a cycle, and that ancestor lies on it.
    """
    n = len(parent)
    cut = np.zeros(n, bool)
    while n:
        anc = parent.copy()
        steps = 1
        while steps <= n:
            live = anc >= 0
            if not live.any():
                return cut
            anc[live] = anc[anc[live]]
            steps *= 2
        if not (anc >= 0).any():
            return cut
        seen: set[int] = set()
        for r in _distinct(anc[anc >= 0]).tolist():
            if r in seen:
                continue
            members = [r]
            x = int(parent[r])
            while x != r:
                members.append(x)
                x = int(parent[x])
            seen.update(members)
            parent[min(members)] = -1
            cut[min(members)] = True
    return cut


def _view_take(a: array, dtype, rows: np.ndarray | None = None) -> np.ndarray:
    """``a[rows]`` (or all of `a`) as numpy: a copy; the view it is taken from is gone when this
    returns (a view kept would pin `a` and block later appends)."""
    if not len(a):
        return np.zeros(0, dtype)
    view = np.frombuffer(a, dtype=dtype)
    return view[rows] if rows is not None else view.copy()


def _copy(a: array, dtype) -> np.ndarray:
    """A numpy copy of an `array` column (a view would pin it and block later appends)."""
    return np.array(np.frombuffer(a, dtype=dtype)) if len(a) else np.zeros(0, dtype)


def put(column: array, values: np.ndarray, dtype: type | None = None) -> None:
    """Append numpy values to an `array` column (of their item type, or `dtype`'s): one copy."""
    v = np.ascontiguousarray(values if dtype is None else values.astype(dtype, copy=False))
    column.frombytes(v.view(np.uint8))


def _array(typecode: str, a: np.ndarray) -> array:
    """An `array` column holding a numpy array's values (one copy, no temporary)."""
    out = array(typecode)
    put(out, a)
    return out


def _mix(hi: np.ndarray, lo: np.ndarray, sid: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        out = hi * np.uint64(0x9E3779B97F4A7C15)
        out ^= sid
        out ^= lo * np.uint64(0xC2B2AE3D27D4EB4F)
        return out


def _flow_ids(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Stable 64-bit ids per (src, dst) pair (splitmix64 of the pair), never 0."""
    with np.errstate(over="ignore"):
        x = src.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + dst.astype(np.uint64) + np.uint64(1)
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    x[x == 0] = 1
    return x


_HEX_ID = re.compile(r"[0-9a-fA-F]+")


def _first_and_group(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For 1-d `key`: the first index of each distinct value, and every element's group (an
    index into that)."""
    order = np.argsort(key, kind="stable")
    s = key[order]
    start = np.ones(len(s), bool)
    np.not_equal(s[1:], s[:-1], out=start[1:])
    group = np.empty(len(key), np.int64)
    group[order] = np.cumsum(start) - 1
    return order[start], group


def _unique_rows(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`np.unique(m, axis=0, return_index=True, return_inverse=True)`'s index and inverse for
    an int64 matrix, the groups in another order: rows grouped by a hash, then checked against
    each group's first row (numpy's row-wise unique sorts the rows as bytes: ~10x slower)."""
    h = np.zeros(len(m), np.uint64)
    with np.errstate(over="ignore"):
        for c in m.T:
            h = (h ^ c.astype(np.uint64)) * np.uint64(0x9E3779B97F4A7C15)
            h ^= h >> np.uint64(29)
    first, group = _first_and_group(h)
    if not (m == m[first[group]]).all():  # (a hash collision: rarely, if ever)
        _, first, group = np.unique(m, axis=0, return_index=True, return_inverse=True)
    return first, group.ravel()


def _distinct(a: np.ndarray) -> np.ndarray:
    """`np.unique(a)` for a 1-d array (which, in numpy 2, imports numpy.ma: 20 ms)."""
    s = np.sort(a)
    keep = np.ones(len(s), bool)
    np.not_equal(s[1:], s[:-1], out=keep[1:])
    return s[keep]


def parse_hex_or_base64(value: str, nbytes: int) -> int | None:
    """An OTLP id: hex (case-insensitive, optional 0x) or base64, decided by length."""
    if not value:
        return 0
    v = value[2:] if value[:2] in ("0x", "0X") else value
    if len(v) == 2 * nbytes and _HEX_ID.fullmatch(v):  # (int(v, 16) alone takes signs, "_" and spaces)
        return int(v, 16)
    try:
        import base64

        raw = base64.b64decode(value, validate=True)
    except ValueError:
        return None
    if len(raw) != nbytes:
        return None
    return int.from_bytes(raw, "big")
