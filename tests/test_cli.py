"""The command group: help, version, unknown commands."""

from click.testing import CliRunner

from robosat_effnet import __version__
from robosat_effnet.cli import main


def test_help_lists_commands():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "Usage: main" in result.output or "Usage: rs-effnet" in result.output
    for command in main.list_commands(None):
        assert command in result.output


def test_version():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"rs-effnet, version {__version__}"


def test_unknown_command_is_a_usage_error():
    result = CliRunner().invoke(main, ["frobnicate"])
    assert result.exit_code == 2 and "No such command" in result.output
