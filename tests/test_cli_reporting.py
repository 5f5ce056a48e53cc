"""What is left after the checks is still one line: running out of memory, and any error after a progress bar
(which ends its line with a carriage return only) starts a line of its own, so `grep ^Error` finds it in a log.

Every command reports through `options.reports_errors`, so its behaviour is tested on a small command and on
real ones.
"""

from __future__ import annotations

import re

import click
import pytest
from click.testing import CliRunner

from conftest import make_dataset
from robosat_effnet.cli import main
from robosat_effnet.cli.options import reports_errors
from robosat_effnet.errors import DatasetError


def failing(error: BaseException, bar: bool = False) -> click.Command:
    @click.command()
    @reports_errors
    def command():
        if bar:
            from tqdm import tqdm

            progress = tqdm(total=10, desc="work", unit="tile")  # left open, as an exception leaves it
            progress.update(3)
            progress.refresh()
        raise error

    return command


@pytest.mark.parametrize("error", [
    MemoryError("Unable to allocate 37.3 GiB for an array with shape (4, 100000, 100000) and data type uint8"),
    RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: you tried "
                 "to allocate 40000000000 bytes. Error code 12 (Cannot allocate memory)"),
])
def test_running_out_of_memory_is_one_line(error):
    result = CliRunner().invoke(failing(error))
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: out of memory (") and result.output.count("\n") == 1, result.output
    assert "smaller --batch-size" in result.output


def test_other_runtime_errors_are_not_disguised_as_memory():
    result = CliRunner().invoke(failing(RuntimeError("a bug")))
    assert isinstance(result.exception, RuntimeError) and "out of memory" not in result.output


def test_out_of_memory_in_a_real_command_is_one_line(tmp_path, monkeypatch):
    import robosat_effnet.prepare.tile

    def allocate(*args, **kwargs):
        raise MemoryError("Unable to allocate 37.3 GiB for an array with shape (4, 100000, 100000)")

    monkeypatch.setattr(robosat_effnet.prepare.tile, "tile_geotiff", allocate)
    (tmp_path / "scene.tif").write_bytes(b"")
    result = CliRunner().invoke(main, ["tile", str(tmp_path / "scene.tif"), str(tmp_path / "out"), "--zoom", "18"])
    assert result.exit_code == 1 and result.output.startswith("Error: out of memory (Unable to allocate 37.3 GiB")
    assert result.output.count("\n") == 1 and "Traceback" not in result.output


@pytest.mark.parametrize("error", [DatasetError("label x.png holds class 7"), click.ClickException("no data"),
                                   MemoryError("Unable to allocate")])
def test_an_error_after_a_progress_bar_starts_its_own_line(error):
    result = CliRunner().invoke(failing(error, bar=True))
    assert result.exit_code == 1
    assert "work:  30%" in result.stderr  # the bar was drawn, and left without a newline
    assert re.search(r"^Error: ", result.stderr, re.MULTILINE), repr(result.stderr)  # what `grep ^Error` finds


def test_eval_stopping_mid_bar_prints_the_error_on_its_own_line(tmp_path, random_checkpoint):
    import numpy as np

    from robosat_effnet.io import write_mask

    data = make_dataset(tmp_path, n_train=1, n_val=4)
    labels = data.root / "validation" / "labels"
    write_mask(next(labels.rglob("*.png")), np.full((64, 64), 7, np.uint8), ["denim"] * 8)
    result = CliRunner().invoke(main, ["eval", "--checkpoint", str(random_checkpoint), "--device", "cpu",
                                       str(data.root / "validation" / "images"), str(labels)])
    assert result.exit_code == 1 and "eval:" in result.stderr
    line = next(line for line in result.stderr.splitlines() if "Error" in line)
    assert line.startswith("Error: label ") and "holds class 7" in line, repr(result.stderr)
