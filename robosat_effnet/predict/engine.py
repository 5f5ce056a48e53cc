"""Batched inference: a model and its checkpoint's spec turned into per-pixel class probabilities.

On CUDA the network runs in mixed precision (float16 autocast) with channels_last memory format,
the fast path on tensor cores; on CPU it runs in float32. `precision="bf16"` runs it under bfloat16
autocast instead (weights stay float32; on CPU with channels_last, the layout oneDNN's bf16 kernels want),
`precision="fp32"` in float32 everywhere. Inputs whose sides are not multiples
of the network's total stride (32) are mirror-padded at the bottom/right and the output cropped,
so the stride grid stays aligned with the input's top-left corner (and with the tile grid).
An exported `.onnx` model (`models.onnx.OnnxModel`) takes the network's place unchanged; onnxruntime
then runs the file's own precision and layout, so autocast and channels_last are left off for it
(an int8 file comes from `rs-effnet export --int8`; asking it for bf16 is an error).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from robosat_effnet.config import PRECISIONS  # what callers may ask for; None keeps the device's default
from robosat_effnet.data.transforms import DIHEDRAL, dihedral
from robosat_effnet.errors import ConfigError
from robosat_effnet.models.device import resolve_device
from robosat_effnet.models.onnx import OnnxModel


def check_precision(precision: str | None) -> str | None:
    """`precision` if it is None or one of PRECISIONS, else a ConfigError listing them."""
    if precision is not None and precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)} (or none for the "
                          "default: float16 autocast on CUDA, float32 on CPU)")
    return precision


def precision_settings(precision: str | None, device: torch.device) -> dict[str, str]:
    """The provenance entry for `precision` on `device`: {"precision": name} when it is not what the device
    runs by default (float32 on CPU, float16 autocast on CUDA), else nothing, so that folders written at the
    default (before the option existed, too) resume as they did, and another precision counts as a change."""
    default = "fp16" if device.type == "cuda" else "fp32"
    return {"precision": precision} if check_precision(precision) not in (None, default) else {}


class Predictor:
    """Softmax probabilities of a segmentation model for batches of normalised images.

    >>> predictor = Predictor(model, device="cpu", tta=True)
    >>> probs = predictor(batch)   # N x C x H x W float -> N x K x H x W float32, on predictor.device

    `precision` is None (float16 autocast on CUDA unless `amp` is False, float32 on CPU), "fp32" or "bf16"
    (bfloat16 autocast, channels_last); `dtype` is the autocast type in use, None for float32. An
    `OnnxModel` runs the precision it was exported at: asking it for "bf16" raises ConfigError.
    """

    def __init__(self, model: nn.Module, device: str | torch.device | None = None, tta: bool = False,
                 amp: bool | None = None, channels_last: bool | None = None, precision: str | None = None):
        self.device = resolve_device(device)
        cuda = self.device.type == "cuda"
        torch_network = not isinstance(model, OnnxModel)  # onnxruntime chooses its own precision and layout
        self.precision = check_precision(precision)
        if precision == "bf16":
            if not torch_network:
                raise ConfigError(f"--precision bf16 does not apply to {model.path or 'an .onnx model'}: onnxruntime "
                                  f"runs the file's own precision ({model.precision}); use `rs-effnet export --int8` "
                                  "for a faster file instead")
            if cuda and not torch.cuda.is_bf16_supported():
                raise ConfigError(f"{self.device} has no bfloat16 support; use --precision fp32 or the default")
            self.dtype = torch.bfloat16
        elif precision is None and torch_network and cuda and amp is not False:
            self.dtype = torch.float16
        else:
            self.dtype = None
        self.amp = self.dtype is not None
        bf16 = self.dtype is torch.bfloat16
        self.channels_last = torch_network and (cuda or bf16 if channels_last is None else channels_last)
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
        if self.dtype is None:
            logits = self.model(batch)
        else:
            with torch.autocast(self.device.type, dtype=self.dtype):
                logits = self.model(batch)
        return torch.softmax(logits.float(), dim=1)


def _undo(tensor: torch.Tensor, k: int) -> torch.Tensor:
    """The inverse of `transforms.dihedral(tensor, k)`: flip back, then turn back."""
    if k >= 4:
        tensor = torch.flip(tensor, dims=(-1,))
    return torch.rot90(tensor, -(k % 4), dims=(-2, -1))
