"""Analyses over a traceconv `Trace` (and parsed logs): pure functions that return typed pandas
DataFrames. Analyzers take tables, never paths; the CLI does the I/O.

    >>> import traceconv
    >>> from analyzers import steps, requests, pipeline, iterations, sglang_log, diff
    >>> steps.per_mode(traceconv.read_trace("profile_dir/"))
    >>> requests.analyze(traceconv.read_otel(["otel_trace.jsonl"])).summary()
"""

from analyzers import (  # noqa: F401
    diff,
    fleet,
    intervals,
    iterations,
    pipeline,
    requests,
    sglang_log,
    step_labels,
    steps,
)

__all__ = ["diff", "fleet", "intervals", "iterations", "pipeline", "requests", "sglang_log", "step_labels", "steps"]

from analyzers import layers  # noqa: E402  (GPU kernel time per module / layer from layerwise NVTX)

__all__ += ["layers"]
