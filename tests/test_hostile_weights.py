"""A weights file or checkpoint that loads safely (weights_only=True) but holds an odd structure is one line on every
path that reads one: train --weights, train --resume, study --weights, predict / eval / export --checkpoint, and
fine-tuning from a checkpoint of ours (the library's build_model). The odd structures are generated: every kind of
value where the state dict, its keys, its tensors or a checkpoint's entries belong.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torchvision
from click.testing import CliRunner

from conftest import make_dataset
from robosat_effnet.cli import main
from robosat_effnet.errors import CheckpointError, WeightsError
from robosat_effnet.models import build_model
from robosat_effnet.models.checkpoint import ModelSpec, load_checkpoint, save_checkpoint
from robosat_effnet.training.resume import check_training_state

pytestmark = pytest.mark.usefixtures("one_thread")

# Values that are not a table of named tensors of real, finite numbers.
NOT_TENSORS = {"list": [1, 2, 3], "int": 7, "str": "weights", "none": None, "float nan": math.nan,
               "tensor": torch.zeros(3), "nested dict": {"a": {"b": torch.zeros(1)}}, "empty dict": {},
               "tuple": (torch.zeros(1),)}


def bad_tensors() -> dict[str, dict]:
    """State dicts whose keys or values are wrong, one fault each."""
    return {"int keys": {1: torch.zeros(1), 2: torch.zeros(1)}, "tuple key": {("a", 1): torch.zeros(1)},
            "list value": {"stem.conv.weight": [1.0, 2.0]}, "dict value": {"stem.conv.weight": {"x": 1}},
            "complex tensor": {"stem.conv.weight": torch.zeros(2, dtype=torch.complex64)},
            "bool tensor": {"stem.conv.weight": torch.zeros(2, dtype=torch.bool)},
            "nan tensor": {"stem.conv.weight": torch.full((2,), math.nan)},
            "inf tensor": {"stem.conv.weight": torch.full((2,), math.inf)},
            "wrong shape": {"stem.conv.weight": torch.zeros(3)}}


def structures(real: dict[str, torch.Tensor]) -> dict[str, object]:
    """Every odd structure: bare, as a checkpoint of ours' 'model' entry, and a real state dict with one entry bad."""
    ours = {"format": "robosat_effnet", "spec": ModelSpec(tile_size=64).to_dict()}
    cases: dict[str, object] = {f"bare {k}": v for k, v in (NOT_TENSORS | bad_tensors()).items()
                                if k not in ("nested dict",)}
    cases |= {f"ours model={k}": ours | {"model": v} for k, v in (NOT_TENSORS | bad_tensors()).items()}
    cases["ours without model"] = dict(ours)
    first = next(iter(real))
    cases |= {"ours one nan weight": ours | {"model": real | {first: torch.full_like(real[first], math.nan)}},
              "ours one weight reshaped": ours | {"model": real | {first: real[first].reshape(-1)}},
              "ours int key added": ours | {"model": real | {5: torch.zeros(1)}},
              "ours damaged spec": ours | {"model": real, "spec": {"mean": ["x"], "std": 3}},
              "ours spec std 1e-300": ours | {"model": real, "spec": ModelSpec(tile_size=64, std=[1e-300] * 3)
                                              .to_dict()}}
    return cases


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("odd")
    torch.manual_seed(0)
    real = build_model("efficientnet-b0", num_classes=2).state_dict()
    paths = {}
    for i, (name, value) in enumerate(structures(real).items()):
        paths[name] = folder / f"odd-{i}.pth"
        torch.save(value, paths[name])
    return paths


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data"), n_train=1, n_val=1)


COMMANDS = {
    "train --weights": lambda d, pth, out: ["train", "--dataset", d.dataset_toml, "--model", d.model_toml,
                                            "--weights", pth, "--device", "cpu", "-q", "--checkpoint-dir", out],
    "train --resume": lambda d, pth, out: ["train", "--dataset", d.dataset_toml, "--model", d.model_toml,
                                           "--resume", pth, "--device", "cpu", "-q", "--checkpoint-dir", out],
    "study --weights": lambda d, pth, out: ["study", "--dataset", d.dataset_toml, "--model", d.model_toml,
                                            "--backbones", "b0", "--weights", pth, "--out", out, "--device", "cpu",
                                            "-q"],
    "predict --checkpoint": lambda d, pth, out: ["predict", d.root / "validation" / "images", out, "--checkpoint",
                                                 pth, "--quiet"],
    "eval --checkpoint": lambda d, pth, out: ["eval", "--checkpoint", pth, d.root / "validation" / "images",
                                              d.root / "validation" / "labels", "-q"],
    "export": lambda d, pth, out: ["export", pth, out.with_suffix(".onnx")],
    "bench --checkpoint": lambda d, pth, out: ["bench", "--checkpoint", pth, "--sections", "model", "--models",
                                               "b0:unet", "--device", "cpu"],
}


def assert_one_line(result, path):
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if not line.startswith("warning:")]
    assert len(errors) == 1 and errors[0].startswith("Error: ") and str(path) in errors[0], result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit), result.exception


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_odd_structure_is_one_line_on_every_path(files, data, tmp_path, command):
    for name, path in files.items():
        out = tmp_path / name.replace(" ", "_")
        result = CliRunner().invoke(main, [str(a) for a in COMMANDS[command](data, path, out)])
        assert_one_line(result, path)
        assert not out.with_suffix(".onnx").exists() and not (out / "last.pth").exists(), name


def test_the_named_instances(files, data, tmp_path):
    """The issue's three files as train --weights: were AttributeError / KeyError tracebacks."""
    for name, words in [("ours model=list", "'model' entry is a list"), ("ours without model", "is missing"),
                        ("bare int keys", "entry named 1 (an int)")]:
        result = CliRunner().invoke(main, [str(a) for a in COMMANDS["train --weights"](data, files[name],
                                                                                          tmp_path / "c")])
        assert_one_line(result, files[name])
        assert words in result.output, result.output


@pytest.mark.parametrize("name", ["ours one nan weight", "bare nan tensor", "bare inf tensor"])
def test_non_finite_weights_are_refused_naming_the_file_and_the_entry(files, name):
    with pytest.raises(WeightsError, match=r"nan or infinite values in \S+"):
        build_model("b0", weights=files[name])  # fine-tuning from a checkpoint of ours, or a plain state dict


def test_a_non_finite_checkpoint_is_refused_by_predict_too(files):
    with pytest.raises(WeightsError, match="damaged robosat_effnet checkpoint: .*nan or infinite"):
        load_checkpoint(files["ours one nan weight"])


ENTRIES = ("epoch", "best_epoch", "best_miou", "history", "optimizer", "scheduler", "scaler", "rng")
DAMAGES = {"missing": None, "list": [1, 2], "str": "x", "nan": math.nan}  # what each entry is turned into


def training_states(good: dict) -> dict[str, dict]:
    """A real last.pth's training state with one entry wrong: each entry missing, of another kind, or of the
    wrong shape. Named "ENTRY DAMAGE" for each of ENTRIES and DAMAGES, then the four shapes loading finds."""
    cases = {}
    for key in ENTRIES:
        for kind, value in DAMAGES.items():
            state = dict(good)
            if kind == "missing":
                del state[key]
            else:
                state[key] = value
            cases[f"{key} {kind}"] = state
    moments = {k: dict(v) for k, v in good["optimizer"]["state"].items()}
    first = next(iter(moments))
    moments[first]["exp_avg"] = torch.zeros(7, 7)
    cases["optimizer moment of another shape"] = good | {"optimizer": good["optimizer"] | {"state": moments}}
    cases["optimizer of another model"] = good | {"optimizer": good["optimizer"] | {"param_groups": []}}
    cases["rng numpy missing"] = good | {"rng": {k: v for k, v in good["rng"].items() if k != "numpy"}}
    cases["scheduler of a str"] = good | {"scheduler": {"last_epoch": "x", "base_lrs": 3}}
    return cases


def test_every_damaged_training_state_is_one_line_on_resume(tmp_path):
    """Every damaged entry is refused by the check resume runs first; through the command, one case per entry
    (its kind of damage rotating) and the damage only loading into the run's optimizer and schedule can find."""
    data = make_dataset(tmp_path, n_train=2, n_val=1, model={"epochs": 2, "batch_size": 2})
    args = ["train", "--dataset", str(data.dataset_toml), "--model", str(data.model_toml), "--device", "cpu", "-q"]
    first = CliRunner().invoke(main, [*args, "--epochs", "1", "--checkpoint-dir", str(tmp_path / "first")])
    assert first.exit_code == 0, first.output
    good = torch.load(tmp_path / "first" / "last.pth", weights_only=True)
    cases = training_states(good)
    for key in ENTRIES:
        for kind in DAMAGES:
            if key in ("epoch", "optimizer") and kind == "missing":
                pattern = "holds weights only"
            else:
                pattern = f"damaged robosat_effnet checkpoint: its {key} is"
            with pytest.raises(CheckpointError, match=pattern):
                check_training_state(cases[f"{key} {kind}"], "x.pth")
    kinds = list(DAMAGES)
    rotated = {f"{key} {kinds[i % len(kinds)]}" for i, key in enumerate(ENTRIES)}
    per_entry = {f"{key} {kind}" for key in ENTRIES for kind in kinds}
    through_cli = {name: state for name, state in cases.items() if name in rotated or name not in per_entry}
    assert len(through_cli) == 12
    for name, state in through_cli.items():
        path = tmp_path / f"{name.replace(' ', '_')}.pth"
        torch.save(state, path)
        out = tmp_path / f"run-{path.stem}"
        result = CliRunner().invoke(main, [*args, "--resume", str(path), "--checkpoint-dir", str(out)])
        assert_one_line(result, path)
        assert not (out / "last.pth").exists(), name
    path = tmp_path / "good.pth"
    torch.save(good, path)  # the same file undamaged resumes
    result = CliRunner().invoke(main, [*args, "--resume", str(path), "--checkpoint-dir", str(tmp_path / "first")])
    assert result.exit_code == 0 and load_checkpoint(tmp_path / "first" / "last.pth")["epoch"] == 2, result.output


@pytest.fixture(scope="module")
def torchvision_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tv")
    torch.manual_seed(0)
    paths = {"efficientnet-b0": folder / "b0.pth", "resnet50": folder / "r50.pth"}
    torch.save(torchvision.models.efficientnet_b0().state_dict(), paths["efficientnet-b0"])
    torch.save(torchvision.models.resnet50().state_dict(), paths["resnet50"])
    save_checkpoint(folder / "ours-b0.pth", build_model("b0"), ModelSpec(tile_size=64))
    paths["ours efficientnet-b0"] = folder / "ours-b0.pth"
    return paths


@pytest.mark.parametrize("made_for, given", [("efficientnet-b0", "resnet50"), ("efficientnet-b0", "b2"),
                                             ("resnet50", "b0"), ("ours efficientnet-b0", "resnet50"),
                                             ("ours efficientnet-b0", "b1")])
def test_weights_of_another_architecture_say_which_and_what_to_pass(torchvision_files, made_for, given):
    with pytest.raises(WeightsError) as error:
        build_model(given, weights=torchvision_files[made_for])
    message = str(error.value)
    backbone = made_for.removeprefix("ours ")
    assert f"weights of {backbone}" in message and f"pass --backbone {backbone}" in message, message
    assert "no torchvision name" not in message and "\n" not in message


FOLDER_OPTIONS = {  # every way a weights file or checkpoint is named, given a folder instead
    "train --weights": (COMMANDS["train --weights"], 1, "is a folder, not a file"),
    "study --weights": (COMMANDS["study --weights"], 1, "is a folder, not a file"),
    "train --resume": (COMMANDS["train --resume"], 2, "is a directory"),
    "predict --checkpoint": (COMMANDS["predict --checkpoint"], 2, "is a directory"),
    "eval --checkpoint": (COMMANDS["eval --checkpoint"], 2, "is a directory"),
    "export": (COMMANDS["export"], 2, "is a directory"),
}


@pytest.mark.parametrize("option", list(FOLDER_OPTIONS))
def test_a_folder_given_for_a_weights_file_says_so(data, tmp_path, option):
    command, code, words = FOLDER_OPTIONS[option]
    folder = tmp_path / "weights.pth"
    folder.mkdir()
    result = CliRunner().invoke(main, [str(a) for a in command(data, folder, tmp_path / "out")])
    assert result.exit_code == code and words in result.output, result.output
    assert "does not exist" not in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("reader", ["build_model", "load_checkpoint", "model.toml weights", "dataset.toml",
                                    "model.toml"])
def test_the_library_says_folder_too(tmp_path, reader):
    from robosat_effnet.config import load_dataset_config, load_model_config
    from robosat_effnet.errors import RobosatEffnetError

    folder = tmp_path / "weights.pth"
    folder.mkdir()
    if reader.endswith(".toml"):
        with pytest.raises(RobosatEffnetError, match=f"{folder} is a folder, not a file"):
            (load_dataset_config if reader == "dataset.toml" else load_model_config)(folder)
        return
    with pytest.raises(WeightsError, match=f"{folder} is a folder, not a file"):
        if reader == "build_model":
            build_model("b0", weights=folder)
        elif reader == "load_checkpoint":
            load_checkpoint(folder)
        else:
            (tmp_path / "model.toml").write_text("[common]\nweights = 'weights.pth'\n")
            build_model("b0", weights=load_model_config(tmp_path / "model.toml").weights)


def test_out_of_memory_in_train_names_the_model_settings(data, tmp_path, monkeypatch):
    import robosat_effnet.training.loop as loop

    def huge(*args, **kwargs):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: you "
                           "tried to allocate 400000000000 bytes.")

    monkeypatch.setattr(loop, "train", huge)
    result = CliRunner().invoke(main, ["train", "--dataset", str(data.dataset_toml), "--model",
                                       str(data.model_toml), "--checkpoint-dir", str(tmp_path / "c")])
    assert result.exit_code == 1 and result.output.startswith("Error: out of memory ("), result.output
    assert "decoder_channels" in result.output and "image_size" in result.output


@pytest.mark.parametrize("config", [{"dataset": 5}, {"dataset": "d", "images": 3}, {"dataset": "d", "images": [7]},
                                    {"dataset": ["d"]}, [1], "x", None])
def test_a_damaged_record_of_the_training_tiles_is_one_error(config):
    """export --deepness reads the checkpoint's dataset_config to find the imagery's resolution."""
    from robosat_effnet.deploy.deepness import training_resolution
    from robosat_effnet.errors import ConfigError

    with pytest.raises(ConfigError, match="pass --resolution CM"):
        training_resolution(ModelSpec(), {"dataset_config": config})


@pytest.mark.parametrize("epoch", ["x", 2.5, None, [1], -1])
def test_the_demo_reads_a_damaged_epoch_as_one_error(random_checkpoint, tmp_path, epoch):
    from robosat_effnet.demo.data import epochs_done
    from robosat_effnet.errors import CheckpointError

    state = torch.load(random_checkpoint, weights_only=True)
    state |= {"epoch": epoch, "optimizer": {"state": {}, "param_groups": []}, "scheduler": {}, "scaler": {},
              "rng": {}, "history": [], "best_miou": 0.5, "best_epoch": 1}
    path = tmp_path / "last.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=f"{path} is a damaged robosat_effnet checkpoint: its epoch"):
        epochs_done(path)
    torch.save(state | {"epoch": 3}, path)
    assert epochs_done(path) == 3
