"""Our temp files and folders: names that can only be ours (host, pid, token), swept once their run is dead, and
nothing else ever swept.

Two classes of defect: a temp folder in the system's temp folder under a name the next run cannot claim (kill -9
left it for good), and a sweep that matched a user's file by a loose pattern (`.buildings.backup_1.tmp`).
"""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mercantile
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_outputs import dead_pid

from robosat_effnet.cli import main
from robosat_effnet.io import write_image, write_mask
from robosat_effnet.outputs import (
    claim_folder,
    claim_output,
    is_temp,
    make_record,
    start_run_folder,
    sweep_temp,
    temp_folder,
    temp_path,
)
from robosat_effnet.tiles import tile_path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "robosat_effnet"
TILES = [mercantile.Tile(70760 + i, 104130, 18) for i in range(2)]

# Plausible names of a user's own files beside an output "buildings.geojson" / "model.onnx" / a folder: editors'
# and backup tools' temp and backup names, dated copies, and names that look like our earlier temp names.
USER_NAMES = [".buildings.20241204.tmp", ".buildings.backup_1.tmp", ".buildings.geojson.swp", ".buildings.12345.tmp",
              ".model.k2j4_9ab.tmp.onnx", ".model.onnx.tmp", "buildings.tmp", ".rs-effnet-notes.txt",
              ".rs-effnet-buildings.tmp", ".rs-effnet-buildings.backup-1-x.tmp", "#buildings.geojson#",
              ".~lock.buildings.geojson#", ".last.abcdefgh.tmp.pth", ".0.12345678.tmp.png"]
# A user's name: anything not of the form `.rs-effnet-<stem>.<6 hex>-<pid>-<hex>.tmp[.ext]`.
user_names = st.from_regex(r"\A\.?[A-Za-z0-9_~#-]{1,12}(\.[A-Za-z0-9_-]{1,10}){0,2}\.(tmp|bak|swp)(\.[a-z]{2,4})?\Z")


def _sweeps(folder: Path) -> dict:
    """Every way a command sweeps beside or inside its output, as the command calls it."""
    return {
        "features, eval, score, bench --markdown (claim_output)": lambda: claim_output(folder / "buildings.geojson",
                                                                                        "features"),
        "export, predict --mosaic (sweep beside one file)": lambda: sweep_temp(folder, target=folder / "model.onnx"),
        "predict, tile, rasterize, blocks, sample (claim_folder)": lambda: claim_folder(
            folder, make_record("tile", folder, {}), overwrite=True),
        "train (start_run_folder)": lambda: start_run_folder(folder),
        "study (recursive)": lambda: sweep_temp(folder.parent, recursive=True),
        "temp_folder (scratch folders)": lambda: _scratch(folder),
    }


def _scratch(parent: Path) -> None:
    with temp_folder("buildings", parent):
        pass


SWEEPS = list(_sweeps(Path()))


def _ours_dead(target: Path) -> Path:
    """Our temp name for `target` as a killed run of this machine left it."""
    name = temp_path(target).name
    host, _, token = name.split(".")[-3 if target.suffix else -2].split("-")
    return target.with_name(name.replace(f"{host}-{os.getpid()}-{token}", f"{host}-{dead_pid()}-{token}"))


@pytest.mark.parametrize("sweep", SWEEPS)
def test_every_sweep_keeps_plausible_user_files_and_removes_our_dead_ones(tmp_path, sweep):
    folder = tmp_path / "lg"
    folder.mkdir()
    for name in USER_NAMES:
        (folder / name).write_text("the user's")
    ours = _ours_dead(folder / "buildings.geojson")
    ours.write_text("half written")
    _sweeps(folder)[sweep]()
    survivors = {p.name for p in folder.iterdir()}
    assert set(USER_NAMES) <= survivors, sorted(set(USER_NAMES) - survivors)
    assert all((folder / name).read_text() == "the user's" for name in USER_NAMES)
    if "scratch" not in sweep and "beside one file" not in sweep:  # these two sweep other names than this one
        assert ours.name not in survivors


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=user_names)
def test_no_sweep_takes_a_generated_user_name(tmp_path, name):
    folder = tmp_path / "out"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text("x")
    try:
        assert not is_temp(name)
        sweep_temp(folder, recursive=True)
        sweep_temp(folder, target=folder / f"{name.strip('.').split('.')[0]}.geojson")
        assert (folder / name).exists()
    finally:
        (folder / name).unlink(missing_ok=True)


def _features_masks(root: Path) -> Path:
    for tile in TILES:
        mask = np.zeros((64, 64), np.uint8)
        mask[10:40, 10:40] = 1
        write_mask(tile_path(root, tile, "png"), mask, ["denim", "orange"])
    return root


def test_features_keeps_the_users_look_alike_temp_files(tmp_path):
    """The reported instance: `features k20m lg/buildings.geojson` deleted lg/.buildings.20241204.tmp."""
    lg = tmp_path / "lg"
    lg.mkdir()
    for name in USER_NAMES:
        (lg / name).write_text("the user's")
    ours = _ours_dead(lg / "buildings.geojson")
    ours.write_text("half written")
    result = CliRunner().invoke(main, ["features", str(_features_masks(tmp_path / "k20m")),
                                       str(lg / "buildings.geojson"), "--class", "1", "-q"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in lg.iterdir()) == sorted([*USER_NAMES, "buildings.geojson"])


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p != PACKAGE / "outputs" / "temp.py")


@pytest.mark.parametrize("module", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_names_its_own_temp_files(module):
    """tempfile's names (`rs-effnet-export-x1y2`, `tmpab12`) cannot be told apart from a live run's: every temp
    file or folder goes through outputs.temp_folder / temp_path, whose names carry host and pid."""
    tree = ast.parse(module.read_text())
    used = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)
            and any(alias.name == "tempfile" for alias in node.names) or isinstance(node, ast.ImportFrom)
            and node.module == "tempfile"]
    assert not used, f"{module.relative_to(ROOT)}:{used[0]} imports tempfile; use robosat_effnet.outputs.temp_folder"


# Commands that keep temp folders in the system's temp folder: args, and the name of the temp entry (or one inside
# it) at which to kill, the deepest one the command makes.
def _tiles(root: Path) -> Path:
    for i, tile in enumerate(TILES):
        image = np.random.default_rng(i).integers(0, 255, (64, 64, 3), dtype=np.uint8)
        write_image(tile_path(root, tile, "png"), image)
    return root


KILLED = {
    "export --int8": (lambda ckpt, tmp: ["export", ckpt, tmp / "m.onnx", "--int8", "--calibration",
                                         _tiles(tmp / "tiles")], "ort.quant."),
    "eval": (lambda ckpt, tmp: ["eval", "--checkpoint", ckpt, _tiles(tmp / "tiles"),
                                _features_masks(tmp / "labels"), "-q", "--device", "cpu"], ".rs-effnet-eval."),
    "bench --sections engines": (lambda ckpt, tmp: ["bench", "--sections", "engines", "--models", "b0:unet",
                                                    "--size", "64", "--repeats", "1", "--threads", "1"],
                                 "ort.quant."),
}


@pytest.fixture(scope="module")
def calibrated_checkpoint(tmp_path_factory) -> Path:
    """A b0 U-Net with realistic BatchNorm statistics (an untrained one's constant layers defeat int8 calibration)."""
    from robosat_effnet.bench.calibration import calibrate_batchnorm, sample_batches
    from robosat_effnet.models import build_model
    from robosat_effnet.models.checkpoint import ModelSpec, save_checkpoint

    torch.manual_seed(0)
    network = calibrate_batchnorm(build_model("efficientnet-b0", num_classes=2), sample_batches(64, 2, 2))
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "calibrated.pth", network, ModelSpec(tile_size=64))


def _run(args: list, tmpdir: Path, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "TMPDIR": str(tmpdir), "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", "from robosat_effnet.cli import main; main()", *map(str, args)],
                            env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _entries(tmpdir: Path) -> list[str]:
    # `.ses`: onnxruntime's telemetry session id (51 bytes), one file every run reuses, not a leftover
    return sorted(str(p.relative_to(tmpdir)) for p in tmpdir.rglob("*") if p.name != ".ses")


@pytest.mark.parametrize("command", list(KILLED))
def test_a_run_killed_with_sigkill_leaves_temp_files_the_next_run_removes(tmp_path, calibrated_checkpoint, command):
    pytest.importorskip("onnxruntime")
    make, deepest = KILLED[command]
    args = make(calibrated_checkpoint, tmp_path)
    tmpdir = tmp_path / "system-temp"
    tmpdir.mkdir()
    first = _run(args, tmpdir, tmp_path)
    deadline = time.monotonic() + 240
    while first.poll() is None and time.monotonic() < deadline and not any(
            Path(e).name.startswith(deepest) for e in _entries(tmpdir)):
        time.sleep(0.02)
    assert first.poll() is None, f"{command} ended before making {deepest}*: {first.stdout.read().decode()[-2000:]}"
    first.send_signal(signal.SIGKILL)
    first.wait()
    first.stdout.close()
    left = _entries(tmpdir)
    assert any(Path(e).name.startswith(deepest) for e in left), left  # the kill left something behind
    assert all(e.split(os.sep)[0].startswith(".rs-effnet-") for e in left), left  # all of it inside ours
    second = _run(args if command != "export --int8" else [*args, "--overwrite"], tmpdir, tmp_path)
    output = second.communicate(timeout=600)[0].decode()
    assert second.returncode == 0, output[-2000:]
    assert _entries(tmpdir) == []
