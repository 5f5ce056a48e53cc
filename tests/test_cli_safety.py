"""No command loses data: outputs never clobber inputs, other runs are refused, disk failures are one line,
killed runs' temp files are swept, files follow the umask, bad checkpoints never run code."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import subprocess
from pathlib import Path

import mercantile
import pytest
from click.testing import CliRunner
from test_geo_tile import write_scene
from test_outputs import bad_checkpoints, dead_pid, read_only_folder, umask

from conftest import make_dataset
from robosat_effnet.cli import main
from robosat_effnet.outputs import RECORD, temp_path
from robosat_effnet.tiles import tile_files, tile_path
from robosat_effnet.training.history import read_csv

pytestmark = pytest.mark.usefixtures("one_thread")
UNSAFE = "weights_only set to False"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line_error(result, *words):
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.output.splitlines() if line.strip() and not line.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def killed_temp(target: Path) -> Path:
    """The temp name a run killed while writing `target` on this machine left behind."""
    return target.with_name(re.sub(r"-\d+-([0-9a-f]+)\.tmp", f"-{dead_pid()}-\\1.tmp", temp_path(target).name))


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def scene(tmp_path) -> Path:
    path = tmp_path / "scenes" / "scene.tif"
    path.parent.mkdir()
    write_scene(path, width=120, height=90)
    return path


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_predict_into_its_own_source_is_refused_and_the_source_stays_byte_identical(tmp_path, tiles,
                                                                                     random_checkpoint, overwrite):
    before = digest(tiles)
    for out in (tiles, tiles / "18" / "masks", tmp_path):
        result = run("predict", tiles, out, "--checkpoint", random_checkpoint, "--quiet", *overwrite)
        one_line_error(result, f"output {out}", f"the input {tiles}", "choose an output outside it")
    assert digest(tiles) == before and not (tmp_path / RECORD).exists()
    (tmp_path / "link").symlink_to(tiles)
    one_line_error(run("predict", tmp_path / "link", tiles, "--checkpoint", random_checkpoint, *overwrite), "is")
    ckpt_copy = tmp_path / "out" / "model.pth"
    ckpt_copy.parent.mkdir()
    ckpt_copy.write_bytes(random_checkpoint.read_bytes())
    one_line_error(run("predict", tiles, tmp_path / "out", "--checkpoint", ckpt_copy, *overwrite), "contains")
    assert digest(tiles) == before


def test_predict_of_a_scene_never_writes_over_or_around_it(tmp_path, scene, random_checkpoint):
    before = digest(scene.parent)
    for extra in ([], ["--overwrite"]):
        one_line_error(run("predict", scene, scene.parent, "--zoom", "17", "--checkpoint", random_checkpoint, *extra),
                       "contains the input")
        one_line_error(run("predict", scene, "--geotiff", scene, "--checkpoint", random_checkpoint, *extra),
                       f"output {scene} is the input")
    assert digest(scene.parent) == before


def test_predict_continues_only_its_own_run(tmp_path, tiles, random_checkpoint):
    out = tmp_path / "masks"
    assert run("predict", tiles, out, "--checkpoint", random_checkpoint, "--quiet", "--border", "0").exit_code == 0
    masks = digest(out)
    again = run("predict", tiles, out, "--checkpoint", random_checkpoint, "--quiet", "--border", "0")
    assert again.exit_code == 0 and "2 already there" in again.output
    # another setting (or checkpoint, or source) is another run: refused, nothing touched
    line = one_line_error(run("predict", tiles, out, "--checkpoint", random_checkpoint, "--border", "32"),
                          "holds the output of another run", "border 0", "--overwrite", "new folder")
    assert str(tiles.resolve()) in line and digest(out) == masks
    assert "another run" in one_line_error(run("predict", tiles, out, "--checkpoint", random_checkpoint, "--probs",
                                               "--border", "0"))
    stale = tile_path(out, mercantile.Tile(1, 1, 18), "png")  # a tile only the old run had
    stale.parent.mkdir(parents=True)
    stale.write_bytes(next(out.rglob("*.png")).read_bytes())
    result = run("predict", tiles, out, "--checkpoint", random_checkpoint, "--quiet", "--probs", "--overwrite")
    assert result.exit_code == 0, result.output
    assert not stale.exists() and len(tile_files(out)) == 2  # the old run's tiles went: no mix of two runs
    # a folder with files that no run of ours wrote
    foreign = tmp_path / "photos"
    (foreign / "18" / "70700").mkdir(parents=True)
    (foreign / "18" / "70700" / "104100.png").write_bytes(b"holiday")
    one_line_error(run("predict", tiles, foreign, "--checkpoint", random_checkpoint), "did not write", "--overwrite")
    assert (foreign / "18" / "70700" / "104100.png").read_bytes() == b"holiday"


def test_predict_reruns_sweep_killed_runs_temp_files_and_files_follow_the_umask(tmp_path, tiles, random_checkpoint):
    out = tmp_path / "masks"
    with umask(0o022):
        assert run("predict", tiles, out, "--checkpoint", random_checkpoint, "--quiet").exit_code == 0
    for path in out.rglob("*"):
        assert path.stat().st_mode & 0o777 == (0o755 if path.is_dir() else 0o644), path
    first = next(out.rglob("*.png"))
    killed = killed_temp(first)
    lookalike = first.parent / f".{first.stem}.a1b2c3d4.tmp.png"  # the earlier naming, which a user's file can have
    for path in (killed, lookalike):
        path.write_bytes(b"")
    first.unlink()
    result = run("predict", tiles, out, "--checkpoint", random_checkpoint, "--quiet")
    assert result.exit_code == 0 and "1 already there" in result.output
    assert not killed.exists() and lookalike.exists() and first.is_file()


def test_predict_full_or_read_only_disk_is_one_line(tmp_path, tiles, random_checkpoint, monkeypatch, scene):
    with read_only_folder(tmp_path / "ro") as folder:
        one_line_error(run("predict", tiles, folder / "masks", "--checkpoint", random_checkpoint),
                       f"cannot write {folder / 'masks'}", "run the command again")
        one_line_error(run("predict", scene, "--zoom", "17", "--geotiff", folder / "mask.tif", "--checkpoint",
                           random_checkpoint, "--tile-size", "64", "--quiet", tmp_path / "z"),
                       f"cannot write {folder}")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("robosat_effnet.predict.writer.write_mask", full)
    out = tmp_path / "masks"
    one_line_error(run("predict", tiles, out, "--checkpoint", random_checkpoint, "--quiet"),
                   f"cannot write {out}: the disk is full", "free some space")
    assert not tile_files(out) and not [p for p in out.rglob("*") if p.is_file() and p.name != RECORD]


def test_predict_on_a_really_full_tmpfs_is_one_line(tmp_path, tiles, random_checkpoint):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    folder = tmp_path / "tiny"
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, bytes(4096))
        os.close(fd)
        os.truncate(folder / "filler", os.path.getsize(folder / "filler") - 4096)  # one page left: the record's
        result = run("predict", tiles, folder / "masks", "--checkpoint", random_checkpoint, "--quiet")
        one_line_error(result, f"cannot write {folder / 'masks'}: the disk is full")
        assert (folder / "masks" / RECORD).is_file()  # the checks passed: the disk filled up while writing
        for path in (folder / "masks").rglob("*.png"):  # what made it is whole
            assert path.stat().st_size > 0 and not path.name.startswith(".")
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def testbad_checkpoints_are_refused_without_unsafe_advice_or_running_code(tmp_path, tiles):
    for path in bad_checkpoints(tmp_path).values():
        line = one_line_error(run("predict", tiles, tmp_path / "m", "--checkpoint", path),
                              "is not a robosat_effnet checkpoint", "rs-effnet train")
        assert UNSAFE not in line and "EOFError" not in line
    assert not (tmp_path / "PWNED").exists() and not (tmp_path / "m").exists()


def test_train_refuses_another_run_unless_resume_or_overwrite(tmp_path, random_checkpoint):
    data = make_dataset(tmp_path, n_train=2, n_val=2, model={"batch_size": 2, "epochs": 2})
    common = ["train", "--dataset", data.dataset_toml, "--model", data.model_toml, "--quiet", "--device", "cpu"]
    ckpt = tmp_path / "checkpoints"  # model.toml's folder, beside it: an earlier run's files there
    ckpt.mkdir()
    for name in ("last.pth", "best.pth", "checkpoint-00002.pth", "checkpoint-00003.pth"):
        (ckpt / name).write_bytes(random_checkpoint.read_bytes())
    (ckpt / "history.csv").write_text("epoch\n1\n2\n3\n")
    before = digest(ckpt)
    one_line_error(run(*common), f"checkpoint folder {ckpt} holds another training run", "--resume", "--overwrite")
    assert digest(ckpt) == before
    killed = killed_temp(ckpt / "last.pth")
    killed.write_bytes(b"half a checkpoint")
    with umask(0o022):
        result = run(*common, "--epochs", "1", "--overwrite")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in ckpt.iterdir()) == ["best.pth", "history.csv", "history.png",
                                                      "last.pth"]  # nothing of the old run
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in ckpt.iterdir())
    assert run(*common, "--resume", ckpt / "last.pth").exit_code == 0  # the same run continues
    assert not (ckpt / "checkpoint-00002.pth").exists()  # keep = 0: last.pth and best.pth only
    assert [row["epoch"] for row in read_csv(ckpt / "history.csv")] == [1, 2]  # no row of the replaced run


def test_train_read_only_or_full_checkpoint_folder_is_one_line_before_any_epoch(tmp_path, monkeypatch):
    data = make_dataset(tmp_path, n_train=2, n_val=2, model={"batch_size": 2})
    common = ["train", "--dataset", data.dataset_toml, "--model", data.model_toml, "--device", "cpu"]
    with read_only_folder(tmp_path / "ro") as folder:
        line = one_line_error(run(*common, "--checkpoint-dir", folder / "ckpt"), f"cannot write {folder / 'ckpt'}")
        assert "epoch" not in line

    def full(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing file "
                           "data/0: file write failed")

    monkeypatch.setattr("robosat_effnet.models.checkpoint.torch.save", full)
    out = tmp_path / "ckpt"
    one_line_error(run(*common, "--checkpoint-dir", out, "--quiet"), f"cannot write {out}", "disk is probably full")
    assert not list(out.iterdir())  # no half checkpoint, no temp file
    one_line_error(run(*common, "--checkpoint-dir", data.root / "training" / "images" / "ck"), "lies inside the input")


@pytest.mark.parametrize("inside", ["checkpoints", "training/checkpoints", "validation", "."])
def test_a_checkpoint_folder_anywhere_in_the_dataset_is_refused(tmp_path, inside):
    data = make_dataset(tmp_path, n_train=2, n_val=2, model={"batch_size": 2})
    before = sorted(p.relative_to(data.root) for p in data.root.rglob("*"))
    folder = data.root / inside
    line = one_line_error(run("train", "--dataset", data.dataset_toml, "--model", data.model_toml, "--device", "cpu",
                              "--checkpoint-dir", folder), "the input", str(data.root))
    assert "lies inside" in line or " is the input" in line
    assert sorted(p.relative_to(data.root) for p in data.root.rglob("*")) == before  # nothing written there
    # The same folder named by model.toml's checkpoint key.
    data.model_toml.write_text(data.model_toml.read_text().replace('checkpoint = "checkpoints"',
                                                                   f'checkpoint = "{folder}"'))
    one_line_error(run("train", "--dataset", data.dataset_toml, "--model", data.model_toml, "--device", "cpu"),
                   "the input")


def test_tile_refuses_its_own_scene_folder_other_runs_and_reports_full_disks(tmp_path, scene, monkeypatch):
    before = digest(scene.parent)
    for extra in ([], ["--overwrite"]):
        one_line_error(run("tile", scene, scene.parent, "--zoom", "17", "--size", "64", "-q", *extra),
                       "contains the input")
    assert digest(scene.parent) == before
    out = tmp_path / "tiles"
    with umask(0o022):
        assert run("tile", scene, out, "--zoom", "17", "--size", "64", "-q").exit_code == 0
    written = digest(out)
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in out.rglob("*") if p.is_file())
    assert run("tile", scene, out, "--zoom", "17", "--size", "64", "-q").exit_code == 0  # the same run again
    one_line_error(run("tile", scene, out, "--zoom", "18", "--size", "64", "-q"), "another run", "zoom 17")
    assert digest(out) == written
    assert run("tile", scene, out, "--zoom", "18", "--size", "64", "-q", "--overwrite").exit_code == 0
    assert {t.z for t in tile_files(out)} == {18}  # the zoom 17 tiles went with their run

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("robosat_effnet.prepare.tile.write_image", full)
    one_line_error(run("tile", scene, tmp_path / "t2", "--zoom", "17", "--size", "64", "-q"),
                   f"cannot write {tmp_path / 't2'}: the disk is full")
    assert not tile_files(tmp_path / "t2")


def test_rasterize_features_and_eval_never_write_into_their_inputs(tmp_path, tiles, random_checkpoint):
    data = make_dataset(tmp_path, n_train=1, n_val=1)
    geojson = tmp_path / "b.geojson"
    geojson.write_text('{"type": "FeatureCollection", "features": []}')
    before = digest(tiles)
    for out in (tiles, tiles / "labels"):
        one_line_error(run("rasterize", geojson, out, "--tiles", tiles, "--dataset", data.dataset_toml),
                       "the input", "choose an output outside it")
    masks = data.root / "training" / "labels"
    one_line_error(run("features", masks, masks / "18" / "out.geojson"), "lies inside the input")
    label = next(masks.rglob("*.png"))
    one_line_error(run("eval", "--checkpoint", random_checkpoint, tiles, masks, "--json", label), "lies inside")
    one_line_error(run("eval", "--checkpoint", random_checkpoint, tiles, masks, "--json", random_checkpoint), "is")
    assert digest(tiles) == before and label.read_bytes()[:4] == b"\x89PNG"


def test_features_full_disk_and_sample_modes(tmp_path, monkeypatch):
    data = make_dataset(tmp_path, n_train=1, n_val=1)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("robosat_effnet.vectorize.output.output_writer", lambda path: full)
    one_line_error(run("features", data.root / "training" / "labels", tmp_path / "f.geojson", "-q"),
                   "the disk is full")
    with umask(0o022):
        assert run("sample", tmp_path / "town", "--size", "64").exit_code == 0
    files = [p for p in (tmp_path / "town").rglob("*") if p.is_file()]
    assert len(files) == 8 and all(p.stat().st_mode & 0o777 == 0o644 for p in files)  # 2 x 3 files + 2 records
    with read_only_folder(tmp_path / "ro") as folder:
        one_line_error(run("sample", folder / "town", "--size", "64"), "cannot write")


def test_rasterize_continues_only_its_own_labels(tmp_path):
    data = make_dataset(tmp_path, n_train=2, n_val=1)
    images = data.root / "training" / "images"
    tile = next(iter(tile_files(images)))
    west, south, east, north = mercantile.bounds(tile)
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    geojson = tmp_path / "houses.geojson"
    geojson.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [ring]}}]}))
    out = tmp_path / "labels"
    args = ["rasterize", geojson, out, "--tiles", images, "--dataset", data.dataset_toml, "-q"]
    assert run(*args).exit_code == 0 and len(tile_files(out)) == 2
    assert run(*args).exit_code == 0  # the same labels again
    labels = digest(out)
    other = tmp_path / "roads.geojson"
    other.write_text(geojson.read_text())
    one_line_error(run("rasterize", other, out, "--tiles", images, "--dataset", data.dataset_toml),
                   "another run", "`rasterize` of", "--overwrite")
    assert digest(out) == labels
    assert run("rasterize", other, out, "--tiles", images, "--dataset", data.dataset_toml, "-q",
               "--overwrite").exit_code == 0
