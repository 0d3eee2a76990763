"""Every command has help with an example, and the README documents it."""

from __future__ import annotations

from pathlib import Path

import pytest

from traceconv.cli import _register, cli, main

_register()
README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
COMMANDS = sorted(cli.commands)


def test_the_commands_we_promise_exist():
    assert {"otel2perfetto", "torch2perfetto", "steps", "iters", "requests", "pipeline", "report", "diff", "export",
            "nsys2perfetto", "layers"} <= set(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_help_and_readme(name, capsys):
    assert main([name, "--help"]) == 0
    text = capsys.readouterr().out
    assert "Example" in text or "example" in text, f"{name} --help has no example"
    assert f"traceconv {name}" in README, f"README does not mention `traceconv {name}`"


def test_usage_error_is_exit_2(capsys):
    assert main(["steps"]) == 2
    assert main(["no-such-command"]) == 2
