"""Render a run summary as one self-contained HTML page (inline SVG plots, no scripts, no
network), a short Markdown summary and plots. Every string that comes from a trace (labels,
kernel names, file names) is HTML-escaped here, and nothing from a trace becomes a path.

Plots need matplotlib (the ``report`` extra); without it the page holds the tables only and
says how to get the plots.
"""

from __future__ import annotations

import html
import io
from dataclasses import dataclass, field

import pandas as pd

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1d1d1f;max-width:1200px}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.8rem;margin:.5rem 0}
th,td{border:1px solid #ddd;padding:.2rem .4rem;text-align:right;white-space:nowrap}
th{background:#f4f4f6}td.t{text-align:left;white-space:normal;max-width:40rem;overflow-wrap:anywhere}
.note{color:#555;font-size:.85rem}.bad{color:#b00020;font-weight:600}.ok{color:#1b7f3b;font-weight:600}
figure{margin:1rem 0}
"""


@dataclass
class Section:
    title: str
    text: list[str] = field(default_factory=list)  # plain text lines (escaped on render)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    figures: list[tuple[str, str]] = field(default_factory=list)  # (caption, svg markup we made)
    verdict: tuple[str, bool] | None = None  # (text, ok)


def _cell(v) -> tuple[str, bool]:
    if v is None or (isinstance(v, float) and pd.isna(v)) or v is pd.NA:
        return "", False
    if isinstance(v, float):
        return f"{v:,.3f}", False
    if isinstance(v, int):
        return f"{v:,}", False
    return html.escape(str(v)), True


def table_html(df: pd.DataFrame, max_rows: int = 100) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    rows = []
    for rec in df.head(max_rows).itertuples(index=False):
        cells = []
        for v in rec:
            text, is_text = _cell(v.item() if hasattr(v, "item") else v)
            cells.append(f'<td class="t">{text}</td>' if is_text else f"<td>{text}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    more = f'<p class="note">{len(df) - max_rows} more rows in the Parquet tables.</p>' if len(df) > max_rows else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>{more}"


def render_html(title: str, generated_at: str, inputs: list[str], sections: list[Section], notes: list[str]) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'; img-src data:">',
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="note">generated at {html.escape(generated_at)} by traceconv</p>',
        "<p class=\"note\">inputs: " + ", ".join(html.escape(i) for i in inputs) + "</p>",
    ]
    for n in notes:
        parts.append(f'<p class="note">{html.escape(n)}</p>')
    for s in sections:
        parts.append(f"<h2>{html.escape(s.title)}</h2>")
        if s.verdict:
            text, ok = s.verdict
            parts.append(f'<p class="{"ok" if ok else "bad"}">{html.escape(text)}</p>')
        for line in s.text:
            parts.append(f"<p>{html.escape(line)}</p>")
        for caption, svg in s.figures:
            parts.append(f"<figure>{svg}<figcaption class=\"note\">{html.escape(caption)}</figcaption></figure>")
        for caption, df in s.tables:
            parts.append(f"<h3>{html.escape(caption)}</h3>{table_html(df)}")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def render_markdown(title: str, sections: list[Section]) -> str:
    out = [f"## {_md(title)}", ""]
    for s in sections:
        out.append(f"**{_md(s.title)}**" + (f" — {_md(s.verdict[0])}" if s.verdict else ""))
        for line in s.text[:3]:
            out.append(f"- {_md(line)}")
        if s.tables:
            caption, df = s.tables[0]
            out.append("")
            out.append(_md_table(df.head(12)))
        out.append("")
    return "\n".join(out) + "\n"


def _plain(v) -> str:
    if v is None or v is pd.NA or (isinstance(v, float) and pd.isna(v)):
        return ""
    if isinstance(v, float):
        return f"{v:,.3f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _md(text: str) -> str:
    # names from traces must not become Markdown links, images or emphasis in a CI summary
    out = html.escape(str(text)).replace("\n", " ")
    for ch in "\\|[]()!*_`":
        out = out.replace(ch, "\\" + ch)
    return out


def _md_table(df: pd.DataFrame) -> str:
    head = "| " + " | ".join(_md(c) for c in df.columns) + " |"
    sep = "|" + "|".join("---" for _ in df.columns) + "|"
    rows = []
    for rec in df.itertuples(index=False):
        rows.append("| " + " | ".join(_md(_plain(v.item() if hasattr(v, "item") else v)) for v in rec) + " |")
    return "\n".join([head, sep, *rows])


# ---- plots ---------------------------------------------------------------------------------


def have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matplotlib.rcParams.update({"svg.hashsalt": "traceconv", "svg.fonttype": "none", "font.size": 9, "text.parse_math": False})
    fig, ax = plt.subplots(figsize=(8, 3.2))
    return plt, fig, ax


def _svg(plt, fig) -> str:
    buf = io.StringIO()
    fig.tight_layout()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]


def bar_svg(labels: list[str], values: list[float], ylabel: str) -> str:
    plt, fig, ax = _figure()
    ax.bar(range(len(values)), values, color="#4c72b0")
    ax.set_xticks(range(len(values)), [str(x) for x in labels], rotation=0)
    ax.set_ylabel(ylabel)
    return _svg(plt, fig)


def series_svg(series: dict[str, tuple[list[float], list[float]]], xlabel: str, ylabel: str) -> str:
    plt, fig, ax = _figure()
    for name, (x, y) in sorted(series.items()):
        ax.plot(x, y, marker=".", linewidth=1, label=str(name))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if 1 < len(series) <= 12:
        ax.legend(fontsize=7)
    return _svg(plt, fig)


def grouped_bar_svg(groups: list[str], bars: dict[str, list[float]], ylabel: str) -> str:
    plt, fig, ax = _figure()
    width = 0.8 / max(len(bars), 1)
    for i, (name, values) in enumerate(bars.items()):
        ax.bar([g + i * width for g in range(len(groups))], values, width=width, label=name)
    ax.set_xticks([g + 0.4 - width / 2 for g in range(len(groups))], [str(g) for g in groups], rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7)
    return _svg(plt, fig)
