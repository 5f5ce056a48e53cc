"""The gap term (`[opt] gap_weight`, `gap_px`): which pixels it takes, what it adds, and that training uses it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import make_dataset
from robosat_effnet.config import load_dataset_config, load_model_config
from robosat_effnet.errors import ConfigError
from robosat_effnet.training.distributed import DistInfo
from robosat_effnet.training.loop import _Run
from robosat_effnet.training.losses import GapLoss, LovaszHingeLoss, build_loss, gap_pixels

pytestmark = pytest.mark.usefixtures("one_thread")


def two_squares(gap: int, size: int = 32) -> torch.Tensor:
    """One 1 x size x size target: two 10 px squares side by side, `gap` px of background between them."""
    t = torch.zeros(1, size, size, dtype=torch.long)
    t[0, 5:15, 5:15] = 1
    t[0, 5:15, 15 + gap:25 + gap] = 1
    return t


def test_gap_pixels_are_the_ground_between_two_objects_within_the_radius():
    g = gap_pixels(two_squares(gap=4), radius=3)[0]
    # Columns 15-18 are the gap; only 16 and 17 have both squares within 3 px. Rows: the squares' 5-14, and the
    # window reaches 3 rows above and below them.
    expected = np.zeros((32, 32), dtype=bool)
    expected[2:18, 16:18] = True
    np.testing.assert_array_equal(g.numpy(), expected)
    assert gap_pixels(two_squares(gap=4), radius=1).sum() == 0  # 4 px apart: no pixel has both within 1 px


@pytest.mark.parametrize("case", ["one object", "touching walls", "empty", "far apart"])
def test_no_gap_without_two_close_objects(case):
    t = torch.zeros(1, 32, 32, dtype=torch.long)
    if case == "one object":
        t[0, 5:15, 5:15] = 1
    elif case == "touching walls":  # one 4-connected object: the wall between them is no background
        t = two_squares(gap=0)
    elif case == "far apart":
        t = two_squares(gap=12, size=48)
    assert gap_pixels(t, radius=4).sum() == 0


def test_objects_of_any_class_count():
    t = two_squares(gap=2)
    t[t > 0] = 0
    t[0, 5:15, 5:15], t[0, 5:15, 17:27] = 1, 2  # a building and an object of a third class
    assert gap_pixels(t, radius=2).sum() > 0


def test_gap_loss_adds_the_mean_cross_entropy_of_the_gap_pixels():
    targets = two_squares(gap=4)
    logits = torch.randn(1, 2, 32, 32, generator=torch.Generator().manual_seed(0), requires_grad=True)
    loss = GapLoss(LovaszHingeLoss(), weight=2.5, radius=3)
    gaps = gap_pixels(targets, 3)
    pixels = F.cross_entropy(logits, targets, reduction="none")
    expected = LovaszHingeLoss()(logits, targets) + 2.5 * pixels[gaps].mean()
    torch.testing.assert_close(loss(logits, targets), expected)
    # Its gradient lowers the building logit on the gap pixels only (beyond what the base loss does).
    extra = torch.autograd.grad(loss(logits, targets) - LovaszHingeLoss()(logits, targets), logits)[0]
    assert (extra[0, 1][gaps[0]] > 0).all() and (extra[0, 1][~gaps[0]] == 0).all()


def test_gap_loss_is_the_base_loss_where_there_is_no_gap():
    targets = torch.zeros(1, 16, 16, dtype=torch.long)
    logits = torch.randn(1, 2, 16, 16, requires_grad=True)
    torch.testing.assert_close(GapLoss(LovaszHingeLoss(), 1.0, 4)(logits, targets), LovaszHingeLoss()(logits, targets))


def test_build_loss_wraps_only_when_asked():
    assert type(build_loss("Lovasz")) is LovaszHingeLoss
    loss = build_loss("Lovasz", gap_weight=0.5, gap_px=6)
    assert isinstance(loss, GapLoss) and (loss.weight, loss.radius) == (0.5, 6)
    assert isinstance(loss.base, LovaszHingeLoss)


def test_training_uses_the_configured_gap_term(tmp_path):
    data = make_dataset(tmp_path, n_train=2, n_val=1, size=32,
                        model={"epochs": 1, "batch_size": 2, "loss": "Lovasz", "gap_weight": 2.0, "gap_px": 5})
    run = _Run(load_dataset_config(data.dataset_toml), load_model_config(data.model_toml), torch.device("cpu"),
               DistInfo(), progress=False)
    assert isinstance(run.criterion, GapLoss) and (run.criterion.weight, run.criterion.radius) == (2.0, 5)


@pytest.mark.parametrize("key, value", [("gap_weight", -1.0), ("gap_px", 0)])
def test_bad_gap_settings_name_the_key(tmp_path, key, value):
    data = make_dataset(tmp_path, n_train=1, n_val=1, size=32, model={"epochs": 1, key: value})
    with pytest.raises(ConfigError, match=key):
        load_model_config(data.model_toml)


def test_without_scipy_train_says_what_to_install_before_writing_anything(tmp_path, monkeypatch):
    import sys

    from click.testing import CliRunner

    from robosat_effnet.cli import main
    from robosat_effnet.errors import MissingDependencyError

    data = make_dataset(tmp_path, n_train=2, n_val=1, size=32, model={"epochs": 1, "gap_weight": 1.0})
    monkeypatch.setitem(sys.modules, "scipy", None)  # `import scipy` now fails, as where it is not installed
    with pytest.raises(MissingDependencyError, match=r"robosat_effnet\[footprints\]"):
        build_loss("Lovasz", gap_weight=1.0)
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "--dataset", str(data.dataset_toml), "--model", str(data.model_toml),
                                       "--checkpoint-dir", str(out), "--device", "cpu"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1, result.output
    assert "gap_weight" in result.output and "robosat_effnet[footprints]" in result.output
    assert not out.exists() or not any(out.iterdir())  # told before the run folder is written
