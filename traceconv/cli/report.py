"""``traceconv diff`` (regression gate between two runs) and ``traceconv report`` (CI artifacts)."""

from __future__ import annotations

import os

import click

from traceconv.cli import cli, output
from traceconv.cli.tables import emit_table, format_table, table_options
from traceconv.errors import GateTripped

TRACE_SUFFIXES = (".json", ".json.gz", ".json.zst", ".gz", ".zst", ".sqlite")


def _percent(text: str) -> float:
    t = text.strip()
    try:
        return float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError:
        raise click.BadParameter(f"expected a percentage like 5% or 0.05, got {text!r}") from None


def _read(path: str):
    from traceconv.readers import read_trace

    files = output.expand_inputs((path,), TRACE_SUFFIXES, prefer=".trace.json")
    trace = read_trace(files)
    output.read_notes(trace)
    return trace


@cli.command("diff")
@click.argument("baseline")
@click.argument("candidate")
@click.option("--fail-above", metavar="PCT", help="Exit 3 when a mode's time per step or a kernel's time grows by more than this (e.g. 5%).")
@click.option("--kernels/--modes", "show_kernels", default=False, help="Print the per-kernel table instead of the per-mode one.")
@table_options
def diff_command(baseline, candidate, fail_above, show_kernels, fmt, output_path) -> None:
    """Compare two runs step mode by step mode and kernel by kernel.

    BASELINE and CANDIDATE are trace files, directories of traces or `traceconv export`
    datasets. Kernel time is normalised per step, so runs of different length compare.

    \b
    Example:
        traceconv diff baseline/ candidate/ --fail-above 5%
    """
    from analyzers import diff

    threshold = _percent(fail_above) if fail_above else None
    d = diff.compare(_read(baseline), _read(candidate))
    table = d.kernels if show_kernels else d.modes
    emit_table(table, fmt, output_path, [baseline, candidate])
    if threshold is None:
        return
    reg = diff.regressions(d, threshold)
    if len(reg):
        click.echo(format_table(reg), err=True)
        names = ", ".join(f"{r.name} ({r.metric} {r.change:+.1%})" for r in reg.head(5).itertuples())
        raise GateTripped(f"{len(reg)} regression(s) above {threshold:.1%}: {names}")
    output.status(f"no regression above {threshold:.1%}")


REPORT_SCHEMA = "traceconv-report/1"


@cli.command("report")
@click.argument("inputs", nargs=-1)
@click.option("--otel", "otel_inputs", multiple=True, metavar="DUMP", help="OTel span dumps: request stages, pipeline view.")
@click.option("--log", "logs", multiple=True, metavar="LOG", help="Scheduler logs: iteration-id checks (lined up with the traces' steps).")
@click.option("-o", "--output", "out_dir", required=True, metavar="DIR", help="Artifacts directory (created).")
@click.option("--title", default="traceconv report", show_default=True)
@click.option("--fail-on-findings", is_flag=True, help="Exit 3 when the iteration checker flags lines.")
@click.option("--no-trace", is_flag=True, help="Skip writing trace.pftrace (the largest artifact).")
def report_command(inputs, otel_inputs, logs, out_dir, title, fail_on_findings, no_trace) -> None:
    """Write CI artifacts for a benchmark run into DIR: report.html (self-contained, plots
    embedded), summary.md (for $GITHUB_STEP_SUMMARY), summary.json (stable keys, schema
    version), trace.pftrace and the tables as Parquet.

    \b
    Example:
        traceconv report profile_dir/ --otel otel.jsonl --log server.log -o artifacts/
        cat artifacts/summary.md >> "$GITHUB_STEP_SUMMARY"
    """
    import datetime
    import json

    from traceconv.cli import report_html as rh
    from traceconv.errors import TraceconvError
    from traceconv.model.merge import concat
    from traceconv.readers import read_otel, read_trace

    if not inputs and not otel_inputs and not logs:
        raise click.UsageError("nothing to report: give traces, --otel dumps or --log files")
    files = output.expand_inputs(inputs, TRACE_SUFFIXES, prefer=".trace.json") if inputs else []
    otel_files = output.expand_inputs(otel_inputs) if otel_inputs else []
    log_files = output.expand_inputs(logs) if logs else []
    all_inputs = files + otel_files + log_files
    for f in all_inputs:
        if f != "-" and os.path.abspath(f) == os.path.abspath(out_dir):
            raise TraceconvError("refusing to write the report over an input", source=out_dir)
    os.makedirs(out_dir, exist_ok=True)

    kineto = read_trace(files) if files else None
    otel = read_otel([output.open_input(p) for p in otel_files]) if otel_files else None
    notes: list[str] = []
    for t in (kineto, otel):
        if t is not None:
            notes += t.warnings
            output.read_notes(t)
    sections: list[rh.Section] = []
    tables: dict[str, object] = {}
    summary: dict = {"schema": REPORT_SCHEMA, "title": title, "inputs": [os.path.basename(f) for f in all_inputs]}
    plots = rh.have_matplotlib()
    if not plots:
        notes.append("plots need matplotlib: pip install 'traceconv[report]'")
        output.warn("report plots need matplotlib: pip install 'traceconv[report]' (tables only)")

    if kineto is not None:
        sections += _steps_sections(kineto, tables, summary, plots)
    if otel is not None:
        sections += _request_sections(otel, tables, summary, plots)
    findings = None
    if log_files:
        sec, findings = _iteration_section(log_files, kineto, tables, summary)
        sections.append(sec)

    # artifacts: tables, trace, summaries (each written atomically)
    for name, df in sorted(tables.items()):
        with output.atomic_output(os.path.join(out_dir, f"{name}.parquet")) as f:
            df.to_parquet(f, index=False)
    if not no_trace and (kineto is not None or otel is not None):
        from traceconv.writers import write_trace

        merged = concat([t for t in (kineto, otel) if t is not None])
        with output.atomic_output(os.path.join(out_dir, "trace.pftrace")) as f:
            write_trace(merged, f, "perfetto")
    summary["artifacts"] = sorted([f"{n}.parquet" for n in tables] + ["report.html", "summary.md", "summary.json"] + ([] if no_trace else ["trace.pftrace"]))
    generated = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    with output.atomic_output(os.path.join(out_dir, "report.html")) as f:
        f.write(rh.render_html(title, generated, summary["inputs"], sections, notes).encode())
    with output.atomic_output(os.path.join(out_dir, "summary.md")) as f:
        f.write(rh.render_markdown(title, sections).encode())
    with output.atomic_output(os.path.join(out_dir, "summary.json")) as f:
        f.write((json.dumps(summary, indent=1, sort_keys=True, default=_json_default) + "\n").encode())
    output.status(f"Wrote {out_dir}/ ({', '.join(summary['artifacts'])})")
    if fail_on_findings and findings is not None and len(findings):
        raise GateTripped(findings.verdict())


def _json_default(v):
    import numpy as np

    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return None if np.isnan(v) else float(v)
    return str(v)


def _steps_sections(trace, tables: dict, summary: dict, plots: bool) -> list:
    from analyzers import steps

    from traceconv.cli import report_html as rh

    ps = steps.per_step(trace)
    pm = steps.per_mode(trace)
    top = steps.top_kernels(trace, 10)
    tables.update(steps_per_step=ps, steps_per_mode=pm, top_kernels=top)
    total = int(pm["gpu_op_ns"].sum())
    un = int(pm.loc[pm["mode"] == "unattributed", "gpu_op_ns"].sum())
    bad, examples = steps.unparsed_labels(trace)
    summary["steps"] = {
        "n_steps": int(len(ps)),
        "ranks": trace.processes.column("name").to_pylist(),
        "gpu_op_ns": total,
        "unattributed_ns": un,
        "unparsed_labels": bad,
        "modes": {r["mode"]: {k: r[k] for k in ("steps", "kernel_ns", "busy_ns", "kernel_share", "mean_ns", "p50_ns", "p90_ns", "p99_ns")}
                  for r in pm.to_dict("records")},
    }
    sec = rh.Section("GPU time by step mode")
    sec.text.append(f"{len(ps)} steps on {trace.processes.num_rows} rank(s); GPU op time {total / 1e6:,.3f} ms, "
                    f"{(100 * un / total) if total else 0:.1f}% outside any step.")
    if bad:
        sec.text.append(f"{bad} step label(s) did not parse, e.g. {', '.join(examples)}")
    view = pm[["mode", "steps", "kernel_ns", "kernel_share", "busy_ns", "mean_ns", "p50_ns", "p90_ns", "p99_ns"]]
    sec.tables.append(("per mode", view))
    if plots and len(pm):
        sec.figures.append(("kernel time per mode (ms)", rh.bar_svg(pm["mode"].astype(str).tolist(), (pm["kernel_ns"] / 1e6).tolist(), "ms")))
        series = {}
        for rank, g in ps[ps["depth"] == 0].groupby(ps["rank"].astype(str)):
            series[rank] = (g["step"].tolist(), (g["kernel_ns"] / 1e6).tolist())
        sec.figures.append(("kernel time per step over the run (ms), by rank", rh.series_svg(series, "step", "ms")))
        busy = {}
        for rank, g in ps[(ps["depth"] == 0) & ps["busy_frac"].notna()].groupby(ps["rank"].astype(str)):
            busy[rank] = (g["step"].tolist(), (g["busy_frac"].astype(float) * 100).tolist())
        if busy:
            sec.figures.append(("GPU busy within each step's GPU span (%)", rh.series_svg(busy, "step", "%")))
    k = rh.Section("Top kernels per mode")
    k.tables.append(("top kernels", top))
    return [sec, k]


def _request_sections(trace, tables: dict, summary: dict, plots: bool) -> list:
    from analyzers import pipeline, requests

    from traceconv.cli import report_html as rh

    out = []
    rs = requests.analyze(trace)
    stages = rs.summary()
    tables.update(requests=rs.requests, request_stages=stages)
    summary["requests"] = {
        "n_requests": int(len(rs.requests)),
        "by_status": {str(k): int(v) for k, v in rs.requests["status"].value_counts().sort_index().items()} if "status" in rs.requests else {},
    }
    sec = rh.Section("Request stage latency")
    sec.text.append(f"{len(rs.requests)} requests ({rs.mode} dump).")
    sec.text += list(rs.notes)
    sec.tables.append(("per stage", stages))
    if plots and len(stages) and {"stage", "p50_ns", "p90_ns", "p99_ns"} <= set(stages.columns):
        st = stages.head(12)
        sec.figures.append(("stage latency p50 / p90 / p99 (ms)", rh.grouped_bar_svg(
            st["stage"].astype(str).tolist(), {q: (st[f"{q}_ns"].astype(float) / 1e6).tolist() for q in ("p50", "p90", "p99")}, "ms")))
    out.append(sec)
    view = pipeline.analyze(trace)
    pp = rh.Section("Pipeline parallelism")
    if view.note:
        pp.text.append(view.note)
    else:
        tables.update(pipeline_ranks=view.ranks)
        pp.tables.append(("per PP rank", view.ranks))
        summary["pipeline"] = {"pp_size": view.pp_size, "stalled": view.stalled}
    out.append(pp)
    return out


def _iteration_section(log_files: list[str], trace, tables: dict, summary: dict):
    from analyzers import iterations, sglang_log, steps

    from traceconv.cli import report_html as rh
    from traceconv.readers.source import open_source

    frames = []
    for f in log_files:
        src = open_source(output.open_input(f))
        try:
            frames.append(sglang_log.parse_log(src.stream))
        finally:
            src.close()
    lines = sglang_log.concat_logs(frames, [os.path.basename(f) for f in log_files]) if len(frames) else frames[0]
    trace_steps = steps.trace_steps(trace) if trace is not None else None
    found = iterations.check(lines, trace_steps=trace_steps)
    tables["iteration_findings"] = found.findings
    summary["iterations"] = {"verdict": found.verdict(), "classification": found.classification,
                             "lines": found.summary.get("lines", 0), "findings": found.summary.get("findings", 0),
                             "by_reason": found.summary.get("by_reason", {})}
    sec = rh.Section("Iteration ids in scheduler logs")
    sec.verdict = (found.verdict(), len(found) == 0)
    if len(found):
        sec.tables.append(("findings", found.findings))
    return sec, found

