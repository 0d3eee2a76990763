"""Request stage latency from OTel span dumps: where does a request's time go?

Rules (reference: ../shared/reference/sglang.md §2):

* **Requests.** An SGLang request is a root span whose ``module`` attribute is
  ``sglang::request`` (or ``sglang::mooncake``); ``rid`` comes from its attributes, the role
  from its name (``" Req …"`` → ``unified``, ``"prefill Req …"`` → ``prefill``, ``"decode Req
  …"`` → ``decode``; PD mode has one request per role). A span belongs to the nearest such
  root above it. A span whose parent is missing from the dump (partial dump: the
  BatchSpanProcessor dropped the parent) belongs to its trace's root when the trace has
  exactly one. Everything else is grouped by trace id, one request per trace: that is how
  generic OTel services are read, and how a trace whose root was lost (a truncated dump, a
  dump of the scheduler processes only) still shows up (marked ``partial``, role
  ``unknown``). Spans above an SGLang root (a router's spans) belong to no request.
* **Stages.** SGLang root spans and thread spans (those carrying ``thread_label``) are
  structure; every other span is a stage, named by its span name (``prefill_forward``,
  ``decode_loop``, … or, for generic services, ``POST /checkout``). A stage span inside
  another stage span (``decode_loop`` in ``decode_forward``, ``run_batch_cpu`` in
  ``prefill_forward``) is *nested*; the queue/compute/… totals add top-level stages only, so
  nothing is counted twice.
* **Time per stage** is the sum of the span durations over all threads (every TP/PP rank
  records its own spans), exact in int64 ns; percentiles in the summary are over single
  spans, i.e. the latency of one stage on one thread.
* **Marked, not dropped.** ``status`` is ``aborted`` (SGLang ERROR status or an ``abort``
  finish reason), ``error`` (ERROR status on a generic service), ``partial`` (root missing,
  spans whose parent is missing, or an expected stage absent: ``prefill_forward`` for
  unified/prefill requests, ``decode_forward`` when more than one token was produced,
  ``tokenize`` when the dump has a tokenizer), else ``ok``; ``missing`` says why.

Examples:
    >>> from traceconv.readers import read_otel
    >>> from analyzers import requests
    >>> rs = requests.analyze(read_otel(["otel_trace.jsonl"]))
    >>> rs.requests[["rid", "role", "status", "e2e_ns", "ttft_ns", "queue_ns", "compute_ns"]]
    >>> rs.summary(by=["role", "dp_rank"])   # p50/p90/p99 per stage
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from traceconv.model.trace import INSTANT, ArgKind, Trace, TrackKind

# RequestStage levels (sglang.md §2.3); a stage not listed has no level (generic services)
STAGE_LEVELS = {
    **dict.fromkeys(
        ["tokenize", "prefill_waiting", "prefill_forward", "decode_forward", "decode_waiting", "prefill_prepare",
         "prefill_bootstrap", "prefill_transfer_kv_cache", "decode_prepare", "decode_bootstrap", "decode_transferred",
         "quick_finish", "mooncake_send", "mooncake_recv", "mooncake_worker_send", "mooncake_worker_recv"], 1),
    **dict.fromkeys(["api_server_dispatch", "dpc_dispatch", "request_process", "spec_draft", "spec_verify",
                     "mooncake_worker_send_session"], 2),
    **dict.fromkeys(["chunked_prefill", "decode_loop", "fake_output", "spec_draft_extend"], 3),
    "run_batch_cpu": 4,
}
# what a stage's time is: waiting in a queue, running the model, moving KV caches (PD), or
# frontend/bookkeeping work; anything else (generic services) is "other"
STAGE_KINDS = {
    **dict.fromkeys(["prefill_waiting", "decode_waiting"], "queue"),
    **dict.fromkeys(["prefill_forward", "decode_forward", "chunked_prefill", "decode_loop", "run_batch_cpu",
                     "spec_draft", "spec_verify", "spec_draft_extend", "fake_output"], "compute"),
    **dict.fromkeys(["prefill_prepare", "prefill_bootstrap", "prefill_transfer_kv_cache", "decode_prepare",
                     "decode_bootstrap", "decode_transferred", "mooncake_send", "mooncake_recv",
                     "mooncake_worker_send", "mooncake_worker_send_session", "mooncake_worker_recv"], "kv_transfer"),
    **dict.fromkeys(["tokenize", "api_server_dispatch", "dpc_dispatch", "request_process", "quick_finish"], "frontend"),
}
KINDS = ["queue", "compute", "kv_transfer", "frontend", "other"]
ROOT_MODULES = ("sglang::request", "sglang::mooncake")
SGLANG_SCOPES = ("sglang server",)  # the tracer (scope) name, kept as the slices' category
STATUS_ERROR = 2
GROUP_KEYS = {"role": "role", "dp": "dp_rank", "dp_rank": "dp_rank", "pp": "pp_rank", "pp_rank": "pp_rank",
              "tp": "tp_rank", "tp_rank": "tp_rank", "thread": "thread", "status": "status", "rank": "rank"}
_NONE = np.iinfo(np.int64).min


# ---- reading attributes and ranks out of the trace (shared with `analyzers.pipeline`) ------


@dataclass(frozen=True)
class ArgValues:
    """One attribute key, spread over slice rows: ``has`` says which rows carry it."""

    has: np.ndarray  # bool per slice row
    kind: np.ndarray  # int8 ArgKind per row (-1 where absent)
    int_value: np.ndarray  # int64 (ints, bools, and numeric strings parsed)
    double_value: np.ndarray  # float64 (doubles, and ints converted)
    string_code: np.ndarray  # int32 code into `strings` (-1 where not a string)
    strings: list[str]

    def ints(self) -> np.ndarray:
        """int64 per row, `_NONE` where absent or not a number."""
        out = np.full(len(self.has), _NONE, np.int64)
        num = self.has & np.isin(self.kind, (ArgKind.INT, ArgKind.UINT, ArgKind.BOOL))
        out[num] = self.int_value[num]
        dbl = self.has & (self.kind == ArgKind.DOUBLE) & np.isfinite(self.double_value)
        out[dbl] = self.double_value[dbl].astype(np.int64)
        st = self.has & (self.kind == ArgKind.STRING)
        if st.any():  # numbers that arrived as strings: parse each distinct string once
            parsed = np.array([_as_int(s) for s in self.strings], dtype=np.int64)
            out[st] = parsed[self.string_code[st]]
        return out

    def doubles(self) -> np.ndarray:
        """float64 per row, NaN where absent or not a number."""
        out = np.full(len(self.has), np.nan)
        dbl = self.has & (self.kind == ArgKind.DOUBLE)
        out[dbl] = self.double_value[dbl]
        num = self.has & np.isin(self.kind, (ArgKind.INT, ArgKind.UINT))
        out[num] = self.int_value[num].astype(np.float64)
        return out

    def matches(self, predicate) -> np.ndarray:
        """bool per row: a string value for which ``predicate(str)`` holds (evaluated per distinct string)."""
        if not len(self.strings):
            return np.zeros(len(self.has), bool)
        ok = np.array([bool(predicate(s)) for s in self.strings] + [False], dtype=bool)
        return ok[np.where(self.string_code >= 0, self.string_code, len(self.strings))]


def _as_int(s: str) -> int:
    try:
        return int(s)
    except (TypeError, ValueError):
        return _NONE


class Args:
    """Vectorised access to the ``args`` table by key (no per-row Python)."""

    def __init__(self, trace: Trace) -> None:
        self.n = trace.num_slices
        a = trace.args
        self.keys = trace.strings("args", "key") if a.num_rows else []
        self._code = {k: i for i, k in enumerate(self.keys)}
        if a.num_rows:
            self.owner = trace.column("args", "owner")
            self.key = trace.column("args", "key")
            self.kind = trace.column("args", "kind")
            self.ival = trace.column("args", "int_value")
            self.dval = trace.column("args", "double_value")
            scol = a.column("string_value").combine_chunks()
            self.scode = scol.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int32)
            self.strings = scol.dictionary.to_pylist()

    def __contains__(self, key: str) -> bool:
        return key in self._code

    def get(self, key: str) -> ArgValues:
        n = self.n
        has = np.zeros(n, bool)
        kind = np.full(n, -1, np.int8)
        ival = np.zeros(n, np.int64)
        dval = np.zeros(n, np.float64)
        scode = np.full(n, -1, np.int32)
        code = self._code.get(key)
        if code is not None:
            sel = np.flatnonzero(self.key == code)
            rows = self.owner[sel]
            has[rows] = True
            kind[rows] = self.kind[sel]
            ival[rows] = self.ival[sel]
            dval[rows] = self.dval[sel]
            scode[rows] = self.scode[sel]
        return ArgValues(has, kind, ival, dval, scode, getattr(self, "strings", []))


@dataclass(frozen=True)
class TrackRanks:
    """Per track: its ranks (-1 unknown), name, process and service."""

    pp: np.ndarray
    dp: np.ndarray
    tp: np.ndarray
    names: list[str]
    process: np.ndarray
    service: list[str]  # per process
    thread: np.ndarray  # the thread track a track stands for (itself; a "Spans" track: its process's only thread), -1 none

    def label(self, t: int) -> str:
        parts = [f"{p}{v}" for p, v in (("PP", self.pp[t]), ("DP", self.dp[t]), ("TP", self.tp[t])) if v >= 0]
        return "-".join(parts)


def track_ranks(trace: Trace, args: Args | None = None) -> TrackRanks:
    """Ranks of every track, from the ``pp_rank``/``dp_rank``/``tp_rank`` attributes of the spans
    on it (SGLang puts them on thread spans). A track without them (the "Spans" track an orphan
    lands on) takes its process's ranks when all ranked threads of that process agree."""
    args = args or Args(trace)
    n_tracks = trace.tracks.num_rows
    track = trace.column("slices", "track_id")
    out = []
    for key in ("pp_rank", "dp_rank", "tp_rank"):
        v = args.get(key).ints()
        per_track = np.full(n_tracks, -1, np.int64)
        rows = np.flatnonzero(v != _NONE)
        if len(rows):
            t, first = np.unique(track[rows], return_index=True)
            per_track[t] = v[rows[first]]
        out.append(per_track)
    pp, dp, tp = out
    process = trace.column("tracks", "process_id").astype(np.int64)
    ranked = (pp >= 0) | (dp >= 0) | (tp >= 0)
    for proc in np.unique(process[~ranked]).tolist():
        members = np.flatnonzero((process == proc) & ranked)
        combos = {(int(pp[m]), int(dp[m]), int(tp[m])) for m in members}
        if len(combos) == 1:
            p, d, t = combos.pop()
            fill = (process == proc) & ~ranked
            pp[fill], dp[fill], tp[fill] = p, d, t
    services = []
    for labels in trace.processes.column("labels").to_pylist():
        name = next((x.split("=", 1)[1] for x in labels or [] if x.startswith("service.name=")), "")
        services.append(name)
    kinds = trace.tracks.column("kind").to_pylist()
    is_thread = np.asarray([k in (TrackKind.THREAD, TrackKind.GPU_STREAM) for k in kinds], dtype=bool)
    thread = np.where(is_thread, np.arange(n_tracks), -1)
    for proc in np.unique(process[~is_thread]).tolist():
        members = np.flatnonzero((process == proc) & is_thread)
        if len(members) == 1:
            thread[(process == proc) & ~is_thread] = members[0]
    return TrackRanks(pp, dp, tp, trace.tracks.column("name").to_pylist(), process, services, thread)


def _climb(start: np.ndarray, parent: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """For each row, the nearest ancestor-or-self where `stop` holds, else the top of its chain.

    Pointer jumping: O(n log depth), no Python per row. Cycles end at the iteration bound.
    """
    n = len(parent)
    nxt = np.where(stop | (parent < 0), np.arange(n), parent)
    for _ in range(64):
        step = nxt[nxt]
        if np.array_equal(step, nxt):
            break
        nxt = step
    return nxt[start]


def _trace_keys(trace: Trace, rows: np.ndarray) -> np.ndarray:
    """One int64 id per distinct (trace_id_hi, trace_id_lo) of `rows`."""
    hi = trace.column("slices", "trace_id_hi")[rows]
    lo = trace.column("slices", "trace_id_lo")[rows]
    _, inverse = np.unique(np.stack([hi, lo], axis=1), axis=0, return_inverse=True)
    return inverse.ravel().astype(np.int64)


def _hex_trace(hi: np.ndarray, lo: np.ndarray) -> list[str]:
    return [f"{h:016x}{l:016x}" for h, l in zip(hi.tolist(), lo.tolist())]


# ---- the analysis ----------------------------------------------------------------------------


@dataclass
class RequestStages:
    """The result of `analyze`: stage spans and requests, as typed DataFrames."""

    spans: pd.DataFrame  # one row per stage span
    requests: pd.DataFrame  # one row per request
    mode: str  # "sglang" (request roots or thread spans found) or "generic" (one request per trace)
    notes: list[str] = field(default_factory=list)

    def summary(self, by: Sequence[str] = (), *, request_rows: bool = True) -> pd.DataFrame:
        """Per-stage p50/p90/p99 (see `stage_summary`)."""
        return stage_summary(self, by, request_rows=request_rows)


def analyze(trace: Trace) -> RequestStages:
    """Requests and their stage spans, from a `Trace` read from OTel span dumps."""
    if "span_id" not in trace.slices.column_names:
        raise ValueError("not an OTel trace (no span columns): request stages need OTel spans")
    args = Args(trace)
    n = trace.num_slices
    ts = trace.column("slices", "ts_ns")
    dur = trace.column("slices", "dur_ns")
    parent = trace.column("slices", "parent")
    psid = trace.column("slices", "parent_span_id")
    status = trace.column("slices", "status_code")
    track = trace.column("slices", "track_id").astype(np.int64)
    name_code = trace.column("slices", "name")
    names = trace.strings("slices", "name")
    is_span = dur != INSTANT

    module = args.get("module")
    is_root = is_span & module.matches(lambda s: s in ROOT_MODULES)
    is_thread = is_span & args.get("thread_label").has
    # SGLang spans: request roots, thread spans, or (a dump that lost both) SGLang's scope name
    sglang_scope = any(c in SGLANG_SCOPES for c in trace.strings("slices", "category")) if n else False
    mode = "sglang" if (is_root.any() or is_thread.any() or sglang_scope) else "generic"

    # -- which request each span belongs to
    root_rows = np.flatnonzero(is_root)
    top = _climb(np.arange(n), np.where(is_span, parent, -1), is_root)
    req = np.full(n, -1, np.int64)
    under_root = is_span & is_root[top]
    req_of_root = np.full(n, -1, np.int64)
    req_of_root[root_rows] = np.arange(len(root_rows))
    req[under_root] = req_of_root[top[under_root]]
    # spans above a root (a router's spans) belong to no request
    above = np.zeros(n, bool)
    cur = parent[root_rows]
    for _ in range(64):
        cur = cur[cur >= 0]
        if not len(cur):
            break
        above[cur] = True
        cur = parent[cur]
    rest = np.flatnonzero(is_span & ~under_root & ~above)
    orphan = is_span & (parent < 0) & (psid != 0) & ~is_root
    n_roots = len(root_rows)
    if len(rest):
        tkey_all = _trace_keys(trace, np.concatenate([root_rows, rest]))
        root_tkey, rest_tkey = tkey_all[:n_roots], tkey_all[n_roots:]
        roots_per_trace = np.bincount(root_tkey, minlength=tkey_all.max() + 1) if n_roots else np.zeros(tkey_all.max() + 1, np.int64)
        only_root = np.full(len(roots_per_trace), -1, np.int64)
        if n_roots:
            single = roots_per_trace[root_tkey] == 1
            only_root[root_tkey[single]] = np.flatnonzero(single)
        attach = only_root[rest_tkey]
        req[rest[attach >= 0]] = attach[attach >= 0]
        loose = rest[attach < 0]
        if len(loose):
            _, extra = np.unique(rest_tkey[attach < 0], return_inverse=True)
            req[loose] = n_roots + extra.ravel()
    n_req = int(req.max()) + 1 if (req >= 0).any() else 0

    # -- rows of the request table: SGLang roots, then one per loose trace (its top span, earliest)
    ranks = track_ranks(trace, args)
    member = np.flatnonzero(req >= 0)
    rq = req[member]
    head = np.full(n_req, -1, np.int64)
    head[:n_roots] = root_rows
    if n_req > n_roots:
        loose_rows = member[rq >= n_roots]
        # the request's head: a top-level span (no parent in the dump), earliest first
        cand = loose_rows[parent[loose_rows] < 0]
        order = np.lexsort((cand, ts[cand]))
        cand = cand[order]
        r = req[cand]
        _, first = np.unique(r, return_index=True)
        head[r[first]] = cand[first]

    # -- number requests by start time (root start, else the earliest span)
    if n_req:
        first_ts = np.full(n_req, np.iinfo(np.int64).max, np.int64)
        np.minimum.at(first_ts, rq, ts[member])
        first_ts = np.where(head >= 0, np.minimum(first_ts, ts[np.maximum(head, 0)]), first_ts)
        first_ts[:n_roots] = ts[root_rows]
        order = np.lexsort((np.arange(n_req), first_ts))
        renumber = np.empty(n_req, np.int64)
        renumber[order] = np.arange(n_req)
        req[member] = renumber[rq]
        head = head[order]
        is_sglang_req = np.arange(n_req) < n_roots
        is_sglang_req = is_sglang_req[order]
    else:
        is_sglang_req = np.zeros(0, bool)

    # -- stage spans
    stage = is_span & (req >= 0) & ~is_root & ~is_thread
    if mode == "generic":
        stage = is_span & (req >= 0)
    srows = np.flatnonzero(stage)
    p = parent[srows]
    nested = (p >= 0) & stage[np.maximum(p, 0)]
    uniq_codes, code_inv = np.unique(name_code[srows], return_inverse=True)
    cat_names = [names[c] for c in uniq_codes.tolist()]
    req_role = _request_roles(ranks, head, track, names, name_code, is_sglang_req, mode)
    sp_track = track[srows]
    spans = pd.DataFrame(
        {
            "request": req[srows],
            "stage": pd.Categorical.from_codes(code_inv.ravel(), cat_names),
            "kind": pd.Categorical([STAGE_KINDS.get(s, "other") for s in cat_names], categories=KINDS)[code_inv.ravel()],
            "nested": nested,
            "ts_ns": ts[srows],
            "dur_ns": dur[srows],
            "track_id": sp_track.astype(np.int32),
            "pp_rank": _nullable(ranks.pp[sp_track]),
            "dp_rank": _nullable(ranks.dp[sp_track]),  # the request's where the thread has none (below)
            "tp_rank": _nullable(ranks.tp[sp_track]),
            "orphan": orphan[srows],
            "error": status[srows] == STATUS_ERROR,
            "row": srows,
        }
    )
    requests = _request_table(trace, args, ranks, spans, req, member, head, is_sglang_req, n_req, orphan,
                              status, ts, dur, track, req_role, names, name_code, mode)
    # a span on a thread without a DP rank (tokenizer, detokenizer) counts for its request's DP rank
    if len(spans):
        spans["dp_rank"] = spans["dp_rank"].fillna(pd.Series(requests["dp_rank"].to_numpy()[spans["request"].to_numpy()], index=spans.index))
    roles = requests["role"].astype("string").to_numpy(dtype=object)
    spans["role"] = pd.Categorical(roles[spans["request"].to_numpy()]) if len(spans) else pd.Categorical([])
    spans["status"] = pd.Categorical(requests["status"].to_numpy(dtype=object)[spans["request"].to_numpy()]) if len(spans) else pd.Categorical([])
    thread_names = np.asarray([ranks.names[t] if t >= 0 else ranks.names[i] for i, t in enumerate(ranks.thread.tolist())], dtype=object)
    spans["thread"] = pd.Categorical(thread_names[spans["track_id"].to_numpy()]) if len(spans) else pd.Categorical([])
    spans["rank"] = pd.Categorical(np.asarray([ranks.label(t) for t in range(len(ranks.names))], dtype=object)[spans["track_id"].to_numpy()]) if len(spans) else pd.Categorical([])
    notes = []
    if above.any():
        notes.append(f"{int(above.sum())} spans above request roots (router) belong to no request")
    if mode == "sglang" and n_req > n_roots:
        notes.append(f"{n_req - n_roots} trace(s) with spans but no request root (partial dump)")
    return RequestStages(spans, requests, mode, notes)


def _nullable(v: np.ndarray) -> pd.arrays.IntegerArray:
    """Int64 with NA where the rank is unknown (-1)."""
    return pd.arrays.IntegerArray(np.where(v >= 0, v, 0).astype(np.int64), v < 0)


def _request_roles(ranks: TrackRanks, head, track, names, name_code, is_sglang_req: np.ndarray, mode: str) -> np.ndarray:
    """Role per request: SGLang's root-name prefix (``"prefill Req …"``; ``unknown`` when the root
    is lost); a generic request's service."""
    roles = np.empty(len(head), dtype=object)
    for i, h in enumerate(head.tolist()):
        if h < 0 or (mode == "sglang" and not is_sglang_req[i]):
            roles[i] = "unknown"
        elif is_sglang_req[i]:
            name = names[name_code[h]]
            prefix = name.split("Req ", 1)[0].strip() if "Req " in name else ""
            roles[i] = prefix or "unified"
        else:
            roles[i] = ranks.service[ranks.process[track[h]]] or "unknown_service"
    return roles


def _request_table(trace, args, ranks, spans, req, member, head, root_ok, n_req, orphan, status, ts,
                   dur, track, roles, names, name_code, mode) -> pd.DataFrame:
    has_head = head >= 0
    h = np.where(has_head, head, 0)
    # extent of each request over all its spans (roots, thread spans, stages): the e2e of a
    # request without an SGLang root (generic traces, lost roots)
    m_start = np.full(n_req, np.iinfo(np.int64).max, np.int64)
    m_end = np.full(n_req, np.iinfo(np.int64).min, np.int64)
    np.minimum.at(m_start, req[member], ts[member])
    np.maximum.at(m_end, req[member], ts[member] + dur[member])
    start = np.where(root_ok, ts[h], m_start)
    e2e = np.where(root_ok, dur[h], m_end - m_start)

    # trace id: the head's, else any member's; rid: the root's `rid`, else (no root) the trace id
    hi = trace.column("slices", "trace_id_hi")
    lo = trace.column("slices", "trace_id_lo")
    any_row = np.full(n_req, -1, np.int64)
    any_row[req[member]] = member
    tid_row = np.where(has_head, head, any_row)
    trace_hex = np.asarray(_hex_trace(hi[tid_row], lo[tid_row]), dtype=object) if n_req else np.empty(0, object)
    rid_v = args.get("rid")
    rid = np.asarray(
        [
            (rid_v.strings[rid_v.string_code[h[i]]] if rid_v.string_code[h[i]] >= 0 else "") if root_ok[i] else trace_hex[i]
            for i in range(n_req)
        ],
        dtype=object,
    )
    # the root span's name (a generic trace's top span); none for an SGLang request whose root is lost
    root_name = np.asarray(
        [names[name_code[x]] if x >= 0 and (root_ok[i] or mode == "generic") else "" for i, x in enumerate(head.tolist())],
        dtype=object,
    )

    def head_attr(key: str, how: str):
        v = args.get(key)
        vals = v.doubles() if how == "double" else v.ints()
        got = vals[h]
        if how == "double":
            return np.where(has_head, got, np.nan)
        return np.where(has_head, got, _NONE)

    ttft_s = head_attr("gen_ai.latency.time_to_first_token", "double")
    ttft_ns = np.round(ttft_s * 1e9)
    prompt = head_attr("gen_ai.usage.prompt_tokens", "int")
    completion = head_attr("gen_ai.usage.completion_tokens", "int")
    fr = args.get("gen_ai.response.finish_reasons")
    finish = np.empty(n_req, dtype=object)
    decoded = {}
    for i in range(n_req):
        c = fr.string_code[h[i]] if has_head[i] and fr.has[h[i]] else -1
        if c < 0:
            finish[i] = ""
            continue
        if c not in decoded:
            s = fr.strings[c]
            try:
                val = json.loads(s)
                s = ",".join(str(x) for x in val) if isinstance(val, list) else str(val)
            except ValueError:
                pass
            decoded[c] = s
        finish[i] = decoded[c]
    room = args.get("bootstrap_room")
    bootstrap = np.asarray(
        [room.strings[room.string_code[x]] if x >= 0 and room.string_code[x] >= 0 else "" for x in head.tolist()], dtype=object
    ) if n_req else np.empty(0, object)

    # errors, orphans, ranks
    rq = req[member]
    err = np.zeros(n_req, bool)
    err[rq[status[member] == STATUS_ERROR]] = True
    n_orphans = np.bincount(rq[orphan[member]], minlength=n_req)
    tr = track[member]
    pairs = np.unique(np.stack([rq, tr], axis=1), axis=0) if len(member) else np.zeros((0, 2), np.int64)
    labels = np.asarray([ranks.label(t) for t in range(len(ranks.names))], dtype=object)
    rank_sets: list[list[str]] = [[] for _ in range(n_req)]
    dp_seen = np.full(n_req, -2, np.int64)  # -2 none yet, -3 several
    for r_, t_ in pairs.tolist():
        lab = labels[t_]
        if lab:
            rank_sets[r_].append(lab)
        d = ranks.dp[t_]
        if d >= 0:
            dp_seen[r_] = d if dp_seen[r_] in (-2, d) else -3
    rank_str = np.asarray([" ".join(sorted(set(s), key=_rank_key)) for s in rank_sets], dtype=object)
    n_threads = np.zeros(n_req, np.int64)
    if len(pairs):
        th = ranks.thread[pairs[:, 1]]
        tp_ = np.unique(np.stack([pairs[:, 0], th], axis=1)[th >= 0], axis=0)
        n_threads = np.bincount(tp_[:, 0], minlength=n_req).astype(np.int64)

    # stage sums per request (all stage spans, summed over threads) and per kind (top level)
    out = {
        "rid": pd.array(rid, dtype="string"),
        "role": pd.array(roles, dtype="string"),
        "trace_id": pd.array(trace_hex, dtype="string"),
        "root": pd.array(root_name, dtype="string"),
        "status": None,  # filled below
        "partial": None,
        "missing": None,
        "orphan_spans": n_orphans.astype(np.int64),
        "dp_rank": pd.arrays.IntegerArray(np.maximum(dp_seen, 0), dp_seen < 0),
        "ranks": pd.array(rank_str, dtype="string"),
        "n_threads": n_threads.astype(np.int64),
        "n_spans": np.bincount(spans["request"].to_numpy(), minlength=n_req).astype(np.int64) if n_req else np.zeros(0, np.int64),
        "start_ns": start.astype(np.int64),
        "e2e_ns": e2e.astype(np.int64),
        "ttft_ns": pd.arrays.IntegerArray(np.nan_to_num(ttft_ns).astype(np.int64), np.isnan(ttft_ns)),
        "prompt_tokens": pd.arrays.IntegerArray(np.maximum(prompt, 0), prompt == _NONE),
        "completion_tokens": pd.arrays.IntegerArray(np.maximum(completion, 0), completion == _NONE),
        "finish_reason": pd.array(finish, dtype="string"),
        "bootstrap_room": pd.array(bootstrap, dtype="string"),
    }
    sreq = spans["request"].to_numpy()
    sdur = spans["dur_ns"].to_numpy()
    top = ~spans["nested"].to_numpy()
    kind_codes = spans["kind"].cat.codes.to_numpy()
    for k, kind in enumerate(KINDS):
        sel = top & (kind_codes == k)
        out[f"{kind}_ns"] = _int_sum(sreq[sel], sdur[sel], n_req)
    stage_codes = spans["stage"].cat.codes.to_numpy()
    cats = list(spans["stage"].cat.categories)
    present = {}
    for s, stage_name in enumerate(cats):
        sel = stage_codes == s
        sums = _int_sum(sreq[sel], sdur[sel], n_req)
        cnt = np.bincount(sreq[sel], minlength=n_req)
        out[f"stage:{stage_name}"] = pd.arrays.IntegerArray(sums, cnt == 0)
        present[stage_name] = cnt > 0

    # partial: root missing, orphans, or expected stages absent
    missing = [[] for _ in range(n_req)]
    for i in np.flatnonzero(~root_ok).tolist():
        missing[i].append("root" if mode == "sglang" else "")
    if mode == "generic":  # a generic trace is partial when it has more than one top span
        tops = np.bincount(rq[(trace.column("slices", "parent")[member] < 0)], minlength=n_req)
        for i in np.flatnonzero(tops > 1).tolist():
            missing[i].append("parent spans")
        missing = [[m for m in ms if m] for ms in missing]
    for i in np.flatnonzero(n_orphans > 0).tolist():
        missing[i].append(f"parents of {n_orphans[i]} span(s)")
    if mode == "sglang":
        role_arr = roles
        comp = completion
        expect_tok = "tokenize" in present
        for stage_name, rule in (
            ("prefill_forward", lambda i: role_arr[i] in ("unified", "prefill")),
            ("decode_forward", lambda i: role_arr[i] in ("unified", "decode") and comp[i] != _NONE and comp[i] > 1),
            ("tokenize", lambda i: expect_tok and role_arr[i] in ("unified", "prefill")),
        ):
            have = present.get(stage_name, np.zeros(n_req, bool))
            for i in np.flatnonzero(root_ok).tolist():
                if not have[i] and rule(i):
                    missing[i].append(stage_name)
    aborted = err.copy() if mode != "generic" else np.zeros(n_req, bool)
    aborted |= np.asarray(["abort" in f for f in finish], dtype=bool) if n_req else np.zeros(0, bool)
    partial = np.asarray([bool(m) for m in missing], dtype=bool) if n_req else np.zeros(0, bool)
    status_arr = np.where(aborted, "aborted", np.where(err, "error", np.where(partial, "partial", "ok")))
    out["status"] = pd.array(status_arr.astype(object), dtype="string")
    out["partial"] = partial
    out["missing"] = pd.array(np.asarray(["; ".join(m) for m in missing], dtype=object), dtype="string")
    df = pd.DataFrame(out)
    df.index.name = "request"
    return df


def _int_sum(keys: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Exact int64 sums of `values` by `keys` (np.bincount would go through float64)."""
    out = np.zeros(n, np.int64)
    np.add.at(out, keys, values)
    return out


def _rank_key(label: str):
    out = []
    for part in label.split("-"):
        try:
            out.append(int(part[2:]))
        except ValueError:
            out.append(-1)
    return out


# ---- the per-stage summary ---------------------------------------------------------------------


def stage_summary(result: RequestStages | Trace, by: Sequence[str] | str = (), *, request_rows: bool = True) -> pd.DataFrame:
    """One row per stage (per group): span count, requests, total, mean, p50/p90/p99/max (ns).

    `by` picks group keys from ``role``, ``dp`` (``dp_rank``), ``pp``, ``tp``, ``rank``,
    ``thread``, ``status``. Percentiles are over single spans (one stage on one thread),
    interpolated linearly, so they are float ns; totals and maxima are exact int64 ns.
    ``share`` is the stage's total over the group's top-level stage total (nested stages
    are inside that total, so theirs overlap it). With `request_rows`, two rows come first:
    ``(e2e)`` (the root span's duration) and ``(ttft)`` (``gen_ai.latency.time_to_first_token``)
    over requests; per-rank keys leave them out (a request spans ranks).

    Examples:
        >>> stage_summary(rs)                      # the whole dump
        >>> stage_summary(rs, by=["role", "dp"])   # PD roles, per DP rank
    """
    if isinstance(result, Trace):
        result = analyze(result)
    if isinstance(by, str):
        by = [b for b in by.split(",") if b]
    keys = []
    for b in by:
        if b not in GROUP_KEYS:
            raise ValueError(f"cannot group by {b!r}: choose from {', '.join(sorted(set(GROUP_KEYS)))}")
        if GROUP_KEYS[b] not in keys:
            keys.append(GROUP_KEYS[b])
    spans = result.spans
    cols = keys + ["stage", "kind", "level", "nested", "n_spans", "n_requests", "total_ns", "mean_ns", "p50_ns",
                   "p90_ns", "p99_ns", "max_ns", "share"]
    parts = []
    if request_rows and not (set(keys) & {"pp_rank", "tp_rank", "thread", "rank"}):
        rows = _request_rows(result.requests, keys)
        if len(rows):
            parts.append(rows)
    if len(spans):
        # aggregate on one integer group id: NA keys (a thread without a rank) stay groups of their own
        gid = spans.groupby(keys + ["stage"], observed=True, sort=True, dropna=False).ngroup().to_numpy()
        frame = pd.DataFrame({"g": gid, "dur_ns": spans["dur_ns"].to_numpy(), "request": spans["request"].to_numpy(),
                              "nested": spans["nested"].to_numpy()})
        g = frame.groupby("g", sort=True)
        agg = g["dur_ns"].agg(n_spans="size", total_ns="sum", max_ns="max")
        q = g["dur_ns"].quantile([0.5, 0.9, 0.99]).unstack()
        q.columns = ["p50_ns", "p90_ns", "p99_ns"]
        agg = agg.join(q)
        agg["n_requests"] = g["request"].nunique()
        agg["nested"] = g["nested"].mean() > 0.5
        first = np.unique(gid, return_index=True)[1]
        for k in keys + ["stage"]:
            agg[k] = spans[k].to_numpy()[first] if k != "stage" else spans[k].astype(str).to_numpy()[first]
        agg = agg.reset_index(drop=True)
        agg["mean_ns"] = agg["total_ns"] / agg["n_spans"]
        agg["kind"] = [STAGE_KINDS.get(s, "other") for s in agg["stage"].astype(str)]
        agg["level"] = pd.array([STAGE_LEVELS.get(s) for s in agg["stage"].astype(str)], dtype="Int64")
        if keys:
            kid = agg.groupby(keys, dropna=False, sort=False).ngroup().to_numpy()
            top = np.zeros(kid.max() + 1, np.int64)
            np.add.at(top, kid, np.where(agg["nested"].to_numpy(), 0, agg["total_ns"].to_numpy()))
            denom = top[kid].astype(np.float64)
        else:
            denom = float(agg.loc[~agg["nested"], "total_ns"].sum())
        agg["share"] = agg["total_ns"] / denom
        agg["stage"] = agg["stage"].astype(str)
        # stages in pipeline order: by first appearance in time, nested after their parents' level
        first_ts = spans.groupby("stage", observed=True)["ts_ns"].min()
        agg["_order"] = agg["stage"].map(first_ts.rename(index=str))
        agg = agg.sort_values(keys + ["nested", "_order", "stage"]).drop(columns="_order")
        parts.append(agg)
    if not parts:
        return _empty(cols, keys)
    out = pd.concat([p[cols] for p in parts], ignore_index=True)
    return _typed(out, keys)


def _request_rows(requests: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    rows = []
    groups = requests.groupby(keys, observed=True, dropna=False) if keys else [((), requests)]
    for key, df in groups:
        key = key if isinstance(key, tuple) else (key,)
        for label, col in (("(e2e)", "e2e_ns"), ("(ttft)", "ttft_ns")):
            v = df[col].dropna().to_numpy(dtype=np.int64)
            if not len(v):
                continue
            row = dict(zip(keys, key))
            row.update(stage=label, kind="request", level=pd.NA, nested=False, n_spans=len(v), n_requests=len(v),
                       total_ns=int(v.sum()), mean_ns=float(v.mean()), p50_ns=float(np.percentile(v, 50)),
                       p90_ns=float(np.percentile(v, 90)), p99_ns=float(np.percentile(v, 99)), max_ns=int(v.max()),
                       share=np.nan)
            rows.append(row)
    return pd.DataFrame(rows)


def _empty(cols: list[str], keys: list[str]) -> pd.DataFrame:
    return _typed(pd.DataFrame({c: [] for c in cols}), keys)


def _typed(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    types = {"stage": "string", "kind": "string", "level": "Int64", "nested": bool, "n_spans": np.int64,
             "n_requests": np.int64, "total_ns": np.int64, "mean_ns": np.float64, "p50_ns": np.float64,
             "p90_ns": np.float64, "p99_ns": np.float64, "max_ns": np.int64, "share": np.float64}
    for k in keys:
        types[k] = "Int64" if k.endswith("_rank") else "string"
    return df.astype({c: t for c, t in types.items() if c in df.columns})


__all__ = ["RequestStages", "analyze", "stage_summary", "STAGE_KINDS", "STAGE_LEVELS", "Args", "track_ranks"]
