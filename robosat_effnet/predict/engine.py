"""Batched inference: a model and its checkpoint's spec turned into per-pixel class probabilities.

On CUDA the network runs in mixed precision (float16 autocast) with channels_last memory format,
the fast path on tensor cores; on CPU it runs in float32. Inputs whose sides are not multiples
of the network's total stride (32) are mirror-padded at the bottom/right and the output cropped,
so the stride grid stays aligned with the input's top-left corner (and with the tile grid).
An exported `.onnx` model (`predict.onnx.OnnxModel`) takes the network's place unchanged; onnxruntime
then chooses precision and layout itself, so autocast and channels_last are left off for it.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from robosat_effnet.checkpoint import ModelSpec, load_model
from robosat_effnet.errors import ConfigError
from robosat_effnet.predict.onnx import OnnxModel, load_onnx
from robosat_effnet.transforms import DIHEDRAL, dihedral

# checkpoint path (.pth, or .onnx run by onnxruntime), model, or (model, ModelSpec)
ModelLike = str | os.PathLike | nn.Module | tuple


def default_device() -> torch.device:
    """cuda (this process's LOCAL_RANK device under torchrun) when available, else cpu."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)) % torch.cuda.device_count())
    return torch.device("cpu")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """A torch.device from a name or None (see `default_device`); a clear error for unknown names."""
    if device is None:
        return default_device()
    try:
        device = torch.device(device)
    except (RuntimeError, ValueError):
        raise ConfigError(f"unknown device {device!r}; use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device} asked for but CUDA is not available; use --device cpu")
    return device


def resolve_model(model: ModelLike, device: torch.device) -> tuple[nn.Module, ModelSpec]:
    """(model in eval mode on `device`, spec) from a checkpoint path, a (model, spec) pair, or a bare model.

    A `.onnx` path (from `rs-effnet export`) gives an onnxruntime runner called like the network.
    A bare model gets a default ModelSpec (3 bands, ImageNet mean/std) with as many classes as it outputs.
    """
    if isinstance(model, (str, os.PathLike, Path)):
        if Path(model).suffix.lower() == ".onnx":
            return load_onnx(model, device=device)
        module, spec = load_model(model, map_location=device)
        return module, spec
    if isinstance(model, tuple):
        module, spec = model
    else:
        module, spec = model, (model.spec if isinstance(model, OnnxModel) else None)
    module = module.to(device).eval()
    if spec is None:
        in_channels = next((m.in_channels for m in module.modules() if isinstance(m, nn.Conv2d)), 3)
        with torch.inference_mode():
            classes = module(torch.zeros(1, in_channels, 32, 32, device=device)).shape[1]
        spec = ModelSpec(classes=[f"class{i}" for i in range(classes)],
                         colors=["denim", "orange", "green", "purple", "cyan", "yellow", "red", "pink"][:classes],
                         in_channels=in_channels)
    return module, spec


class Predictor:
    """Softmax probabilities of a segmentation model for batches of normalised images.

    >>> predictor = Predictor(model, device="cpu", tta=True)
    >>> probs = predictor(batch)   # N x C x H x W float -> N x K x H x W float32, on predictor.device
    """

    def __init__(self, model: nn.Module, device: str | torch.device | None = None, tta: bool = False,
                 amp: bool | None = None, channels_last: bool | None = None):
        self.device = resolve_device(device)
        cuda = self.device.type == "cuda"
        torch_network = not isinstance(model, OnnxModel)  # onnxruntime chooses its own precision and layout
        self.amp = torch_network and (cuda if amp is None else (amp and cuda))
        self.channels_last = torch_network and (cuda if channels_last is None else channels_last)
        self.tta = tta
        self.divisor = int(getattr(model, "divisor", 32))
        self.model = model.to(self.device).eval()
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        if cuda:
            torch.backends.cudnn.benchmark = True  # tiles come in few distinct sizes

    @torch.inference_mode()
    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        batch = batch.to(self.device, non_blocking=True)
        height, width = batch.shape[-2:]
        pad_h, pad_w = -height % self.divisor, -width % self.divisor
        if pad_h or pad_w:
            mode = "reflect" if pad_h < height and pad_w < width else "replicate"
            batch = F.pad(batch, (0, pad_w, 0, pad_h), mode=mode)
        if not self.tta:
            probs = self._probabilities(batch)
        else:  # average over the 8 symmetries of the square, each output turned back first
            # contiguous copies: strided views would make the CPU backend build new kernels for each layout
            probs = sum(_undo(self._probabilities(dihedral(batch, k).contiguous()), k)
                        for k in range(DIHEDRAL)) / DIHEDRAL
        return probs[..., :height, :width]

    def _probabilities(self, batch: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
            logits = self.model(batch)
        return torch.softmax(logits.float(), dim=1)


def _undo(tensor: torch.Tensor, k: int) -> torch.Tensor:
    """The inverse of `transforms.dihedral(tensor, k)`: flip back, then turn back."""
    if k >= 4:
        tensor = torch.flip(tensor, dims=(-1,))
    return torch.rot90(tensor, -(k % 4), dims=(-2, -1))
