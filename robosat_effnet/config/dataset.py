"""robosat's dataset.toml (plus our optional keys) as a checked DatasetConfig."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from robosat_effnet.colors import to_rgb
from robosat_effnet.config.domains import DATASET_DOMAINS
from robosat_effnet.config.reading import is_number, read_toml, resolve_path
from robosat_effnet.errors import ConfigError
from robosat_effnet.limits import normalisation_problem

# What the file may contain: table -> key -> accepted Python types (int is accepted for float).
DATASET_KEYS = {
    "common": {"dataset": str, "classes": list, "colors": list, "images": (list, str), "labels": str,
               "bands": list, "in_channels": int, "mean": list, "std": list, "max_value": float},
    "weights": {"values": list},
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
    # None: what the model's pretrained weights were trained with (ImageNet's statistics when from scratch),
    # decided when the model is known (config.model.spec_from_configs) and recorded in the checkpoint.
    mean: list[float] | None = None
    std: list[float] | None = None
    max_value: float | None = None
    source: Path | None = None  # the TOML file this came from, for messages

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def load_dataset_config(path: str | os.PathLike) -> DatasetConfig:
    """Read a robosat dataset.toml (plus our optional keys) into a checked DatasetConfig."""
    path = Path(path)
    data = read_toml(path, DATASET_KEYS, "dataset")
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
    if values is not None and (len(values) != len(classes) or not all(is_number(v) for v in values)):
        raise ConfigError(f"{path}: [weights] values must be {len(classes)} numbers, one per class")
    for (table, key), domain in DATASET_DOMAINS.items():  # each numeric key's documented domain
        value = data.get(table, {}).get(key)
        if value is not None and all(is_number(v) for v in (value if isinstance(value, list) else [value])) \
                and domain.problem(value):
            raise ConfigError(f"{path}: [{table}] {key} = {value!r} must be {domain}")

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
    if (mean is None) != (std is None):
        raise ConfigError(f"{path}: [common] gives {'mean' if std is None else 'std'} without "
                          f"{'std' if std is None else 'mean'}; give both, or neither to use what the weights need")
    for name, values_ in (("mean", mean), ("std", std)):
        if values_ is not None and (len(values_) != in_channels or not all(is_number(v) for v in values_)):
            raise ConfigError(f"{path}: [common] {name} must be {in_channels} numbers, one per input channel")
    problem = normalisation_problem(mean, std) if mean is not None else None
    if problem:  # e.g. std 1e-300 or mean 1e39: normalised pixels overflow and the loss is nan at once
        raise ConfigError(f"{path}: [common] mean and std: {problem}")
    max_value = common.get("max_value")
    if max_value is not None and max_value <= 0:
        raise ConfigError(f"{path}: [common] max_value must be positive")

    return DatasetConfig(
        dataset=resolve_path(path, common["dataset"]), classes=classes, colors=colors,
        weights=[float(v) for v in values] if values is not None else None, images=images,
        labels=str(common.get("labels", "labels")), bands=bands, in_channels=in_channels,
        mean=[float(v) for v in mean] if mean is not None else None,
        std=[float(v) for v in std] if std is not None else None,
        max_value=float(max_value) if max_value is not None else None, source=path,
    )


TOUCHING = "touching"  # the class name that dataset.toml uses for the band between touching buildings


def touching_index(classes: list[str]) -> int | None:
    """The index of the class named "touching" (any case) in a dataset's classes, or None."""
    names = [str(c).lower() for c in classes]
    return names.index(TOUCHING) if TOUCHING in names else None


def require_touching(classes: list[str], source: object = "dataset.toml") -> int:
    """The touching class index, or a ConfigError saying how to declare it."""
    index = touching_index(classes)
    if index is None:
        raise ConfigError(f"--touching-px needs a class named {TOUCHING!r} in {source} (its classes are "
                          f"{', '.join(classes)}); add it, e.g. classes = [\"background\", \"building\", \"touching\"] "
                          "with a third colour")
    if index == 0:
        raise ConfigError(f"{source}: the {TOUCHING!r} class cannot be the first class (index 0 is background)")
    return index
