"""The mutation list (tests/mutants.py) follows the code: a refactor that moves a snippet makes the suite fail
here, in seconds, rather than leaving `make mutants` to find out after the change has landed."""

from __future__ import annotations

import re

import pytest

from mutants import MUTANTS, ROOT


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_snippet_occurs_once_and_its_tests_exist(mutant):
    source = (ROOT / mutant.file).read_text()
    assert source.count(mutant.original) == 1, f"{mutant.file}: the snippet must occur exactly once"
    assert mutant.replacement != mutant.original
    for target in mutant.tests:
        file, _, name = target.partition("::")
        assert (ROOT / file).is_file(), f"{target}: no such test file"
        if name:
            assert re.search(rf"^\s*def {re.escape(name.split('[')[0])}\(", (ROOT / file).read_text(), re.M), \
                f"{target}: no such test"


def test_a_stale_snippet_is_caught(monkeypatch, capsys):
    import mutants

    stale = mutants.Mutant("stale", "robosat_effnet/errors.py", "this text is not in the file", "x", ("tests",))
    monkeypatch.setattr(mutants, "MUTANTS", [stale])
    assert mutants.main([]) == 1
    assert "STALE     stale" in capsys.readouterr().out


def test_names_are_unique():
    names = [m.name for m in MUTANTS]
    assert len(names) == len(set(names))
