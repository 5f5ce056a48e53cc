"""Self-describing checkpoints: the weights plus everything needed to rebuild and preprocess.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts, so it loads with
`torch.load(..., weights_only=True)`:

    {"format": "robosat_effnet", "version": "0.1.0", "spec": {...ModelSpec...},
     "model": state_dict, "epoch": int, "metrics": {...}, ...training state...}
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from robosat_effnet._version import __version__
from robosat_effnet.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from robosat_effnet.errors import CheckpointError, WeightsError
from robosat_effnet.io import atomic_path, file_problem, load_failure
from robosat_effnet.limits import MAX_DECODER_CHANNELS, MAX_TILE_SIZE, normalisation_problem
from robosat_effnet.models.materialise import load_assigned, on_meta
from robosat_effnet.models.state_dicts import tensors
from robosat_effnet.outputs import writing

FORMAT = "robosat_effnet"
EXPECTED = "expected a .pth file written by `rs-effnet train` (e.g. checkpoints/best.pth)"


@dataclass
class ModelSpec:
    """What a checkpoint must say to rebuild its model and preprocess its inputs."""

    backbone: str = "efficientnet-b0"
    decoder: str = "unet"
    classes: list[str] = field(default_factory=lambda: ["background", "foreground"])
    colors: list[str] = field(default_factory=lambda: ["denim", "orange"])
    in_channels: int = 3
    bands: list[int] | None = None  # 1-based raster bands used as input; None: all, in order
    mean: list[float] = field(default_factory=lambda: list(IMAGENET_MEAN))
    std: list[float] = field(default_factory=lambda: list(IMAGENET_STD))
    max_value: float | None = None  # uint16 value meaning 1.0 (None: 65535); uint8 is always / 255
    tile_size: int = 512
    output_stride: int = 32
    decoder_channels: list[int] | None = None  # the decoder's widths; None: its defaults (older checkpoints)
    version: str = __version__

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        """The spec a checkpoint or an exported model stores; ValueError naming the field if it is damaged."""
        if not isinstance(data, dict):
            raise ValueError(f"the model description is a {type(data).__name__}, not a table of fields")
        names = {f.name for f in dataclasses.fields(cls)}
        spec = cls(**{k: v for k, v in data.items() if k in names})
        for name, ok in _SPEC_RULES.items():
            if not ok(getattr(spec, name)):
                expected = f": {_EXPECTED[name]}" if name in _EXPECTED else ""
                raise ValueError(f"its model description has a damaged {name} ({str(getattr(spec, name))[:100]}"
                                 f"{expected})")
        # The counts first: they say which list is short; normalisation_problem only knows the lengths differ.
        per_band = {"mean": len(spec.mean), "std": len(spec.std)} | ({"bands": len(spec.bands)} if spec.bands else {})
        if any(n != spec.in_channels for n in per_band.values()):
            counts = ", ".join(f"{n} {name}" for name, n in per_band.items())
            raise ValueError(f"its model description gives {counts} for {spec.in_channels} input bands")
        problem = normalisation_problem(spec.mean, spec.std)
        if problem:
            raise ValueError(f"its model description's mean and std {problem}")
        return spec


def _numbers(value: Any, kind: type | tuple = (int, float)) -> bool:
    return isinstance(value, list) and all(isinstance(v, kind) and not isinstance(v, bool) for v in value)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _finite(value: Any, positive: bool = False) -> bool:
    """A finite number (int or float, not bool), above 0 with `positive`."""
    try:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    except OverflowError:  # an int beyond float's range
        return False
    return ok and (value > 0 or not positive)


# What each stored field must look like for the model to be rebuilt and its inputs prepared.
_SPEC_RULES = {
    "backbone": lambda v: isinstance(v, str), "decoder": lambda v: isinstance(v, str),
    "classes": lambda v: isinstance(v, list) and len(v) >= 2 and all(isinstance(c, str) for c in v),
    "colors": lambda v: isinstance(v, list) and all(isinstance(c, str) for c in v),
    "in_channels": _count,
    "bands": lambda v: v is None or _numbers(v, int),
    "mean": lambda v: _numbers(v) and all(_finite(m) for m in v),
    "std": lambda v: _numbers(v) and all(_finite(d, positive=True) for d in v),  # 0: every input the same
    "max_value": lambda v: v is None or _finite(v, positive=True),
    "tile_size": lambda v: _count(v) and v <= MAX_TILE_SIZE, "output_stride": _count,
    "decoder_channels": lambda v: v is None or _numbers(v, int) and all(1 <= w <= MAX_DECODER_CHANNELS for w in v),
}
_EXPECTED = {"mean": "finite numbers, one per input band", "std": "positive finite numbers, one per input band",
             "max_value": "a positive finite number", "tile_size": f"1 to {MAX_TILE_SIZE} px"}


def build_from_spec(spec: ModelSpec) -> torch.nn.Module:
    """A freshly initialised model of the architecture a spec describes."""
    from robosat_effnet.models import build_model

    return build_model(spec.backbone, decoder=spec.decoder, num_classes=spec.num_classes,
                       in_channels=spec.in_channels, output_stride=spec.output_stride,
                       decoder_channels=spec.decoder_channels)


def save_checkpoint(path: str | os.PathLike, model: torch.nn.Module, spec: ModelSpec, **state: Any) -> Path:
    """Write a checkpoint atomically (temp file + rename). `state` adds training state (epoch, optimizer, ...)."""
    module = getattr(model, "module", model)  # unwrap DistributedDataParallel
    payload = {"format": FORMAT, "version": __version__, "spec": spec.to_dict(),
               "model": module.state_dict(), **state}
    with writing(path), atomic_path(path) as tmp:  # a full disk: one line, no half-written file
        torch.save(payload, tmp)
    return Path(path)


def safe_load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """`torch.load` with weights_only=True (no code runs); CheckpointError with `load_failure`'s reason."""
    return _safe_load(path, path, map_location)


def _safe_load(source: str | os.PathLike | io.BytesIO, path: str | os.PathLike,
               map_location: str | torch.device) -> Any:
    """`safe_load` of `source` (the file `path`, or its bytes already read); errors name `path`."""
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": noise for a file we refuse anyway
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(source, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises many kinds for corrupt or unsafe files
        raise CheckpointError(f"{path} is not a robosat_effnet checkpoint: {load_failure(path, e)}; {EXPECTED}") \
            from None


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load and validate a checkpoint written by this package (safely: weights_only=True)."""
    return read_checkpoint(path, map_location)[0]


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> tuple[dict[str, Any], str]:
    """(`load_checkpoint`'s contents, the sha256 of the file) from one read of the file: the digest that output
    records name the checkpoint by (`outputs.make_record`) comes from the very bytes that were loaded."""
    path = Path(path)
    problem = file_problem(path)
    if problem:
        raise CheckpointError(f"checkpoint {path} {problem}; give the path of a .pth file written by "
                              "`rs-effnet train` (e.g. checkpoints/last.pth)")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:  # unreadable (permissions, a disk error): one line, as a damaged file gets
        raise CheckpointError(f"checkpoint {path} cannot be read ({e.strerror or e}); {EXPECTED}") from None
    data = _safe_load(io.BytesIO(raw), path, map_location)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        keys = list(data) if isinstance(data, dict) else []
        if any(str(k).startswith("module.") for k in keys) or "state_dict" in keys:
            raise CheckpointError(
                f"{path} is a robosat checkpoint (DataParallel ResNet50 U-Net without model config); "
                "it cannot be used here: train a new model with `rs-effnet train`"
            )
        if keys and all(isinstance(v, torch.Tensor) for v in data.values()):
            raise CheckpointError(
                f"{path} is a bare state dict (e.g. torchvision's ImageNet weights), not a robosat_effnet "
                "checkpoint: it says nothing about the model or its classes; it can initialise training "
                f"(`rs-effnet train --weights {path}`); here {EXPECTED}"
            )
        raise CheckpointError(f"{path} is not a robosat_effnet checkpoint; {EXPECTED}")
    if not isinstance(data.get("model"), dict):
        raise CheckpointError(f"{path} is a damaged robosat_effnet checkpoint: its weights are missing or not a "
                              "table of tensors; use another checkpoint (e.g. last.pth) or retrain")
    try:  # names that are not text, values that are not tensors of real, finite numbers
        tensors(data["model"], str(path), "its 'model' entry")
    except WeightsError as e:
        raise CheckpointError(f"{path} is a damaged robosat_effnet checkpoint: {str(e).removeprefix(f'{path}: ')}"
                              .split("; ")[0] + "; use another checkpoint (e.g. last.pth) or retrain") from None
    try:
        ModelSpec.from_dict(data.get("spec"))
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path} is a damaged robosat_effnet checkpoint: {e}; use another checkpoint "
                              "(e.g. last.pth) or retrain") from None
    return data, hashlib.sha256(raw).hexdigest()


def load_model(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> tuple[torch.nn.Module, ModelSpec]:
    """Rebuild the model a checkpoint describes, with its weights, in eval mode."""
    return model_from_checkpoint(load_checkpoint(path, map_location), path, map_location)


def model_from_checkpoint(data: dict[str, Any], path: str | os.PathLike,
                          map_location: str | torch.device = "cpu") -> tuple[torch.nn.Module, ModelSpec]:
    """`load_model` for a checkpoint already loaded (`load_checkpoint(path)`), whose other entries the caller
    also reads (e.g. `rs-effnet export --deepness` its dataset_config)."""
    spec = ModelSpec.from_dict(data["spec"])
    model = on_meta(lambda: build_from_spec(spec))  # every weight comes from the file: none drawn at random
    try:
        load_assigned(model, data["model"])
    except RuntimeError:
        raise CheckpointError(f"checkpoint {path} does not match its own model description "
                              f"({_mismatch(model.state_dict(), data['model'])}); use another checkpoint (e.g. "
                              "last.pth) or retrain") from None
    return model.to(map_location).eval(), spec


def _mismatch(own: dict[str, torch.Tensor], stored: dict[str, torch.Tensor]) -> str:
    """What differs between a model's entries and a checkpoint's, in one line (torch's own message spans many)."""
    missing = [k for k in own if k not in stored]
    extra = [k for k in stored if k not in own]
    wrong = [k for k in own if k in stored and tuple(stored[k].shape) != tuple(own[k].shape)]
    parts = [f"{len(missing)} entries missing, e.g. {missing[0]}"] if missing else []
    parts += [f"{len(extra)} unknown entries, e.g. {extra[0]}"] if extra else []
    parts += [f"{wrong[0]} has shape {tuple(stored[wrong[0]].shape)}, expected {tuple(own[wrong[0]].shape)}"] \
        if wrong else []
    return "; ".join(parts) or "its weights do not load"
