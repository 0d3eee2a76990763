"""``traceconv nsys2perfetto`` and ``traceconv layers``: Nsight Systems SQLite exports."""

from __future__ import annotations

import os

import click

from traceconv.cli import cli, output
from traceconv.cli.convert import convert, output_options
from traceconv.cli.tables import emit_table, table_options

NSYS_SUFFIXES = (".sqlite", ".sqlite3", ".db")


def _stem(path: str) -> str:
    base = os.path.basename(path.rstrip("/")) or "report"
    for ext in NSYS_SUFFIXES:
        if base.lower().endswith(ext):
            return base[: -len(ext)]
    return base


@cli.command("nsys2perfetto")
@click.argument("inputs", nargs=-1, required=True)
@output_options
@click.option("--time", "time_range", metavar="START:END", help="Keep only this window, relative to the first event (e.g. 1.5s:2s, 200ms:).")
@click.option("--drop", "drop", multiple=True, metavar="CATEGORY", help="Drop events of this category (nvtx, cuda_runtime, cuda_driver, kernel, gpu_memcpy, gpu_memset, cuda_graph). Repeatable.")
@click.option("--only-gpu", is_flag=True, help="Keep only GPU streams (kernels, memcpy, memset, graphs).")
def nsys2perfetto(inputs, output_path, fmt, strict, time_range, drop, only_gpu) -> None:
    """Convert Nsight Systems SQLite exports to a Perfetto trace.

    INPUTS are files written by `nsys export --type sqlite report.nsys-rep` (several: one per
    node, put on one timeline). Each profiled process becomes a process named with its ranks
    when its thread names or NVTX carry them (TP0 [4101] python3), holding its CPU threads
    (NVTX ranges, nested; CUDA API calls) and GPU streams (kernels, memcpy, memset, CUDA
    graphs), with a launch → GPU op flow per op. Times are epoch ns when the export has the
    session start time, else nsys' relative session clock.

    \b
    Example:
        nsys export --type sqlite report.nsys-rep
        traceconv nsys2perfetto report.sqlite -o report.pftrace
        traceconv nsys2perfetto report.sqlite --only-gpu -o gpu.pftrace
    """
    from traceconv.model import filters
    from traceconv.model.merge import concat

    files = output.expand_inputs(inputs, NSYS_SUFFIXES)
    window = _parse_window(time_range)
    if output_path is None:
        output_path = ("stdin" if files[0] == "-" else _stem(files[0])) + (".json" if fmt == "json" else ".pftrace")

    def read():
        trace = concat([_read_nsys(f) for f in files])
        return filters.apply(trace, window=window if time_range else None, drop=drop, gpu_only=only_gpu)

    convert(read, files, output_path, fmt, strict)


def _read_nsys(path: str):
    """A path, or ``-``: stdin, copied to a temporary file (SQLite needs one)."""
    from traceconv.readers.nsys import read_nsys

    return read_nsys(output.open_input(path), name="<stdin>" if path == "-" else None)


def _parse_window(text: str | None):
    from traceconv.cli.convert import _parse_range
    from traceconv.model.filters import parse_duration_ns

    return _parse_range(text, parse_duration_ns)


LAYER_VIEWS = ("module", "type", "layer", "range", "kernels")


@cli.command("layers")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--by-module", "view", flag_value="module", default=True, help="One row per module path (default).")
@click.option("--by-type", "view", flag_value="type", help="One row per module type (self_attn.qkv_proj summed over layers).")
@click.option("--by-layer", "view", flag_value="layer", help="One row per layer.")
@click.option("--by-range", "view", flag_value="range", help="One row per NVTX range instance (nsys nvtx_kern_sum rule: inclusive and innermost).")
@click.option("--kernels", "view", flag_value="kernels", help="One row per kernel with its range, module, layer and bucket.")
@click.option("--by-rank", is_flag=True, help="Keep ranks apart (module, type and layer views).")
@table_options
def layers_command(inputs, view, by_rank, fmt, output_path) -> None:
    """GPU kernel time per model module, module type and layer, from layerwise NVTX ranges.

    INPUTS are Nsight Systems SQLite exports of a run with SGLang's
    --enable-layerwise-nvtx-marker (or other traces with NVTX ranges). A kernel belongs to the
    innermost layerwise range that, on the launching thread, contains its whole launch call
    (the nsys rule). Kernels replayed by CUDA graphs have no module ranges and are reported as
    "(cuda_graph)", never given to a module; kernels outside modules are "(other_range)",
    "(no_range)" or "(no_launch)".

    \b
    Example:
        traceconv layers report.sqlite
        traceconv layers report.sqlite --by-type
        traceconv layers report.sqlite --kernels -o kernels.parquet
    """
    from analyzers import layers

    from traceconv.model.merge import concat
    from traceconv.readers import read_trace

    files = output.expand_inputs(inputs, NSYS_SUFFIXES)
    paths = [f for f in files if f != "-"]
    parts = ([read_trace(paths)] if paths else []) + ([_read_nsys("-")] if "-" in files else [])
    trace = concat(parts)
    output.read_notes(trace)
    ranges = layers.nvtx_ranges(trace)
    tables = {
        "module": lambda: layers.by_module(trace, by_rank=by_rank),
        "type": lambda: layers.by_module_type(trace, by_rank=by_rank),
        "layer": lambda: layers.by_layer(trace, by_rank=by_rank),
        "range": lambda: layers.by_range(trace, ranges=ranges),
        "kernels": lambda: layers.layer_kernels(trace, ranges=ranges),
    }
    emit_table(tables[view](), fmt, output_path, files)
    s = layers.summary(trace)
    total = s["kernel_ns"]
    line = f"{s['kernels']} kernels, {total / 1e6:,.3f} ms kernel time; {s['layerwise_ranges']} layerwise ranges"
    if total:
        parts = [(b, s[f"{b}_ns"]) for b in layers.ATTRIBUTIONS if s[f"{b}_ns"]]
        line += "; " + ", ".join(f"{100 * v / total:.1f}% {b.replace('_', ' ')}" for b, v in parts)
    output.status(line)
    if not s["layerwise_ranges"]:
        output.warn("no layerwise NVTX ranges (dict texts with 'Module'): run SGLang with --enable-layerwise-nvtx-marker and nsys -t cuda,nvtx")
    elif s["cuda_graph_ns"]:
        output.status("CUDA-graph time is not split by module (no module ranges run inside graph replays); "
                      "use --disable-cuda-graph for a per-module view of those steps")
