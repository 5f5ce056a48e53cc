"""Test-time augmentation against a hand-computed average of the 8 flips/rotations of an asymmetric model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robosat_effnet.predict import Predictor

pytestmark = pytest.mark.usefixtures("one_thread")


def asymmetric_model() -> nn.Module:
    """A 3x3 convolution whose kernel has no symmetry at all: flipping or turning its input changes its output."""
    conv = nn.Conv2d(3, 2, 3, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.arange(2 * 3 * 9, dtype=torch.float32).view(2, 3, 3, 3).sin() * 2)
    return conv


def hand_tta(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Written out, without the package's dihedral helpers: each of the 4 turns, with and without a left-right
    mirror, applied to the input; the softmax output turned back; the 8 results averaged."""
    outputs = []
    with torch.no_grad():
        for turns in range(4):
            for mirror in (False, True):
                t = torch.rot90(x, turns, dims=(2, 3))
                if mirror:
                    t = torch.flip(t, dims=(3,))
                p = torch.softmax(model(t), dim=1)
                if mirror:
                    p = torch.flip(p, dims=(3,))
                outputs.append(torch.rot90(p, -turns, dims=(2, 3)))
    return torch.stack(outputs).mean(dim=0)


@pytest.mark.parametrize("shape", [(2, 3, 64, 64), (1, 3, 32, 64)])
def test_tta_is_the_average_of_the_eight_symmetries(shape):
    torch.manual_seed(0)
    model = asymmetric_model()
    x = torch.randn(*shape)
    expected = hand_tta(model, x)
    tta = Predictor(model, device="cpu", tta=True)(x)
    plain = Predictor(model, device="cpu")(x)
    torch.testing.assert_close(tta, expected, atol=1e-6, rtol=1e-5)
    # Not vacuous: for this model the average is far from the plain output.
    assert (tta - plain).abs().max() > 0.1
    torch.testing.assert_close(plain, torch.softmax(model(x), dim=1).detach(), atol=1e-6, rtol=1e-5)
