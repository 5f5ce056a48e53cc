"""robosat's model.toml (plus our optional keys) as a checked ModelConfig; command-line overrides; the
checkpoint's ModelSpec made from a dataset and a model config."""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robosat_effnet.config.dataset import DatasetConfig
from robosat_effnet.config.domains import MODEL_DOMAINS
from robosat_effnet.config.reading import is_number, read_toml, resolve_path
from robosat_effnet.errors import ConfigError, UnknownNameError
from robosat_effnet.precision import PRECISIONS

if TYPE_CHECKING:  # a checkpoint's spec needs torch; reading a dataset.toml does not
    from robosat_effnet.models.checkpoint import ModelSpec

log = logging.getLogger("robosat_effnet")

# What the file may contain: table -> key -> accepted Python types (int is accepted for float).
MODEL_KEYS = {
    "common": {"cuda": bool, "batch_size": int, "image_size": int, "checkpoint": str, "backbone": str,
               "decoder": str, "decoder_channels": list, "weights": str, "amp": bool, "precision": str, "seed": int,
               "workers": int, "save_every": int, "keep": int, "validate_every": int},
    "opt": {"epochs": int, "lr": float, "encoder_lr": float, "loss": str, "weight_decay": float, "decay": float,
            "warmup": float, "grad_clip": float, "augment": bool, "jitter": float, "hue": float,
            "saturation": float, "grayscale": float, "gamma": float,
            "gap_weight": float, "gap_px": int},
}

# The losses [opt] loss may name (robosat's names first); training.losses builds each of them.
LOSS_NAMES = ("CrossEntropy", "mIoU", "Focal", "Lovasz", "Dice")


def canonical_loss(name: str) -> str:
    """The registry spelling of a loss name (case-insensitive); UnknownNameError lists the valid ones."""
    for key in LOSS_NAMES:
        if key.lower() == str(name).strip().lower():
            return key
    raise UnknownNameError(f"unknown loss {name!r}; valid: {', '.join(LOSS_NAMES)} ([opt] loss in model.toml)")


@dataclass
class ModelConfig:
    """How to train: robosat's model.toml keys plus ours, with their defaults."""

    cuda: bool | None = None  # None: use a GPU when there is one
    batch_size: int = 8
    image_size: int = 512
    checkpoint: Path = Path("checkpoints")
    save_every: int = 1  # write checkpoint-NNNNN.pth every this many epochs (and after the last), if `keep` allows
    keep: int = 0  # how many of the newest checkpoint-NNNNN.pth stay (-1: all); last.pth and best.pth always
    validate_every: int = 1  # score the validation split every this many epochs (and always after the last)
    backbone: str = "efficientnet-b0"
    decoder: str = "unet"
    decoder_channels: list[int] | None = None  # the decoder's widths (see configs/model-unet.toml); None: defaults
    weights: str | None = None  # None/"none": random init; "imagenet"; or a path to weights
    amp: bool = True  # mixed precision, on CUDA only
    precision: str = "fp32"  # "bf16": bfloat16 autocast on any device (AVX-512 BF16/AMX CPUs, recent GPUs)
    seed: int = 0
    workers: int = 2
    epochs: int = 10
    lr: float = 1e-4
    encoder_lr: float | None = None  # the encoder's own learning rate (e.g. lower for pretrained weights); None: lr
    loss: str = "CrossEntropy"
    weight_decay: float = 1e-4
    warmup: float = 1.0  # epochs of linear warm-up (at most half of all steps)
    grad_clip: float = 1.0  # max gradient norm; 0 turns clipping off
    augment: bool = True  # the 8 flips/rotations, on training tiles only
    jitter: float = 0.0  # colour jitter strength (brightness/contrast), 0 = off
    hue: float = 0.0  # turn each tile's colours by up to this many degrees either way, 0 = off
    saturation: float = 0.0  # scale each tile's saturation by a factor in [1 - this, 1 + this], 0 = off
    grayscale: float = 0.0  # the chance of a grey tile, 0 = never (hue, saturation, grayscale: RGB images only)
    gamma: float = 2.0  # focusing parameter of the Focal loss
    gap_weight: float = 0.0  # > 0: a cross-entropy term on the background between close objects (losses.GapLoss)
    gap_px: int = 8  # ... within this many px of two different objects
    source: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (paths as strings), e.g. to store in a checkpoint."""
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(self).items()}


def load_model_config(path: str | os.PathLike) -> ModelConfig:
    """Read a robosat model.toml (plus our optional keys) into a checked ModelConfig."""
    path = Path(path)
    data = read_toml(path, MODEL_KEYS, "model")
    values: dict[str, Any] = {**data.get("common", {}), **data.get("opt", {})}
    if "decay" in values:  # robosat's early name for weight decay
        if "weight_decay" in values:
            log.warning("%s: both decay and weight_decay are set; using weight_decay = %s", path,
                        values["weight_decay"])
        values.setdefault("weight_decay", values.pop("decay"))
        values.pop("decay", None)
    if "checkpoint" in values:
        values["checkpoint"] = resolve_path(path, values["checkpoint"])
    else:
        values["checkpoint"] = path.parent / "checkpoints"
    if "weights" in values:
        values["weights"] = _weights(values["weights"], lambda file: str(resolve_path(path, file)))
    for key, value in values.items():
        if isinstance(value, int) and MODEL_KEYS["opt"].get(key) is float:
            values[key] = float(value)
    config = ModelConfig(**values, source=path)
    validate_model_config(config)
    return config


def apply_overrides(config: ModelConfig, **overrides: Any) -> ModelConfig:
    """A copy of `config` with the given keys replaced (None: keep the file's value), checked again.

    `weights` takes the same values as in model.toml: 'none', 'imagenet' or a path.
    """
    values = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(set(values) - {f.name for f in dataclasses.fields(ModelConfig)})
    if unknown:
        raise ConfigError(f"unknown model setting(s) {', '.join(unknown)}")
    if "weights" in values:
        values["weights"] = _weights(values["weights"])
    if "checkpoint" in values:
        values["checkpoint"] = Path(values["checkpoint"])
    config = dataclasses.replace(config, **values)
    validate_model_config(config)
    return config


def validate_model_config(config: ModelConfig) -> None:
    """Check value ranges (also after command-line overrides); raise ConfigError naming the key."""
    where = f"{config.source}: " if config.source else ""
    for (_, key), domain in MODEL_DOMAINS.items():  # each numeric key's documented domain (config/domains.py)
        value = getattr(config, key, None)
        if value is None:  # left out: its default (encoder_lr: lr's, decoder_channels: the decoder's)
            continue
        if key == "decoder_channels" and not (value and all(is_number(w) and isinstance(w, int) for w in value)):
            raise ConfigError(f"{where}{key} = {value!r} must be {domain}")
        if domain.problem(value) or key == "image_size" and value % 32:
            raise ConfigError(f"{where}{key} = {value!r} must be {domain}")
    if config.precision not in PRECISIONS:
        raise ConfigError(f"{where}precision = {config.precision!r} must be one of {', '.join(PRECISIONS)}")
    from robosat_effnet.models import canonical_backbone, list_decoders

    try:
        canonical_loss(config.loss)  # unknown names raise now, not after the dataset check (or a study's records)
    except UnknownNameError as e:
        raise UnknownNameError(f"{where}{e}") from None
    config.backbone = canonical_backbone(config.backbone)  # 'b4' -> 'efficientnet-b4'; unknown names raise
    config.decoder = config.decoder.strip().lower()
    if config.decoder not in list_decoders():
        raise UnknownNameError(f"{where}unknown decoder {config.decoder!r}; valid: {', '.join(list_decoders())}")


def spec_from_configs(dataset_cfg: DatasetConfig, model_cfg: ModelConfig) -> ModelSpec:
    """The checkpoint's model description for this dataset and model configuration."""
    from robosat_effnet.models import canonical_backbone
    from robosat_effnet.models.checkpoint import ModelSpec
    from robosat_effnet.models.weights import normalisation

    backbone = canonical_backbone(model_cfg.backbone)
    # A dataset that names no mean/std gets what the weights were trained with (EfficientNet-Lite's TensorFlow
    # scaling, a checkpoint's own, ImageNet's otherwise): the checkpoint records it, so predict needs nothing more.
    mean, std = (dataset_cfg.mean, dataset_cfg.std) if dataset_cfg.mean is not None else \
        normalisation(backbone, model_cfg.weights)
    spec = ModelSpec(
        backbone=backbone, decoder=model_cfg.decoder,
        decoder_channels=list(model_cfg.decoder_channels) if model_cfg.decoder_channels else None,
        classes=list(dataset_cfg.classes), colors=list(dataset_cfg.colors), in_channels=dataset_cfg.in_channels,
        bands=list(dataset_cfg.bands) if dataset_cfg.bands else None, mean=list(mean), std=list(std),
        tile_size=model_cfg.image_size,
    )
    spec.max_value = dataset_cfg.max_value  # the uint16 scaling the inputs were trained with
    return spec


def _weights(value: Any, path: Any = str) -> str | None:
    """The `weights` setting: None for 'none' (or empty), 'imagenet' (any case), else `path(value)`."""
    text = str(value)
    if text.lower() in ("none", ""):
        return None
    return "imagenet" if text.lower() == "imagenet" else path(text)
