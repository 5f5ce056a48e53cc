"""A study checks every run's settings before the first run trains, and two different settings never share a run
folder: weights files of one name in two folders, `imagenet` beside a file called imagenet.safetensors, one file
as .pth and .safetensors. The collisions are generated; the guarantee is checked on every generated set.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
import torchvision
from click.testing import CliRunner

from conftest import make_dataset
from robosat_effnet.cli import main
from robosat_effnet.errors import ConfigError
from robosat_effnet.study import runs
from robosat_effnet.study.recipe import plan, weights_file

pytestmark = pytest.mark.usefixtures("one_thread")


def settings(values: list[str | None]) -> set[str | None]:
    """The distinct settings a list of weights means: files by resolved path, names as they are."""
    return {weights_file(v) or (None if v in (None, "none") else v) for v in values}


def random_weights(rng: random.Random, root: Path) -> list[str | None]:
    folders = ["x1", "x2", "a/b", "./x1", "x1/../x2"]
    stems = ["w", "imagenet", "none", "w-s0", "s0"]
    picks = []
    for _ in range(rng.randint(1, 5)):
        choice = rng.random()
        if choice < 0.15:
            picks.append(rng.choice(["imagenet", None]))
        else:
            picks.append(str(root / rng.choice(folders) / (rng.choice(stems) + rng.choice([".pth", ".safetensors"]))))
    return picks


@pytest.mark.parametrize("seed", range(40))
def test_different_settings_never_share_a_run_folder(tmp_path, seed):
    rng = random.Random(seed)
    weights = random_weights(rng, tmp_path)
    keys = plan(["b0", "lite0"], [0, 1], weights)
    per_run = {(k.backbone, k.seed, k.weights) for k in keys}
    assert len(per_run) == len(keys) == 2 * 2 * len(settings(weights))  # one run per distinct setting
    assert len({k.name for k in keys}) == len(keys), [k.name for k in keys]
    assert len({(k.model, k.seed) for k in keys}) == len(keys)  # the table's rows differ too


@pytest.mark.parametrize("weights, labels", [
    (["x1/w.pth", "x2/w.pth"], ["w-", "w-"]),
    (["imagenet", "x3/imagenet.safetensors"], ["imagenet", "imagenet-"]),
    (["x/w.pth", "x/w.safetensors"], ["w-", "w-"]),
    (["x/w.pth", "x/../x/w.pth"], ["w"]),  # the same file twice: one run
    (["x1/w.pth", "none", "x2/v.pth"], ["w", None, "v"]),  # no clash: the plain names of before
])
def test_the_named_collisions(tmp_path, monkeypatch, weights, labels):
    monkeypatch.chdir(tmp_path)
    keys = plan(["b0"], [0], [None if w == "none" else w for w in weights])
    assert len(keys) == len(labels)
    for key, label in zip(keys, labels, strict=True):
        if label is None:
            assert key.name == "efficientnet-b0-s0"
        elif label.endswith("-"):
            assert key.name.startswith(f"efficientnet-b0-{label}") and len(key.name) == len(
                f"efficientnet-b0-{label}-s0") + 8  # a hash of 8 hex digits
        else:
            assert key.name == f"efficientnet-b0-{label}-s0"


def test_a_symbolic_link_to_the_same_file_is_the_same_run(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "w.pth").write_bytes(b"")
    (tmp_path / "y").mkdir()
    (tmp_path / "y" / "w.pth").symlink_to(tmp_path / "x" / "w.pth")
    keys = plan(["b0"], [0], [str(tmp_path / "x" / "w.pth"), str(tmp_path / "y" / "w.pth")])
    assert [k.name for k in keys] == ["efficientnet-b0-w-s0"]


def test_a_rerun_with_another_file_of_the_same_name_is_refused(tmp_path):
    folder = tmp_path / "study" / "efficientnet-b0-w-s0"
    folder.mkdir(parents=True)
    first, second = tmp_path / "x1" / "w.pth", tmp_path / "x2" / "w.pth"
    runs.write_json(folder / runs.RUN_FILE, {"backbone": "efficientnet-b0", "weights": "w",
                                             "weights_file": str(first)})
    key = plan(["b0"], [0], [str(second)])[0]
    assert key.name == folder.name
    with pytest.raises(ConfigError, match=f"started from the weights {first}, not {second}"):
        runs.train_run(None, None, key, folder)
    same = plan(["b0"], [0], [str(first)])[0]
    record, ran = runs.train_run(None, None, same, folder)  # its own file: finished, skipped
    assert not ran and record["weights_file"] == str(first)


@pytest.mark.parametrize("before, now", [("imagenet", "x/imagenet.pth"), ("x/imagenet.pth", "imagenet"),
                                         ("x1/w.pth", "x2/w.pth")])
def test_a_rerun_with_another_setting_of_the_same_name_is_refused(tmp_path, monkeypatch, before, now):
    monkeypatch.chdir(tmp_path)
    earlier, key = plan(["b0"], [0], [before])[0], plan(["b0"], [0], [now])[0]
    assert earlier.name == key.name  # each study alone names its run the same
    folder = tmp_path / "study" / key.name
    folder.mkdir(parents=True)
    runs.write_json(folder / runs.RUN_FILE, runs._record(earlier, type("C", (), {"epochs": 1})(), 1, 0.5, [], "cpu"))
    with pytest.raises(ConfigError, match="holds a run that started from the weights"):
        runs.train_run(None, None, key, folder)
    assert runs.train_run(None, None, earlier, folder)[1] is False  # its own setting: finished, skipped
    runs.write_json(folder / runs.RUN_FILE, {"weights": "w"})  # a record from before weights_file: trusted
    assert runs.train_run(None, None, key, folder)[1] is False


@pytest.fixture(scope="module")
def bad_weights(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad")
    (folder / "junk.pth").write_bytes(b"not a file of tensors")
    torch.save([1, 2, 3], folder / "list.pth")
    torch.save({"format": "robosat_effnet", "model": [1, 2, 3]}, folder / "ours-list.pth")
    torch.save(torchvision.models.resnet50().state_dict(), folder / "resnet50.pth")
    (folder / "a-folder.pth").mkdir()
    return {"missing": folder / "missing.pth", "folder": folder / "a-folder.pth", "junk": folder / "junk.pth",
            "list": folder / "list.pth", "ours with a list": folder / "ours-list.pth",
            "another architecture": folder / "resnet50.pth"}


@pytest.mark.parametrize("position", ["first", "last"])
@pytest.mark.parametrize("kind", ["missing", "folder", "junk", "list", "ours with a list", "another architecture"])
def test_every_runs_weights_are_checked_before_the_first_run_trains(tmp_path, monkeypatch, bad_weights, kind,
                                                                     position):
    data = make_dataset(tmp_path, n_train=1, n_val=1)
    trained = []
    monkeypatch.setattr(runs, "train", lambda *a, **k: trained.append(a) or pytest.fail("a run trained"))
    bad = str(bad_weights[kind])
    weights = f"none,{bad}" if position == "last" else f"{bad},none"
    result = CliRunner().invoke(main, ["study", "--dataset", str(data.dataset_toml), "--model",
                                       str(data.model_toml), "--backbones", "b0", "--weights", weights,
                                       "--out", str(tmp_path / "out"), "--device", "cpu", "-q"])
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    assert result.output.startswith("Error: ") and bad in result.output, result.output
    assert trained == [] and not (tmp_path / "out").exists()


@pytest.mark.parametrize("num_classes", [2, 3, 4])
def test_an_eval_json_from_before_the_threshold_counts_as_the_argmax(tmp_path, monkeypatch, num_classes):
    """An eval.json without "mask_threshold" was scored with the plain argmax: reused at threshold 0 only, scored
    afresh at any other (0.5 is not the argmax with three classes or more)."""
    from robosat_effnet.config import load_dataset_config

    config = load_dataset_config(make_dataset(tmp_path, n_train=1, n_val=1, num_classes=num_classes).dataset_toml)
    folder = tmp_path / "run"
    folder.mkdir()
    old = {"buildings": {}, "building_min_area": 0.0, "checkpoint": "last", "miou": 0.25}
    scored = []

    def evaluate(*args, threshold, **kwargs):
        scored.append(threshold)
        return {"miou": 0.5, "mask_threshold": threshold}

    monkeypatch.setattr(runs, "evaluate", evaluate)
    for threshold in (0, 0.5, 0.7):
        runs.write_json(folder / runs.EVAL_FILE, old)
        result = runs.evaluate_run(config, folder, progress=False, threshold=threshold)
        assert result["miou"] == (0.25 if threshold == 0 else 0.5)
    assert scored == [0.5, 0.7]
