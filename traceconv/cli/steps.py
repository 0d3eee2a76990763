"""``traceconv steps``: GPU time per forward step and mode (thin glue over `analyzers.steps`)."""

from __future__ import annotations

import click

from traceconv.cli import cli, output
from traceconv.cli.tables import emit_table, table_options

TRACE_SUFFIXES = (".json", ".json.gz", ".json.zst", ".gz", ".zst", ".sqlite")


@cli.command("steps")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--by-step", "view", flag_value="step", help="One row per step (all ranks).")
@click.option("--by-mode", "view", flag_value="mode", default=True, help="One row per mode, plus unattributed (default).")
@click.option("--by-rank", "view", flag_value="rank", help="One row per rank and mode.")
@click.option("--kernels", "view", flag_value="kernels", help="Top kernels of each mode with their share.")
@click.option("--stragglers", "view", flag_value="stragglers", help="Per step index: spread across ranks and the slowest rank.")
@click.option("-n", "--top", type=int, default=10, show_default=True, help="Kernels per mode with --kernels.")
@click.option("--rank-from", metavar="REGEX", help="Ranks from file names (named groups tp, dp, pp, ep, stage).")
@click.option("--dask-scheduler", metavar="ADDRESS", help="Analyse a Parquet dataset (traceconv export) rank by rank on this Dask cluster (--by-rank / --by-step).")
@table_options
def steps_command(inputs, view, top, rank_from, dask_scheduler, fmt, output_path) -> None:
    """Attribute GPU kernel time to decode / prefill / mixed / idle / … steps.

    A GPU op belongs to the step[...] range that, on the launching thread, contains the whole
    launching call (joined by correlation; all kernels of a CUDA-graph launch included) — the
    nsys nvtx_kern_sum rule. Ops outside any step are reported as "unattributed".

    \b
    Example:
        traceconv steps profile_dir/
        traceconv steps a.trace.json.gz --by-step -o steps.parquet
        traceconv steps profile_dir/ --kernels -n 5
    """
    from analyzers import steps

    from traceconv.readers import read_trace

    files = output.expand_inputs(inputs, TRACE_SUFFIXES, prefer=".trace.json")
    if dask_scheduler:
        _on_dask(dask_scheduler, files, view, fmt, output_path)
        return
    trace = read_trace([output.open_input(f) if f != "-" else f for f in files], rank_from=rank_from)
    output.read_notes(trace)
    tables = {
        "step": lambda: steps.per_step(trace),
        "mode": lambda: steps.per_mode(trace),
        "rank": lambda: steps.per_mode(trace, by_rank=True),
        "kernels": lambda: steps.top_kernels(trace, top),
        "stragglers": lambda: steps.stragglers(trace),
    }
    df = tables[view]()
    emit_table(df, fmt, output_path, files)
    ps = steps.per_step(trace) if view != "step" else df
    pm = steps.per_mode(trace) if view != "mode" else df
    total = int(pm["gpu_op_ns"].sum())
    un = pm.loc[pm["mode"] == "unattributed", "gpu_op_ns"].sum()
    ranks = trace.processes.num_rows
    line = f"{len(ps)} steps on {ranks} rank(s); GPU op time {total / 1e6:,.3f} ms"
    if total:
        line += f", {100 * (total - un) / total:.1f}% in steps, {100 * un / total:.1f}% unattributed"
    bad, examples = steps.unparsed_labels(trace)
    if bad:
        line += f"; {bad} step label(s) did not parse, e.g. {', '.join(examples)}"
    agreement = steps.annotation_agreement(trace)
    if agreement.get("ops_with_annotation"):
        line += f"; gpu_user_annotation agrees for {agreement['agree']}/{agreement['ops_with_annotation']} GPU ops"
    output.status(line)


def _on_dask(address: str, files: list[str], view: str, fmt, output_path) -> None:
    from traceconv.errors import TraceconvError
    from traceconv.readers.parquet import is_dataset

    if len(files) != 1 or not is_dataset(files[0]):
        raise TraceconvError("--dask-scheduler needs one Parquet dataset (made by `traceconv export`)")
    if view not in ("rank", "step", "mode"):
        raise TraceconvError("--dask-scheduler supports --by-rank (default for it) and --by-step")
    try:
        from dask.distributed import Client
    except ImportError:
        raise TraceconvError("--dask-scheduler needs Dask: pip install 'traceconv[dask]'") from None
    from analyzers import fleet

    with Client(address) as client:
        df = fleet.per_step(client, files[0]) if view == "step" else fleet.per_mode(client, files[0])
    emit_table(df, fmt, output_path, files)
