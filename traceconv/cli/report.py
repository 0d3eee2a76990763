"""``traceconv diff`` (regression gate between two runs) and ``traceconv report`` (CI artifacts)."""

from __future__ import annotations

import click

from traceconv.cli import cli, output
from traceconv.cli.tables import emit_table, format_table, table_options
from traceconv.errors import GateTripped

TRACE_SUFFIXES = (".json", ".json.gz", ".json.zst", ".gz", ".zst")


def _percent(text: str) -> float:
    t = text.strip()
    try:
        return float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError:
        raise click.BadParameter(f"expected a percentage like 5% or 0.05, got {text!r}") from None


def _read(path: str):
    from traceconv.readers import read_trace

    files = output.expand_inputs((path,), TRACE_SUFFIXES, prefer=".trace.json")
    return read_trace(files)


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
