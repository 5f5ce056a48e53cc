"""The trainer uses what the configs say: the loss, the class weights, augmentation, best.pth on mIoU, exact RNG
on resume. Each test fails when its setting is ignored or wired wrong."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import make_dataset
from robosat_effnet.config import load_dataset_config, load_model_config
from robosat_effnet.errors import ConfigError
from robosat_effnet.training.datasets import SegmentationTiles, find_samples
from robosat_effnet.training.distributed import DistInfo
from robosat_effnet.training.engine import Engine
from robosat_effnet.training.loop import _Run, train
from robosat_effnet.training.losses import CrossEntropyLoss, DiceLoss, FocalLoss

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = {"epochs": 1, "batch_size": 2, "augment": False}


def make_run(data) -> _Run:
    return _Run(load_dataset_config(data.dataset_toml), load_model_config(data.model_toml), torch.device("cpu"),
                DistInfo(), progress=False)


def test_the_configured_loss_is_the_one_used(tmp_path):
    weights = {}
    for loss, kind in (("Dice", DiceLoss), ("CrossEntropy", CrossEntropyLoss), ("focal", FocalLoss)):
        data = make_dataset(tmp_path / loss, n_train=2, n_val=1, size=32, model={**TINY, "loss": loss})
        assert type(make_run(data).criterion) is kind, loss
        if kind is FocalLoss:
            continue
        result = train(data.dataset_toml, data.model_toml, device="cpu", progress=False)
        state = torch.load(result["last"], weights_only=True)
        assert state["model_config"]["loss"] == loss
        weights[loss] = state["model"]
    # Same data, seed and initial weights: only the loss differs, so one step must move the weights differently.
    differ = [k for k, v in weights["Dice"].items() if v.is_floating_point() and not torch.equal(v, weights[
        "CrossEntropy"][k])]
    assert len(differ) > 10


def test_class_weights_reach_the_criterion(tmp_path):
    data = make_dataset(tmp_path, n_train=2, n_val=1, size=32, num_classes=3, model=TINY)
    config = load_dataset_config(data.dataset_toml)
    assert config.weights and len(set(config.weights)) == 3  # conftest writes robosat's weights: all different
    criterion = make_run(data).criterion
    torch.testing.assert_close(criterion.weight, torch.tensor(config.weights))
    # The loss value is the weighted mean of the per-pixel negative log-likelihoods, by definition.
    logits, targets = torch.randn(2, 3, 4, 4), torch.randint(0, 3, (2, 4, 4))
    nll = -F.log_softmax(logits, dim=1).gather(1, targets[:, None])[:, 0]
    w = torch.tensor(config.weights)[targets]
    torch.testing.assert_close(criterion(logits, targets), (w * nll).sum() / w.sum())


def dihedral_by_hand(t: torch.Tensor, turns: int, mirror: bool) -> torch.Tensor:
    t = torch.rot90(t, turns, dims=(-2, -1))
    return torch.flip(t, dims=(-1,)) if mirror else t


def test_augmentation_is_one_dihedral_transform_of_image_and_label(tmp_path):
    data = make_dataset(tmp_path, n_train=2, n_val=1, size=32, model={"epochs": 1, "batch_size": 2})
    run = make_run(data)
    assert run.train_set.augment and not run.val_set.augment  # model.toml's augment = true (the default)
    config = load_dataset_config(data.dataset_toml)
    plain = SegmentationTiles.from_config(config, find_samples(config, "training"))
    augmented = SegmentationTiles.from_config(config, find_samples(config, "training"), augment=True)
    seen = set()
    for epoch in range(8):
        augmented.set_epoch(epoch)
        for index in range(len(plain)):
            (image, label), (aug_image, aug_label) = plain[index], augmented[index]
            matches = [(turns, mirror) for turns in range(4) for mirror in (False, True)
                       if torch.equal(dihedral_by_hand(image, turns, mirror), aug_image)
                       and torch.equal(dihedral_by_hand(label, turns, mirror), aug_label)]
            assert matches, (epoch, index)  # image and label moved together, by one of the 8 symmetries
            seen.add(matches[0])
    assert len(seen) >= 4  # and not always the identity


@pytest.fixture(scope="module")
def two_epochs(tmp_path_factory):
    """A 2-epoch run straight, and the same run stopped after 1 epoch and resumed; with the global torch and
    numpy RNG states seen at the start of each training epoch."""
    tmp = tmp_path_factory.mktemp("wiring")
    data = make_dataset(tmp, n_train=4, n_val=2, size=32, model={"epochs": 2, "batch_size": 2, "lr": 3e-2})
    seen: list[tuple[torch.Tensor, np.ndarray]] = []
    original = Engine.train_one_epoch

    def recording(self, *args, **kwargs):
        seen.append((torch.get_rng_state(), np.random.get_state()[1].copy()))
        return original(self, *args, **kwargs)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    Engine.train_one_epoch = recording
    try:
        straight = train(data.dataset_toml, data.model_toml, checkpoint_dir=tmp / "a", device="cpu", progress=False)
        train(data.dataset_toml, data.model_toml, checkpoint_dir=tmp / "b", device="cpu", progress=False,
              stop_after=1)
        np.random.seed(12345)  # whatever happens between the two runs must not matter
        torch.manual_seed(12345)
        train(data.dataset_toml, data.model_toml, checkpoint_dir=tmp / "b", device="cpu", progress=False,
              resume=tmp / "b" / "last.pth")
    finally:
        Engine.train_one_epoch = original
        torch.set_num_threads(threads)
    return {"straight": straight, "seen": seen}


def test_resume_restores_the_global_rng(two_epochs):
    seen = two_epochs["seen"]
    assert len(seen) == 4  # straight: epochs 1, 2; split: epoch 1, then epoch 2 after resuming
    (_, _), (torch_2, numpy_2), (_, _), (torch_resumed, numpy_resumed) = seen
    assert torch.equal(torch_2, torch_resumed)  # stochastic depth draws from it
    assert np.array_equal(numpy_2, numpy_resumed)


def test_best_is_the_epoch_of_highest_validation_miou(tmp_path, monkeypatch):
    """Validation results scripted per epoch so that the highest mIoU (epoch 2) is neither the lowest loss
    (epoch 3), nor the first, nor the last epoch."""
    scripted = iter([(0.5, [[50, 50], [50, 50]]), (0.9, [[90, 10], [10, 90]]), (0.3, [[70, 30], [30, 70]])])

    def evaluate(self, *args, **kwargs):
        loss, confusion = next(scripted)
        return loss, torch.tensor(confusion)

    monkeypatch.setattr(Engine, "evaluate", evaluate)
    data = make_dataset(tmp_path, n_train=2, n_val=1, size=32, model={"epochs": 3, "batch_size": 2})
    result = train(data.dataset_toml, data.model_toml, device="cpu", progress=False)
    miou_2 = 90 / (90 + 10 + 10)  # IoU of either class in epoch 2, by hand
    assert [row["val_loss"] for row in result["history"]] == [0.5, 0.9, 0.3]
    assert result["best_epoch"] == 2 and result["best_miou"] == pytest.approx(miou_2)
    best = torch.load(result["best"], weights_only=True)
    assert best["epoch"] == 2 and best["metrics"]["miou"] == pytest.approx(miou_2)
    assert torch.load(result["last"], weights_only=True)["best_epoch"] == 2


def test_validate_every_scores_only_those_epochs_and_the_last(tmp_path, monkeypatch):
    """Epochs 2, 4 and the last (5) are validated; the others leave NaN and cannot become best.pth."""
    scripted = iter([(0.5, [[50, 50], [50, 50]]), (0.4, [[90, 10], [10, 90]]), (0.3, [[70, 30], [30, 70]])])
    calls = []

    def evaluate(self, *args, **kwargs):
        calls.append(1)
        loss, confusion = next(scripted)
        return loss, torch.tensor(confusion)

    monkeypatch.setattr(Engine, "evaluate", evaluate)
    data = make_dataset(tmp_path, n_train=2, n_val=1, size=32, model={"epochs": 5, "batch_size": 2,
                                                                      "validate_every": 2})
    result = train(data.dataset_toml, data.model_toml, device="cpu", progress=False)
    losses = [row["val_loss"] for row in result["history"]]
    assert len(calls) == 3 and losses[1::2] == [0.5, 0.4] and losses[4] == 0.3
    assert all(np.isnan(losses[i]) and np.isnan(result["history"][i]["val_miou"]) for i in (0, 2))
    assert result["best_epoch"] == 4
    assert (tmp_path / "checkpoints" / "history.csv").read_text().count("nan") > 0


def test_precision_bf16_runs_the_forward_pass_in_bfloat16(tmp_path):
    data = make_dataset(tmp_path, n_train=2, n_val=1, size=32, model={**TINY, "precision": "bf16"})
    run = make_run(data)
    assert run.dtype is torch.bfloat16 and not run.amp  # no float16 gradient scaler on CPU
    seen = []
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 1))
    model[0].register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    loader = [(torch.randn(2, 3, 8, 8), torch.randint(0, 2, (2, 8, 8)))]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    for dtype, expected in ((torch.bfloat16, torch.bfloat16), (None, torch.float32)):
        engine = Engine(torch.device("cpu"), 2, dtype, progress=False)
        engine.train_one_epoch(model, loader, run.criterion, optimizer, scheduler, scaler)
        engine.evaluate(model, loader, run.criterion)
        assert seen[-2:] == [expected, expected]
    assert model[0].weight.dtype is torch.float32  # autocast: the weights stay float32
    result = train(data.dataset_toml, data.model_toml, device="cpu", progress=False)
    assert torch.load(result["last"], weights_only=True)["model_config"]["precision"] == "bf16"


def test_unknown_precision_names_the_valid_ones(tmp_path):
    data = make_dataset(tmp_path, n_train=2, n_val=1, size=32, model={**TINY, "precision": "fp16"})
    with pytest.raises(Exception, match="precision = 'fp16' must be one of fp32, bf16"):
        load_model_config(data.model_toml)


def test_hue_saturation_and_grayscale_reach_the_training_tiles_only(tmp_path):
    colour = {"hue": 60.0, "saturation": 0.4, "grayscale": 0.25}
    data = make_dataset(tmp_path, n_train=2, n_val=1, size=32, model={"epochs": 1, "batch_size": 2, **colour})
    run = make_run(data)
    assert run.train_set.colour == (60.0, 0.4, 0.25) and not any(run.val_set.colour)
    config = load_dataset_config(data.dataset_toml)
    plain = SegmentationTiles.from_config(config, find_samples(config, "training"), augment=True)
    shifted = SegmentationTiles.from_config(config, find_samples(config, "training"), augment=True,
                                            colour=(60.0, 0.4, 0.25))
    for index in range(len(plain)):
        (image, label), (colour_image, colour_label) = plain[index], shifted[index]
        assert torch.equal(label, colour_label)  # the same flip: colour draws from a generator of its own
        assert not torch.equal(image, colour_image)


def test_colour_of_a_dataset_that_is_not_rgb_is_refused(tmp_path):
    two_bands = {"bands": [1, 2], "in_channels": 2, "mean": [0.5, 0.5], "std": [0.2, 0.2]}
    data = make_dataset(tmp_path, n_train=2, n_val=1, size=32, dataset=two_bands,
                        model={"epochs": 1, "batch_size": 2, "hue": 30.0})
    with pytest.raises(ConfigError, match="2 bands: set them to 0"):
        make_run(data)
