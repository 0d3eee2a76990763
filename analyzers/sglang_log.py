"""SGLang scheduler logs → a pandas DataFrame, one row per ``Prefill batch`` / ``Decode batch`` line.

    >>> from analyzers import sglang_log
    >>> df = sglang_log.parse_log(stream)          # a binary stream; gzip/zstd sniffed
    >>> df = sglang_log.parse_text(text)           # str or bytes, for small inputs and tests

The format (``../shared/reference/sglang.md`` §4)::

    [2026-09-10 14:03:23.517 DP0 PP1 TP0] Decode batch [1880], #running-req: 32, #token: 20800, ...
    [2026-04-08 14:05:21 TP0] Prefill batch. #new-seq: 3, #new-token: 4096, ...   (older, '.')

* the prefix is ``[date time[.ms]`` plus rank tokens (``DP1``, ``PP0``, ``TP4``, ``EP2``,
  ``ATTN_CP1``, ``MOE_DP0``, …) in any order, or none; a ``T`` between date and time, a ``,``
  before the milliseconds and up to 120 characters of text before the ``[`` (docker compose,
  ``kubectl logs --timestamps``) are tolerated;
* the iteration ` [N]` is optional (``SGLANG_LOG_FORWARD_ITERS=1``);
* every ``key: value`` pair becomes its own typed column (int → ``Int64``, float, bool →
  ``boolean``, anything else → string), named by `field_column` (``#new-seq`` → ``new_seq``,
  ``gen throughput (token/s)`` → ``gen_throughput_token_s``, ``fwd occupancy: 12.5%`` →
  ``fwd_occupancy`` = 12.5); unknown keys, other usage formats and extra suffixes just add
  columns; text that is not ``key: value`` goes to ``extra``;
* lines of other loggers, blank lines, binary junk and overlong lines are skipped, never raise.

Columns, in order: ``line`` (1-based line number in the input), ``ts`` (``datetime64[ns]``,
naive, as logged; null for a time-only prefix), the rank columns ``dp pp tp ep`` (nullable
``Int64``; more such as ``attn_cp``/``moe_dp`` when present), ``kind`` (``prefill``/``decode``),
``iter`` (``Int64``), ``sep`` (``,`` or ``.`` after "batch"), then one column per field in
order of first appearance, then ``extra`` (and ``text``, the whole message after "batch", with
``keep_text=True``). ``df.attrs``: ``fields`` (column → key as logged), ``ranks`` (the rank
columns), ``server_args`` (the first ``server_args=ServerArgs(...)`` start-up line, name →
text), ``server_starts`` (line numbers of those lines: restarts), ``stats`` (``lines``,
``bytes``, ``batch_lines``, ``skipped``: lines that look like batch lines but could not be
read, ``damage``: a damaged compressed tail).

Speed (``benchmarks/bench_iters.py``): the input is read in 8 MB blocks cut at newlines. One
compiled bytes regex per block finds the batch lines and splits off the prefix parts, kind, id
and separator; the engine hops from newline to newline, so other lines cost one failed match.
The message after the separator is cut out of the block by offsets (numpy: where the
``] Prefill/Decode batch`` literals and the newlines are), and its values are split without
Python per line: lines with the same kind and number of items are split at ", " by pyarrow,
the keys of the first line are checked against all of them at once, and each key's values
become a typed column (the lines that disagree try the next key sequence; odd lines go
through a per-line slow path). Beyond a few blocks, worker processes parse blocks too
(``workers``; by default the cores idle at the start, at most 4).
"""

from __future__ import annotations

import gc
import io
import os
import re
from typing import BinaryIO, Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["parse_log", "parse_text", "parse_lines", "field_column", "concat_logs", "RANK_COLUMNS"]

BLOCK = 8 << 20
FIRST_BLOCK = 256 << 10
MAX_LINE = 16 << 20  # longer lines are skipped (a batch line is < 1 KB)
MAX_SHAPE_TRIES = 16  # key sequences tried per (kind, field count) group before the slow path

RANK_COLUMNS = ["dp", "pp", "tp", "ep"]
_RESERVED = {"line", "ts", "kind", "iter", "sep", "extra", "text", "file", "stream", *RANK_COLUMNS}

# \n [lead] [ [date time] [.frac] ranks ] (Prefill|Decode) batch [ [N]] (sep | end); the
# message after it is cut out of the block by offsets (no Python object per line for it)
# (each block starts with a newline, so the regex engine jumps from newline to newline)
_LINE = re.compile(
    rb"\n[^\[\n]{0,120}+\["
    rb"(\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d)?(?:[.,](\d{1,9}))?"
    rb"([^\]\n]{0,200}+)\] "
    rb"(Prefill|Decode) batch(?: \[(-?\d{1,18})\])?(?:([,.] ?)|(?=\r?\n|\r?$))"
)
_PATTERNS = [np.frombuffer(b, np.uint8) for b in (b"] Prefill batch", b"] Decode batch")]


def _literal_positions(a: np.ndarray) -> np.ndarray:
    """Sorted offsets of ``] Prefill batch`` / ``] Decode batch`` in the bytes `a` (numpy:
    the ``]`` bytes, narrowed one following byte at a time)."""
    n = len(a)
    c = np.flatnonzero(a[: max(n - 14, 0)] == 93)
    c = c[a[c + 1] == 32]
    out = []
    for pat in _PATTERNS:
        cc = c
        for k in range(2, len(pat)):
            cc = cc[a[cc + k] == pat[k]]
        out.append(cc)
    tail = a[max(n - 14, 0):].tobytes()  # the last few bytes, where a[c + k] would overrun
    extra = [max(n - 14, 0) + i for i in range(len(tail)) for pat in _PATTERNS if tail.startswith(pat.tobytes(), i)]
    return np.sort(np.concatenate(out + [np.asarray(extra, dtype=np.int64)]))


_KINDS = pa.array(["prefill", "decode"])
_KEY_OK = re.compile(rb"^#?[A-Za-z][A-Za-z0-9 _\-./()%#]*$")
_RANK_TOKEN = re.compile(r"\b([A-Z][A-Z_]*?)(\d+)\b")


def field_column(key: str) -> str:
    """The column name for a logged key: lower case, ``#`` dropped, other runs of
    non-alphanumerics → ``_`` (``#new-seq`` → ``new_seq``, ``est. read BW (GB/s per GPU)`` →
    ``est_read_bw_gb_s_per_gpu``). Names that clash with fixed columns get an ``f_`` prefix."""
    name = re.sub(r"[^0-9a-z]+", "_", key.lower().lstrip("#")).strip("_") or "field"
    if name[0].isdigit() or name in _RESERVED:
        name = "f_" + name
    return name


def _split_rest(rest: bytes) -> tuple[list[tuple[bytes, bytes]], list[bytes]]:
    """The slow path: ``key: value`` pairs and leftover text of one line."""
    pairs, extra = [], []
    for item in rest.rstrip(b"\r").split(b", "):
        key, sep, value = item.partition(b": ")
        if sep and _KEY_OK.match(key) and b"," not in value:
            pairs.append((key, value))
        elif item.strip():
            extra.append(item.strip())
    return pairs, extra


def _row_keys(rest: bytes) -> list[bytes] | None:
    """The keys of a line whose every item is ``key: value`` (else None)."""
    keys = []
    for item in rest.split(b", "):
        key, sep, _ = item.partition(b": ")
        if not sep or not _KEY_OK.match(key):
            return None
        keys.append(key)
    return keys if len(set(keys)) == len(keys) else None


class _BlockResult:
    """What parsing one block gives (small and picklable: it crosses process boundaries)."""

    __slots__ = ("table", "looks_like", "starts", "server_args", "keys", "rank_names")

    def __init__(self) -> None:
        self.table: pa.Table | None = None
        self.looks_like = 0
        self.starts: list[int] = []
        self.server_args: dict | None = None
        self.keys: dict[str, str] = {}
        self.rank_names: list[str] = []

    def __getstate__(self):
        return tuple(getattr(self, k) for k in self.__slots__)

    def __setstate__(self, state) -> None:
        for k, v in zip(self.__slots__, state):
            setattr(self, k, v)


class _BlockParser:
    """Parses blocks of whole lines.

    One regex pass splits each batch line into its prefix parts and the ``key: value`` text
    (no Python per non-batch line). The values are then split per group of lines with the
    same kind and field count, vectorised (pyarrow): the keys of a group's first line are
    checked against every line of the group at once, the lines that agree give one column per
    key, the others try the next key sequence; what is left goes through a per-line slow path
    (unknown text, odd separators)."""

    def __init__(self, keep_text: bool) -> None:
        self.keep_text = keep_text
        self.keys: dict[str, str] = {}  # column → key as logged
        self.types: dict[bytes, str] = {}  # key → the type its values had last time
        self.rank_names: set[str] = set()
        self.first: dict[str, tuple[int, int]] = {}  # column → (first line that had it, position)

    def parse(self, block: bytes, base_line: int) -> _BlockResult:
        """`block` ends with a newline (or is the input's tail); its first line is
        ``base_line + 1``."""
        res = _BlockResult()
        if b"server_args=ServerArgs(" in block:
            res.server_args = _server_args(block)
            for mm in re.finditer(rb"server_args=ServerArgs\(", block):
                res.starts.append(base_line + block.count(b"\n", 0, mm.start()))
        a = np.frombuffer(block, np.uint8)
        pos = _literal_positions(a)
        res.looks_like = len(pos)
        if not res.looks_like:
            return res
        nl = np.flatnonzero(a == 10)
        rows = _LINE.findall(block)
        if not rows:
            return res
        if len(pos) == len(rows):
            # the "] Prefill/Decode batch" of every match, and nothing else: they pair up in
            # order; the message starts after "] ", the kind, " batch", " [N]" and the separator
            dt, frac, ranks, kind, it, sep = zip(*rows)
            at = pos
            head_len = (2 + 6 + 7) - (np.array(kind, dtype="S7") != b"Prefill").astype(np.int64)
            it_len = np.fromiter(map(len, it), np.int64, len(it))
            head_len += np.where(it_len > 0, it_len + 3, 0) + np.fromiter(map(len, sep), np.int64, len(sep))
            rest_start = at + head_len
        else:  # near misses in this block: positions from the matches themselves
            matches = list(_LINE.finditer(block))
            at = np.fromiter((m.start() + 1 for m in matches), np.int64, len(matches))  # line start
            rest_start = np.fromiter((m.end() for m in matches), np.int64, len(matches))
            dt, frac, ranks, kind, it, sep = zip(*(m.groups() for m in matches))
            del matches
        del rows
        # lines (1-based: the block's leading newline is nl[0]) and where they end
        after = np.searchsorted(nl, at, side="left")
        lines = after + base_line
        line_end = np.where(after < len(nl), nl[np.minimum(after, len(nl) - 1)], len(block))
        line_end -= (a[np.maximum(line_end - 1, 0)] == 13) & (line_end > rest_start)  # CR LF
        rest_start = np.minimum(rest_start, line_end)
        rest_arr = _slices(block, rest_start, line_end)
        self._bounds = (block, rest_start, line_end)
        head: dict[str, pa.Array] = {"line": pa.array(lines, pa.int64()), "ts": _timestamps(dt, frac)}
        for name, arr in _ranks(ranks).items():
            head[name] = arr
            if name not in RANK_COLUMNS:
                self.rank_names.add(name)
        is_prefill_np = np.array(kind, dtype="S7") == b"Prefill"
        is_prefill = pa.array(is_prefill_np)
        head["kind"] = pa.DictionaryArray.from_arrays(pa.array((~is_prefill_np).astype(np.int8)), _KINDS)
        head["iter"] = _bin(it).cast(pa.string()).cast(pa.int64())
        head["sep"] = pc.utf8_trim_whitespace(_bin(sep).cast(pa.string()))
        if self.keep_text:
            head["text"] = _text_arr(rest_arr)
        head_table = pa.table(head)

        # groups: same kind and number of items
        lists = pc.split_pattern(rest_arr, b", ")
        nitems = pc.list_value_length(lists).to_numpy(zero_copy_only=False).astype(np.int64)
        flat = lists.flatten()
        first_item = lists.offsets.to_numpy()[:-1] - lists.offsets[0].as_py()
        gkey = nitems * 2 + is_prefill.to_numpy(zero_copy_only=False).astype(np.int64)
        order = np.argsort(gkey, kind="stable")
        bounds = np.flatnonzero(np.diff(gkey[order])) + 1
        tables: list[pa.Table] = []
        slow: list[np.ndarray] = []
        for idx in np.split(order, bounds):
            left = self._group(idx, flat, first_item, nitems, head_table, tables)
            if len(left):
                slow.append(left)
        if slow:
            tables.append(self._slow(np.sort(np.concatenate(slow)), head_table))
        self._bounds = None
        table = _concat(tables) if len(tables) > 1 else tables[0]
        if len(tables) > 1:
            table = table.take(pc.sort_indices(table["line"]))
        res.table = table
        res.keys = {name: (key, self.first[name]) for name, key in self.keys.items()}
        res.rank_names = sorted(self.rank_names)
        return res

    def _rest(self, row: int) -> bytes:
        """The message text of one batch line of the block being parsed."""
        block, start, end = self._bounds
        return block[int(start[row]) : int(end[row])]

    def _group(self, idx: np.ndarray, flat: pa.Array, first_item: np.ndarray, nitems: np.ndarray,
               head_table: pa.Table, tables: list) -> np.ndarray:
        """Split the values of lines `idx` (same kind and item count); returns the rows left
        for the slow path."""
        n = len(idx)
        f = int(nitems[idx[0]])
        if f == 0:
            return idx
        base = first_item[idx]
        items = [flat.take(pa.array(base + k)) for k in range(f)]
        todo = np.ones(n, dtype=bool)
        odd: list[int] = []
        for _ in range(MAX_SHAPE_TRIES):
            pending = np.flatnonzero(todo)
            if not len(pending):
                break
            p0 = int(pending[0])
            keys = _row_keys(self._rest(int(idx[p0])))
            if keys is None or len(keys) != f:
                todo[p0] = False
                odd.append(p0)
                continue
            ok = todo.copy()
            for k, key in enumerate(keys):
                ok &= pc.starts_with(items[k], key + b": ").to_numpy(zero_copy_only=False)
            rows = np.flatnonzero(ok)
            todo &= ~ok
            whole = len(rows) == n
            sel = None if whole else pa.array(rows)
            t = head_table.take(pa.array(idx if whole else idx[rows]))
            for k, key in enumerate(keys):
                values = items[k] if whole else items[k].take(sel)
                # (an explicit stop: pyarrow 26's binary_slice without one fails)
                t = self._add(t, key, pc.binary_slice(values, len(key) + 2, MAX_LINE), k)
            tables.append(t)
        left = np.concatenate([np.flatnonzero(todo), np.asarray(odd, dtype=np.int64)])
        return idx[left]

    def _slow(self, rows: np.ndarray, head_table: pa.Table) -> pa.Table:
        fields: dict[bytes, list] = {}
        extra = []
        n = len(rows)
        for i, r in enumerate(rows):
            pairs, ex = _split_rest(self._rest(int(r)))
            for key, value in pairs:
                col = fields.get(key)
                if col is None:
                    col = fields[key] = [None] * n
                col[i] = value
            extra.append(b", ".join(ex) if ex else None)
        t = head_table.take(pa.array(rows))
        for k, (key, col) in enumerate(fields.items()):
            t = self._add(t, key, col, k)
        return t.append_column("extra", _text(extra))

    def _add(self, t: pa.Table, key: bytes, values, pos: int = 0) -> pa.Table:
        skey = key.decode("utf-8", "replace")
        name = field_column(skey)
        while name in t.column_names or self.keys.get(name, skey) != skey:
            if name in t.column_names and self.keys.get(name) == skey:
                return t  # the same key twice on one line: keep the first
            name += "_"
        here = (t["line"][0].as_py() if t.num_rows else 0, pos)
        if name not in self.keys:
            self.keys[name] = skey
            self.first[name] = here
        elif here < self.first[name]:
            self.first[name] = here
        return t.append_column(name, _typed(values, self.types, key))


def _blocks(read, block_size: int, stats: dict):
    """Yield (block, base_line): blocks of whole lines, each preceded by one newline (the
    previous block's last one, or an added one), which the regex uses to hop from line to
    line and which is not a line itself. Overlong lines are skipped."""
    carry = b"\n"
    size = FIRST_BLOCK
    skipping = False  # inside an overlong line
    lines = 0
    while True:
        chunk = read(size)
        size = block_size
        if not chunk:
            break
        if skipping:
            nl = chunk.find(b"\n")
            if nl < 0:
                continue
            lines += 1
            chunk = chunk[nl:]  # its newline leads the next block
            carry = b""
            skipping = False
        buf = carry + chunk
        cut = buf.rfind(b"\n")
        if cut <= 0:  # no complete line yet
            carry = buf
            if len(carry) > MAX_LINE:
                carry = b""
                skipping = True
                stats["skipped_long"] += 1
            continue
        carry = buf[cut:]
        block = buf[: cut + 1]
        yield block, lines
        lines += block.count(b"\n") - 1
        stats["bytes"] += len(block) - 1
    if len(carry) > 1 and not skipping:  # a last line without a newline
        yield carry, lines
        lines += 1
        stats["bytes"] += len(carry) - 1
    elif skipping:
        lines += 1
    stats["lines"] = lines


# -- worker processes ----------------------------------------------------------------------

_worker: _BlockParser | None = None


def _worker_init(keep_text: bool, types: dict) -> None:
    global _worker
    _worker = _BlockParser(keep_text)
    _worker.types = dict(types)
    gc.disable()


def _worker_parse(block: bytes, base_line: int) -> _BlockResult:
    return _worker.parse(block, base_line)


def _pool(workers: int, parser: _BlockParser):
    import concurrent.futures
    import multiprocessing

    # fork: no re-import of the caller's __main__ (a script without a main guard, stdin) and no
    # start-up cost; spawn where there is no fork
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    return concurrent.futures.ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=_worker_init,
        initargs=(parser.keep_text, parser.types),
    )


def default_workers() -> int:
    """Processes for large inputs: the cores that are idle now (usable cores minus the load
    average, rounded), at least 1, at most 4. Extra processes only pay off on idle cores."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    try:
        idle = n - os.getloadavg()[0]
    except (AttributeError, OSError):
        idle = n
    return max(1, min(4, n, int(idle + 0.5)))


POOL_AFTER = 3  # blocks parsed in-process before worker processes take over


def _parse_blocks(read, block_size: int, keep_text: bool, workers: int | None) -> tuple[list[_BlockResult], dict]:
    """Parse every block, in order. With `workers` > 1 and more than a few blocks, `workers`
    − 1 processes take blocks while this process parses the ones that come when they are
    all busy (so `workers` cores work, none waits)."""
    stats = {"lines": 0, "bytes": 0, "skipped_long": 0}
    parser = _BlockParser(keep_text)
    results: list = []
    workers = default_workers() if workers is None else max(1, int(workers))
    blocks = _blocks(read, block_size, stats)
    for i, (block, base) in enumerate(blocks):
        results.append(parser.parse(block, base))
        if workers > 1 and i + 1 >= POOL_AFTER and len(block) >= block_size // 2:
            break
    else:
        return results, stats
    from collections import deque

    n_pool = workers - 1
    slots: list = results
    pending: deque = deque()  # (slot, future, block, base), in block order
    broken = False

    def collect(wait: bool) -> None:
        nonlocal broken
        while pending and (wait or pending[0][1].done()):
            i, fut, blk, b = pending.popleft()
            try:
                slots[i] = fut.result()
            except Exception:  # a worker died (or the pool could not start): parse it here
                broken = True
                slots[i] = parser.parse(blk, b)

    with _pool(n_pool, parser) as pool:
        for block, base in blocks:
            collect(False)
            if not broken and len(pending) < 2 * n_pool:
                try:
                    fut = pool.submit(_worker_parse, block, base)
                except Exception:
                    broken = True
                    slots.append(parser.parse(block, base))
                    continue
                slots.append(None)
                pending.append((len(slots) - 1, fut, block, base))
            else:  # the workers are busy: this process takes the block
                slots.append(parser.parse(block, base))
        collect(True)
    return slots, stats


def _assemble(results: list[_BlockResult], stats: dict, keep_text: bool) -> pd.DataFrame:
    found: dict[str, tuple[str, tuple[int, int]]] = {}
    rank_names: set[str] = set()
    starts: list[int] = []
    server_args = None
    looks_like = 0
    for r in results:
        for c, (k, first) in r.keys.items():
            if c not in found or first < found[c][1]:
                found[c] = (k, first)
        rank_names.update(r.rank_names)
        starts += r.starts
        if server_args is None and r.server_args:
            server_args = r.server_args
        looks_like += r.looks_like
    keys = {c: k for c, (k, _) in sorted(found.items(), key=lambda x: x[1][1])}
    tables = [r.table for r in results if r.table is not None and r.table.num_rows]
    if not tables:
        df = _empty_frame(keep_text)
    else:
        table = _arrange(_concat(tables) if len(tables) > 1 else tables[0], keys)
        line = table.column("line").to_numpy()
        # column by column, freeing the arrow memory as it goes (no consolidated 2-D copy)
        df = table.drop_columns(["line"]).to_pandas(types_mapper=_pandas_type, split_blocks=True, self_destruct=True)
        del table
        df.insert(0, "line", line)
        if not isinstance(df["kind"].dtype, pd.CategoricalDtype) or list(df["kind"].cat.categories) != ["prefill", "decode"]:
            df["kind"] = df["kind"].astype(pd.CategoricalDtype(["prefill", "decode"]))
    df.attrs["fields"] = {c: k for c, k in keys.items() if c in df.columns}
    df.attrs["ranks"] = [c for c in df.columns if c in RANK_COLUMNS or c in rank_names]
    df.attrs["server_args"] = server_args or {}
    df.attrs["server_starts"] = starts
    df.attrs["stats"] = {
        "lines": stats["lines"],
        "bytes": stats["bytes"],
        "batch_lines": len(df),
        "skipped": max(0, looks_like - len(df)) + stats["skipped_long"],
    }
    return df


_SERVER_ARGS = re.compile(rb"server_args=ServerArgs\((.*)\)\s*$", re.M)
_SERVER_ARG = re.compile(rb"(?:^|, )(\w+)=('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|\[[^\]]*\]|\{[^}]*\}|[^,]*)")


def _server_args(block: bytes) -> dict[str, str]:
    """``server_args=ServerArgs(a=1, b='x', ...)`` (printed at start-up) → {name: text}."""
    m = _SERVER_ARGS.search(block)
    if not m:
        return {}
    out = {}
    for k, v in _SERVER_ARG.findall(m.group(1)[:200_000]):
        out.setdefault(k.decode("ascii", "replace"), v.decode("utf-8", "replace").strip("'\""))
    return out


# -- column conversion ---------------------------------------------------------------------

def _slices(block: bytes, start: np.ndarray, end: np.ndarray) -> pa.Array:
    """``block[start[i]:end[i]]`` for every i as a binary array, without a Python object per
    value: a zero-copy array of alternating pieces (value, gap, value, …) over the block,
    then every other piece (one copy)."""
    n = len(start)
    if n == 0:
        return pa.array([], pa.binary())
    offsets = np.empty(2 * n, dtype=np.int64)
    offsets[0::2] = start
    offsets[1::2] = end
    pieces = pa.LargeBinaryArray.from_buffers(pa.large_binary(), 2 * n - 1, [None, pa.py_buffer(offsets), pa.py_buffer(block)])
    return pieces.take(pa.array(np.arange(0, 2 * n - 1, 2))).cast(pa.binary())


def _bin(values) -> pa.Array:
    """A binary array in which empty values (a group that took no part in the match: findall
    gives ``b""``, finditer None) are null."""
    arr = pa.array(values, pa.binary())
    if pc.any(pc.equal(arr, b"")).as_py():
        arr = pc.if_else(pc.equal(arr, b""), pa.scalar(None, pa.binary()), arr)
    return arr


def _text(values: list) -> pa.Array:
    return pa.array([None if v is None else v.decode("utf-8", "replace") for v in values], pa.string())


def _text_arr(arr: pa.Array) -> pa.Array:
    """binary → string, replacing invalid UTF-8 (rare: only then per value)."""
    try:
        return arr.cast(pa.string())
    except pa.ArrowInvalid:
        return _text(arr.to_pylist())


_INT_RE = r"^\s*[-+]?\d{1,18}\s*$"
_FLOAT_RE = r"^\s*[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|nan|inf)\s*$"
_PCT_RE = r"^\s*[-+]?(?:\d+\.?\d*|\.\d+)\s*%\s*$"


def _all(s: pa.Array, pattern: str) -> bool:
    """Every non-null value matches (RE2, no exceptions on the way)."""
    return pc.all(pc.or_kleene(pc.is_null(s), pc.match_substring_regex(s, pattern))).as_py() is not False


def _typed(values, memo: dict | None = None, key=None) -> pa.Array:
    """bytes (or None) → the narrowest of int64, float64, bool, percent (float), string.
    `memo[key]` remembers what the key's values were last time, tried first (no scans)."""
    arr = values if isinstance(values, pa.Array) else pa.array(values, pa.binary())
    kind = memo.get(key) if memo is not None else None
    if kind in ("int", "float"):  # straight from the bytes
        try:
            return arr.cast(pa.int64() if kind == "int" else pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    try:
        s = arr.cast(pa.string())
    except pa.ArrowInvalid:  # not UTF-8
        return _text_arr(arr)
    out, kind = _infer(s)
    if memo is not None:
        memo[key] = kind
    return out


def _infer(s: pa.Array) -> tuple[pa.Array, str]:
    if pc.any(pc.equal(s, "")).as_py():
        s = pc.if_else(pc.equal(s, ""), pa.scalar(None, pa.string()), s)
    if s.null_count == len(s):
        return s, "str"
    try:
        if _all(s, _INT_RE):
            return pc.utf8_trim_whitespace(s).cast(pa.int64()), "int"
        if _all(s, _FLOAT_RE):
            return pc.utf8_trim_whitespace(s).cast(pa.float64()), "float"
        if _all(s, "^(?:True|False)$"):
            return pc.equal(s, "True"), "bool"
        if _all(s, _PCT_RE):
            return pc.utf8_trim_whitespace(pc.replace_substring(s, "%", "")).cast(pa.float64()), "pct"
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # e.g. an int beyond int64
        pass
    return s, "str"


def _timestamps(dt, frac) -> pa.Array:
    """Naive timestamps (ns) from the date-time and fraction groups (seconds repeat a lot:
    each distinct one is parsed once)."""
    enc = pc.dictionary_encode(_bin(dt))
    s = enc.dictionary.cast(pa.string())
    if pc.any(pc.match_substring(s, "T")).as_py():
        s = pc.replace_substring(s, "T", " ")
    sec = pc.strptime(s, format="%Y-%m-%d %H:%M:%S", unit="s", error_is_null=True).cast(pa.int64())
    ns = pc.multiply(sec.take(enc.indices), 1_000_000_000)
    f = _bin(frac)
    if f.null_count < len(f):
        f = f.cast(pa.string())
        digits = pc.utf8_length(f)
        scale = pc.power(pa.scalar(10, pa.int64()), pc.subtract(9, digits.cast(pa.int64())))
        sub = pc.multiply(f.cast(pa.int64()), scale)
        ns = pc.add(ns, pc.if_else(pc.is_null(sub), 0, sub))
    return ns.cast(pa.timestamp("ns"))


def _ranks(ranks) -> dict[str, pa.Array]:
    """Rank tokens (any order) → one Int64 column per token name."""
    enc = pc.dictionary_encode(pa.array(ranks, pa.binary()))  # bytes: invalid UTF-8 is possible
    codes = enc.indices.to_numpy(zero_copy_only=False)
    uniques = enc.dictionary.to_pylist()
    parsed = []
    names: list[str] = list(RANK_COLUMNS)
    for u in uniques:
        d = {}
        for name, num in _RANK_TOKEN.findall((u or b"").decode("utf-8", "replace")):
            col = name.lower()
            if col in _RESERVED and col not in RANK_COLUMNS or len(num) > 9:
                continue
            d.setdefault(col, int(num))
            if col not in names:
                names.append(col)
        parsed.append(d)
    out = {}
    for name in names:
        table = np.array([d.get(name, -1) for d in parsed] or [-1], dtype=np.int64)
        vals = table[codes] if len(codes) else np.empty(0, np.int64)
        out[name] = pa.array(vals, pa.int64(), mask=vals < 0)
    return out


def _concat(tables: list[pa.Table]) -> pa.Table:
    """Concatenate block tables: missing columns become nulls, types unify (int → float,
    mixed → string)."""
    types: dict[str, list[pa.DataType]] = {}
    for t in tables:
        for f in t.schema:
            types.setdefault(f.name, []).append(f.type)
    final = {}
    for name, ts in types.items():
        uniq = set(ts)
        if len(uniq) == 1:
            final[name] = ts[0]
        elif uniq <= {pa.int64(), pa.float64()}:
            final[name] = pa.float64()
        else:
            final[name] = pa.string()
    out = []
    for t in tables:
        cols = []
        for name, typ in final.items():
            if name in t.column_names:
                col = t[name]
                if col.type != typ:
                    col = col.cast(typ) if typ != pa.string() or not pa.types.is_boolean(col.type) else pc.if_else(col, "True", "False")
                cols.append(col)
            else:
                cols.append(pa.nulls(t.num_rows, typ))
        out.append(pa.table(cols, names=list(final)))
    return pa.concat_tables(out)


def _pandas_type(t: pa.DataType):
    if pa.types.is_integer(t):
        return pd.Int64Dtype()
    if pa.types.is_boolean(t):
        return pd.BooleanDtype()
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return pd.StringDtype()
    return None


def _arrange(table: pa.Table, keys: dict[str, str]) -> pa.Table:
    """Columns in the documented order (zero-copy): line, ts, ranks, kind, iter, sep, fields
    in order of first appearance, extra[, text]; missing ranks and ``extra`` as nulls."""
    n = table.num_rows
    names = table.column_names
    for c in RANK_COLUMNS:
        if c not in names:
            table = table.append_column(c, pa.nulls(n, pa.int64()))
    if "extra" not in names:
        table = table.append_column("extra", pa.nulls(n, pa.string()))
    names = table.column_names
    fixed = {"line", "ts", "kind", "iter", "sep", "extra", "text"}
    ranks = list(RANK_COLUMNS) + [c for c in names if c not in keys and c not in fixed and c not in RANK_COLUMNS]
    order = ["line", "ts"] + ranks + ["kind", "iter", "sep"] + [c for c in keys if c in names] + ["extra"]
    if "text" in names:
        order.append("text")
    return table.select(order)


def _empty_frame(keep_text: bool) -> pd.DataFrame:
    cols = {
        "line": pd.Series([], dtype="int64"),
        "ts": pd.Series([], dtype="datetime64[ns]"),
        **{c: pd.Series([], dtype="Int64") for c in RANK_COLUMNS},
        "kind": pd.Series([], dtype=pd.CategoricalDtype(["prefill", "decode"])),
        "iter": pd.Series([], dtype="Int64"),
        "sep": pd.Series([], dtype="string"),
        "extra": pd.Series([], dtype="string"),
    }
    if keep_text:
        cols["text"] = pd.Series([], dtype="string")
    return pd.DataFrame(cols)


# -- entry points --------------------------------------------------------------------------

def parse_log(stream: BinaryIO, *, keep_text: bool = False, block_size: int = BLOCK, workers: int | None = None) -> pd.DataFrame:
    """Parse a binary stream (gzip/zstd compressed or not) of SGLang log lines.

    `workers`: processes for inputs beyond a few blocks (default `default_workers()`, the idle
    cores; 1: parse in this process only). The frame is the same either way."""
    from traceconv.readers.source import open_source

    src = open_source(stream, name=getattr(stream, "name", "<stream>"))
    gc_was = gc.isenabled()
    gc.disable()  # millions of short-lived tuples, no cycles: the collector only costs time
    try:
        results, stats = _parse_blocks(src.stream.read, block_size, keep_text, workers)
        df = _assemble(results, stats, keep_text)
    finally:
        if gc_was:
            gc.enable()
    df.attrs["stats"]["damage"] = list(src.damage)
    return df


def parse_text(text: str | bytes, *, keep_text: bool = False) -> pd.DataFrame:
    """Parse log text held in memory."""
    data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else bytes(text)
    return parse_log(io.BytesIO(data), keep_text=keep_text)


def parse_lines(lines: Iterable[str | bytes], *, keep_text: bool = False) -> pd.DataFrame:
    """Parse an iterable of lines (with or without their newlines)."""
    parts = []
    for ln in lines:
        b = ln.encode("utf-8", "surrogateescape") if isinstance(ln, str) else ln
        parts.append(b if b.endswith(b"\n") else b + b"\n")
    return parse_text(b"".join(parts), keep_text=keep_text)


def concat_logs(frames: list[pd.DataFrame], names: list[str]) -> pd.DataFrame:
    """Several parsed logs as one frame with a leading ``file`` column (categorical)."""
    if not frames:
        return _empty_frame(False)
    keys: dict[str, str] = {}
    for f in frames:
        keys.update(f.attrs.get("fields", {}))
    parts = []
    for f, name in zip(frames, names):
        f = f.copy()
        f.insert(0, "file", name)
        parts.append(f)
    df = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    df["file"] = df["file"].astype(pd.CategoricalDtype(list(dict.fromkeys(names))))
    df["kind"] = df["kind"].astype(pd.CategoricalDtype(["prefill", "decode"]))
    stats = [f.attrs.get("stats", {}) for f in frames]
    df.attrs["fields"] = keys
    df.attrs["ranks"] = list(dict.fromkeys(c for f in frames for c in f.attrs.get("ranks", RANK_COLUMNS)))
    df.attrs["server_args"] = next((f.attrs["server_args"] for f in frames if f.attrs.get("server_args")), {})
    df.attrs["server_args_by_file"] = {name: dict(f.attrs.get("server_args") or {}) for f, name in zip(frames, names)}
    df.attrs["server_starts"] = {name: list(f.attrs.get("server_starts", [])) for f, name in zip(frames, names)}
    df.attrs["stats"] = {
        k: sum(s.get(k, 0) for s in stats) for k in ("lines", "bytes", "batch_lines", "skipped")
    }
    df.attrs["stats"]["damage"] = [d for s in stats for d in s.get("damage", [])]
    return df
