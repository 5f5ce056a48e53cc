"""Every command that writes a single file (export OUTPUT, predict --geotiff, features OUT, eval/score --json,
conflate OUT, bench --markdown) refuses a symbolic link there, even a dangling one (the rename would replace the
link by a file), and sweeps the temp file a killed run of it left beside its output.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from test_outputs import dead_pid

from conftest import command_inputs, make_dataset
from robosat_effnet.cli import main
from robosat_effnet.outputs import temp_path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, random_checkpoint) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("single")
    return command_inputs(root, random_checkpoint, n_val=2)


# command -> (its arguments writing to OUT, the output's suffix); bench fails on the empty tiles after its checks
COMMANDS = {
    "export": (lambda i, out: ["export", i["checkpoint"], out], ".onnx"),
    "predict --geotiff": (lambda i, out: ["predict", i["scene"], "--geotiff", out, "--checkpoint", i["checkpoint"],
                                          "--device", "cpu", "--quiet"], ".tif"),
    "features": (lambda i, out: ["features", i["labels"], out, "-q"], ".geojson"),
    "eval --json": (lambda i, out: ["eval", "--checkpoint", i["checkpoint"], i["images"], i["labels"], "--json", out,
                                    "--device", "cpu", "-q"], ".json"),
    "score --json": (lambda i, out: ["score", i["geojson"], i["geojson"], "--json", out], ".json"),
    "conflate .osm": (lambda i, out: ["conflate", i["geojson"], i["geojson"], out], ".osm"),
    "conflate .geojson": (lambda i, out: ["conflate", i["geojson"], i["geojson"], out], ".geojson"),
    "bench --markdown": (lambda i, out: ["bench", "--markdown", out, "--tiles", i["empty"], "--sections", "model",
                                         "--models", "b0:unet", "--device", "cpu"], ".md"),
}


def run(args: list) -> object:
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize("dangling", [True, False], ids=["dangling link", "link to a file"])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_symbolic_link_where_the_file_goes_is_refused_and_kept(tmp_path, inputs, command, dangling):
    args, suffix = COMMANDS[command]
    target = tmp_path / f"elsewhere{suffix}"
    if not dangling:
        target.write_text("somebody's file")
    out = tmp_path / f"out{suffix}"
    out.symlink_to(target)
    result = run(args(inputs, out))
    assert result.exit_code in (1, 2) and "is a symbolic link" in result.output, result.output
    assert "Traceback" not in result.output and result.output.count("Error") == 1
    assert out.is_symlink() and os.readlink(out) == str(target)
    assert target.read_text() == "somebody's file" if not dangling else not target.exists()


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_killed_runs_temp_file_is_swept_a_live_ones_kept(tmp_path, inputs, command):
    args, suffix = COMMANDS[command]
    out = tmp_path / f"out{suffix}"
    ours = temp_path(out)  # this process's name: a writer that is still running
    host = ours.name.split(".")[2].split("-")[0]
    dead = out.with_name(f".rs-effnet-out.{host}-{dead_pid()}-0a1b2c3d.tmp{suffix}")
    dead.write_bytes(b"x" * 4096)  # what kill -9 left half-written
    ours.write_bytes(b"x")
    run(args(inputs, out))
    assert not dead.exists() and ours.exists()


def test_a_study_sweeps_what_a_killed_study_left(tmp_path, monkeypatch):
    import robosat_effnet.study
    from robosat_effnet.errors import ConfigError

    def stop(*args, **kwargs):
        raise ConfigError("stopped before training")

    monkeypatch.setattr(robosat_effnet.study, "train_run", stop)
    data = make_dataset(tmp_path, n_train=1, n_val=1)
    out = tmp_path / "study"

    def study() -> None:
        with pytest.raises(ConfigError, match="stopped before training"):
            robosat_effnet.study.run_study(data.dataset_toml, data.model_toml, ["b0"], out, progress=False)

    study()  # the folder is the study's now (study.json)
    (out / "efficientnet-b0-s0").mkdir()
    host = temp_path(out).name.split(".")[2].split("-")[0]
    dead = [out / f".rs-effnet-results.{host}-{dead_pid()}-0a1b2c3d.tmp.md",
            out / "efficientnet-b0-s0" / f".rs-effnet-eval.{host}-{dead_pid()}-0a1b2c3d.tmp.json"]
    for path in dead:
        path.write_text("half")
    study()
    assert not any(path.exists() for path in dead) and (out / "study.json").is_file()


def test_predict_geotiff_never_replaces_a_file_that_is_not_a_mask_of_the_scene(tmp_path, inputs):
    other = tmp_path / "photo.tif"
    with rasterio.open(other, "w", driver="GTiff", width=8, height=8, count=3, dtype="uint8") as dst:
        dst.write(np.full((3, 8, 8), 7, np.uint8))
    before = other.read_bytes()
    result = run(["predict", inputs["scene"], tmp_path / "tiles", "--zoom", "18", "--geotiff", other, "--overwrite",
                  "--checkpoint", inputs["checkpoint"], "--device", "cpu", "--quiet"])
    assert result.exit_code == 1 and "photo.tif exists but is not a mask of" in result.output, result.output
    assert other.read_bytes() == before and not (tmp_path / "tiles").exists()  # refused before the tiles
    mask = tmp_path / "mask.tif"
    args = ["predict", inputs["scene"], "--geotiff", mask, "--checkpoint", inputs["checkpoint"], "--device", "cpu",
            "--quiet"]
    assert run(args).exit_code == 0
    made = mask.stat().st_mtime_ns
    assert run(args).exit_code == 0 and mask.stat().st_mtime_ns == made  # kept
    assert run([*args, "--overwrite"]).exit_code == 0 and mask.stat().st_mtime_ns != made  # its own: replaced
