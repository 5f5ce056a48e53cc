"""A .pth that would run code when unpickled is refused with one line wherever a command loads one (train --weights,
train --resume, predict, eval, export, bench --checkpoint), without running it and without torch's warning about
its pickle protocol ("please file an issue", with a source line) shown first.
"""

from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from conftest import make_dataset
from robosat_effnet.cli import main


class Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def pickles(folder: Path, marker: Path) -> dict[str, Path]:
    """The same code-running object as a plain protocol-4 pickle (which torch warns about) and as torch.save's zip."""
    plain, zipped = folder / "plain.pth", folder / "zipped.pth"
    plain.write_bytes(pickle.dumps({"model": Payload(marker)}, protocol=4))
    torch.save({"model": Payload(marker)}, zipped)
    return {"plain pickle": plain, "torch.save zip": zipped}


COMMANDS = {
    "train --weights": lambda d, pth: ["train", "--dataset", d.dataset_toml, "--model", d.model_toml, "--weights",
                                       pth, "--device", "cpu", "-q"],
    "train --resume": lambda d, pth: ["train", "--dataset", d.dataset_toml, "--model", d.model_toml, "--resume", pth,
                                      "--device", "cpu", "-q"],
    "predict": lambda d, pth: ["predict", d.root / "validation" / "images", d.root.parent / "masks", "--checkpoint",
                               pth, "--quiet"],
    "eval": lambda d, pth: ["eval", "--checkpoint", pth, d.root / "validation" / "images",
                            d.root / "validation" / "labels", "-q"],
    "export": lambda d, pth: ["export", pth, d.root.parent / "m.onnx"],
    "bench --checkpoint": lambda d, pth: ["bench", "--checkpoint", pth, "--sections", "model", "--models", "b0:unet",
                                          "--device", "cpu"],
}


@pytest.mark.parametrize("kind", ["plain pickle", "torch.save zip"])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_code_running_pickle_is_one_line_without_torchs_warning(tmp_path, command, kind):
    data = make_dataset(tmp_path, n_train=1, n_val=1)
    marker = tmp_path / "PWNED"
    path = pickles(tmp_path, marker)[kind]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = CliRunner().invoke(main, [str(a) for a in COMMANDS[command](data, path)])
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if not line.startswith("warning:")]
    assert len(errors) == 1 and errors[0].startswith("Error: ") and str(path) in errors[0], result.output
    assert "weights_only" not in result.output and "Traceback" not in result.output
    assert [str(w.message)[:80] for w in caught if "file an issue" in str(w.message)] == []
    assert not marker.exists()  # refused without running anything
