"""The run summary: what was dropped or repaired on the way in, by reason (like Perfetto's
``stats`` table), shared by the CLI (stderr) and the writers (Chrome JSON ``otherData``,
Perfetto metadata)."""

from __future__ import annotations

from typing import Any

from traceconv.model.trace import DAMAGE_STATS, Trace

MAX_WARNINGS = 50  # warnings carried into outputs (all of them go to stderr)


def severity(reason: str) -> str:
    """``data_loss`` for damaged input (what ``--strict`` refuses), else ``info``."""
    return "data_loss" if reason in DAMAGE_STATS else "info"


def run_summary(trace: Trace) -> dict[str, Any]:
    """``{"stats": {reason: count}, "severity": {reason: ...}, "damage": n, "warnings": [...]}``;
    reasons with a zero count are left out."""
    stats = {k: int(v) for k, v in sorted(trace.stats.items()) if v}
    return {
        "stats": stats,
        "severity": {k: severity(k) for k in stats},
        "damage": int(trace.damage),
        "warnings": [w[:500] for w in trace.warnings[:MAX_WARNINGS]],
    }


def summary_table(trace: Trace) -> list[str]:
    """Lines of a small stats table for stderr (empty when nothing was counted)."""
    stats = run_summary(trace)["stats"]
    if not stats:
        return []
    width = max(len(k) for k in stats)
    return ["run summary (by reason):"] + [f"  {k:<{width}}  {v:>10,}  {severity(k)}" for k, v in stats.items()]
