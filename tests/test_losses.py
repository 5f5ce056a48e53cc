"""Losses by robosat's names, checked against direct computations from their definitions."""

import itertools
import math

import numpy as np
import pytest
import torch

from robosat_effnet.config.model import LOSS_NAMES, canonical_loss
from robosat_effnet.errors import UnknownNameError
from robosat_effnet.training.losses import LOSSES, build_loss


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 4, 5, generator=g, requires_grad=True)
    targets = torch.randint(0, 3, (2, 4, 5), generator=g)
    return logits, targets


def numpy_log_softmax(logits):
    x = logits.detach().numpy().astype(np.float64)
    x = x - x.max(axis=1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=1, keepdims=True))


def test_weighted_cross_entropy_is_the_weighted_mean_nll(batch):
    logits, targets = batch
    weights = [0.5, 2.0, 1.0]
    log_p = numpy_log_softmax(logits)
    t = targets.numpy()
    picked = np.take_along_axis(log_p, t[:, None], axis=1)[:, 0]
    w = np.array(weights)[t]
    expected = -(w * picked).sum() / w.sum()
    assert build_loss("CrossEntropy", weights)(logits, targets).item() == pytest.approx(expected, rel=1e-5)


def test_focal_by_hand(batch):
    logits, targets = batch
    assert build_loss("Focal", gamma=0.0)(logits, targets).item() == pytest.approx(
        build_loss("CrossEntropy")(logits, targets).item(), rel=1e-6)
    log_p = numpy_log_softmax(logits)
    p = np.exp(log_p)
    picked = np.take_along_axis((1 - p) ** 2 * log_p, targets.numpy()[:, None], axis=1)
    assert build_loss("Focal")(logits, targets).item() == pytest.approx(-picked.mean(), rel=1e-5)


def test_miou_loss_is_the_larger_of_soft_iou_loss_and_cross_entropy(batch):
    logits, targets = batch
    p = np.exp(numpy_log_softmax(logits))
    onehot = np.eye(3)[targets.numpy()].transpose(0, 3, 1, 2)
    inter = (p * onehot).sum(axis=(2, 3))
    union = (p + onehot - p * onehot).sum(axis=(2, 3))
    soft = 1 - (inter / union).mean()
    ce = build_loss("CrossEntropy")(logits, targets).item()
    assert build_loss("mIoU")(logits, targets).item() == pytest.approx(max(soft, ce), rel=1e-5)


def jaccard_loss(positive_set, truth_set):
    """1 - |truth & ~errors| / |truth | errors|: the Jaccard loss of the mispredicted set (Berman et al.)."""
    union = truth_set | positive_set
    return 1 - len(truth_set - positive_set) / len(union) if union else 0.0


def lovasz_by_definition(logits, targets):
    """The Lovasz extension evaluated the slow way: sort errors, add the set function's increments."""
    n, c = logits.shape[:2]
    total = 0.0
    for image in range(n):
        truth = np.eye(c)[targets[image].numpy()].transpose(2, 0, 1).ravel()
        scores = logits[image].detach().numpy().ravel()
        errors = 1 - scores * (2 * truth - 1)
        order = np.argsort(-errors, kind="stable")
        truth_set = {i for i in range(len(truth)) if truth[i] == 1}
        loss, previous = 0.0, 0.0
        for k in range(1, len(order) + 1):
            value = jaccard_loss(set(order[:k].tolist()), truth_set)
            loss += max(errors[order[k - 1]], 0) * (value - previous)
            previous = value
        total += loss
    return total / n


def test_lovasz_matches_the_definition(batch):
    logits, targets = batch
    assert build_loss("Lovasz")(logits, targets).item() == pytest.approx(lovasz_by_definition(logits, targets),
                                                                        rel=1e-5)


def test_lovasz_is_zero_for_confident_right_answers():
    targets = torch.tensor([[[0, 1], [1, 0]]])
    logits = (torch.nn.functional.one_hot(targets, 2).permute(0, 3, 1, 2) * 2 - 1).float() * 3
    assert build_loss("Lovasz")(logits, targets).item() == 0.0


def test_dice():
    targets = torch.tensor([[[0, 1], [1, 1]]])
    perfect = torch.nn.functional.one_hot(targets, 2).permute(0, 3, 1, 2).float() * 50
    assert build_loss("Dice")(perfect, targets).item() == pytest.approx(0.0, abs=1e-6)
    uniform = torch.zeros(1, 2, 2, 2)  # p = 0.5 everywhere: dice_c = (2 * 0.5 n_c + 1) / (2 + n_c + 1)
    expected = 1 - np.mean([(1 + 1) / (2 + 1 + 1), (3 + 1) / (2 + 3 + 1)])
    assert build_loss("Dice")(uniform, targets).item() == pytest.approx(expected)


@pytest.mark.parametrize("name", list(LOSSES))
def test_every_loss_gives_gradients(batch, name):
    logits, targets = batch
    loss = build_loss(name, [1.0, 2.0, 3.0])(logits, targets)
    loss.backward()
    assert loss.ndim == 0 and math.isfinite(loss.item()) and logits.grad.abs().sum() > 0


def test_names_are_robosats_and_case_insensitive():
    assert list(LOSSES)[:4] == ["CrossEntropy", "mIoU", "Focal", "Lovasz"]
    assert canonical_loss("lovasz") == "Lovasz" and canonical_loss("MIOU") == "mIoU"
    with pytest.raises(UnknownNameError) as error:
        build_loss("Hinge")
    assert all(name in str(error.value) for name in itertools.chain(LOSSES, ["Hinge"]))


def test_config_names_exactly_the_losses_training_builds():
    # model.toml's loss is checked by config (no torch) against LOSS_NAMES; training builds LOSSES
    assert tuple(LOSSES) == LOSS_NAMES
