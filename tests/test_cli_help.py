"""`rs-effnet --help`, `rs-effnet --version` and every command's --help answer without importing torch or
rasterio (seconds of imports for a line of text): each runs in a fresh interpreter, since this test process
imported both long ago. A new command in COMMANDS is covered without a change here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from robosat_effnet.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "rasterio")  # what a command imports when it runs, never to describe itself

# Runs the group as `rs-effnet` would, then prints the exit code, the first line of the output and which of the
# HEAVY modules were imported along the way.
SCRIPT = f"""
import sys
from click.testing import CliRunner
from robosat_effnet.cli import main
result = CliRunner().invoke(main, sys.argv[1:], prog_name="rs-effnet")
print(result.exit_code)
print((result.output.splitlines() or [""])[0])
print(" ".join(m for m in {HEAVY!r} if m in sys.modules))
"""


def described(*args: str) -> tuple[int, str, list[str]]:
    """(exit code, first line of the output, HEAVY modules imported) of `rs-effnet ARGS` in a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True, env=env,
                          timeout=120, check=True)
    code, first, heavy = (done.stdout.splitlines() + ["", "", ""])[:3]
    return int(code), first, heavy.split()


def test_the_group_help_imports_neither_torch_nor_rasterio():
    """--help lists every command with its first line, which imports every command's module."""
    assert described("--help") == (0, "Usage: rs-effnet [OPTIONS] COMMAND [ARGS]...", [])


def test_version_imports_neither_torch_nor_rasterio():
    code, first, heavy = described("--version")
    assert (code, heavy) == (0, []) and first.startswith("rs-effnet, version ")


@pytest.mark.parametrize("command", list(COMMANDS))
def test_command_help_imports_neither_torch_nor_rasterio(command):
    code, first, heavy = described(command, "--help")
    assert (code, heavy) == (0, []) and first.startswith(f"Usage: rs-effnet {command} "), (code, first, heavy)


def test_an_import_of_torch_is_seen():
    """The check itself works: a module that imports torch at its top is reported."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", "import robosat_effnet.data.transforms\n" + SCRIPT, "--version"],
                          capture_output=True, text=True, env=env, timeout=120, check=True)
    assert done.stdout.splitlines()[2].split() == ["torch"]


def test_the_package_root_loads_its_names_on_first_use():
    """`import robosat_effnet` costs no torch; its public names are there the moment they are used."""
    script = ("import sys, robosat_effnet as r\n"
              "before = 'torch' in sys.modules\n"
              "names = set(dir(r))\n"
              "model = r.build_model('b0', num_classes=2)\n"
              "print(before, 'build_model' in names, 'torch' in sys.modules, type(model).__name__, r.__version__)\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120,
                          check=True)
    from robosat_effnet import __version__

    assert done.stdout.split() == ["False", "True", "True", "SegmentationModel", __version__]


# The stages that never run a network: a mapper's tile, rasterize, cover, blocks, features, score, conflate and the
# dataset config they read load in a fraction of a second without torch.
WITHOUT_TORCH = ["robosat_effnet.config.dataset", "robosat_effnet.prepare.tile", "robosat_effnet.prepare.rasterize",
                 "robosat_effnet.prepare.cover", "robosat_effnet.prepare.blocks", "robosat_effnet.vectorize.features",
                 "robosat_effnet.vectorize.conflate", "robosat_effnet.scoring.objects",
                 "robosat_effnet.evaluation.buildings"]


def test_the_stages_without_a_network_import_no_torch():
    """One fresh interpreter imports them in turn and names the first after which torch is loaded."""
    script = ("import importlib, sys\n"
              f"for name in {WITHOUT_TORCH!r}:\n"
              "    importlib.import_module(name)\n"
              "    print(name, 'torch' in sys.modules)\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120,
                          check=True)
    assert done.stdout.splitlines() == [f"{name} False" for name in WITHOUT_TORCH], done.stdout
