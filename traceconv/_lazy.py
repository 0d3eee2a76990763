"""Module attributes imported at first use (PEP 562): a reader, or `traceconv --version`, then
loads only what it needs (memory, start time)."""

from __future__ import annotations

import importlib
import sys
from typing import Any, Callable


def lazy_attributes(module: str, where: dict[str, str]) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` for `module`: attribute ``name`` comes from the module
    ``where[name]``, imported at first use and then kept in `module`."""

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where[name]), name)
        setattr(sys.modules[module], name, value)
        return value

    return __getattr__
