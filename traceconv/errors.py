"""Errors: one base class; each carries the exit code and a one-line message for the CLI."""

from __future__ import annotations


_CONTROL = {c: f"\\x{c:02x}" for c in (*range(32), 127) if c != 9} | {10: "\\n", 13: "\\r"}


def one_line(text: str) -> str:
    """`text` with line breaks and other control characters escaped (``\\n``, ``\\x1b``): what
    goes to a terminal or a log stays one line and cannot carry escape sequences from a trace."""
    return text.translate(_CONTROL)


class TraceconvError(Exception):
    """An expected failure: bad input, refusing to overwrite, ... (exit code 1)."""

    exit_code = 1

    def __init__(self, message: str, *, source: str | None = None, where: str | None = None) -> None:
        self.source = source
        self.where = where
        prefix = source or ""
        if where:
            prefix = f"{prefix}:{where}" if prefix else where
        text = f"{prefix}: {message}" if prefix else message
        # one line, whatever a file name or a library's message holds
        super().__init__(one_line(text))


class UnsupportedFormatError(TraceconvError):
    """The input is not in any format this reader understands."""


class MalformedTraceError(TraceconvError):
    """The input is in a known format but damaged beyond salvage."""


class DamagedInputError(TraceconvError):
    """Salvageable damage, raised only in ``--strict`` mode."""


class GateTripped(TraceconvError):
    """The command did its job and a CI gate tripped (``--fail-on-findings``, thresholds): exit 3."""

    exit_code = 3
