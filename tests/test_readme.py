"""README stays true: its command reference is the current --help, its commands exist."""

from pathlib import Path

from robosat_effnet.cli.readme import render

README = Path(__file__).parents[1] / "README.md"


def test_command_reference_is_current():
    text = README.read_text()
    assert render(text) == text, "README's command reference is stale: run `make readme`"


def test_setup_commands():
    text = README.read_text()
    assert "make demo" in text and "make test" in text
