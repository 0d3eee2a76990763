"""Can the iteration ids in SGLang scheduler logs be trusted? Which lines are wrong?

    >>> from analyzers import sglang_log, iterations
    >>> lines = sglang_log.parse_log(stream)
    >>> res = iterations.check(lines)                      # optional: trace_steps=frame
    >>> res.classification, res.verdict()
    ('pre-fix overlap labelling', '1210 lines, 1187 findings (...) — pre-fix overlap labelling')
    >>> res.findings                                       # line, stream, kind, reason, ...

**Background** (seed 001, SGLang PR #20845). With ``SGLANG_LOG_FORWARD_ITERS=1`` every
``Prefill batch``/``Decode batch`` line carries ``[N]``. Before the fix, N was read from the
global ``forward_ct`` when the result was *reported*: prefill printed ``forward_ct + 1``,
decode ``forward_ct``. Under overlap scheduling batch k is reported after batch k+1 was
launched (when there was one), so a prefill line says k+2 (k+1 when the scheduler then went
idle) and a decode line k+1 (k). The fix prints ``batch.forward_iter``, snapshotted at launch.

**How a log is judged** (decisions.md, "Iteration checks from a log alone"). Lines are split
into streams, one per logging scheduler: the file plus the rank tokens of the prefix
(``PP1-DP0-TP0``). Three labellings are fitted to every stream:

* ``fixed``: the id is the iteration;
* ``prefix_overlap``: prefill = iteration + 1 + n, decode = iteration + n, where n = 1 when
  the next batch was launched before this one was reported and 0 when the scheduler went idle
  (then the next batch is a prefill with the next id). n is inferred per line by a small
  Viterbi pass over the stream (4 states), preferring n = 1;
* ``prefix_sync`` (overlap off): prefill = iteration + 1, decode = iteration.

Each labelling implies an iteration per line and is checked against what must hold:
iterations strictly increase in a stream (log order is processing order; a line without an
id still takes one); between two decode lines there are exactly ``decode_log_interval``
decode batches plus one batch per prefill line in between (only ``≥`` when the stream shows
extra unlogged batches, e.g. DP-attention idle batches); after an idle point the next line is
a prefill with the next id. The labelling with the fewest violations, summed over the
streams of a file, wins (ties: fixed, then overlap unless the start-up ``server_args`` line
says ``disable_overlap_schedule=True``, then sync). A fixed labelling with no violation is
**consistent**; a pre-fix one with at most 1 % unexplained lines is **pre-fix overlap
labelling**; anything else is **inconsistent**.

**Findings**, one row per line (``line``, ``stream``, ``kind``, ``reason``, ``expected``,
``got``, ``evidence``, ``message``; ``file`` first when the frame has one):

=================  =========  ==========================================================
reason             evidence   meaning
=================  =========  ==========================================================
duplicate_id       proven     same id as the neighbouring batch line of its stream
non_increasing     proven     id lower than the line before (or higher than the one after)
prefill_ahead      suspect    prefill id one ahead of the decode sequence (forward_ct + 1)
overlap_shift      suspect    decode id of the batch launched after it (pre-fix overlap)
gap_mismatch       proven     decode-to-decode gap does not fit the interval + prefills
missing_id         proven     no ``[N]`` while other lines of the file have one
trace_mismatch     trace      the profiler's step at that time has another iteration
=================  =========  ==========================================================

A wrong line gets the first reason that applies, in that order; under a pre-fix labelling
every line whose logged id differs from the inferred iteration is listed (``expected`` is
the iteration, ``got`` the logged id). Unexplained violations are listed on the later line.

**With a trace** (``trace_steps``: ``step_index``, ``ts_ns``, ``end_ns``, ``mode``,
``iteration``; optional ``rank`` or ``dp``/``pp`` to pick the stream). Log times are naive
with 1 s or 1 ms resolution: the zone is ``log_tz`` (seconds east of UTC) or the quarter-hour
offset that puts the most lines on the trace. Batch k is reported after step k's CPU range
ended and before step k+2 started, so a line's candidates are the last step started before
it and the one before that (more with 1 s times), of a compatible mode (prefill: prefill or
mixed steps; decode: decode, verify or mixed; draft steps are skipped). Step positions are
the ``ProfilerStep`` iterations when every step has one (taken as forward iterations), else
the step order with the offset to the log fitted. Lines whose iteration under a labelling is
none of their candidates count as violations of that labelling (so the trace takes part in
the choice); then, under the chosen one, a line whose logged id is none of its candidates is
wrong by the trace: its finding gets evidence ``trace`` (and the trace's iteration), or a
``trace_mismatch`` is added; a suspect whose logged id the trace allows while it rules out the
inferred iteration is dropped.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = [
    "check",
    "Findings",
    "REASONS",
    "DUPLICATE_ID",
    "NON_INCREASING",
    "PREFILL_AHEAD",
    "OVERLAP_SHIFT",
    "GAP_MISMATCH",
    "MISSING_ID",
    "TRACE_MISMATCH",
    "CONSISTENT",
    "PRE_FIX",
    "INCONSISTENT",
    "NO_IDS",
    "EVIDENCE",
    "FINDING_COLUMNS",
    "reason_for",
    "parse_tz",
]

DUPLICATE_ID = "duplicate_id"
NON_INCREASING = "non_increasing"
PREFILL_AHEAD = "prefill_ahead"
OVERLAP_SHIFT = "overlap_shift"
GAP_MISMATCH = "gap_mismatch"
MISSING_ID = "missing_id"
TRACE_MISMATCH = "trace_mismatch"

REASONS = {
    DUPLICATE_ID: "same id as the neighbouring batch line of its stream",
    NON_INCREASING: "id lower than the line before it (or higher than the line after it)",
    PREFILL_AHEAD: "prefill id one ahead of the decode sequence (pre-fix forward_ct + 1)",
    OVERLAP_SHIFT: "decode id of the batch launched after it (pre-fix overlap labelling)",
    GAP_MISMATCH: "gap to the previous decode line does not fit the decode log interval",
    MISSING_ID: "no iteration id while other lines have one",
    TRACE_MISMATCH: "the profiler step at this time carries another iteration",
}
EVIDENCE = {
    DUPLICATE_ID: "proven",
    NON_INCREASING: "proven",
    PREFILL_AHEAD: "suspect",
    OVERLAP_SHIFT: "suspect",
    GAP_MISMATCH: "proven",
    MISSING_ID: "proven",
    TRACE_MISMATCH: "trace",
}

CONSISTENT = "consistent"
PRE_FIX = "pre-fix overlap labelling"
INCONSISTENT = "inconsistent"
NO_IDS = "no ids"
_SEVERITY = {NO_IDS: 0, CONSISTENT: 1, PRE_FIX: 2, INCONSISTENT: 3}

FIXED, SYNC, OVERLAP = "fixed", "prefix_sync", "prefix_overlap"
_W = 1000  # cost of one violation; an idle point (n = 0) costs 1
_INF = 1 << 60
_PREFILL, _DECODE = 0, 1
_MODE_OK = {
    _PREFILL: {"prefill", "mixed", "other"},
    _DECODE: {"decode", "verify", "mixed", "other"},
}
_EXTRA_RANKS = ("attn_cp", "moe_dp", "attn_tp", "attn_dp", "cp")

FINDING_COLUMNS = ["line", "stream", "kind", "reason", "expected", "got", "evidence", "message"]


@dataclass
class Findings:
    """The result of `check`: `findings` (one row per flagged line and reason, columns
    `FINDING_COLUMNS`, ``file`` first for several files), `summary` (counts, ``by_reason``,
    the labelling per file, violations per labelling, interval, trace line-up, per-stream
    details), `classification` and `expected_iter` (the inferred iteration of every input
    row, aligned to its index; null where unknown)."""

    findings: pd.DataFrame
    summary: dict
    classification: str
    expected_iter: pd.Series = field(repr=False, default=None)  # per input row: the inferred iteration

    def __len__(self) -> int:
        return len(self.findings)

    def verdict(self) -> str:
        """``N lines, M findings (reason: count, ...) — classification``."""
        s = self.summary
        by = s.get("by_reason", {})
        detail = f" ({', '.join(f'{k}: {v}' for k, v in by.items())})" if by else ""
        return f"{s.get('lines', 0)} lines, {s.get('findings', 0)} findings{detail} — {self.classification}"


# -- streams ---------------------------------------------------------------------------------

@dataclass(eq=False)
class _Stream:
    label: str
    file: object
    ranks: dict
    rows: np.ndarray  # positions in the input frame, in log order
    kind: np.ndarray  # 0 prefill, 1 decode
    has: np.ndarray  # bool: carries an id
    ids: np.ndarray  # int64 (0 where missing)
    line: np.ndarray
    ts: np.ndarray | None = None  # int64 naive ns, or None
    anchored: bool = False  # the stream starts at a server start-up: forward_ct began at 0
    # filled by the analysis
    t: np.ndarray | None = None  # inferred iteration per labelled line
    n: np.ndarray | None = None
    model: str | None = None
    violations: dict = field(default_factory=dict)
    idles: int = 0
    epoch: int = 0


def _rank_columns(lines: pd.DataFrame) -> list[str]:
    cols = list(lines.attrs.get("ranks") or [])
    for c in ("dp", "pp", "tp", "ep", *_EXTRA_RANKS):
        if c in lines.columns and c not in cols:
            cols.append(c)
    return [c for c in cols if c in lines.columns]


def _label(ranks: dict) -> str:
    order = ["pp", "dp", "tp", "ep"] + sorted(k for k in ranks if k not in ("pp", "dp", "tp", "ep"))
    return "-".join(f"{k.upper()}{ranks[k]}" for k in order if ranks.get(k) is not None) or "main"


def _epochs(lines: pd.DataFrame, line: np.ndarray) -> np.ndarray:
    """Per row: how many server start-ups (``server_args`` lines) precede it in its file."""
    starts = lines.attrs.get("server_starts") or []
    n = len(lines)
    if not starts:
        return np.zeros(n, dtype=np.int64)
    if isinstance(starts, dict):
        out = np.zeros(n, dtype=np.int64)
        if "file" not in lines.columns:
            return out
        files = lines["file"].astype(str).to_numpy()
        for name, st in starts.items():
            sel = files == str(name)
            if st:
                out[sel] = np.searchsorted(np.asarray(sorted(st)), line[sel], side="right")
        return out
    return np.searchsorted(np.asarray(sorted(starts)), line, side="right").astype(np.int64)


def _streams(lines: pd.DataFrame) -> list[_Stream]:
    n = len(lines)

    kind = (lines["kind"].astype(str).to_numpy() == "decode").astype(np.int8)
    it = pd.array(lines["iter"], dtype="Int64")
    has = ~np.asarray(it.isna())
    ids = np.asarray(it.fillna(0).to_numpy(dtype=np.int64))
    line = lines["line"].to_numpy(dtype=np.int64) if "line" in lines.columns else np.arange(1, n + 1)
    ts = None
    if "ts" in lines.columns:
        t = pd.to_datetime(lines["ts"], errors="coerce")
        ts = np.where(t.isna().to_numpy(), np.iinfo(np.int64).min, t.to_numpy("datetime64[ns]").astype(np.int64))
    rank_cols = _rank_columns(lines)
    epoch = _epochs(lines, line)
    keys = (["file"] if "file" in lines.columns else []) + rank_cols + (["_epoch"] if epoch.any() else [])
    if keys:
        key_frame = lines[[k for k in keys if k != "_epoch"]].copy()
        if "_epoch" in keys:
            key_frame["_epoch"] = epoch
        for c in rank_cols:
            key_frame[c] = pd.array(key_frame[c], dtype="Int64").fillna(-1)
        codes = key_frame.groupby(keys, sort=False, observed=True, dropna=False).ngroup().to_numpy()
    else:
        codes = np.zeros(n, dtype=np.int64)
    file_codes = lines["file"].cat.codes.to_numpy() if "file" in lines.columns and hasattr(lines["file"], "cat") else (
        pd.factorize(lines["file"])[0] if "file" in lines.columns else np.zeros(n, dtype=np.int64))
    order = np.lexsort((line, file_codes, codes))
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    out = []
    for rows in np.split(order, bounds) if n else []:
        first = rows[0]
        ranks = {}
        for c in rank_cols:
            v = lines[c].iloc[first]
            if not pd.isna(v):
                ranks[c] = int(v)
        label = _label(ranks)
        f = lines["file"].iloc[first] if "file" in lines.columns else None
        st = _Stream(label, f, ranks, rows, kind[rows], has[rows], ids[rows], line[rows], None if ts is None else ts[rows])
        dp_attention = str(_server_args_for(lines, f).get("enable_dp_attention")) == "True"
        st.anchored = bool(epoch[first] > 0) and not dp_attention
        st.epoch = int(epoch[first])
        out.append(st)
    files = Counter(s.file for s in out)
    epochs = Counter((s.file, s.label) for s in out)
    for s in out:
        if epochs[(s.file, s.label)] > 1 or s.epoch > 1:
            s.label = f"{s.label}#{s.epoch}"
    if len(files) > 1:
        for s in out:
            s.label = f"{s.file}:{s.label}"
    out.sort(key=lambda s: (str(s.file), [s.ranks.get(k, -1) for k in ("pp", "dp", "tp", "ep")], s.label))
    return out


# -- per-stream structure --------------------------------------------------------------------

@dataclass
class _Geo:
    """Index arithmetic over the labelled lines of a stream."""

    J: np.ndarray  # positions (in stream) of labelled lines
    L: np.ndarray  # their ids
    K: np.ndarray  # their kinds
    u: np.ndarray  # unlabelled batch lines between j-1 and j (u[0] = 0)
    prevD: np.ndarray  # index (in J) of the previous labelled decode line, -1 if none
    E_base: np.ndarray  # for decode j: (unlabelled decodes between + 1), P prefills between
    P_between: np.ndarray
    next_kind: np.ndarray  # kind of the batch line right after j (-1: none)
    next_labelled: np.ndarray  # that line is j+1
    anchor: bool = False  # labelled line 0 is the stream's first batch, a prefill: iteration 1
    dec0: int = -1  # anchored: index of the first labelled decode line
    dec0_E: tuple = (0, 0)  # its (unlabelled decodes before + 1, prefill lines before)


def _geo(s: _Stream) -> _Geo:
    J = np.flatnonzero(s.has)
    L = s.ids[J]
    K = s.kind[J].astype(np.int8)
    m = len(J)
    u = np.zeros(m, dtype=np.int64)
    if m > 1:
        u[1:] = np.diff(J) - 1
    is_p = (s.kind == _PREFILL).astype(np.int64)
    un_d = ((s.kind == _DECODE) & ~s.has).astype(np.int64)
    cum_p = np.cumsum(is_p)
    cum_ud = np.cumsum(un_d)
    dec = np.flatnonzero(K == _DECODE)
    prevD = np.full(m, -1, dtype=np.int64)
    if len(dec) > 1:
        prevD[dec[1:]] = dec[:-1]
    E_base = np.zeros(m, dtype=np.int64)
    P_between = np.zeros(m, dtype=np.int64)
    has_prev = prevD >= 0
    b = np.flatnonzero(has_prev)
    a = prevD[b]
    E_base[b] = cum_ud[J[b]] - cum_ud[J[a]] + 1
    P_between[b] = cum_p[J[b]] - cum_p[J[a]]
    n_all = len(s.kind)
    nxt = J + 1
    next_kind = np.where(nxt < n_all, s.kind[np.minimum(nxt, n_all - 1)], -1).astype(np.int64)
    next_labelled = np.zeros(m, dtype=bool)
    if m > 1:
        next_labelled[:-1] = J[1:] == J[:-1] + 1
    g = _Geo(J, L, K, u, prevD, E_base, P_between, next_kind, next_labelled)
    if s.anchored and m:
        g.anchor = bool(J[0] == 0 and K[0] == _PREFILL)
        if len(dec):
            d0 = int(dec[0])
            g.dec0 = d0
            g.dec0_E = (int(cum_ud[J[d0]]) + 1, int(cum_p[J[d0]]))
    return g


def _delta(model: str, K: np.ndarray, n: np.ndarray | None = None) -> np.ndarray:
    if model == FIXED:
        return np.zeros(len(K), dtype=np.int64)
    if model == SYNC:
        return (K == _PREFILL).astype(np.int64)
    return (K == _PREFILL).astype(np.int64) + n


def _violations(g: _Geo, t: np.ndarray, interval: int | None, gap_exact: bool, n: np.ndarray | None = None) -> dict:
    """Boolean arrays (per labelled line) of the violated constraints for iterations `t`."""
    m = len(t)
    strict = np.zeros(m, dtype=bool)
    if m > 1:
        strict[1:] = (t[1:] - t[:-1]) < 1 + g.u[1:]
    gap = np.zeros(m, dtype=bool)
    gap_expected = np.zeros(m, dtype=np.int64)
    if interval:
        b = np.flatnonzero(g.prevD >= 0)
        exp = t[g.prevD[b]] + g.E_base[b] * interval + g.P_between[b]
        gap_expected[b] = exp
        d = t[b] - exp
        gap[b] = (d != 0) if gap_exact else (d < 0)
    if g.anchor and m and t[0] != 1:
        strict[0] = True
    if interval and g.dec0 >= 0:
        e = g.dec0_E[0] * interval + g.dec0_E[1]
        gap_expected[g.dec0] = e
        d = t[g.dec0] - e
        gap[g.dec0] = bool(d != 0) if gap_exact else bool(d < 0)
    idle = np.zeros(m, dtype=bool)
    if n is not None:
        zero = n == 0
        nk = g.next_kind
        bad = zero & (nk == _DECODE)
        lab = zero & g.next_labelled
        if m > 1:
            ok_next = np.zeros(m, dtype=bool)
            ok_next[:-1] = (g.K[1:] == _PREFILL) & (t[1:] == t[:-1] + 1)
            bad |= lab & ~ok_next
        idle = bad
    return {"strict": strict, "gap": gap, "idle": idle, "gap_expected": gap_expected}


class _Costs:
    """Per-line transition costs of the pre-fix overlap labelling (see `_viterbi`)."""

    def __init__(self, g: _Geo, interval: int | None, gap_exact: bool) -> None:
        m = len(g.L)
        L, K, u = g.L, g.K, g.u
        dP = (K == _PREFILL).astype(np.int64)  # δ = dP + n
        # t_j - t_prev = (L_j - dP_j - n_j) - (L_p - dP_p - n_p); `base` is that minus 1 + u at n = 0
        base = np.zeros(m, dtype=np.int64)
        if m > 1:
            base[1:] = (L[1:] - dP[1:]) - (L[:-1] - dP[:-1]) - 1 - u[1:]
        strict = [[(base - nj + np_ < 0).astype(np.int64) * _W for nj in (0, 1)] for np_ in (0, 1)]  # [n_prev][n_j]
        idle = [np.zeros(m, dtype=np.int64), np.zeros(m, dtype=np.int64)]  # [n_j], paid when n_prev = 0
        if m > 1:
            prev_next_decode = np.zeros(m, dtype=bool)
            prev_next_decode[1:] = g.next_kind[:-1] == _DECODE
            prev_next_is_j = np.zeros(m, dtype=bool)
            prev_next_is_j[1:] = g.next_labelled[:-1]
            for nj in (0, 1):
                diff = base + 1 + u - nj  # t_j - t_prev when n_prev = 0
                bad = prev_next_decode | (prev_next_is_j & ((K != _PREFILL) | (diff != 1)))
                idle[nj] = bad.astype(np.int64) * _W
        gapc = [[np.zeros(m, dtype=np.int64) for _ in (0, 1)] for _ in (0, 1)]  # [n_a][n_j]
        if interval:
            b = np.flatnonzero(g.prevD >= 0)
            a = g.prevD[b]
            d0 = L[b] - L[a] - (g.E_base[b] * interval + g.P_between[b])
            for na in (0, 1):
                for nj in (0, 1):
                    d = d0 - nj + na
                    gapc[na][nj][b] = ((d != 0) if gap_exact else (d < 0)).astype(np.int64) * _W
            if g.dec0 >= 0:  # anchored: the first logged decode is the interval-th decode
                e = g.dec0_E[0] * interval + g.dec0_E[1]
                for nj in (0, 1):
                    d = int(L[g.dec0]) - nj - e
                    for na in (0, 1):
                        gapc[na][nj][g.dec0] = _W if ((d != 0) if gap_exact else (d < 0)) else 0
        self.m = m
        self.K = K
        self.strict, self.idle, self.gapc = strict, idle, gapc
        self.last_idle_bad = bool(m and g.next_kind[-1] == _DECODE)
        self.first_decode = bool(m and K[0] == _DECODE)
        self.anchor_cost = [0, 0]  # by n of line 0
        if g.anchor:  # line 0 is a prefill at iteration 1: t_0 = L_0 - 1 - n
            self.anchor_cost = [_W if int(L[0]) - 1 - n != 1 else 0 for n in (0, 1)]

    def dp(self, lo: int, hi: int) -> tuple[np.ndarray, int]:
        """Best n for lines lo..hi. Outside the window every line has n = 1: the line before
        `lo` (a decode line) is in state (1, 1), and so must `hi` be unless it is the last."""
        INF = _INF
        sl = slice(lo, hi + 1)
        K = self.K[sl].tolist()
        S = [[self.strict[a][b][sl].tolist() for b in (0, 1)] for a in (0, 1)]
        I = [self.idle[0][sl].tolist(), self.idle[1][sl].tolist()]
        G = [[self.gapc[a][b][sl].tolist() for b in (0, 1)] for a in (0, 1)]
        m = hi - lo + 1
        back = bytearray(4 * m)
        # states s = 2*n + nl (nl: n of the last labelled decode line)
        if lo == 0:
            a0, a1 = self.anchor_cost
            if K[0] == _DECODE:
                V = [1 + G[0][0][0] + a0, INF, INF, G[0][1][0] + a1]
            else:
                V = [1 + a0, 1 + a0, a1, a1]
            first = 1
        else:
            V = [INF, INF, INF, 0]
            first = 0
        for j in range(first, m):
            v00, v01, v10, v11 = V
            new = [INF, INF, INF, INF]
            if K[j] == _DECODE:
                for nj in (0, 1):
                    s_idle = I[nj][j]
                    best, arg = INF, 0
                    for sp, vp, np_, nl in ((0, v00, 0, 0), (1, v01, 0, 1), (2, v10, 1, 0), (3, v11, 1, 1)):
                        if vp >= INF:
                            continue
                        c = vp + S[np_][nj][j] + G[nl][nj][j] + (s_idle if np_ == 0 else 0)
                        if c < best:
                            best, arg = c, sp
                    s_new = 3 if nj else 0
                    new[s_new] = min(best + (0 if nj else 1), INF)
                    back[4 * j + s_new] = arg
            else:
                for nj in (0, 1):
                    s_idle = I[nj][j]
                    e = 0 if nj else 1
                    for nl in (0, 1):
                        c0 = V[nl] + S[0][nj][j] + s_idle  # from (0, nl)
                        c1 = V[2 + nl] + S[1][nj][j]  # from (1, nl)
                        best, arg = (c0, nl) if c0 <= c1 else (c1, 2 + nl)
                        s_new = 2 * nj + nl
                        new[s_new] = min(best + e, INF)
                        back[4 * j + s_new] = arg
            V = new
        if hi == self.m - 1:
            if self.last_idle_bad:
                V = [V[0] + _W, V[1] + _W, V[2], V[3]]
            s = min(range(4), key=lambda k: (V[k], -k))
        else:
            s = 3
        cost = V[s]
        n = np.zeros(m, dtype=np.int64)
        for j in range(m - 1, -1, -1):
            n[j] = s >> 1
            if j >= first and (j or lo):
                s = back[4 * j + s]
        return n, int(cost)


_PAD = 4  # decode lines around a violation that the windowed Viterbi may also change
FULL_DP_MAX = 400_000  # lines: re-run a window-less pass when windows leave violations


def _viterbi(g: _Geo, interval: int | None, gap_exact: bool) -> tuple[np.ndarray, int]:
    """n per labelled line under the pre-fix overlap labelling, and the path's cost
    (violations × 1000 + idle points).

    n = 1 everywhere (a busy scheduler) is the start; only windows around the lines where that
    violates a constraint, padded to the 4th decode line on each side, go through the Viterbi
    pass (4 states: n of this line × n of the last decode line); windows that touch merge."""
    m = len(g.L)
    if m == 0:
        return np.zeros(0, dtype=np.int64), 0
    costs = _Costs(g, interval, gap_exact)
    ones = np.ones(m, dtype=np.int64)
    v = _violations(g, g.L - _delta(OVERLAP, g.K, ones), interval, gap_exact, ones)
    bad = np.flatnonzero(v["strict"] | v["gap"] | v["idle"])
    if g.anchor:
        bad = np.union1d(bad, [0])
    if not len(bad):
        return ones, 0
    dec = np.flatnonzero(g.K == _DECODE)
    i = np.searchsorted(dec, bad)
    lo_i = i - _PAD
    hi_i = i + _PAD
    los = np.where(lo_i >= 0, dec[np.clip(lo_i, 0, max(len(dec) - 1, 0))] + 1 if len(dec) else 0, 0)
    his = np.where(hi_i < len(dec), dec[np.clip(hi_i, 0, max(len(dec) - 1, 0))] if len(dec) else m - 1, m - 1)
    n = ones.copy()
    total = 0
    cur_lo, cur_hi = int(los[0]), int(his[0])
    windows = []
    for lo, hi in zip(los[1:].tolist(), his[1:].tolist()):
        if lo <= cur_hi + 1:
            cur_hi = max(cur_hi, hi)
        else:
            windows.append((cur_lo, cur_hi))
            cur_lo, cur_hi = lo, hi
    windows.append((cur_lo, cur_hi))
    for lo, hi in windows:
        w, c = costs.dp(lo, hi)
        n[lo : hi + 1] = w
        total += c
    if total >= _W and len(windows) > 1 and m <= FULL_DP_MAX:
        w, c = costs.dp(0, m - 1)
        if c < total:
            return w, c
    return n, total


# -- model choice ----------------------------------------------------------------------------

SHIFT_EVIDENCE = 8  # adjacent prefill→decode pairs one id apart, with no decode→prefill pair


def _adjacency(items) -> tuple[int, int]:
    """Read as iterations, count adjacent labelled pairs decode→prefill and prefill→decode
    whose ids differ by exactly 1. Where a prefill lands within the decode log cycle does not
    depend on the cycle, so with true iterations both counts are alike; a prefill labelled
    one ahead of the decode sequence makes the first impossible (it shows up as a gap of 2)
    while the second stays. Zero of the first against many of the second is the pre-fix
    signature even when no line collides."""
    a = b = 0
    for _s, g in items:
        if len(g.L) < 2:
            continue
        adj = g.next_labelled[:-1]
        d = g.L[1:] - g.L[:-1]
        k0, k1 = g.K[:-1], g.K[1:]
        a += int((adj & (k0 == _DECODE) & (k1 == _PREFILL) & (d == 1)).sum())
        b += int((adj & (k0 == _PREFILL) & (k1 == _DECODE) & (d == 1)).sum())
    return a, b


def _infer_interval(streams: list[_Stream], geos: list[_Geo]) -> int | None:
    vals = []
    for g in geos:
        b = np.flatnonzero((g.prevD >= 0) & (g.E_base == 1))
        if len(b):
            vals.append(g.L[b] - g.L[g.prevD[b]] - g.P_between[b])
    if not vals:
        return None
    v = np.concatenate(vals)
    v = v[v >= 1]
    if not len(v):
        return None
    vals_, counts = np.unique(v, return_counts=True)
    k = int(np.argmax(counts))
    if counts[k] < 0.5 * len(v):
        return None
    return int(vals_[k])


def _gap_exact(geos: list[_Geo], interval: int | None) -> bool:
    """Exact gaps unless the streams show only surplus ids (unlogged batches: DP-attention idle
    batches, PD prebuilt batches)."""
    if not interval:
        return True
    deficit = surplus = 0
    for g in geos:
        b = np.flatnonzero(g.prevD >= 0)
        if not len(b):
            continue
        d = g.L[b] - g.L[g.prevD[b]] - (g.E_base[b] * interval + g.P_between[b])
        deficit += int((d < 0).sum())
        surplus += int((d > 0).sum())
    return not (deficit == 0 and surplus > 0)


def _server_args_for(lines: pd.DataFrame, file) -> dict:
    """The start-up ``server_args`` of one file (several files: ``attrs["server_args_by_file"]``)."""
    by_file = lines.attrs.get("server_args_by_file")
    if by_file and file is not None:
        return by_file.get(file) or by_file.get(str(file)) or {}
    return lines.attrs.get("server_args") or {}


def _overlap_hint(server_args: dict, overlap: bool | None) -> bool | None:
    if overlap is not None:
        return overlap
    v = server_args.get("disable_overlap_schedule")
    if v in ("True", "true", "1"):
        return False
    if v in ("False", "false", "0"):
        return True
    return None


def _choose(per_model: dict[str, int], overlap: bool | None) -> str:
    order = [FIXED, SYNC] if overlap is False else [FIXED, OVERLAP, SYNC]
    return min(order, key=lambda m: (per_model.get(m, _INF), order.index(m)))


# -- the check -------------------------------------------------------------------------------

def check(
    lines: pd.DataFrame,
    trace_steps: pd.DataFrame | None = None,
    decode_log_interval: int | None = None,
    *,
    log_tz: float | str | None = None,
    overlap: bool | None = None,
    trace=None,
) -> Findings:
    """Check the iteration ids of parsed scheduler log lines (`analyzers.sglang_log`).

    `trace_steps`: the steps of a profiler trace (see the module doc), or `trace`: a trace
    object handed to ``analyzers.steps.trace_steps``. `decode_log_interval`: default from each
    file's ``server_args`` line, else inferred per file. `log_tz`: the logs' UTC offset in seconds or
    ``+HH:MM``; default ``auto`` (fitted on the trace). `overlap`: whether overlap scheduling
    was on (default: from each file's ``server_args``, else assumed on when the log cannot
    tell)."""
    if trace is not None and trace_steps is None:
        trace_steps = _steps_from_trace(trace)
    for col in ("kind", "iter"):
        if col not in lines.columns:
            raise ValueError(f"lines need a {col!r} column (from analyzers.sglang_log)")
    tz = parse_tz(log_tz)
    streams = _streams(lines)
    geos = [_geo(s) for s in streams]
    n_lines = len(lines)
    n_ids = int(sum(int(s.has.sum()) for s in streams))
    summary: dict = {"lines": n_lines, "lines_with_ids": n_ids, "streams": len(streams)}
    per_file_params: dict = {}

    chunks: list[dict] = []
    expected = np.full(n_lines, np.iinfo(np.int64).min, dtype=np.int64)
    classification = NO_IDS
    on_trace: dict[int, _OnTrace] = {}
    if trace_steps is not None:
        summary["trace"], on_trace = _trace_lines(streams, trace_steps, tz)
    if n_ids:
        by_file: dict = {}
        for s, g in zip(streams, geos):
            by_file.setdefault(s.file, []).append((s, g))
        models, per_file_viol, adjacency = {}, {}, {}
        for f, items in by_file.items():
            sa = _server_args_for(lines, f)
            f_geos = [g for _, g in items]
            interval_source = None
            if decode_log_interval:
                interval, interval_source = int(decode_log_interval), "given"
            elif str(sa.get("decode_log_interval", "")).isdigit() and int(sa["decode_log_interval"]) > 0:
                interval, interval_source = int(sa["decode_log_interval"]), "server_args"
            else:
                interval = _infer_interval([s for s, _ in items], f_geos)
                interval_source = "inferred" if interval else None
            gap_exact = _gap_exact(f_geos, interval)
            hint = _overlap_hint(sa, overlap)
            per_file_params[f] = {"decode_log_interval": interval, "interval_source": interval_source,
                                  "gap_check": "exact" if gap_exact else "at least", "overlap": hint}
            totals = {FIXED: 0, SYNC: 0, OVERLAP: 0}
            for s, g in items:
                if not len(g.L):
                    continue
                for model in (FIXED, SYNC):
                    t = g.L - _delta(model, g.K)
                    v = _violations(g, t, interval, gap_exact)
                    s.violations[model] = int(v["strict"].sum() + v["gap"].sum())
                    totals[model] += s.violations[model]
            a, b = _adjacency(items)
            shifted = totals[FIXED] == 0 and a == 0 and b >= SHIFT_EVIDENCE
            adjacency[f] = (a, b)
            traced = [(s, g) for s, g in items if id(s) in on_trace]
            if hint is False or (totals[FIXED] == 0 and not shifted and not traced):  # a tie goes to `fixed` anyway
                totals[OVERLAP] = _INF
            else:
                for s, g in items:
                    if not len(g.L):
                        continue
                    n, cost = _viterbi(g, interval, gap_exact)
                    s.n = n
                    s.violations[OVERLAP] = cost // _W
                    s.idles = cost % _W
                    totals[OVERLAP] += cost // _W
            for s, g in traced:  # lines whose iteration the trace rules out count as violations
                ot = on_trace[id(s)]
                for m_ in (FIXED, SYNC, OVERLAP):
                    if totals[m_] >= _INF:
                        continue
                    t = g.L - _delta(m_, g.K, s.n if m_ == OVERLAP else None)
                    c, bad = ot.fit(t)
                    ot.by_model[m_] = (c, bad)
                    totals[m_] += int(bad.sum())
                    s.violations[m_] = s.violations.get(m_, 0) + int(bad.sum())
            file_ids = sum(int(s.has.sum()) for s, _ in items)
            model = _choose(totals, hint)
            if shifted:  # no violation either way: the adjacency signature decides
                pre = _choose({k: v for k, v in totals.items() if k != FIXED}, hint)
                if totals[pre] <= max(1, 0.01 * file_ids):
                    model = pre
            models[f] = model
            per_file_viol[f] = {k: v for k, v in totals.items() if v < _INF}
            file_has_ids = file_ids > 0
            unexplained = 0
            for s, g in items:
                s.model = model
                unexplained += _stream_findings(s, g, model, interval, gap_exact, chunks, expected, file_has_ids)
            if not file_has_ids:
                cls = NO_IDS
            elif model == FIXED:
                cls = CONSISTENT if totals[FIXED] == 0 else INCONSISTENT
            else:
                cls = PRE_FIX if unexplained <= max(1, 0.01 * file_ids) else INCONSISTENT
            if _SEVERITY[cls] > _SEVERITY[classification]:
                classification = cls
        for key in ("decode_log_interval", "interval_source", "gap_check", "overlap"):
            vals = {str(f): p[key] for f, p in per_file_params.items()}
            summary[key] = vals if len(vals) > 1 else next(iter(vals.values()))
        summary["model"] = {str(k): v for k, v in models.items()} if len(models) > 1 else next(iter(models.values()))
        summary["adjacency"] = {
            "decode_then_prefill_plus_1": sum(a for a, _ in adjacency.values()),
            "prefill_then_decode_plus_1": sum(b for _, b in adjacency.values()),
        }
        summary["violations"] = {str(k): v for k, v in per_file_viol.items()} if len(per_file_viol) > 1 else next(iter(per_file_viol.values()))
    for key in ("decode_log_interval", "interval_source", "gap_check", "overlap"):
        summary.setdefault(key, None)
    findings = _frame(chunks, lines)
    if on_trace:
        findings = _apply_trace(streams, on_trace, findings, expected, summary["trace"])
    findings = _finish(findings, lines)
    by_reason = findings["reason"].value_counts().to_dict() if len(findings) else {}
    summary.update(
        findings=len(findings),
        by_reason={r: by_reason[r] for r in REASONS if by_reason.get(r)},
        classification=classification,
        evidence=_evidence_text(classification, summary, streams),
        per_stream=[
            {"stream": s.label, "lines": int(len(s.kind)), "with_ids": int(s.has.sum()), "model": s.model,
             "violations": dict(s.violations), "idle_points": int(s.idles)}
            for s in streams
        ],
    )
    exp = pd.array(np.where(expected == np.iinfo(np.int64).min, 0, expected), dtype="Int64")
    exp[expected == np.iinfo(np.int64).min] = pd.NA
    return Findings(findings, summary, classification, pd.Series(exp, index=lines.index, name="expected_iter"))


def _stream_findings(s: _Stream, g: _Geo, model: str, interval, gap_exact, chunks: list, expected, file_has_ids) -> int:
    """Append the stream's findings (column chunks); returns the number of unexplained
    violations."""
    if file_has_ids:
        miss = np.flatnonzero(~s.has)
        if len(miss):
            chunks.append(_chunk(s, miss, MISSING_ID, None, None, ["no iteration id while other lines have one"] * len(miss)))
    if not len(g.L):
        return 0
    n = s.n if model == OVERLAP else None
    if model == OVERLAP and n is None:
        n = np.ones(len(g.L), dtype=np.int64)
    t = g.L - _delta(model, g.K, n)
    s.t = t
    expected[s.rows[g.J]] = t
    v = _violations(g, t, interval, gap_exact, n)
    m = len(t)
    L = g.L
    line = s.line[g.J]
    flagged = t != L
    wrong = np.flatnonzero(flagged)
    if len(wrong):
        has_prev = np.arange(m) > 0
        has_next = np.arange(m) < m - 1
        prev = np.r_[L[:1], L[:-1]]
        nxt = np.r_[L[1:], L[-1:]]
        dup_prev = has_prev & (L == prev)
        dup = dup_prev | (has_next & (L == nxt))
        back_prev = has_prev & (L < prev)
        non = ~dup & (back_prev | (has_next & (L > nxt)))
        codes = np.where(dup, 0, np.where(non, 1, np.where(g.K == _PREFILL, 2, 3)))[wrong]
        other = np.where(dup_prev | back_prev, np.arange(m) - 1, np.minimum(np.arange(m) + 1, m - 1))[wrong]
        Lw, tw, ow = L[wrong].tolist(), t[wrong].tolist(), line[other].tolist()
        Lo = L[other].tolist()
        msgs = []
        for c, lab, it, ol, lo in zip(codes.tolist(), Lw, tw, ow, Lo):
            if c == 0:
                msgs.append(f"id {lab} also on line {ol}; iteration {it}")
            elif c == 1:
                msgs.append(f"id {lab} out of order with {lo} on line {ol}; iteration {it}")
            elif c == 2:
                msgs.append(f"prefill logged as forward_ct + 1: iteration {it} logged as {lab}")
            else:
                msgs.append(f"decode reported after the next batch was launched: iteration {it} logged as {lab}")
        names = np.array([DUPLICATE_ID, NON_INCREASING, PREFILL_AHEAD, OVERLAP_SHIFT], dtype=object)[codes]
        chunks.append(_chunk(s, g.J[wrong], names, t[wrong], L[wrong], msgs))
    unexplained = 0
    for j in np.flatnonzero(v["strict"] | v["gap"] | v["idle"]):
        unexplained += 1
        if v["idle"][j] and not (v["strict"][j] or v["gap"][j]):
            target = j + 1 if j + 1 < m and g.next_labelled[j] else j
            if flagged[target]:
                continue
            chunks.append(_chunk(s, [g.J[target]], GAP_MISMATCH, None, [L[target]],
                                 ["the ids around this line fit no labelling (idle point without a following prefill)"]))
            flagged[target] = True
            continue
        if flagged[j]:
            continue
        if v["strict"][j] and j == 0:  # anchored stream: the first batch is iteration 1
            exp_label = int(1 + (L[0] - t[0]))
            chunks.append(_chunk(s, [g.J[0]], GAP_MISMATCH, [exp_label], [L[0]],
                                 [f"first batch after the server start-up should be iteration 1, logged {L[0]}"]))
        elif v["strict"][j]:
            reason = DUPLICATE_ID if L[j] == L[j - 1] else NON_INCREASING
            chunks.append(_chunk(s, [g.J[j]], reason, None, [L[j]], [f"id {L[j]} after id {L[j - 1]} on line {line[j - 1]}"]))
        else:
            a = g.prevD[j]
            exp_label = int(v["gap_expected"][j] + (L[j] - t[j]))
            if a >= 0:
                msg = (f"{L[j] - L[a]} ids after the decode line {line[a]}, expected {exp_label - L[a]} "
                       f"({g.E_base[j]} × interval {interval} + {g.P_between[j]} prefill batches)")
            else:
                msg = (f"first decode line after the server start-up logged {L[j]}, expected {exp_label} "
                       f"({g.dec0_E[0]} × interval {interval} + {g.dec0_E[1]} prefill batches)")
            chunks.append(_chunk(s, [g.J[j]], GAP_MISMATCH, [exp_label], [L[j]], [msg]))
        flagged[j] = True
    return unexplained


def reason_for(label: int | None, prev: int | None, nxt: int | None, kind: int | str) -> str:
    """The reason code of a wrong line from its id and the ids of its stream neighbours
    (the same rule as the fixture generator's truth)."""
    if label is None:
        return MISSING_ID
    if label == prev or label == nxt:
        return DUPLICATE_ID
    if (prev is not None and label < prev) or (nxt is not None and label > nxt):
        return NON_INCREASING
    return PREFILL_AHEAD if kind in (_PREFILL, "prefill", "P") else OVERLAP_SHIFT


def _chunk(s: _Stream, pos, reason, expected, got, messages: list) -> dict:
    """Findings for positions `pos` (in the stream) as columns; `reason` one code or an
    array of codes, `expected`/`got` arrays or None (all null)."""
    pos = np.asarray(pos, dtype=np.int64)
    k = len(pos)
    reasons = np.full(k, reason, dtype=object) if isinstance(reason, str) else np.asarray(reason, dtype=object)
    return {
        "file": [s.file] * k,
        "line": s.line[pos],
        "stream": [s.label] * k,
        "kind": np.where(s.kind[pos] == _DECODE, "decode", "prefill"),
        "reason": reasons,
        "expected": _ints(expected, k),
        "got": _ints(got, k),
        "evidence": [EVIDENCE[r] for r in reasons],
        "message": list(messages),
        "_row": s.rows[pos],
    }


def _ints(values, k: int):
    if values is None:
        return pd.array([pd.NA] * k, dtype="Int64")
    return pd.array(np.asarray(values, dtype=np.int64), dtype="Int64")


def _frame(chunks: list[dict], lines: pd.DataFrame) -> pd.DataFrame:
    """The findings table, in input order (one row per line and reason)."""
    with_file = "file" in lines.columns
    cols = (["file"] if with_file else []) + FINDING_COLUMNS
    if not chunks:
        df = pd.DataFrame({c: [] for c in cols + ["_row"]})
    else:
        df = pd.concat([pd.DataFrame(c) for c in chunks], ignore_index=True)
    df = df.sort_values(["_row", "reason"], kind="stable").drop_duplicates(["_row", "reason"])
    return df.reset_index(drop=True)


def _finish(df: pd.DataFrame, lines: pd.DataFrame) -> pd.DataFrame:
    with_file = "file" in lines.columns
    cols = (["file"] if with_file else []) + FINDING_COLUMNS
    df = df.sort_values(["_row", "reason"], kind="stable")[cols].reset_index(drop=True)
    df["line"] = df["line"].astype("int64")
    df["expected"] = pd.array(df["expected"], dtype="Int64")
    df["got"] = pd.array(df["got"], dtype="Int64")
    for c in ("stream", "kind", "reason", "evidence", "message") + (("file",) if with_file else ()):
        df[c] = df[c].astype("string")
    return df


def _evidence_text(classification: str, summary: dict, streams: list[_Stream]) -> str:
    if classification == NO_IDS:
        return "no line carries an iteration id (set SGLANG_LOG_FORWARD_ITERS=1)"
    v = summary.get("violations", {})
    if v and not isinstance(next(iter(v.values())), int):
        v = {k: sum(x.get(k, 0) for x in v.values()) for k in (FIXED, SYNC, OVERLAP)}
    parts = [f"violations if ids were iterations: {v.get(FIXED, 0)}"]
    adj = summary.get("adjacency") or {}
    a, b = adj.get("decode_then_prefill_plus_1", 0), adj.get("prefill_then_decode_plus_1", 0)
    if adj:
        parts.append(f"prefill right after a decode line with the next id: {a}, decode right after a prefill with the next id: {b}")
    if SYNC in v:
        parts.append(f"as pre-fix labelling without overlap: {v[SYNC]}")
    if OVERLAP in v:
        parts.append(f"as pre-fix overlap labelling: {v[OVERLAP]}")
    return "; ".join(parts)


# -- the trace -------------------------------------------------------------------------------

def parse_tz(value) -> float | None:
    """``+HH:MM`` / ``-HH[:MM]`` / ``Z`` / ``UTC`` / seconds / ``auto`` (None) → seconds east of UTC."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    v = str(value).strip()
    if v.lower() in ("", "auto"):
        return None
    if v.upper() in ("Z", "UTC", "GMT"):
        return 0.0
    import re

    m = re.fullmatch(r"(?:UTC)?([+-])(\d{1,2})(?::?(\d{2}))?", v, re.I)
    if m:
        sec = int(m.group(2)) * 3600 + int(m.group(3) or 0) * 60
        return float(sec if m.group(1) == "+" else -sec)
    try:
        return float(v)
    except ValueError:
        raise ValueError(f"not a UTC offset: {value!r} (use +HH:MM, -HH:MM, UTC or auto)") from None


def _steps_from_trace(trace) -> pd.DataFrame:
    try:
        from analyzers import steps as steps_mod  # written separately; optional
    except ImportError:
        raise ImportError("trace alignment needs analyzers.steps.trace_steps") from None
    fn = getattr(steps_mod, "trace_steps", None)
    if fn is None:
        raise ImportError("trace alignment needs analyzers.steps.trace_steps")
    return fn(trace)


_JITTER = 200_000  # 0.2 ms: scheduling jitter between a step's CPU range and the report
_SEC = 1_000_000_000


@dataclass(eq=False)
class _OnTrace:
    """The labelled lines of one stream that fall on the trace, each with the positions (step
    iteration, or step order) it may belong to."""

    stream: _Stream
    J: np.ndarray  # labelled-line indices (into the stream's labelled lines)
    cands: list  # per line: np.ndarray of positions
    by_iteration: bool
    tz: int
    res: int
    by_model: dict = field(default_factory=dict)  # model → (id offset, bad mask over J)

    def fit(self, t: np.ndarray) -> tuple[int, np.ndarray]:
        """The id offset c (0 with ProfilerStep iterations, else the best fit) and which lines'
        iteration t is none of their candidates + c."""
        tl = t[self.J]
        if self.by_iteration:
            c = 0
        else:
            tally: Counter = Counter()
            for x, cs in zip(tl.tolist(), self.cands):
                tally.update(set((x - cs).tolist()))
            c = min(tally, key=lambda k: (-tally[k], abs(k))) if tally else 0
        bad = np.array([x - c not in set(cs.tolist()) for x, cs in zip(tl.tolist(), self.cands)], dtype=bool)
        return c, bad


def _trace_lines(streams: list[_Stream], steps: pd.DataFrame, tz: float | None) -> tuple[dict, dict]:
    """Fit the zone and find, for each stream matching the trace, its lines on the trace and
    their candidate steps. Returns (summary, {id(stream): _OnTrace})."""
    info: dict = {"steps": int(len(steps))}
    need = {"ts_ns", "end_ns", "mode"}
    if not need <= set(steps.columns):
        raise ValueError(f"trace_steps needs columns {sorted(need)}")
    st = steps[~steps["mode"].astype(str).isin(["draft"])].copy()  # draft forwards run inside a verify step
    if len(st) < 3:
        info["note"] = "the trace has too few steps"
        return info, {}
    st = st.sort_values("ts_ns", kind="stable").reset_index(drop=True)
    by_iteration = "iteration" in st.columns and bool(st["iteration"].notna().all())
    info["positions"] = "iteration" if by_iteration else "step order"
    rank_cols = [c for c in ("dp", "pp", "tp") if c in st.columns and st[c].notna().any()]
    if not rank_cols and "rank" in st.columns:
        import re

        parsed = [dict((k.lower(), int(v)) for k, v in re.findall(r"(PP|DP|TP|EP)-?(\d+)", str(r))) for r in st["rank"]]
        for c in ("dp", "pp", "tp"):
            vals = [d.get(c) for d in parsed]
            if any(v is not None for v in vals):
                st[c] = pd.array(vals, dtype="Int64")
                rank_cols.append(c)
    if rank_cols:
        key = st[rank_cols].astype("Int64").fillna(-1).astype(int).apply(tuple, axis=1)
        groups = [(dict(zip(rank_cols, k)), np.flatnonzero((key == k).to_numpy())) for k in sorted(key.unique())]
    else:
        groups = [(None, np.arange(len(st)))]
    best: dict[int, tuple[float, _OnTrace]] = {}
    for want, idx in groups:
        sub = st.iloc[idx]
        start = sub["ts_ns"].to_numpy(dtype=np.int64)
        end = sub["end_ns"].to_numpy(dtype=np.int64)
        modes = sub["mode"].astype(str).to_numpy()
        pos = sub["iteration"].to_numpy(dtype=np.int64) if by_iteration else np.arange(len(sub), dtype=np.int64)
        for s in streams:
            if s.ts is None or not s.has.any():
                continue
            if want is not None and not all(v < 0 or s.ranks.get(c, v) == v for c, v in want.items() if c != "tp"):
                continue  # a rank the log's prefix does not show (size 1) matches anything
            ot = _stream_on_trace(s, start, end, modes, pos, tz, by_iteration)
            if ot is None or not len(ot.J):
                continue
            score = sum(1 for cs in ot.cands if len(cs)) / len(ot.J)
            if id(s) not in best or score > best[id(s)][0]:
                best[id(s)] = (score, ot)
    if groups[0][0] is None and best:  # no ranks on either side: the one stream that fits best
        top = max(best, key=lambda k: (best[k][0], len(best[k][1].J)))
        best = {top: best[top]}
    out = {k: ot for k, (_score, ot) in best.items()}
    if not out:
        info["note"] = "no log line falls on the trace"
        return info, {}
    first = next(iter(out.values()))
    info.update(
        stream=", ".join(ot.stream.label for ot in out.values()),
        log_tz_s=first.tz,
        log_tz_fitted=tz is None,
        resolution_ms=first.res / 1e6,
        lines_on_trace=sum(len(ot.J) for ot in out.values()),
    )
    return info, out


def _stream_on_trace(s: _Stream, start, end, modes, pos, tz, by_iteration: bool) -> _OnTrace | None:
    J = np.flatnonzero(s.has)
    ts = s.ts[J]
    ok = ts != np.iinfo(np.int64).min
    if not ok.any():
        return None
    res = 1_000_000 if np.any(ts[ok] % _SEC) else _SEC
    if tz is not None:
        offset = int(tz)
    else:  # the quarter-hour offset that puts the most lines on the trace (ties: the smallest)
        lo, hi = start[1], end[-1]
        counts = [(int(((ts[ok] - o * _SEC > lo) & (ts[ok] - o * _SEC + res < hi)).sum()), -abs(o), o)
                  for o in range(-14 * 3600, 14 * 3600 + 1, 900)]
        n_in, _, offset = max(counts)
        if n_in == 0:
            offset = 0
    utc = ts - offset * _SEC
    # on the trace: the batch cannot be a step before the first traced one (step -1 would need
    # step 1 to start after the report) nor after the last (it would end after end[-1])
    inside = ok & (utc - _JITTER > start[1]) & (utc + res + _JITTER < end[-1])
    idx = np.flatnonzero(inside)
    # a report of batch k comes after step k's CPU range ended and before step k+2 started
    # (k+1 may or may not have been launched): candidates k*-1 and k*, where k* is the last
    # step started before the report, widened by the log's resolution
    k_first = np.searchsorted(start, utc[idx], side="right") - 2
    k_last = np.searchsorted(start, utc[idx] + res + _JITTER, side="right") - 1
    kinds = s.kind[J[idx]]
    cands = []
    for a, b, u, k in zip(k_first.tolist(), k_last.tolist(), utc[idx].tolist(), kinds.tolist()):
        ok_modes = _MODE_OK[int(k)]
        ks = [q for q in range(max(a, 0), b + 1) if end[q] <= u + res + _JITTER and modes[q] in ok_modes]
        cands.append(pos[ks] if ks else np.zeros(0, dtype=np.int64))
    return _OnTrace(s, idx, cands, by_iteration, offset, res)


def _apply_trace(streams, on_trace: dict, findings: pd.DataFrame, expected, info: dict) -> pd.DataFrame:
    """Per line on the trace, under the chosen labelling: a logged id that is none of the
    line's candidate steps is wrong (the finding gets evidence ``trace``, or a
    ``trace_mismatch`` is added); a suspect whose logged id the trace allows while it rules
    out the inferred iteration is dropped."""
    by_row: dict[int, list[int]] = {}
    for i, (r, reason) in enumerate(zip(findings["_row"].tolist(), findings["reason"].tolist())):
        if reason != MISSING_ID:
            by_row.setdefault(int(r), []).append(i)
    evidence = findings["evidence"].tolist()
    exp_col = findings["expected"].astype("object").tolist()
    drop: set[int] = set()
    added: list[dict] = []
    confirmed = contradicted = 0
    offsets = []
    for ot in on_trace.values():
        s = ot.stream
        if s.t is None:
            continue
        c, bad_t = ot.by_model.get(s.model) or ot.fit(s.t)
        offsets.append(c)
        J_lab = np.flatnonzero(s.has)
        L = s.ids[J_lab]
        for j, cs, t_bad in zip(ot.J.tolist(), ot.cands, bad_t.tolist()):
            allowed = set((cs + c).tolist())
            p = int(J_lab[j])
            row_pos = int(s.rows[p])
            got = int(L[j])
            existing = by_row.get(row_pos, [])
            if got in allowed:
                if t_bad:  # the trace allows the logged id but not the inferred iteration
                    for i in existing:
                        if evidence[i] == "suspect":
                            drop.add(i)
                            contradicted += 1
                continue
            tm = int(s.t[j])
            trace_exp = tm if tm in allowed else (min(allowed, key=lambda x: (abs(x - tm), x)) if allowed else None)
            if existing:
                for i in existing:
                    evidence[i] = "trace"
                    if trace_exp is not None:
                        exp_col[i] = trace_exp
                confirmed += 1
                continue
            if trace_exp is None:
                msg = f"no {'decode' if s.kind[p] == _DECODE else 'prefill'} step of the trace at this time"
            else:
                msg = f"the trace's {'decode' if s.kind[p] == _DECODE else 'prefill'} step at this time is iteration {trace_exp}"
                expected[row_pos] = trace_exp
            added.append(_chunk(s, [p], TRACE_MISMATCH, None if trace_exp is None else [trace_exp], [got], [msg]))
    findings = findings.assign(evidence=evidence, expected=pd.array(exp_col, dtype="Int64"))
    if drop:
        findings = findings.drop(index=findings.index[sorted(drop)])
    if added:
        findings = pd.concat([findings] + [pd.DataFrame(ch) for ch in added], ignore_index=True)
    info.update(id_offset=offsets[0] if offsets else None, confirmed=confirmed, contradicted=contradicted,
                trace_mismatches=len(added))
    return findings
