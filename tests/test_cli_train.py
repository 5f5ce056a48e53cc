"""`rs-effnet train` and `rs-effnet weights` from the command line: robosat's configs, bad inputs, weights."""

import math
import re
import shutil
import time
import tomllib
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from test_datasets import BREAKS

from conftest import make_dataset
from robosat_effnet.cli import main

FIXTURES = Path(__file__).parents[1] / ".." / "shared" / "data" / "robosat-fixtures"


pytestmark = pytest.mark.usefixtures("one_thread")


def run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_one_line_error(result, *words):
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if not line.startswith("warning:")]
    assert len(errors) == 1 and errors[0].startswith("Error: "), result.output
    for word in words:
        assert word in errors[0], errors[0]


@pytest.fixture
def small(tmp_path):
    return make_dataset(tmp_path, n_train=4, n_val=2)


def test_robosat_parking_configs_train(tmp_path):
    """Acceptance: robosat's own TOMLs, with only paths and epochs changed, train on its parking tiles."""
    if not FIXTURES.is_dir():
        pytest.skip("../shared/data is absent")
    for split in ("training", "validation"):  # the 4 parking tiles serve as both splits
        (tmp_path / "parking" / split).mkdir(parents=True)
        for kind in ("images", "labels"):
            (tmp_path / "parking" / split / kind).symlink_to((FIXTURES / "parking" / kind).resolve())
    dataset = (FIXTURES / "dataset-parking.toml").read_text().replace("/tmp/slippy-map-dir/", str(tmp_path / "parking"))
    model = (FIXTURES / "model-unet.toml").read_text().replace("/tmp/pth/", str(tmp_path / "pth"))
    model = re.sub(r"epochs\s*=\s*10", "epochs = 1", model)
    (tmp_path / "dataset.toml").write_text(dataset)
    (tmp_path / "model.toml").write_text(model)
    began = time.perf_counter()
    result = run("train", "--dataset", tmp_path / "dataset.toml", "--model", tmp_path / "model.toml",
                 "--backbone", "b0")
    print(f"parking: 1 epoch, 4 tiles of 512 px, batch 2 on CPU took {time.perf_counter() - began:.1f} s")
    assert result.exit_code == 0, result.output
    if not torch.cuda.is_available():  # cuda = true in robosat's file: a warning, then CPU
        assert f"warning: {tmp_path / 'model.toml'} says cuda = true but no CUDA GPU is available" in result.output
    assert "best validation mIoU" in result.output
    names = {p.name for p in (tmp_path / "pth").iterdir()}
    assert names == {"last.pth", "best.pth", "history.csv", "history.png"}  # no numbered file: keep = 0
    state = torch.load(tmp_path / "pth" / "last.pth", weights_only=True)
    assert state["spec"]["classes"] == ["background", "parking"] and state["spec"]["tile_size"] == 512
    assert state["model_config"]["loss"] == "Lovasz"


@pytest.mark.parametrize("case", list(BREAKS))
def test_bad_datasets_fail_cleanly(small, case):
    breaker, words = BREAKS[case]
    breaker(small.root)
    result = run("train", "--dataset", small.dataset_toml, "--model", small.model_toml, "--quiet")
    assert_one_line_error(result, *words)
    assert not (small.dataset_toml.parent / "checkpoints").exists()



def test_colour_augmentation_of_a_dataset_that_is_not_rgb_fails_cleanly(tmp_path):
    two_bands = {"bands": [1, 2], "in_channels": 2, "mean": [0.5, 0.5], "std": [0.2, 0.2]}
    data = make_dataset(tmp_path, n_train=2, n_val=1, size=32, dataset=two_bands, model={"grayscale": 0.25})
    result = run("train", "--dataset", data.dataset_toml, "--model", data.model_toml, "--quiet")
    assert_one_line_error(result, str(data.model_toml), "2 bands", "set them to 0")
    assert not (tmp_path / "checkpoints").exists()

def fake_robosat_checkpoints(folder: Path) -> list[Path]:
    """robosat's two formats: a DataParallel state dict, and {epoch, state_dict, optimizer} (rs train)."""
    state = {"module.encoder.conv1.weight": torch.zeros(64, 3, 7, 7)}
    paths = [folder / "robosat-weights.pth", folder / "checkpoint-00010-of-00010.pth"]
    torch.save(state, paths[0])
    torch.save({"epoch": 10, "state_dict": state, "optimizer": {}}, paths[1])
    return paths


def test_robosat_checkpoints_are_refused(small, tmp_path):
    for path in fake_robosat_checkpoints(tmp_path):
        result = run("train", "--dataset", small.dataset_toml, "--model", small.model_toml, "--quiet",
                     "--resume", path)
        assert_one_line_error(result, str(path), "robosat checkpoint", "rs-effnet train")
    assert not (tmp_path / "checkpoints").exists()


def test_resume_errors(trained_run, tmp_path):
    data, last = trained_run["dataset"], trained_run["result"]["last"]
    common = ["train", "--dataset", data.dataset_toml, "--model", data.model_toml, "--quiet", "--resume", last,
              "--checkpoint-dir", tmp_path / "out"]
    assert_one_line_error(run(*common), "already done 5 epochs", "--epochs")
    assert_one_line_error(run(*common, "--epochs", "6", "--backbone", "b1"), "trained differently",
                          "efficientnet-b1")
    assert_one_line_error(run(*common[:-4], "--resume", tmp_path / "none.pth"), "does not exist")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, words", [
    (["--weights", "missing.pth"], ["missing.pth", "does not exist"]),
])
def test_bad_options_fail_cleanly(small, args, words):
    result = run("train", "--dataset", small.dataset_toml, "--model", small.model_toml, "--quiet", *args)
    assert_one_line_error(result, *words)
    assert not (small.dataset_toml.parent / "checkpoints").exists()


@pytest.mark.parametrize("command, args, words", [
    ("train", ["--backbone", "b9"], ["unknown backbone 'b9'", "efficientnet-b0", "--backbone"]),
    ("train", ["--device", "tpu:7"], ["unknown device 'tpu:7'", "--device"]),
    ("train", ["--device", "cuda"] if not torch.cuda.is_available() else ["--device", "cuda:99"], ["--device"]),
    ("eval", ["--device", "foo", "x", "y"], ["unknown device 'foo'"]),
])
def test_bad_option_values_are_usage_errors_before_any_work(small, command, args, words):
    result = run(command, "--dataset" if command == "train" else "--checkpoint",
                 small.dataset_toml if command == "train" else "none.pth", *args)
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert all(w in result.output for w in words), result.output
    assert not (small.dataset_toml.parent / "checkpoints").exists()


def test_unknown_precision_is_a_usage_error(small):
    from robosat_effnet import config, precision
    from robosat_effnet.cli import options

    assert options.PRECISIONS is config.PRECISIONS is precision.PRECISIONS  # one tuple, defined once (torch-free)
    result = run("train", "--dataset", small.dataset_toml, "--model", small.model_toml, "--precision", "fp16")
    assert result.exit_code == 2 and "'fp16' is not one of 'fp32', 'bf16'" in result.output


def test_options_override_the_files(small, tmp_path):
    """--decoder, --epochs, --batch-size, --lr, --precision and --checkpoint-dir reach the run (and its checkpoint)."""
    out = tmp_path / "elsewhere"
    result = run("train", "--dataset", small.dataset_toml, "--model", small.model_toml, "--quiet", "--decoder", "fpn",
                 "--epochs", "2", "--batch-size", "2", "--lr", "0.01", "--precision", "bf16", "--checkpoint-dir", out)
    assert result.exit_code == 0, result.output
    state = torch.load(out / "last.pth", weights_only=True)
    assert state["spec"]["decoder"] == "fpn" and state["epoch"] == 2
    assert (state["model_config"]["batch_size"], state["model_config"]["lr"]) == (2, 0.01)
    assert state["model_config"]["precision"] == "bf16"
    assert state["scheduler"]["last_epoch"] == 2 * 4 // 2  # 4 training tiles in batches of 2, for 2 epochs
    assert not (small.dataset_toml.parent / "checkpoints").exists()  # model.toml's folder was overridden


def test_checkpoint_folder_that_cannot_be_made(small, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = run("train", "--dataset", small.dataset_toml, "--model", small.model_toml, "--quiet",
                 "--checkpoint-dir", blocker / "sub")
    assert_one_line_error(result, "cannot create the checkpoint folder", "--checkpoint-dir")


def test_unknown_loss_lists_the_valid_names(tmp_path):
    data = make_dataset(tmp_path, n_train=1, n_val=1, model={"loss": "Hinge"})
    assert_one_line_error(run("train", "--dataset", data.dataset_toml, "--model", data.model_toml),
                          "Hinge", "CrossEntropy", "mIoU", "Focal", "Lovasz", "Dice")


@pytest.mark.parametrize("args", [["--decoder", "deeplab"], ["--epochs", "0"], ["--batch-size", "0"],
                                  ["--lr", "-1"], ["--workers", "-1"]])
def test_usage_errors_exit_2(small, args):
    result = run("train", "--dataset", small.dataset_toml, "--model", small.model_toml, *args)
    assert result.exit_code == 2, result.output


def test_default_config_names_and_unknown_key_warning(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(run("train"), "dataset.toml", "does not exist", "--dataset")
    data = make_dataset(tmp_path, n_train=1, n_val=1, model={"momentum": 0.9})
    shutil.rmtree(data.root / "validation")
    result = run("train", "--quiet")  # dataset.toml and model.toml from the current folder
    assert "warning:" in result.output and "[common] momentum" in result.output
    assert_one_line_error(result, "validation")


def test_weights_command(small):
    result = run("weights", "--dataset", small.dataset_toml, "--quiet")
    assert result.exit_code == 0, result.output
    values = tomllib.loads(result.output)["weights"]["values"]
    from robosat_effnet.io import read_label

    counts = [0, 0]
    for path in (small.root / "training" / "labels").rglob("*.png"):
        label = read_label(path)
        counts[1] += int((label == 1).sum())
        counts[0] += int((label == 0).sum())
    total = sum(counts)
    assert values == [round(1 / math.log(1.02 + c / total), 6) for c in counts]


def test_weights_of_robosat_parking_as_toml(tmp_path):
    if not FIXTURES.is_dir():
        pytest.skip("../shared/data is absent")
    (tmp_path / "ds" / "training").mkdir(parents=True)
    (tmp_path / "ds" / "training" / "labels").symlink_to((FIXTURES / "parking" / "labels").resolve())
    text = (FIXTURES / "dataset-parking.toml").read_text().replace("/tmp/slippy-map-dir/", str(tmp_path / "ds"))
    (tmp_path / "dataset.toml").write_text(text)
    result = run("weights", "--dataset", tmp_path / "dataset.toml", "--quiet")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("[weights]\n  values = [")
    frequency = (63185 + 56756 + 10654) / (4 * 512 * 512)  # the fixture README's pixel counts
    assert tomllib.loads(result.output)["weights"]["values"] == [
        round(1 / math.log(1.02 + 1 - frequency), 6), round(1 / math.log(1.02 + frequency), 6)]


def test_weights_command_errors(tmp_path):
    data = make_dataset(tmp_path, n_train=1, n_val=1)
    shutil.rmtree(data.root / "training" / "labels")
    assert_one_line_error(run("weights", "--dataset", data.dataset_toml), "labels", "does not exist")
