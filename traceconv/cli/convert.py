"""Converters: ``otel2perfetto`` (and the shared convert/report plumbing)."""

from __future__ import annotations

import time
from typing import Callable

import click

from traceconv.cli import cli, output
from traceconv.errors import DamagedInputError
from traceconv.model.trace import Trace
from traceconv.writers import format_for_path, write_trace

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


def convert(trace_reader: Callable[[], Trace], inputs: list[str], output_path: str | None, fmt: str | None, strict: bool) -> None:
    """Read, report what was salvaged, write atomically, say where."""
    t0 = time.perf_counter()
    trace = trace_reader()
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
        counts = write_trace(trace, out, fmt)
    elapsed = time.perf_counter() - t0
    summary = f"{counts['slices']} slices, {counts['instants']} instants, {counts['flows']} flows"
    if trace.stats:
        summary += f"; {_stats_line(trace)}"
    output.status(f"Converted {len(inputs)} input(s) in {elapsed:.2f} s: {summary}")
    if output_path != "-":
        output.status(f"Wrote {output_path}")


def _stats_line(trace: Trace) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(trace.stats.items()) if v)


@cli.command("otel2perfetto")
@click.argument("inputs", nargs=-1, required=True)
@output_options
def otel2perfetto(inputs: tuple[str, ...], output_path: str | None, fmt: str | None, strict: bool) -> None:
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
    convert(lambda: read_otel([output.open_input(p) for p in files]), files, output_path, fmt, strict)


def _announce(path: str) -> None:
    import os

    if path != "-" and os.path.getsize(path) > 50 << 20:
        output.status(f"Reading {path} ({output.human_bytes(os.path.getsize(path))})...")
