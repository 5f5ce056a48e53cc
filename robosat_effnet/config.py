"""robosat's `dataset.toml` and `model.toml`, read into typed dataclasses, plus our optional keys.

robosat's files work unchanged; every key robosat did not know is optional (see configs/ for a
commented example of each). Relative paths in a file are taken relative to that file's folder, so
a project folder can be moved; robosat's absolute paths work as they are, and so do its relative ones
(robosat read them from the current folder: used when only that path exists).

dataset.toml::

    [common]
    dataset = "data/"             # holds training/{images,labels} and validation/{images,labels}
    classes = ["background", "parking"]
    colors  = ["denim", "orange"]
    images  = ["images"]          # ours: image folders per split, stacked channel-wise (e.g. ["rgb", "nir"])
    labels  = "labels"            # ours: label folder per split
    bands   = [1, 2, 3]           # ours: 1-based channels of the stacked image used as input (default: all)
    in_channels = 3               # ours: input channels (default: len(bands), len(mean), else 3)
    mean    = [0.485, 0.456, 0.406]  # ours: per channel, of images scaled to 0..1 (default: ImageNet)
    std     = [0.229, 0.224, 0.225]
    max_value = 10000             # ours: uint16 value that means 1.0 (default 65535; see transforms.to_tensor)
    [weights]
    values = [1.6248, 5.762827]   # class weights (`rs-effnet weights`), used by CrossEntropy, mIoU, Focal

model.toml: robosat's `[common] cuda, batch_size, image_size, checkpoint` and `[opt] epochs, lr, loss`,
plus ours in `[common]`: backbone, decoder, decoder_channels, weights, amp, seed, workers, save_every;
in `[opt]`: weight_decay, warmup, grad_clip, augment, jitter, gamma, gap_weight, gap_px. Keys nobody knows are
reported with a warning and ignored.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robosat_effnet.checkpoint import IMAGENET_MEAN, IMAGENET_STD, ModelSpec
from robosat_effnet.colors import to_rgb
from robosat_effnet.errors import ConfigError, UnknownNameError

log = logging.getLogger("robosat_effnet")

# What each file may contain: table -> key -> accepted Python types (int is accepted for float).
DATASET_KEYS = {
    "common": {"dataset": str, "classes": list, "colors": list, "images": (list, str), "labels": str,
               "bands": list, "in_channels": int, "mean": list, "std": list, "max_value": float},
    "weights": {"values": list},
}
PRECISIONS = ("fp32", "bf16")
MODEL_KEYS = {
    "common": {"cuda": bool, "batch_size": int, "image_size": int, "checkpoint": str, "backbone": str,
               "decoder": str, "decoder_channels": list, "weights": str, "amp": bool, "precision": str, "seed": int,
               "workers": int, "save_every": int},
    "opt": {"epochs": int, "lr": float, "loss": str, "weight_decay": float, "decay": float, "warmup": float,
            "grad_clip": float, "augment": bool, "jitter": float, "gamma": float, "gap_weight": float,
            "gap_px": int},
}


# Colours for datasets that name none; robosat's colour names, background first.
DEFAULT_COLORS = ["denim", "orange", "green", "purple", "red", "cyan", "yellow", "pink", "teal", "mustard",
                  "blue", "navy", "dark", "gray", "white", "light", "bluedark", "navydark"]


@dataclass
class DatasetConfig:
    """A dataset: where its tiles are, its classes, and how its images become network inputs."""

    dataset: Path
    classes: list[str]
    colors: list[str]
    weights: list[float] | None = None
    images: list[str] = field(default_factory=lambda: ["images"])
    labels: str = "labels"
    bands: list[int] | None = None
    in_channels: int = 3
    mean: list[float] = field(default_factory=lambda: list(IMAGENET_MEAN))
    std: list[float] = field(default_factory=lambda: list(IMAGENET_STD))
    max_value: float | None = None
    source: Path | None = None  # the TOML file this came from, for messages

    @property
    def num_classes(self) -> int:
        return len(self.classes)


@dataclass
class ModelConfig:
    """How to train: robosat's model.toml keys plus ours, with their defaults."""

    cuda: bool | None = None  # None: use a GPU when there is one
    batch_size: int = 8
    image_size: int = 512
    checkpoint: Path = Path("checkpoints")
    save_every: int = 1  # keep checkpoint-NNNNN.pth every this many epochs (last.pth and best.pth always)
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
    loss: str = "CrossEntropy"
    weight_decay: float = 1e-4
    warmup: float = 1.0  # epochs of linear warm-up (at most half of all steps)
    grad_clip: float = 1.0  # max gradient norm; 0 turns clipping off
    augment: bool = True  # the 8 flips/rotations, on training tiles only
    jitter: float = 0.0  # colour jitter strength (brightness/contrast), 0 = off
    gamma: float = 2.0  # focusing parameter of the Focal loss
    gap_weight: float = 0.0  # > 0: a cross-entropy term on the background between close objects (losses.GapLoss)
    gap_px: int = 8  # ... within this many px of two different objects
    source: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (paths as strings), e.g. to store in a checkpoint."""
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(self).items()}


def load_dataset_config(path: str | os.PathLike) -> DatasetConfig:
    """Read a robosat dataset.toml (plus our optional keys) into a checked DatasetConfig."""
    path = Path(path)
    data = _read_toml(path, DATASET_KEYS, "dataset")
    common, weights = data.get("common", {}), data.get("weights", {})
    for key in ("dataset", "classes"):
        if key not in common:
            raise ConfigError(f"{path}: [common] has no '{key}'; see configs/dataset-parking.toml for an example")
    classes = [str(c) for c in common["classes"]]
    if len(classes) < 2:
        raise ConfigError(f"{path}: [common] classes needs at least two names (e.g. background and one class)")
    colors = list(common.get("colors") or DEFAULT_COLORS[: len(classes)])
    if len(colors) != len(classes):
        raise ConfigError(f"{path}: {len(classes)} classes but {len(colors)} colors; give one colour per class")
    for color in colors:
        try:
            to_rgb(color)
        except ConfigError as e:
            raise ConfigError(f"{path}: [common] colors: {e}") from None
    images = common.get("images", ["images"])
    images = [images] if isinstance(images, str) else [str(i) for i in images]
    if not images or not all(images):
        raise ConfigError(f"{path}: [common] images must name at least one image folder, e.g. ['images']")
    values = weights.get("values")
    if values is not None and (len(values) != len(classes) or not all(_is_number(v) for v in values)):
        raise ConfigError(f"{path}: [weights] values must be {len(classes)} numbers, one per class")

    bands = common.get("bands")
    if bands is not None and not (bands and all(isinstance(b, int) and b >= 1 for b in bands)):
        raise ConfigError(f"{path}: [common] bands must be a list of 1-based channel numbers, e.g. [1, 2, 3]")
    mean, std = common.get("mean"), common.get("std")
    in_channels = common.get("in_channels", len(bands) if bands else len(mean) if mean else 3)
    if in_channels < 1:
        raise ConfigError(f"{path}: [common] in_channels = {in_channels} must be 1 or more")
    if bands and len(bands) != in_channels:
        raise ConfigError(f"{path}: in_channels = {in_channels} but bands lists {len(bands)}; make them agree")
    if in_channels != 3 and (mean is None or std is None):
        raise ConfigError(f"{path}: {in_channels} input channels need [common] mean and std with "
                          f"{in_channels} values each (ImageNet's defaults are for RGB)")
    mean, std = mean or list(IMAGENET_MEAN), std or list(IMAGENET_STD)
    for name, values_ in (("mean", mean), ("std", std)):
        if len(values_) != in_channels or not all(_is_number(v) for v in values_):
            raise ConfigError(f"{path}: [common] {name} must be {in_channels} numbers, one per input channel")
    if any(s <= 0 for s in std):
        raise ConfigError(f"{path}: [common] std values must be positive")
    max_value = common.get("max_value")
    if max_value is not None and max_value <= 0:
        raise ConfigError(f"{path}: [common] max_value must be positive")

    return DatasetConfig(
        dataset=_resolve(path, common["dataset"]), classes=classes, colors=colors,
        weights=[float(v) for v in values] if values is not None else None, images=images,
        labels=str(common.get("labels", "labels")), bands=bands, in_channels=in_channels,
        mean=[float(v) for v in mean], std=[float(v) for v in std],
        max_value=float(max_value) if max_value is not None else None, source=path,
    )


def load_model_config(path: str | os.PathLike) -> ModelConfig:
    """Read a robosat model.toml (plus our optional keys) into a checked ModelConfig."""
    path = Path(path)
    data = _read_toml(path, MODEL_KEYS, "model")
    values: dict[str, Any] = {**data.get("common", {}), **data.get("opt", {})}
    if "decay" in values:  # robosat's early name for weight decay
        if "weight_decay" in values:
            log.warning("%s: both decay and weight_decay are set; using weight_decay = %s", path,
                        values["weight_decay"])
        values.setdefault("weight_decay", values.pop("decay"))
        values.pop("decay", None)
    if "checkpoint" in values:
        values["checkpoint"] = _resolve(path, values["checkpoint"])
    else:
        values["checkpoint"] = path.parent / "checkpoints"
    if "weights" in values:
        values["weights"] = _weights(values["weights"], lambda file: str(_resolve(path, file)))
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
    checks = [
        ("batch_size", config.batch_size >= 1, "at least 1"),
        ("image_size", config.image_size >= 32 and config.image_size % 32 == 0, "a multiple of 32, e.g. 512"),
        ("epochs", config.epochs >= 1, "at least 1"),
        ("lr", config.lr > 0, "positive"),
        ("weight_decay", config.weight_decay >= 0, "0 or more"),
        ("warmup", config.warmup >= 0, "0 or more epochs"),
        ("grad_clip", config.grad_clip >= 0, "0 (off) or more"),
        ("jitter", 0 <= config.jitter < 1, "between 0 and 1"),
        ("gap_weight", config.gap_weight >= 0, "0 (off) or more"),
        ("gap_px", config.gap_px >= 1, "at least 1"),
        ("workers", config.workers >= 0, "0 or more"),
        ("save_every", config.save_every >= 1, "at least 1"),
        ("precision", config.precision in PRECISIONS, f"one of {', '.join(PRECISIONS)}"),
    ]
    for key, ok, expected in checks:
        if not ok:
            raise ConfigError(f"{where}{key} = {getattr(config, key)!r} must be {expected}")
    from robosat_effnet.models import canonical_backbone, list_decoders

    config.backbone = canonical_backbone(config.backbone)  # 'b4' -> 'efficientnet-b4'; unknown names raise
    config.decoder = config.decoder.strip().lower()
    if config.decoder not in list_decoders():
        raise UnknownNameError(f"{where}unknown decoder {config.decoder!r}; valid: {', '.join(list_decoders())}")
    widths = config.decoder_channels
    if widths is not None and not (widths and all(isinstance(w, int) and not isinstance(w, bool) and w >= 1
                                                  for w in widths)):
        raise ConfigError(f"{where}decoder_channels = {widths!r} must be a list of positive integers, "
                          "e.g. [256, 128, 64, 32, 16] (unet) or [256, 128] (fpn)")


def spec_from_configs(dataset_cfg: DatasetConfig, model_cfg: ModelConfig) -> ModelSpec:
    """The checkpoint's model description for this dataset and model configuration."""
    from robosat_effnet.models import canonical_backbone

    spec = ModelSpec(
        backbone=canonical_backbone(model_cfg.backbone), decoder=model_cfg.decoder,
        decoder_channels=list(model_cfg.decoder_channels) if model_cfg.decoder_channels else None,
        classes=list(dataset_cfg.classes), colors=list(dataset_cfg.colors), in_channels=dataset_cfg.in_channels,
        bands=list(dataset_cfg.bands) if dataset_cfg.bands else None, mean=list(dataset_cfg.mean),
        std=list(dataset_cfg.std), tile_size=model_cfg.image_size,
    )
    spec.max_value = dataset_cfg.max_value  # the uint16 scaling the inputs were trained with
    return spec


def _read_toml(path: Path, schema: dict[str, dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    if not path.is_file():
        raise ConfigError(f"{kind} config {path} does not exist; pass --{kind} with the path of your {kind}.toml")
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path} is not valid TOML: {e}") from None
    unknown = []
    result: dict[str, dict[str, Any]] = {}
    for table, content in data.items():
        if table not in schema or not isinstance(content, dict):
            unknown.append(f"[{table}]")
            continue
        result[table] = {}
        for key, value in content.items():
            expected = schema[table].get(key)
            if expected is None:
                unknown.append(f"[{table}] {key}")
            elif not _has_type(value, expected):
                raise ConfigError(f"{path}: [{table}] {key} = {value!r} has the wrong type; "
                                  f"expected {_names(expected)}")
            else:
                result[table][key] = value
    if unknown:
        log.warning("%s: ignoring unknown key(s) %s", path, ", ".join(unknown))
    return result


def _has_type(value: Any, expected: Any) -> bool:
    types = expected if isinstance(expected, tuple) else (expected,)
    if isinstance(value, bool):  # bool is an int subclass; only accept it where a bool is asked for
        return bool in types
    return isinstance(value, types) or (float in types and isinstance(value, int))


def _names(expected: Any) -> str:
    types = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join({str: "a string", int: "an integer", float: "a number", bool: "true/false",
                        list: "a list"}[t] for t in types)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _weights(value: Any, path: Any = str) -> str | None:
    """The `weights` setting: None for 'none' (or empty), 'imagenet' (any case), else `path(value)`."""
    text = str(value)
    if text.lower() in ("none", ""):
        return None
    return "imagenet" if text.lower() == "imagenet" else path(text)


def _resolve(toml: Path, value: str) -> Path:
    """A path from a config file: absolute as it is; relative to the file's folder, or, when only that
    exists, to the current folder (robosat's reading of relative paths)."""
    path = Path(value).expanduser()
    if path.is_absolute():
        return path
    beside = (toml.parent / path).resolve()
    here = path.resolve()
    return here if not beside.exists() and here.exists() else beside
