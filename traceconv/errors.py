"""Errors: one base class; each carries the exit code and a one-line message for the CLI."""

from __future__ import annotations


class TraceconvError(Exception):
    """An expected failure: bad input, refusing to overwrite, ... (exit code 1)."""

    exit_code = 1

    def __init__(self, message: str, *, source: str | None = None, where: str | None = None) -> None:
        self.source = source
        self.where = where
        prefix = source or ""
        if where:
            prefix = f"{prefix}:{where}" if prefix else where
        super().__init__(f"{prefix}: {message}" if prefix else message)


class UnsupportedFormatError(TraceconvError):
    """The input is not in any format this reader understands."""


class MalformedTraceError(TraceconvError):
    """The input is in a known format but damaged beyond salvage."""


class DamagedInputError(TraceconvError):
    """Salvageable damage, raised only in ``--strict`` mode."""


class GateTripped(TraceconvError):
    """The command did its job and a CI gate tripped (``--fail-on-findings``, thresholds): exit 3."""

    exit_code = 3
