"""Converters: ``otel2perfetto``, ``torch2perfetto`` and their shared plumbing."""

from __future__ import annotations

import os
import time
from typing import Callable

import click
import numpy as np

from traceconv.cli import cli, output
from traceconv.errors import DamagedInputError
from traceconv.model.trace import Trace
from traceconv.writers import format_for_path, write_trace
from traceconv.writers.summary import summary_table

OTEL_SUFFIXES = (".json", ".jsonl", ".gz", ".zst", ".pb", ".proto", ".bin", ".txt", ".log")


def output_options(f: Callable) -> Callable:
    f = click.option("--strict", is_flag=True, help="Exit 1 if any input was damaged (truncated, bad lines) instead of salvaging.")(f)
    f = click.option(
        "--format",
        "fmt",
        type=click.Choice(["perfetto", "json"]),
        default=None,
        help="perfetto: protobuf (default; ns-exact, lanes, interning). json: Chrome JSON (µs, 3 decimals). "
        "Default: from the -o suffix (.json, .json.gz → json).",
    )(f)
    f = click.option("-o", "--output", "output_path", metavar="PATH", help="Output file ('-' for stdout). Default: the first input's name with .pftrace/.json.")(f)
    return f


def convert(trace_reader: Callable[[], Trace], inputs: list[str], output_path: str | None, fmt: str | None, strict: bool,
            jobs: int | None = None) -> None:
    """Read, report what was salvaged, write atomically, say where (`jobs`: processes that
    encode the Perfetto output; default one: since the packets are joined by Arrow, forked
    encoders save ~5% of the time for ~15% more memory, so only an explicit -j uses them)."""
    t0 = time.perf_counter()
    trace = trace_reader()
    output.return_freed_memory()
    for w in trace.warnings:
        output.warn(w)
    if strict and trace.damage:
        raise DamagedInputError(f"input damaged ({_stats_line(trace)}); not converting because of --strict")
    if fmt is None:
        fmt = format_for_path(output_path) if output_path else "perfetto"
    if output_path is None:
        output_path = output.default_output(inputs[0], ".pftrace" if fmt == "perfetto" else ".json")
    output.check_not_input(output_path, inputs)
    with output.atomic_output(output_path) as out:
        counts = write_trace(trace, out, fmt, workers=jobs or 1)
    if counts.get("time_shift_ns"):
        output.warn(f"some timestamps were negative; all times were shifted by +{counts['time_shift_ns']} ns (Perfetto drops negative times)")
    elapsed = time.perf_counter() - t0
    summary = f"{counts['slices']} slices, {counts['instants']} instants, {counts['flows']} flows"
    output.status(f"Converted {len(inputs)} input(s) in {elapsed:.2f} s: {summary}")
    for line in summary_table(trace):
        output.status(line)
    if output_path != "-":
        output.status(f"Wrote {output_path}")


def _stats_line(trace: Trace) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(trace.stats.items()) if v)


@cli.command("otel2perfetto")
@click.argument("inputs", nargs=-1, required=True)
@output_options
@click.option("-j", "--jobs", type=int, default=None, help="Processes encoding the output (default: 1; more rarely pays off).")
def otel2perfetto(inputs: tuple[str, ...], output_path: str | None, fmt: str | None, strict: bool, jobs: int | None) -> None:
    """Convert OpenTelemetry span dumps to a Perfetto trace.

    INPUTS are Collector `file` exporter dumps (JSON Lines or proto, gzip/zstd, rotated files
    together), JSON arrays, Tempo `batches`, ConsoleSpanExporter output; a directory means
    every dump in it; '-' reads stdin. The format is sniffed from the bytes.

    One process per (host, process), one thread track per worker thread named with its ranks
    (Scheduler-PP1-DP0-TP0); concurrent requests on a thread go to lanes; links become flow
    arrows, span events instants, attributes args.

    \b
    Example:
        traceconv otel2perfetto /tmp/otel_trace.json -o requests.pftrace
        traceconv otel2perfetto dumps/*.json --format json -o requests.json
    """
    from traceconv.readers import read_otel

    files = output.expand_inputs(inputs, OTEL_SUFFIXES)
    for path in files:
        _announce(path)
    convert(lambda: read_otel([output.open_input(p) for p in files]), files, output_path, fmt, strict, jobs)


def _announce(path: str) -> None:
    import os

    if path != "-" and os.path.getsize(path) > 50 << 20:
        output.status(f"Reading {path} ({output.human_bytes(os.path.getsize(path))})...")


TORCH_SUFFIXES = (".json", ".json.gz", ".json.zst", ".gz", ".zst")


def _read_one_kineto(args: tuple[str, str | None]):
    from traceconv.readers.kineto import read_kineto

    path, rank_from = args
    return read_kineto(path, rank_from=rank_from)


def read_many_kineto(files: list[str], rank_from: str | None, jobs: int):
    """Read Kineto files, in parallel processes when there are several (results in input order)."""
    if jobs > 1 and len(files) > 1 and "-" not in files:
        from traceconv.forked import imap_forked

        return list(imap_forked(_read_one_kineto, [(f, rank_from) for f in files], jobs))
    from traceconv.readers.kineto import read_kineto

    return [read_kineto(output.open_input(f), rank_from=rank_from, name=None if f != "-" else "<stdin>") for f in files]


def _parse_range(text: str | None, parse) -> tuple:
    if text is None:
        return None, None
    if ":" not in text:
        raise click.BadParameter(f"expected START:END, got {text!r}")
    a, b = text.split(":", 1)
    try:
        return (parse(a) if a.strip() else None), (parse(b) if b.strip() else None)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


def align_traces(traces: list, mode: str) -> list:
    """Shift each rank so its first step (or first event) lines up with the first rank's."""
    from traceconv.model.filters import step_slices
    from traceconv.model.merge import shift_time

    if mode == "none" or len(traces) < 2:
        return traces
    marks = []
    for t in traces:
        ts = t.column("slices", "ts_ns")
        rows = step_slices(t) if mode == "first-step" else np.zeros(0, np.int64)
        if len(rows):
            marks.append(int(ts[rows].min()))
        elif len(ts):
            marks.append(int(ts.min()))
        else:
            marks.append(None)
    ref = next((m for m in marks if m is not None), None)
    return [shift_time(t, ref - m) if m is not None and ref is not None else t for t, m in zip(traces, marks)]


@cli.command("torch2perfetto")
@click.argument("inputs", nargs=-1, required=True)
@output_options
@click.option("--otel", "otel_inputs", multiple=True, metavar="DUMP", help="Also put these OTel span dumps on the same timeline.")
@click.option("--rank-from", metavar="REGEX", help="Ranks from file names with named groups (?P<tp>..)(?P<dp>..)(?P<pp>..)(?P<ep>..)(?P<stage>..).")
@click.option("--align", type=click.Choice(["none", "first-step", "start"]), default="none", show_default=True,
              help="Shift ranks onto the first rank's clock (hosts with skewed clocks). Real skew is information: default none.")
@click.option("--steps", "steps_range", metavar="A:B", help="Keep only steps A..B-1 (step[...] / ProfilerStep# ranges in time order, per rank).")
@click.option("--time", "time_range", metavar="START:END", help="Keep only this window, relative to the first event (e.g. 1.5s:2s, 200ms:).")
@click.option("--drop", "drop", multiple=True, metavar="CATEGORY", help="Drop events of this category (e.g. python_function). Repeatable.")
@click.option("--only-gpu", is_flag=True, help="Keep only GPU streams (kernels, memcpy, memset).")
@click.option("-j", "--jobs", type=int, default=None, help="Processes reading files (default: all cores) and, when given, encoding the output.")
def torch2perfetto(inputs, output_path, fmt, strict, otel_inputs, rank_from, align, steps_range, time_range, drop, only_gpu, jobs) -> None:
    """Merge PyTorch profiler (Kineto) traces of several ranks onto one Perfetto timeline.

    INPUTS are trace files (.json, .json.gz, .json.zst) or directories of them, as written by
    SGLang's /start_profile, `python -m sglang.profiler` or bench_one_batch --profile. Each
    file becomes one process named by its ranks (PP0-DP1-TP3 (EXTEND)) from SGLang's file
    names or distributedInfo, holding its CPU threads and GPU streams; times are exact epoch
    ns; launch → kernel flows are kept (one per kernel of a CUDA-graph launch).

    \b
    Example:
        traceconv torch2perfetto /tmp/sglang_profile/ -o step.pftrace
        traceconv torch2perfetto a.trace.json.gz b.trace.json.gz --otel /tmp/otel_trace.json -o all.pftrace
        traceconv torch2perfetto big.trace.json.gz --steps 2:4 --drop python_function -o small.pftrace
    """
    from traceconv.model import filters
    from traceconv.model.merge import concat

    files = output.expand_inputs(inputs, TORCH_SUFFIXES, prefer=".trace.json")
    otel_files = output.expand_inputs(otel_inputs) if otel_inputs else []
    for path in files + otel_files:
        _announce(path)
    steps = _parse_range(steps_range, int)
    window = _parse_range(time_range, filters.parse_duration_ns)

    def read():
        traces = read_many_kineto(files, rank_from, jobs or os.cpu_count() or 1)
        traces = align_traces(traces, align)
        if otel_files:
            from traceconv.readers import read_otel

            traces.append(read_otel([output.open_input(p) for p in otel_files]))
        return filters.apply(
            concat(traces), steps=steps if steps_range else None, window=window if time_range else None, drop=drop, gpu_only=only_gpu
        )

    convert(read, files + otel_files, output_path, fmt, strict, jobs)


def _export_one(args: tuple[str, str | None, str, int]) -> dict:
    from traceconv.readers.kineto import read_kineto
    from traceconv.writers.parquet import write_part

    import resource

    path, rank_from, directory, part = args
    trace = read_kineto(path, rank_from=rank_from)
    info = write_part(trace, directory, part)
    info["warnings"] = trace.warnings
    info["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return info


@cli.command("export")
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", "output_path", required=True, metavar="DIR", help="Dataset directory to create.")
@click.option("--force", is_flag=True, help="Replace DIR if it already holds a traceconv dataset.")
@click.option("--rank-from", metavar="REGEX", help="Ranks from file names (named groups tp, dp, pp, ep, stage).")
@click.option("-j", "--jobs", type=int, default=None, help="Files converted in parallel (default: all cores).")
def export(inputs, output_path, force, rank_from, jobs) -> None:
    """Write traces as a Parquet dataset partitioned by rank (pyarrow, pandas, DuckDB, Spark).

    Kineto files are converted one per worker process (-j), each its own part; OTel dumps
    are read together as one part. The schema is described in DIR/_traceconv.json; the
    analysis commands (steps, …) accept DIR as input.

    \b
    Example:
        traceconv export profile_dir/ otel.jsonl -o dataset/
        traceconv export profile_dir/ -o dataset/ -j 2 && traceconv steps dataset/
    """
    import os
    import shutil
    import tempfile

    from traceconv.errors import TraceconvError
    from traceconv.readers import sniff
    from traceconv.writers.parquet import META_FILE, write_meta, write_part

    t0 = time.perf_counter()
    files = output.expand_inputs(inputs, TORCH_SUFFIXES, prefer=".trace.json")
    for f in files:
        if f != "-" and os.path.abspath(f) == os.path.abspath(output_path):
            raise TraceconvError("refusing to write the dataset over an input", source=output_path)
    if os.path.exists(output_path) and os.listdir(output_path) if os.path.isdir(output_path) else os.path.exists(output_path):
        if not (force and os.path.isfile(os.path.join(output_path, META_FILE))):
            raise TraceconvError("exists; use --force to replace a traceconv dataset", source=output_path)
    kineto = [f for f in files if f != "-" and sniff(f) == "kineto"]
    otel = [f for f in files if f not in kineto]
    parent = os.path.dirname(os.path.abspath(output_path)) or "."
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="." + os.path.basename(output_path.rstrip("/")) + ".", dir=parent)
    try:
        tasks = [(f, rank_from, tmp, i) for i, f in enumerate(kineto)]
        jobs = jobs or os.cpu_count() or 1
        from traceconv.forked import imap_forked

        infos = list(imap_forked(_export_one, tasks, jobs))
        if otel:
            from traceconv.readers import read_otel

            trace = read_otel([output.open_input(p) for p in otel])
            info = write_part(trace, tmp, len(tasks))
            info["warnings"] = trace.warnings
            infos.append(info)
        rss = [info.pop("peak_rss_mb", 0.0) for info in infos]
        for info in infos:
            for w in info.pop("warnings", []):
                output.warn(w)
        write_meta(tmp, infos)
        if os.path.exists(output_path):
            shutil.rmtree(output_path)
        os.replace(tmp, output_path)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    rows = sum(i["rows"]["slices"] for i in infos)
    ranks = sum(len(i["ranks"]) for i in infos)
    output.status(f"Exported {len(files)} input(s) in {time.perf_counter() - t0:.2f} s: {rows} slices, {ranks} rank(s); "
                  f"peak RSS of a worker {max(rss, default=0):.0f} MB")
    output.status(f"Wrote {output_path}")
