"""The one place a torch.device is chosen from what a user asked for: training, prediction, eval, bench and
study all call `resolve_device`, so `--device` means the same and fails the same way everywhere.

    resolve_device("cuda:1")                        # that GPU, or ConfigError when there is no CUDA
    resolve_device(None)                            # this process's GPU when there is one, else the CPU
    resolve_device(None, cuda=False)                # model.toml's `cuda = false`: the CPU
"""

from __future__ import annotations

import logging
import os

import torch

from robosat_effnet.errors import ConfigError

log = logging.getLogger("robosat_effnet")


def default_device(cuda: bool | None = None, source: str | os.PathLike | None = None) -> torch.device:
    """cuda (this process's LOCAL_RANK device under torchrun) when present and `cuda` is not False, else cpu.

    `cuda` is robosat's model.toml switch (None: not said); `cuda = true` on a machine without a GPU warns, naming
    `source` (the file that says it), and goes on on the CPU, as robosat's own files are used unchanged.
    """
    if cuda is not False and torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)) % torch.cuda.device_count())
    if cuda:
        log.warning("%s says cuda = true but no CUDA GPU is available: training on CPU", source or "model.toml")
    return torch.device("cpu")


def resolve_device(requested: str | torch.device | None = None, cuda: bool | None = None,
                   source: str | os.PathLike | None = None) -> torch.device:
    """The device to run on: `requested` ("cpu", "cuda", "cuda:1", a torch.device) if given, else
    `default_device(cuda, source)`. An unknown name, or CUDA asked for where there is none, is one ConfigError."""
    if requested is None:
        return default_device(cuda, source)
    try:
        device = torch.device(requested)
    except (RuntimeError, ValueError, TypeError):  # RuntimeError for "tpu:7", TypeError for other types
        raise ConfigError(f"unknown device {requested!r}; use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {requested} asked for, but no CUDA GPU is available; use --device cpu")
    return device
