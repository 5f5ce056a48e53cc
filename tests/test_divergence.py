"""A run that diverges stops with one line, and no checkpoint of the diverged epoch is written as last or best:
a nan or infinite training loss, validation loss or score, weight or BatchNorm statistic (huge learning rates,
`--lr 1e30` or `encoder_lr = 1e30`, made the validation loss nan while exit 0 and best.pth said all was well).
"""

from __future__ import annotations

import math

import pytest
import torch
from click.testing import CliRunner

from conftest import make_dataset
from robosat_effnet.cli import main
from robosat_effnet.errors import DivergedError
from robosat_effnet.models import build_model
from robosat_effnet.training.engine import check_finite

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("setting", [["--lr", "1e30"], {"encoder_lr": 1e30}, {"lr": 1e30, "epochs": 2}])
def test_a_huge_learning_rate_stops_the_run_before_any_checkpoint(tmp_path, setting):
    data = make_dataset(tmp_path, n_train=2, n_val=1, model={"batch_size": 2} | (
        setting if isinstance(setting, dict) else {}))
    result = CliRunner().invoke(main, ["train", "--dataset", str(data.dataset_toml), "--model", str(data.model_toml),
                                       "--device", "cpu", "-q", *(setting if isinstance(setting, list) else [])])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1, result.output
    assert "diverged in epoch 1" in result.output or "the loss became" in result.output, result.output
    assert "lower lr" in result.output and "Traceback" not in result.output
    assert not [p.name for p in (tmp_path / "checkpoints").glob("*.pth")]


def _entries(model: torch.nn.Module) -> list[str]:
    """Weights and BatchNorm statistics across the model: the first, every 50th and the last floating entry."""
    names = [n for n, v in model.state_dict().items() if v.is_floating_point()]
    return sorted(set(names[::50] + [names[-1]] + [n for n in names if n.endswith("running_var")][:1]))


MODEL = build_model("efficientnet-b0", num_classes=2)
ENTRIES = _entries(MODEL)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("entry", ENTRIES)
def test_any_non_finite_weight_or_statistic_stops_it(entry, value):
    model = build_model("efficientnet-b0", num_classes=2)
    check_finite(model, 3, 0.5, 0.4, {"miou": 0.5, "mcc": 0.1, "confusion": [[1, 0], [0, 1]]})  # healthy: passes
    with torch.no_grad():
        model.state_dict()[entry].view(-1)[0] = value
    with pytest.raises(DivergedError, match=rf"diverged in epoch 3: the weights {entry} are no longer finite"):
        check_finite(model, 3, 0.5, 0.4)
    wrapped = torch.nn.Module()
    wrapped.module = model  # as DistributedDataParallel holds it
    with pytest.raises(DivergedError, match=entry):
        check_finite(wrapped, 3, 0.5)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("what", ["training loss", "validation loss", "validation mIoU", "validation MCC"])
def test_any_non_finite_loss_or_score_stops_it(what, value):
    values = {"training loss": 0.5, "validation loss": 0.4}
    metrics = {"miou": 0.5, "mcc": 0.1, "confusion": [[3, 1], [0, 2]]}
    if what in values:
        values[what] = value
    else:
        metrics[{"validation mIoU": "miou", "validation MCC": "mcc"}[what]] = value
    with pytest.raises(DivergedError, match=f"the {what} is {value}"):
        check_finite(MODEL, 1, values["training loss"], values["validation loss"], metrics)


def test_scores_of_no_pixel_and_unvalidated_epochs_are_not_divergence():
    check_finite(MODEL, 1, 0.5, None, None)  # not validated this epoch
    check_finite(MODEL, 1, 0.5, 0.4, {"miou": math.nan, "mcc": 0.0, "confusion": [[0, 0], [0, 0]]})  # all nodata
