"""Row filters that keep traces small enough for the browser: by time, category, GPU, steps.

Each returns a boolean mask over slice rows; `merge.take_slices` applies it."""

from __future__ import annotations

import re

import numpy as np

from traceconv.model.trace import Trace, TrackKind

STEP_NAME = re.compile(r"^\s*(step\[|ProfilerStep#)", re.IGNORECASE)
GPU_KINDS = (TrackKind.GPU_STREAM,)


def parse_duration_ns(text: str) -> int:
    """``1.5s``, ``200ms``, ``30us``, ``100ns`` or a bare number of seconds → ns."""
    m = re.fullmatch(r"\s*(-?[0-9.]+)\s*(ns|us|µs|ms|s)?\s*", text)
    if not m:
        raise ValueError(f"not a duration: {text!r}")
    scale = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000, None: 1_000_000_000}[m.group(2)]
    return int(round(float(m.group(1)) * scale))


def _ends(trace: Trace) -> tuple[np.ndarray, np.ndarray]:
    ts = trace.column("slices", "ts_ns")
    return ts, ts + np.maximum(trace.column("slices", "dur_ns"), 0)


def time_window(trace: Trace, start_ns: int | None, end_ns: int | None) -> np.ndarray:
    """Slices that overlap [start, end], both relative to the trace's first timestamp."""
    ts, end = _ends(trace)
    if not len(ts):
        return np.zeros(0, bool)
    t0 = int(ts.min())
    lo = t0 + (start_ns or 0)
    hi = t0 + end_ns if end_ns is not None else np.iinfo(np.int64).max
    return (end >= lo) & (ts <= hi)


def drop_categories(trace: Trace, categories: list[str]) -> np.ndarray:
    cats = trace.strings("slices", "category")
    drop = np.array([c in categories for c in cats], bool)
    return ~drop[trace.column("slices", "category")] if len(cats) else np.ones(trace.num_slices, bool)


def only_gpu(trace: Trace) -> np.ndarray:
    kinds = np.array(trace.tracks.column("kind").to_pylist(), dtype=object)
    is_gpu = np.array([k in GPU_KINDS for k in kinds], bool)
    return is_gpu[trace.column("slices", "track_id")] if len(kinds) else np.zeros(trace.num_slices, bool)


def step_slices(trace: Trace) -> np.ndarray:
    """Rows of step ranges (``step[...]`` labels, else ``ProfilerStep#N``) on CPU threads."""
    names = trace.strings("slices", "name")
    codes = trace.column("slices", "name")
    kinds = trace.tracks.column("kind").to_pylist()
    on_cpu = np.array([k != TrackKind.GPU_STREAM for k in kinds], bool)[trace.column("slices", "track_id")] if kinds else np.zeros(0, bool)
    is_step = np.array([n.lstrip().lower().startswith("step[") for n in names], bool)
    is_prof = np.array([n.startswith("ProfilerStep#") for n in names], bool)
    rows = np.flatnonzero(is_step[codes] & on_cpu) if len(names) else np.zeros(0, np.int64)
    if not len(rows) and len(names):
        rows = np.flatnonzero(is_prof[codes] & on_cpu)
    return rows


def step_window(trace: Trace, first: int | None, last: int | None) -> np.ndarray:
    """Per process, the time from its step `first` to the end of step `last - 1` (Python slice
    semantics over the steps in time order); GPU ops launched inside come along (flows)."""
    rows = step_slices(trace)
    keep = np.zeros(trace.num_slices, bool)
    if not len(rows):
        return ~keep
    ts, end = _ends(trace)
    proc_of_track = trace.column("tracks", "process_id")
    proc = proc_of_track[trace.column("slices", "track_id")]
    for p in np.unique(proc[rows]).tolist():
        r = rows[proc[rows] == p]
        r = r[np.argsort(ts[r], kind="stable")]
        chosen = r[slice(first, last)]
        if not len(chosen):
            continue
        lo, hi = int(ts[chosen].min()), int(end[chosen].max())
        keep |= (proc == p) & (end >= lo) & (ts <= hi)
    # GPU ops whose launch was kept
    src, dst = trace.column("flows", "src"), trace.column("flows", "dst")
    if len(src):
        keep[dst[keep[src]]] = True
    return keep


def apply(trace: Trace, *, steps: tuple | None = None, window: tuple | None = None, drop=(), gpu_only: bool = False) -> Trace:
    """The trace restricted by the filters given (each None/empty/False to skip); the
    `steps` and `window` tuples are (first, last) and (start_ns, end_ns) as parsed by the CLI."""
    from traceconv.model.merge import take_slices

    keep = np.ones(trace.num_slices, bool)
    if steps is not None:
        keep &= step_window(trace, *steps)
    if window is not None:
        keep &= time_window(trace, *window)
    if drop:
        keep &= drop_categories(trace, list(drop))
    if gpu_only:
        keep &= only_gpu(trace)
    return trace if keep.all() else take_slices(trace, keep)
