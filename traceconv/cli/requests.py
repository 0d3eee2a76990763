"""Analysis commands over OTel span dumps: ``requests`` (stage latency) and ``pipeline`` (PP view)."""

from __future__ import annotations

import click
import numpy as np

from traceconv.cli import cli, output
from traceconv.cli.convert import OTEL_SUFFIXES, _stats_line
from traceconv.cli.tables import emit_table, resolve_format, table_options
from traceconv.errors import DamagedInputError
from traceconv.model.trace import Trace, TrackKind

COUNTER_TRACK = "in-flight micro-batches"


def _read(inputs: tuple[str, ...], strict: bool) -> tuple[Trace, list[str]]:
    from traceconv.readers import read_otel

    files = output.expand_inputs(inputs, OTEL_SUFFIXES)
    trace = read_otel([output.open_input(p) for p in files])
    output.read_notes(trace)
    if strict and trace.damage:
        raise DamagedInputError(f"input damaged ({_stats_line(trace)}); stopping because of --strict")
    return trace, files


def _strict_option(f):
    return click.option("--strict", is_flag=True, help="Exit 1 if any input was damaged instead of salvaging.")(f)


def _narrow(df, drop: tuple[str, ...]):
    """The terminal table without some wide columns (the machine formats keep them all)."""
    return df.drop(columns=[c for c in drop if c in df.columns])


@cli.command("requests")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--per-stage", "view", flag_value="stages", default=True,
              help="One row per stage: spans, requests, total, mean, p50/p90/p99, max (default).")
@click.option("--per-request", "view", flag_value="requests",
              help="One row per request: rid, role, ranks, status, e2e, TTFT, tokens, queue/compute/... time, "
              "and per stage the time summed over threads.")
@click.option("--spans", "view", flag_value="spans", help="One row per stage span.")
@click.option("--by", metavar="KEYS", default="",
              help="Group the per-stage summary: comma list of role, dp, pp, tp, rank, thread, status.")
@_strict_option
@table_options
def requests_cmd(inputs, view, by, strict, fmt, output_path):
    """Where a request's latency goes: per-stage latency from OTel span dumps.

    A request is an SGLang request root (`module=sglang::request`) with every span below it
    (orphans whose parent was lost join their trace's root), or, for generic services, a
    trace; a stage is a span name. Stage times are exact ns; the summary's percentiles are
    over single spans (one stage on one thread), the per-request stage columns are summed
    over all threads. Requests missing stages (partial dumps) or aborted are marked in
    `status`/`missing`, never dropped. Times are ns.

    \b
    Example:
        traceconv requests /tmp/otel_trace.json
        traceconv requests dumps/ --by role,dp
        traceconv requests otel.jsonl --per-request -o requests.csv
    """
    from analyzers import requests as req

    trace, files = _read(inputs, strict)
    result = req.analyze(trace)
    for note in result.notes:
        output.status(note)
    try:
        summary = result.summary(by)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--by") from None
    rq = result.requests
    counts = rq["status"].value_counts()
    marked = [f"{n} {s}" for s, n in counts.items() if s != "ok"]
    what = f"{len(rq)} requests" + (f" ({', '.join(marked)})" if marked else "")
    output.status(f"{what}, {len(result.spans)} stage spans ({result.mode} spans)")
    table = resolve_format(fmt, output_path) == "table"
    if view == "stages":
        df = summary
    elif view == "requests":
        df = rq.reset_index()
        if table:
            df = _narrow(df, ("trace_id", "root", "bootstrap_room", "partial", "start_ns"))
    else:
        df = result.spans.drop(columns=["row"])
    emit_table(df, fmt, output_path, files)


@cli.command("pipeline")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--per-rank", "view", flag_value="ranks", default=True,
              help="One row per rank thread: busy, fill/gap/drain bubble, wait vs stall, bubble share, "
              "micro-batch order (default).")
@click.option("--intervals", "view", flag_value="intervals",
              help="One row per de-duplicated run_batch_cpu launch, with its gap and input readiness.")
@click.option("--in-flight", "view", flag_value="in-flight",
              help="The counter samples --perfetto draws: micro-batches in flight per rank.")
@click.option("--perfetto", "perfetto_path", metavar="PATH",
              help="Also write the trace with a counter track of in-flight micro-batches per rank "
              "(.pftrace; .json / .json.gz for Chrome JSON).")
@_strict_option
@table_options
def pipeline_cmd(inputs, view, perfetto_path, strict, fmt, output_path):
    """Pipeline-parallel view: per PP rank busy time, bubbles and micro-batch order.

    Reads SGLang's level-4 `run_batch_cpu` spans (attribute `pp_mb_id`), folds the copies
    each request of a micro-batch records, and per rank reports busy time, the bubble (fill
    before its first micro-batch, gaps between micro-batches, drain after its last) over the
    pipeline window, and which part of the gaps it sat idle with its input already there:
    `bubble_share` is the rank's share of that stall time, so a stalled rank stands out
    even though every rank ends up waiting for it. Dumps without PP, or traced below level 4,
    say so instead of printing an empty view.

    \b
    Example:
        traceconv pipeline /tmp/otel_trace.json
        traceconv pipeline otel.jsonl --perfetto pipeline.pftrace
        traceconv pipeline otel.jsonl --intervals -o runs.parquet
    """
    from analyzers import pipeline as pl

    trace, files = _read(inputs, strict)
    v = pl.analyze(trace)
    table = resolve_format(fmt, output_path) == "table"
    if v.note:
        click.echo(f"pipeline: {v.note}", err=True)
        if perfetto_path:
            click.echo("pipeline: nothing to overlay; --perfetto not written", err=True)
        if not table:  # a machine reader still gets a valid (empty) table
            emit_table(v.ranks if view == "ranks" else v.intervals if view == "intervals" else pl.in_flight(v),
                       fmt, output_path, files)
        return
    samples = pl.in_flight(v)
    _summarize(v)
    if view == "ranks":
        df = _narrow(v.ranks, ("thread", "pp_rank", "dp_rank", "tp_rank", "n_spans", "window_ns", "idle_ready_ns")) if table else v.ranks
    elif view == "intervals":
        df = _narrow(v.intervals, ("thread", "pp_rank", "dp_rank", "tp_rank", "track_id", "entry")) if table else v.intervals
    else:
        df = samples
    emit_table(df, fmt, output_path, files)
    if perfetto_path:
        _write_overlay(trace, samples, perfetto_path, files)


def _summarize(v) -> None:
    ranks = v.ranks
    n_groups = ranks["dp_rank"].nunique(dropna=False)
    line = f"PP{v.pp_size} pipeline" if v.pp_size else "pipeline of unknown PP ranks (no pp_rank: the thread spans are not in the dump)"
    line += f" × {n_groups} DP groups" if n_groups > 1 else ""
    line += f": {int(ranks['n_batches'].sum())} micro-batch launches on {len(ranks)} rank threads"
    if v.duplicates:
        line += f" ({v.duplicates} per-request duplicate run_batch_cpu spans folded)"
    output.status(line)
    for _, r in ranks[ranks["stalled"]].iterrows():
        output.status(
            f"stalled: {r['rank']}: {r['bubble_share']:.0%} of the pipeline's stall time, "
            f"{r['stall_ns'] / 1e6:.3f} ms idle with its next micro-batch ready (largest gap {r['max_gap_ns'] / 1e6:.3f} ms)"
        )
    for _, r in ranks[ranks["out_of_order"] > 0].iterrows():
        output.status(f"out of order: {r['rank']} ran {r['out_of_order']} micro-batch(es) before one that entered the pipeline earlier")


def _write_overlay(trace: Trace, samples, path: str, inputs: list[str]) -> None:
    from traceconv.writers import format_for_path, write_trace

    overlay = with_counters(trace, samples)
    output.check_not_input(path, inputs)
    with output.atomic_output(path) as out:
        counts = write_trace(overlay, out, format_for_path(path))
    output.status(f"Wrote {path} ({counts.get('counters', 0)} counter samples on {samples['track_id'].nunique()} tracks)")


def with_counters(trace: Trace, samples) -> Trace:
    """A copy of `trace` with one counter track per rank (in that rank's process) holding `samples`."""
    import pyarrow as pa

    from traceconv.model.arrow import COUNTER_SCHEMA, TRACK_SCHEMA

    if samples.empty:
        return trace
    tracks = trace.tracks
    n = tracks.num_rows
    proc = trace.column("tracks", "process_id")
    sort = trace.column("tracks", "sort_index")
    rank_tracks = np.unique(samples["track_id"].to_numpy()).tolist()
    labels = dict(zip(samples["track_id"].to_numpy().tolist(), samples["rank"].astype(str).tolist()))
    new_id = {t: n + i for i, t in enumerate(rank_tracks)}
    extra = pa.table(
        {
            "track_id": pa.array([new_id[t] for t in rank_tracks], pa.int32()),
            "process_id": pa.array([int(proc[t]) for t in rank_tracks], pa.int32()),
            "tid": pa.array([0] * len(rank_tracks), pa.int64()),
            "name": pa.array([f"{labels[t]} {COUNTER_TRACK}" for t in rank_tracks], pa.string()),
            "kind": pa.array([TrackKind.TRACK] * len(rank_tracks), pa.string()),
            "sort_index": pa.array([int(sort[t]) - 1 for t in rank_tracks], pa.int64()),
        },
        schema=TRACK_SCHEMA,
    )
    ids = np.asarray([new_id[t] for t in samples["track_id"].to_numpy().tolist()], np.int32)
    counters = pa.table(
        {"track_id": pa.array(ids), "ts_ns": pa.array(samples["ts_ns"].to_numpy(np.int64)),
         "value": pa.array(samples["value"].to_numpy(np.float64))},
        schema=COUNTER_SCHEMA,
    )
    return trace.replace(
        tracks=pa.concat_tables([tracks.cast(TRACK_SCHEMA), extra]),
        counters=pa.concat_tables([trace.counters.cast(COUNTER_SCHEMA), counters]),
    )
