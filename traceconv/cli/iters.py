"""``traceconv iters``: can the iteration ids in SGLang scheduler logs be trusted? (thin glue
over `analyzers.sglang_log` and `analyzers.iterations`)."""

from __future__ import annotations

import importlib
import importlib.util

import click

from traceconv.cli import cli, output
from traceconv.cli.tables import emit_table, resolve_format, table_options
from traceconv.errors import GateTripped, TraceconvError

LOG_SUFFIXES = (".log", ".txt", ".out", ".err", ".gz", ".zst")
TRACE_SUFFIXES = (".json", ".json.gz", ".json.zst", ".gz", ".zst", ".sqlite", ".jsonl", ".pb")


@cli.command("iters")
@click.argument("logs", nargs=-1, required=True)
@click.option("--trace", "trace_paths", multiple=True, metavar="PATH",
              help="A profiler trace (file or directory) of the same run: line the log up with its steps. Repeatable.")
@click.option("--decode-log-interval", type=click.IntRange(min=1), default=None, metavar="N",
              help="The server's --decode-log-interval (default: from the server_args line, else inferred).")
@click.option("--log-tz", default="auto", show_default=True, metavar="+HH:MM|auto",
              help="UTC offset of the log's times (they carry no zone); auto: fitted on the trace's steps.")
@click.option("--fail-on-findings", is_flag=True, help="Exit 3 when there is any finding (CI gate).")
@table_options
def iters(logs, trace_paths, decode_log_interval, log_tz, fail_on_findings, fmt, output_path) -> None:
    """Flag mislabeled iteration ids in SGLang scheduler logs.

    LOGS are server logs (plain, gzip or zstd; '-' reads stdin; a directory means every log in
    it) written with SGLANG_LOG_FORWARD_ITERS=1, whose "Prefill batch [N]" / "Decode batch [N]"
    lines carry the forward iteration. Before SGLang PR #20845, overlap scheduling made these
    ids wrong (prefill = forward_ct + 1, decode = the next batch's id, repeats after idle
    points). Per stream (DP/PP rank) the lines are checked for repeated and decreasing ids,
    gaps that do not fit the decode log interval, missing ids, and the pre-fix labelling.

    Prints one row per flagged line (reason, expected and logged id) on stdout and the
    verdict on stderr: "N lines, M findings (by reason) — consistent | pre-fix overlap
    labelling | inconsistent".

    \b
    Example:
        traceconv iters server.log
        traceconv iters server.log.gz --format csv -o findings.csv
        traceconv iters server.log --trace profile_dir/ --fail-on-findings
    """
    from analyzers import iterations, sglang_log

    from traceconv.readers.source import open_source

    try:
        tz = iterations.parse_tz(log_tz)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--log-tz") from None
    files = output.expand_inputs(logs, LOG_SUFFIXES)
    frames = []
    for path in files:
        name = "<stdin>" if path == "-" else path
        src = open_source(output.open_input(path), name=name)
        try:
            df = sglang_log.parse_log(src.stream)
        finally:
            if path != "-":
                src.close()
        for d in src.damage:
            output.warn(f"{name}: {d}; the lines before it were read")
        skipped = df.attrs.get("stats", {}).get("skipped", 0)
        if skipped:
            output.warn(f"{name}: {skipped} line(s) look like batch lines but could not be read; skipped")
        frames.append(df)
    lines = sglang_log.concat_logs(frames, files) if len(files) > 1 else frames[0]
    if not len(lines):
        raise TraceconvError("no 'Prefill batch' / 'Decode batch' lines of an SGLang scheduler", source=", ".join(files))

    trace_steps = _trace_steps(trace_paths) if trace_paths else None
    res = iterations.check(lines, trace_steps, decode_log_interval, log_tz=tz)

    if len(res.findings) or resolve_format(fmt, output_path) != "table" or output_path:
        emit_table(res.findings, fmt, output_path, files)
    else:
        click.echo("no findings")
    output.status(res.verdict())
    output.status(f"evidence: {res.summary['evidence']}")
    tr = res.summary.get("trace")
    if tr:
        if "note" in tr:
            output.warn(f"--trace: {tr['note']}")
        else:
            output.status(
                f"trace: {tr['lines_on_trace']} lines on {tr['steps']} steps ({tr['stream']}); log UTC offset "
                f"{_fmt_tz(tr['log_tz_s'])}{' (fitted)' if tr['log_tz_fitted'] else ''}; "
                f"{tr['confirmed']} confirmed, {tr['contradicted']} contradicted, {tr['trace_mismatches']} mismatches"
            )
    if fail_on_findings and len(res.findings):
        raise GateTripped(f"{len(res.findings)} finding(s) (--fail-on-findings)")


def _trace_steps(paths: tuple[str, ...]):
    """The steps of the trace(s), via `analyzers.steps.trace_steps` and `traceconv.read_trace`
    (both optional parts of the toolkit: a clear error when one is missing)."""
    import traceconv

    if importlib.util.find_spec("analyzers.steps") is None:
        raise TraceconvError("--trace needs the steps analyzer (analyzers/steps.py)")
    steps = importlib.import_module("analyzers.steps")
    if not hasattr(steps, "trace_steps"):
        raise TraceconvError("--trace needs the steps analyzer (analyzers.steps.trace_steps)")
    read_trace = getattr(traceconv, "read_trace", None)
    if read_trace is None:
        raise TraceconvError("--trace needs traceconv.read_trace")
    files = output.expand_inputs(paths, TRACE_SUFFIXES, prefer=".trace.json")
    trace = read_trace([output.open_input(f) if f != "-" else f for f in files])
    output.read_notes(trace)
    return steps.trace_steps(trace)


def _fmt_tz(seconds) -> str:
    s = int(seconds)
    sign = "+" if s >= 0 else "-"
    s = abs(s)
    return f"{sign}{s // 3600:02d}:{s % 3600 // 60:02d}"
