"""Output conventions shared by the analysis commands: an aligned table on the terminal, or
``--format csv|json|parquet`` to ``-o`` / stdout (parquet needs ``-o``)."""

from __future__ import annotations

import io
import json
import sys
from typing import Callable

import click

from traceconv.cli import output
from traceconv.errors import TraceconvError

TABLE_FORMATS = ["table", "csv", "json", "parquet"]


def table_options(f: Callable) -> Callable:
    """``--format`` and ``-o`` for commands that print tables."""
    f = click.option("-o", "--output", "output_path", metavar="PATH", help="Write the table here instead of stdout.")(f)
    f = click.option(
        "--format", "fmt", type=click.Choice(TABLE_FORMATS), default=None,
        help="table (default on a terminal), csv, json (records), parquet (needs -o). Default from the -o suffix.",
    )(f)
    return f


def resolve_format(fmt: str | None, output_path: str | None) -> str:
    if fmt:
        return fmt
    if output_path:
        for suffix, name in ((".parquet", "parquet"), (".csv", "csv"), (".json", "json")):
            if output_path.lower().endswith(suffix):
                return name
    return "table"


def emit_table(df, fmt: str | None, output_path: str | None, inputs: list[str] = (), title: str | None = None) -> None:
    """Write a pandas DataFrame in the chosen format (atomically when -o is given)."""
    fmt = resolve_format(fmt, output_path)
    if fmt == "parquet" and not output_path:
        raise TraceconvError("--format parquet needs -o PATH")
    if output_path:
        output.check_not_input(output_path, list(inputs))
        with output.atomic_output(output_path) as out:
            _write(df, fmt, out, title)
        output.status(f"Wrote {output_path}")
    else:
        buf = io.BytesIO()
        _write(df, fmt, buf, title)
        sys.stdout.buffer.write(buf.getvalue())
        sys.stdout.buffer.flush()


def _write(df, fmt: str, out, title: str | None) -> None:
    if fmt == "parquet":
        df.to_parquet(out, index=False)
    elif fmt == "csv":
        out.write(df.to_csv(index=False).encode())
    elif fmt == "json":
        out.write((json.dumps(json.loads(df.to_json(orient="records")), indent=1) + "\n").encode())
    else:
        text = format_table(df)
        if title:
            text = f"{title}\n{text}"
        out.write(text.encode())


def format_table(df, max_rows: int = 200) -> str:
    """An aligned plain-text table (numbers right-aligned, floats to 3 significant decimals)."""
    import pandas as pd

    if df.empty:
        return "(no rows)\n"
    shown = df.head(max_rows)
    cols = list(shown.columns)
    cells = []
    for c in cols:
        s = shown[c]
        if pd.api.types.is_float_dtype(s):
            cells.append([("" if pd.isna(v) else f"{v:,.3f}") for v in s])
        elif pd.api.types.is_integer_dtype(s):
            cells.append([("" if pd.isna(v) else f"{int(v):,}") for v in s])
        else:
            cells.append([("" if v is None or (isinstance(v, float) and pd.isna(v)) else str(v)) for v in s])
    widths = [max(len(str(c)), *(len(x) for x in col)) for c, col in zip(cols, cells)]
    numeric = [pd.api.types.is_numeric_dtype(shown[c]) for c in cols]
    lines = ["  ".join(str(c).rjust(w) if num else str(c).ljust(w) for c, w, num in zip(cols, widths, numeric)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for i in range(len(shown)):
        lines.append("  ".join(col[i].rjust(w) if num else col[i].ljust(w) for col, w, num in zip(cells, widths, numeric)).rstrip())
    if len(df) > max_rows:
        lines.append(f"... {len(df) - max_rows} more rows (use --format csv)")
    return "\n".join(lines) + "\n"
