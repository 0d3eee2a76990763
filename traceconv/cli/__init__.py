"""The ``traceconv`` command: one click group, one module per family of subcommands."""

from __future__ import annotations

import importlib.util
import os
import sys

import click

from traceconv import __version__
from traceconv.cli import output
from traceconv.errors import GateTripped, TraceconvError, one_line

EPILOG = """\b
Exit codes: 0 done (warnings on stderr), 1 bad input or refused, 2 usage error,
3 done but a gate tripped (--fail-on-findings, diff thresholds).
Data goes to -o or stdout; progress, warnings and "Wrote ..." go to stderr.
This is not Perfetto's own `traceconv` (which converts from Perfetto's format)."""


@click.group(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", message="traceconv %(version)s (LLM-serving traces → Perfetto; not Perfetto's traceconv)")
@click.option("-q", "--quiet", is_flag=True, help="Only errors and warnings on stderr.")
def cli(quiet: bool) -> None:
    """Convert and analyze LLM-serving traces: OpenTelemetry spans, PyTorch profiler (Kineto)
    traces and Nsight Systems exports → Perfetto; GPU time per step, request stages, pipeline
    bubbles, scheduler-log iteration checks, CI reports and regression gates."""
    output.set_quiet(quiet)


COMMAND_MODULES = ["convert", "torch", "steps", "iters", "requests", "report", "nsys"]


def _register() -> None:
    """Import the command modules; each attaches its commands to `cli`."""
    import importlib
    import importlib.util

    for name in COMMAND_MODULES:
        if importlib.util.find_spec(f"traceconv.cli.{name}") is not None:
            importlib.import_module(f"traceconv.cli.{name}")


def _lean_arrow_allocator(pa) -> None:
    """Arrow allocates from the C library's malloc, which hands freed blocks back to the
    writer's numpy arrays; its default pool (mimalloc) keeps them: ~60 MB more peak RSS on a
    200k-span dump, no faster here. ``ARROW_DEFAULT_MEMORY_POOL`` still decides when set."""
    if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
        pa.set_memory_pool(pa.system_memory_pool())


def _arrow_without_pandas(pa) -> None:
    """pyarrow imports pandas at its first ``pa.array``/``pa.scalar``, to recognise pandas
    inputs: ~50 MB of memory and ~0.15 s that the conversions never use. Let that first look
    find no pandas; pyarrow still imports it when a pandas conversion asks (``to_pandas``), and
    the analyzers import it themselves."""
    if "pandas" in sys.modules:
        return

    class NoPandas:
        @staticmethod
        def find_spec(name, path=None, target=None):
            if name == "pandas":
                raise ModuleNotFoundError("not now", name=name)

    sys.meta_path.insert(0, NoPandas)  # type: ignore[arg-type]
    try:
        pa.array([0])
    finally:
        sys.meta_path.remove(NoPandas)  # type: ignore[arg-type]


def _setup_arrow(pa) -> None:
    _arrow_without_pandas(pa)
    _lean_arrow_allocator(pa)


class _WhenArrowLoads:
    """Sets pyarrow up right after something imports it. A conversion that never needs Arrow
    (OTel → Perfetto) then never loads it: ~50 MB and ~0.1 s."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name != "pyarrow":
            return None
        sys.meta_path.remove(cls)  # type: ignore[arg-type]
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run = spec.loader.exec_module

        def exec_module(module) -> None:
            run(module)
            _setup_arrow(module)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def _arrow_setup_at_import() -> None:
    if "pyarrow" in sys.modules:
        _setup_arrow(sys.modules["pyarrow"])
    elif _WhenArrowLoads not in sys.meta_path:
        sys.meta_path.insert(0, _WhenArrowLoads)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code. Errors become one line on stderr."""
    _arrow_setup_at_import()
    _register()
    try:
        cli.main(args=argv, prog_name="traceconv", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 1
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except GateTripped as e:
        click.echo(f"gate: {e}", err=True)
        return e.exit_code
    except TraceconvError as e:
        click.echo(f"error: {e}", err=True)
        return e.exit_code
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return 130
    except BrokenPipeError:
        return 1
    except MemoryError:
        click.echo("error: out of memory", err=True)
        return 1
    except Exception as e:  # a bug, or input we did not foresee: still one line
        if os.environ.get("TRACECONV_DEBUG"):
            raise
        click.echo(f"error: internal error: {type(e).__name__}: {one_line(str(e))} (set TRACECONV_DEBUG=1 for a traceback)", err=True)
        return 1
    return 0


def entry_point() -> None:
    sys.exit(main())
