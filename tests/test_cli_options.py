"""Options several commands share are spelt the same by every command: a long option given a short form
anywhere (`--quiet`/`-q`) has it everywhere, and a short form always stands for the same long option."""

from __future__ import annotations

import importlib

import click
import pytest
from click.testing import CliRunner

from robosat_effnet.cli import COMMANDS, main


def commands() -> dict[str, click.Command]:
    ctx = click.Context(main)
    return {name: main.get_command(ctx, name) for name in COMMANDS}


def spellings() -> dict[str, dict[str, set[str]]]:
    """{long option: {command: its short forms}} over every option of every command."""
    found: dict[str, dict[str, set[str]]] = {}
    for name, command in commands().items():
        for param in command.params:
            if not isinstance(param, click.Option):
                continue
            names = [*param.opts, *param.secondary_opts]
            shorts = {n for n in names if not n.startswith("--")}
            for long in (n for n in names if n.startswith("--")):
                found.setdefault(long, {})[name] = shorts
    return found


@pytest.mark.parametrize("option", sorted(spellings()))
def test_every_command_spells_a_shared_option_the_same(option):
    by_command = spellings()[option]
    forms = {frozenset(shorts) for shorts in by_command.values()}
    assert len(forms) == 1, f"{option}: " + ", ".join(f"{c} {sorted(s) or 'no short form'}"
                                                     for c, s in sorted(by_command.items()))


def test_a_short_form_stands_for_one_long_option():
    meaning: dict[str, set[str]] = {}
    for long, by_command in spellings().items():
        for shorts in by_command.values():
            for short in shorts:
                meaning.setdefault(short, set()).add(long)
    assert {short: longs for short, longs in meaning.items() if len(longs) > 1} == {}


@pytest.mark.parametrize("command", [name for name, c in commands().items()
                                     if any(p.name == "quiet" for p in c.params)])
def test_quiet_is_taken_as_q_and_silences_the_bars(command):
    """The named instance: `predict -q` and `view -q` (both took only --quiet)."""
    quiet = next(p for p in commands()[command].params if p.name == "quiet")
    assert quiet.opts == ["--quiet", "-q"] and quiet.is_flag
    ctx = commands()[command].make_context(command, ["-q"] + _required(command), resilient_parsing=True)
    assert ctx.params["quiet"] is True


def _required(command: str) -> list[str]:
    """Placeholder values for the command's required arguments (parsing only: nothing is checked or run)."""
    return ["x" for p in commands()[command].params if isinstance(p, click.Argument) and p.required]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_h_is_help_for_every_command_however_it_is_reached(command):
    """On its own (`python -m robosat_effnet.cli.view`, a test invoking the command itself) as through the group:
    click caches a command's help option from the first context made for it, so a command that took -h from the
    group alone kept only --help, and README's reference then depended on what ran first in the process."""
    alone = importlib.import_module(f"robosat_effnet.cli.{COMMANDS[command]}").cli
    result = CliRunner().invoke(alone, ["-h"])
    assert result.exit_code == 0 and result.output.startswith("Usage: "), result.output
    assert "  -h, --help " in result.output
    through = CliRunner().invoke(main, [command, "-h"])
    assert through.exit_code == 0 and "  -h, --help " in through.output
    assert through.output.split("\n", 1)[1] == result.output.split("\n", 1)[1]  # the same text below the usage line
