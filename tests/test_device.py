"""One resolve_device for training and prediction: what each asked for, and the errors each gives."""

from __future__ import annotations

import logging

import pytest
import torch
from click.testing import CliRunner

from robosat_effnet.cli import main
from robosat_effnet.errors import ConfigError
from robosat_effnet.models.device import resolve_device
from robosat_effnet.predict import Predictor, predict_tiles
from robosat_effnet.predict import engine as predict_engine
from robosat_effnet.training import loop as training_loop


@pytest.fixture
def gpus(monkeypatch):
    """Pretend this machine has `n` CUDA GPUs (no CUDA call is made by resolve_device itself)."""
    def have(n: int) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)
    return have


def test_training_and_prediction_share_the_one_function():
    assert training_loop.resolve_device is predict_engine.resolve_device is resolve_device


@pytest.mark.parametrize("asked, expected", [("cpu", "cpu"), (torch.device("cpu"), "cpu"), ("cuda:1", "cuda:1"),
                                             ("cuda", "cuda")])
def test_a_device_asked_for_is_taken_as_it_is(gpus, asked, expected):
    gpus(2)
    assert resolve_device(asked) == torch.device(expected)
    assert resolve_device(asked, cuda=False) == torch.device(expected)  # model.toml's switch: only for the default


@pytest.mark.parametrize("asked", ["tpu:7", "foo", "cuda:x"])
def test_an_unknown_name_is_one_config_error(asked):
    with pytest.raises(ConfigError, match=f"unknown device '{asked}'; use cpu, cuda or cuda:N"):
        resolve_device(asked)


def test_cuda_without_a_gpu_is_one_config_error(gpus):
    gpus(0)
    for asked in ("cuda", "cuda:1", torch.device("cuda", 0)):
        with pytest.raises(ConfigError, match="asked for, but no CUDA GPU is available; use --device cpu"):
            resolve_device(asked)


def test_the_default_is_this_process_gpu_unless_model_toml_says_no(gpus, monkeypatch):
    gpus(2)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert resolve_device(None) == torch.device("cuda", 0)
    monkeypatch.setenv("LOCAL_RANK", "3")  # under torchrun: this rank's GPU, wrapping around the GPUs there are
    assert resolve_device(None) == torch.device("cuda", 1)
    assert resolve_device(None, cuda=True) == torch.device("cuda", 1)
    assert resolve_device(None, cuda=False) == torch.device("cpu")  # robosat's `cuda = false`
    gpus(0)
    assert resolve_device(None) == torch.device("cpu")


def test_cuda_true_without_a_gpu_warns_naming_the_file_then_uses_the_cpu(gpus, caplog):
    gpus(0)
    with caplog.at_level(logging.WARNING, logger="robosat_effnet"):
        assert resolve_device(None, cuda=True, source="run/model.toml") == torch.device("cpu")
        assert resolve_device(None) == torch.device("cpu")  # nothing said: nothing to warn about
    assert [r.getMessage() for r in caplog.records] == \
        ["run/model.toml says cuda = true but no CUDA GPU is available: training on CPU"]


def test_prediction_refuses_cuda_without_a_gpu(gpus, tmp_path, tiles, random_checkpoint):
    gpus(0)
    with pytest.raises(ConfigError, match="device cuda asked for, but no CUDA GPU is available"):
        predict_tiles(random_checkpoint, tiles, tmp_path / "masks", device="cuda", progress=False)
    with pytest.raises(ConfigError, match="device cuda:0 asked for, but no CUDA GPU"):
        Predictor(torch.nn.Conv2d(3, 2, 1), device="cuda:0")
    assert not (tmp_path / "masks").exists()
    result = CliRunner().invoke(main, ["predict", str(tiles), str(tmp_path / "m"), "--checkpoint",
                                       str(random_checkpoint), "--device", "cuda"])
    assert result.exit_code == 2 and "Traceback" not in result.output  # a usage error, as click reports them
    assert "Invalid value for '--device': device cuda asked for, but no CUDA GPU is available; use --device cpu" \
        in result.output


def test_training_refuses_cuda_without_a_gpu_before_writing(gpus, synthetic_dataset, tmp_path):
    gpus(0)
    with pytest.raises(ConfigError, match="device cuda asked for, but no CUDA GPU is available"):
        training_loop.train(synthetic_dataset.dataset_toml, synthetic_dataset.model_toml, device="cuda",
                            checkpoint_dir=tmp_path / "run", progress=False)
    with pytest.raises(ConfigError, match="unknown device 'tpu:7'"):
        training_loop.train(synthetic_dataset.dataset_toml, synthetic_dataset.model_toml, device="tpu:7",
                            checkpoint_dir=tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()
