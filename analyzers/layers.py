"""GPU kernel time per model module and layer, from layerwise NVTX ranges.

SGLang's ``--enable-layerwise-nvtx-marker`` pushes an NVTX range around every module's
forward; its text is the Python repr of a dict (``{'Module': '….model.layers.0.self_attn.qkv_proj',
'TrainableParams': {'weight': [3072, 2048]}, 'Inputs': [[7, 2048]], 'StaticParams': {…}}``),
parsed here with `ast.literal_eval` (never ``eval``).

Attribution rule (the nsys rule, attribution.md §0): a kernel belongs to the NVTX ranges on
the thread that launched it whose [start, end] contains the whole launching CUDA API call
(kernel → call by correlation: the trace's flows).

* ``range``: the innermost such range (any text) — what ``cuda_gpu_kern_sum:nvtx-name`` shows;
* ``module``: the innermost such *layerwise* range, so other ranges nested inside modules
  (``aten::…`` from ``emit_nvtx``) do not hide the module;
* kernels run by a CUDA graph (launched by ``cudaGraphLaunch``/``cuGraphLaunch``, or carrying a
  graph node id, or whole-graph ``cuda_graph`` executions) are **not** given to any module:
  no module forward runs inside a graph replay, so the range around the launch says nothing
  about which layer a kernel belongs to. They are reported as ``cuda_graph`` time.

Every kernel is in exactly one bucket (``attribution``): ``module``, ``cuda_graph``,
``other_range`` (inside NVTX ranges, none layerwise), ``no_range``, ``no_launch`` (its API
call is not in the trace). Per-range numbers (`by_range`) follow nsys ``nvtx_kern_sum``
exactly: a kernel counts for every enclosing range (``kernel_ns``), and for the innermost one
(``self_kernel_ns``).

Examples:
    >>> t = traceconv.readers.read_nsys("report.sqlite")
    >>> layers.by_module_type(t)   # self_attn.qkv_proj, mlp.down_proj, … summed over layers
    >>> layers.by_layer(t)         # one row per layer (+ graph / unattributed buckets)
    >>> layers.layer_kernels(t)    # one row per kernel with its module, layer and shapes
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analyzers.intervals import containing_pairs, innermost_containing
from traceconv.model.trace import Trace, TrackKind

RANGE_CATEGORIES = ("nvtx",)
KERNEL_CATEGORIES = ("kernel", "Kernel")
GRAPH_CATEGORIES = ("cuda_graph",)
MEMOP_CATEGORIES = ("gpu_memcpy", "gpu_memset", "Memcpy", "Memset")
GRAPH_LAUNCH = re.compile(r"^(cuda|cu|hip)GraphLaunch")
GRAPH_ARGS = ("graph_node_id", "graph_id")
ATTRIBUTIONS = ["module", "cuda_graph", "other_range", "no_range", "no_launch"]
LAYER_CONTAINER = re.compile(r"^(?:h|\w*(?:layers?|blocks?))$")
OUTSIDE_LAYERS = "(outside layers)"


@dataclass(frozen=True)
class LayerwiseText:
    """A parsed layerwise NVTX text."""

    module: str
    layer_stack: str | None
    layer: int | None
    module_type: str
    inputs: str | None  # JSON text of the 'Inputs' shapes
    params: str | None  # JSON text of 'TrainableParams'
    static_params: str | None  # JSON text of 'StaticParams'
    n_params: int | None  # elements in TrainableParams


def split_module_path(path: str) -> tuple[str | None, int | None, str]:
    """(layer stack, layer index, module type) of a module path.

    The layer is the first ``<container>.<N>`` where the container is ``layers``, ``h``,
    ``blocks`` or a name ending in ``layers``/``blocks`` (``transformer_blocks``); the module
    type is what follows (``self_attn.qkv_proj``; ``(layer)`` for the layer module itself).
    Paths without a layer keep the whole path as their type.

    Examples:
        >>> split_module_path("Qwen/Qwen3-8B.model.layers.12.mlp.down_proj")
        ('Qwen/Qwen3-8B.model.layers', 12, 'mlp.down_proj')
        >>> split_module_path("model.embed_tokens")
        (None, None, 'model.embed_tokens')
    """
    parts = path.split(".")
    for i in range(1, len(parts)):
        if parts[i].isdigit() and LAYER_CONTAINER.match(parts[i - 1]):
            return ".".join(parts[:i]), int(parts[i]), ".".join(parts[i + 1 :]) or "(layer)"
    return None, None, path


def parse_layerwise(text: str) -> LayerwiseText | None:
    """The layerwise dict in an NVTX text, or None when the text is not one.

    Examples:
        >>> parse_layerwise("{'Module': 'm.model.layers.0.mlp', 'Inputs': [[7, 2048]]}").layer
        0
        >>> parse_layerwise("aten::mm") is None
        True
    """
    if not text or text[0] != "{" or "Module" not in text:
        return None
    try:
        d = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        d = _parse_parts(text)  # a value that is not a literal (e.g. torch.bfloat16): key by key
    if not isinstance(d, dict) or not isinstance(d.get("Module"), str):
        return None
    stack, layer, mtype = split_module_path(d["Module"])
    params = d.get("TrainableParams")
    n_params = None
    if isinstance(params, dict):
        n_params = 0
        for shape in params.values():
            if isinstance(shape, (list, tuple)) and all(isinstance(x, int) for x in shape):
                n_params += int(np.prod(shape)) if shape else 1
    return LayerwiseText(d["Module"], stack, layer, mtype, _json(d.get("Inputs")), _json(params), _json(d.get("StaticParams")), n_params)


_MODULE = re.compile(r"""^\{\s*'Module'\s*:\s*'((?:[^'\\]|\\.)*)'""")
_PARTS = {
    "Inputs": re.compile(r"'Inputs'\s*:\s*(\[[\[\]0-9,\s]*\])"),
    "TrainableParams": re.compile(r"'TrainableParams'\s*:\s*(\{[^{}]*\})"),
    "StaticParams": re.compile(r"'StaticParams'\s*:\s*(\{[^{}]*\})"),
}


def _parse_parts(text: str) -> dict | None:
    """The module path and the keys whose values are literals, from a dict text that is not
    one literal as a whole."""
    m = _MODULE.match(text)
    if not m:
        return None
    d: dict = {"Module": m.group(1)}
    for key, pattern in _PARTS.items():
        found = pattern.search(text)
        if found:
            try:
                d[key] = ast.literal_eval(found.group(1))
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                pass
    return d


def _json(value) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"), default=str)


# ---- ranges ---------------------------------------------------------------------------------


def _slice_frame(trace: Trace) -> dict[str, np.ndarray]:
    track = trace.column("slices", "track_id")
    kinds = np.array(trace.tracks.column("kind").to_pylist() or [], dtype=object)
    return {
        "ts": trace.column("slices", "ts_ns"),
        "dur": trace.column("slices", "dur_ns"),
        "track": track,
        "process": trace.column("tracks", "process_id")[track] if len(track) else np.zeros(0, np.int32),
        "thread": (kinds == TrackKind.THREAD)[track] if len(track) else np.zeros(0, bool),
        "name": trace.column("slices", "name"),
        "cat": trace.column("slices", "category"),
    }


def _codes(trace: Trace, wanted) -> np.ndarray:
    return np.array([c in wanted for c in trace.strings("slices", "category")], bool)


def nvtx_ranges(trace: Trace, categories=RANGE_CATEGORIES) -> pd.DataFrame:
    """One row per NVTX range on a CPU thread: where it is, its text and, for layerwise
    texts, module, layer_stack, layer, module_type, inputs, params, static_params, n_params."""
    f = _slice_frame(trace)
    rows = np.flatnonzero(_codes(trace, categories)[f["cat"]] & f["thread"] & (f["dur"] >= 0)) if len(f["ts"]) else np.zeros(0, np.int64)
    names = trace.strings("slices", "name")
    codes = f["name"][rows]
    parsed = {c: parse_layerwise(names[c]) for c in np.unique(codes).tolist()}
    info = [parsed[c] for c in codes.tolist()]
    rank_names = trace.processes.column("name").to_pylist()
    track_names = trace.tracks.column("name").to_pylist()
    out = pd.DataFrame(
        {
            "row": rows.astype(np.int64),
            "process": f["process"][rows].astype(np.int32),
            "rank": pd.Categorical([rank_names[p] for p in f["process"][rows].tolist()]),
            "track": f["track"][rows].astype(np.int32),
            "thread": pd.Categorical([track_names[t] for t in f["track"][rows].tolist()]),
            "text": pd.array([names[c] for c in codes.tolist()], dtype="string"),
            "start_ns": f["ts"][rows],
            "end_ns": f["ts"][rows] + f["dur"][rows],
            "dur_ns": f["dur"][rows],
            "layerwise": np.array([p is not None for p in info], bool),
        }
    )
    for col, dtype in (("module", "string"), ("layer_stack", "string"), ("layer", "Int64"), ("module_type", "string"),
                       ("inputs", "string"), ("params", "string"), ("static_params", "string"), ("n_params", "Int64")):
        out[col] = pd.array([getattr(p, col) if p is not None else None for p in info], dtype=dtype)
    return out


# ---- kernels --------------------------------------------------------------------------------


def layer_kernels(trace: Trace, memops: bool = False, ranges: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per kernel (and whole-graph execution; memcpy/memset too with `memops`): its
    launch, the innermost NVTX range and layerwise module around the launch, the module's
    layer and shapes, whether a CUDA graph ran it, and its ``attribution`` bucket."""
    f = _slice_frame(trace)
    names = trace.strings("slices", "name")
    cats = trace.strings("slices", "category")
    kinds = _codes(trace, KERNEL_CATEGORIES + GRAPH_CATEGORIES + (MEMOP_CATEGORIES if memops else ()))
    n = trace.num_slices
    ops = np.flatnonzero(kinds[f["cat"]] & (f["dur"] >= 0)) if n else np.zeros(0, np.int64)
    launch_of = np.full(n + 1, -1, np.int64)
    launch_of[trace.column("flows", "dst")] = trace.column("flows", "src")
    launch = launch_of[ops]
    has_launch = launch >= 0
    lrow = np.maximum(launch, 0)
    ts, end = f["ts"], f["ts"] + np.maximum(f["dur"], 0)
    l_track = np.where(has_launch, f["track"][lrow] if n else 0, -1)
    l_start = np.where(has_launch, ts[lrow] if n else 0, 0)
    l_end = np.where(has_launch, end[lrow] if n else 0, 0)
    # graph: launched by a graph launch, or a graph node / whole-graph execution
    graph_api = np.array([bool(GRAPH_LAUNCH.match(s)) for s in names], bool)
    graph = has_launch & (graph_api[f["name"][lrow]] if n else np.zeros(0, bool))
    graph |= _codes(trace, GRAPH_CATEGORIES)[f["cat"][ops]] if n else np.zeros(0, bool)
    graph |= np.isin(ops, _arg_owners(trace, GRAPH_ARGS))
    # innermost range, innermost layerwise range
    r = ranges if ranges is not None else nvtx_ranges(trace)
    r_track, r_start, r_end = r["track"].to_numpy(np.int64), r["start_ns"].to_numpy(np.int64), r["end_ns"].to_numpy(np.int64)
    q = np.flatnonzero(has_launch)
    inner = np.full(len(ops), -1, np.int64)
    inner[q] = innermost_containing(r_track, r_start, r_end, l_track[q], l_start[q], l_end[q])
    lw = np.flatnonzero(r["layerwise"].to_numpy())
    mod = np.full(len(ops), -1, np.int64)
    if len(lw):
        m = innermost_containing(r_track[lw], r_start[lw], r_end[lw], l_track[q], l_start[q], l_end[q])
        mod[q] = np.where(m >= 0, lw[np.maximum(m, 0)], -1)
    mod_no_graph = np.where(graph, -1, mod)
    attribution = np.select(
        [~has_launch, graph, mod >= 0, inner >= 0],
        ["no_launch", "cuda_graph", "module", "other_range"],
        "no_range",
    )
    rank_names = trace.processes.column("name").to_pylist()
    track_names = trace.tracks.column("name").to_pylist()
    corr = trace.column("slices", "correlation")

    def from_ranges(col: str, idx: np.ndarray, dtype: str):
        values = r[col].array
        out = pd.array([None] * len(idx), dtype=dtype)
        ok = idx >= 0
        if ok.any():
            out[ok] = values[idx[ok]]
        return out

    out = pd.DataFrame(
        {
            "op": ops.astype(np.int64),
            "process": f["process"][ops].astype(np.int32),
            "rank": pd.Categorical([rank_names[p] for p in f["process"][ops].tolist()]),
            "stream": pd.Categorical([track_names[t] for t in f["track"][ops].tolist()]),
            "category": pd.Categorical([cats[c] for c in f["cat"][ops].tolist()]),
            "kernel": pd.array([names[c] for c in f["name"][ops].tolist()], dtype="string"),
            "ts_ns": ts[ops],
            "end_ns": end[ops],
            "dur_ns": end[ops] - ts[ops],
            "correlation": corr[ops],
            "launch": launch,
            "launch_api": pd.array([names[c] if ok else None for c, ok in zip(f["name"][lrow].tolist() if n else [], has_launch.tolist())], dtype="string"),
            "launch_thread": pd.Categorical([track_names[t] if t >= 0 else None for t in l_track.tolist()]),
            "launch_ts_ns": np.where(has_launch, l_start, 0),
            "graph": graph,
            "range_row": np.where(inner >= 0, r["row"].to_numpy(np.int64)[np.maximum(inner, 0)] if len(r) else -1, -1),
            "range": from_ranges("text", inner, "string"),
            "module_row": np.where(mod_no_graph >= 0, r["row"].to_numpy(np.int64)[np.maximum(mod_no_graph, 0)] if len(r) else -1, -1),
        }
    )
    for col, dtype in (("module", "string"), ("layer_stack", "string"), ("layer", "Int64"), ("module_type", "string"), ("inputs", "string"),
                       ("params", "string")):
        out[col] = from_ranges(col, mod_no_graph, dtype)
    out["attribution"] = pd.Categorical(attribution, categories=ATTRIBUTIONS)
    return out


def _arg_owners(trace: Trace, keys) -> np.ndarray:
    if not trace.args.num_rows:
        return np.zeros(0, np.int64)
    key_names = trace.strings("args", "key")
    wanted = np.array([k in keys for k in key_names], bool)
    codes = trace.column("args", "key")
    return np.unique(trace.column("args", "owner")[wanted[codes]])


# ---- per range (nsys nvtx_kern_sum) ---------------------------------------------------------


def by_range(trace: Trace, ranges: pd.DataFrame | None = None, kernels: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per NVTX range instance: kernels whose launch it contains, all of them
    (``n_kernels``/``kernel_ns``: every enclosing range counts them, as nsys ``nvtx_kern_sum``)
    and those for which it is the innermost range (``self_n_kernels``/``self_kernel_ns``);
    ``graph_kernel_ns`` is the part run by CUDA graphs. Kernels only (no memops, no
    whole-graph executions)."""
    r = ranges if ranges is not None else nvtx_ranges(trace)
    k = kernels if kernels is not None else layer_kernels(trace, ranges=r)
    k = k[k["category"].astype(str).isin(KERNEL_CATEGORIES) & (k["launch"] >= 0)]
    f = _slice_frame(trace)
    launch = k["launch"].to_numpy(np.int64)
    lt = f["track"][launch] if len(launch) else np.zeros(0, np.int64)
    ls = f["ts"][launch] if len(launch) else np.zeros(0, np.int64)
    le = ls + (np.maximum(f["dur"][launch], 0) if len(launch) else 0)
    qi, ri = containing_pairs(r["track"].to_numpy(np.int64), r["start_ns"].to_numpy(np.int64), r["end_ns"].to_numpy(np.int64), lt, ls, le)
    dur = k["dur_ns"].to_numpy(np.int64)
    graph = k["graph"].to_numpy(bool)
    nr = len(r)
    n_k = np.bincount(ri, minlength=nr).astype(np.int64)
    k_ns = _sum_by(ri, dur[qi], nr)
    g_ns = _sum_by(ri, np.where(graph[qi], dur[qi], 0), nr)
    row_pos = pd.Series(np.arange(nr), index=r["row"].to_numpy(np.int64))
    inner = k["range_row"].to_numpy(np.int64)
    has = inner >= 0
    ipos = row_pos.reindex(inner[has]).to_numpy(np.int64)
    s_n = np.bincount(ipos, minlength=nr).astype(np.int64)
    s_ns = _sum_by(ipos, dur[has], nr)
    out = r[["row", "rank", "thread", "text", "start_ns", "end_ns", "dur_ns", "module", "layer", "module_type"]].copy()
    out["n_kernels"] = n_k
    out["kernel_ns"] = k_ns
    out["self_n_kernels"] = s_n
    out["self_kernel_ns"] = s_ns
    out["graph_kernel_ns"] = g_ns
    return out


def _sum_by(idx: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Exact int64 sums of `values` per index (no float rounding)."""
    out = np.zeros(n, np.int64)
    np.add.at(out, idx, np.asarray(values, np.int64))
    return out


# ---- aggregates ------------------------------------------------------------------------------


def _buckets(k: pd.DataFrame, key: str, total: int) -> pd.DataFrame:
    """Rows for the kernels not in any module: one per bucket that has kernels."""
    rows = []
    for b in ATTRIBUTIONS[1:]:
        sel = k[k["attribution"] == b]
        if len(sel):
            rows.append({key: f"({b})", "kind": b, "n_kernels": len(sel), "kernel_ns": int(sel["dur_ns"].sum())})
    out = pd.DataFrame(rows, columns=[key, "kind", "n_kernels", "kernel_ns"])
    out["share"] = out["kernel_ns"] / total if total else 0.0
    return out


def _aggregate(trace: Trace, keys: list[str], by_rank: bool, extra) -> pd.DataFrame:
    k = layer_kernels(trace)
    total = int(k["dur_ns"].sum())
    group = (["rank"] if by_rank else []) + keys
    m = k[k["attribution"] == "module"]
    g = m.groupby(group, observed=True, sort=False, dropna=False)
    out = pd.DataFrame({"n_kernels": g.size(), "kernel_ns": g["dur_ns"].sum()}).reset_index()
    out = extra(m, g, out)
    out.insert(len(group), "kind", "module")
    out["share"] = out["kernel_ns"] / total if total else 0.0
    out = out.sort_values("kernel_ns", ascending=False, kind="stable")
    if by_rank:
        parts = [out]
        for rank, kr in k.groupby("rank", observed=True):
            b = _buckets(kr, keys[0], total)
            b.insert(0, "rank", rank)
            parts.append(b)
        out = pd.concat(parts, ignore_index=True)
    else:
        out = pd.concat([out, _buckets(k, keys[0], total)], ignore_index=True)
    out["kind"] = pd.Categorical(out["kind"], categories=ATTRIBUTIONS)
    for col in ("n_kernels", "kernel_ns"):
        out[col] = out[col].astype(np.int64)
    for col in ("calls", "layers", "modules", "layer"):
        if col in out:
            out[col] = out[col].astype("Int64")
    if "mean_ns_per_call" in out:
        out["mean_ns_per_call"] = out["mean_ns_per_call"].astype("Float64")
    for col in out.columns:
        if out[col].dtype == object:
            out[col] = out[col].astype("string")
    return out.reset_index(drop=True)


def _calls(m: pd.DataFrame, group: list[str]) -> pd.Series:
    return m.groupby(group, observed=True, sort=False, dropna=False)["module_row"].nunique()


def by_module(trace: Trace, by_rank: bool = False) -> pd.DataFrame:
    """One row per module path (kernels whose innermost layerwise range is that module), then
    one row per bucket that is not a module (``(cuda_graph)``, ``(other_range)``,
    ``(no_range)``, ``(no_launch)``). ``calls`` = range instances that launched kernels."""

    def extra(m, g, out):
        group = [c for c in out.columns if c in ("rank", "module")]
        first = g[["layer", "module_type"]].first().reset_index()
        out = out.merge(first, on=group, how="left")
        out["calls"] = _calls(m, group).reindex(pd.MultiIndex.from_frame(out[group]) if len(group) > 1 else out[group[0]]).to_numpy(np.int64)
        out["mean_ns_per_call"] = out["kernel_ns"] / out["calls"]
        return out

    return _aggregate(trace, ["module"], by_rank, extra)


def by_module_type(trace: Trace, by_rank: bool = False) -> pd.DataFrame:
    """One row per module type (``self_attn.qkv_proj`` summed over layers), then the buckets."""

    def extra(m, g, out):
        group = [c for c in out.columns if c in ("rank", "module_type")]
        idx = pd.MultiIndex.from_frame(out[group]) if len(group) > 1 else out[group[0]]
        out["layers"] = g["layer"].nunique().reindex(idx).to_numpy(np.int64)
        out["calls"] = _calls(m, group).reindex(idx).to_numpy(np.int64)
        return out

    return _aggregate(trace, ["module_type"], by_rank, extra)


def by_layer(trace: Trace, by_rank: bool = False) -> pd.DataFrame:
    """One row per (layer stack, layer) — modules outside any layer (embeddings, final norm,
    lm_head) are one ``(outside layers)`` row — then the buckets."""

    def extra(m, g, out):
        group = [c for c in out.columns if c in ("rank", "layer_stack", "layer")]
        idx = pd.MultiIndex.from_frame(out[group])
        out["modules"] = m.groupby(group, observed=True, sort=False, dropna=False)["module"].nunique().reindex(idx).to_numpy(np.int64)
        return out

    out = _aggregate(trace, ["layer_stack", "layer"], by_rank, extra)
    outside = (out["kind"] == "module") & out["layer_stack"].isna()
    out.loc[outside, "layer_stack"] = OUTSIDE_LAYERS
    return out


def summary(trace: Trace) -> dict:
    """Totals for a status line: kernels, kernel time, and the time in each bucket."""
    k = layer_kernels(trace)
    by = k.groupby("attribution", observed=False)["dur_ns"].sum()
    return {
        "kernels": len(k),
        "kernel_ns": int(k["dur_ns"].sum()),
        "layerwise_ranges": int(nvtx_ranges(trace)["layerwise"].sum()),
        **{f"{b}_ns": int(by.get(b, 0)) for b in ATTRIBUTIONS},
    }


__all__ = [
    "by_layer", "by_module", "by_module_type", "by_range", "layer_kernels", "nvtx_ranges",
    "parse_layerwise", "split_module_path", "summary",
]
