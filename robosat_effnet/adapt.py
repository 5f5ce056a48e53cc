"""Learn from the area's own imagery: self-training on the tiles a model is about to map.

A model trained elsewhere (or fine-tuned on a few labelled blocks of the area) maps the area's unlabelled tiles;
its masks of those tiles become their labels (pseudo-labels), and training continues from that model on the
labelled tiles and the pseudo-labelled ones together. The network then sees the area's roofs, soil and light
with the augmentations of training, and its outlines there get cleaner (issue 28; BENCHMARKS.md, "Outlines a
mapper can keep"). Only images of the unlabelled tiles are used, never labels: they are the tiles scored.

    self_train("dataset.toml", "ft.toml", "area/images", weights="ft/last.pth", checkpoint_dir="st")
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from robosat_effnet.colors import NODATA_INDEX
from robosat_effnet.config import DatasetConfig, ModelConfig, apply_overrides, load_dataset_config, load_model_config
from robosat_effnet.errors import CheckpointError, ConfigError, DatasetError
from robosat_effnet.io import atomic_path
from robosat_effnet.predict import predict_tiles
from robosat_effnet.threshold import MASK_THRESHOLD
from robosat_effnet.tiles import tile_files
from robosat_effnet.training.datasets import Sample

PSEUDO_SUFFIX = ".pseudo-labels"  # beside the checkpoint folder: the labels the model gave the unlabelled tiles


def pseudo_labels(checkpoint: str | os.PathLike, images: str | os.PathLike, out: str | os.PathLike, *,
                  threshold: float = MASK_THRESHOLD, device: str | None = None, progress: bool = True) -> list[Sample]:
    """Predict the masks of `images` (a slippy-map folder) with `checkpoint` into `out` and return them as
    training samples. Pixels without imagery (255 in a mask) become background: a label holds classes only.
    A rerun continues `out` (predict's own resume), a folder of other masks is refused (OutputError)."""
    from PIL import Image

    predict_tiles(checkpoint, images, out, threshold=threshold, device=device, progress=progress)
    files, masks = tile_files(images), tile_files(out, {".png"})
    samples = []
    for tile, path in sorted(masks.items()):
        with Image.open(path) as image:
            mask, palette = np.array(image), image.getpalette()
        if (mask == NODATA_INDEX).any():
            label = Image.fromarray(np.where(mask == NODATA_INDEX, 0, mask).astype(np.uint8), mode="P")
            label.putpalette(palette)
            with atomic_path(path) as tmp:
                label.save(tmp, format="PNG")
        samples.append(Sample(tile, (Path(files[tile]),), path))
    if not samples:
        raise DatasetError(f"no image tiles in {images} to learn from; pass the slippy-map folder of the area's "
                           "unlabelled images")
    return samples


def self_train(dataset_cfg: DatasetConfig | str | os.PathLike, model_cfg: ModelConfig | str | os.PathLike,
               unlabelled: str | os.PathLike, *, weights: str | os.PathLike | None = None,
               checkpoint_dir: str | os.PathLike | None = None, threshold: float = MASK_THRESHOLD,
               device: str | None = None, progress: bool = True, overwrite: bool = False,
               resume: str | os.PathLike | None = None) -> dict[str, Any]:
    """Train from `weights` (a checkpoint of ours: the model whose masks of `unlabelled` are their labels) on the
    dataset's training tiles plus the pseudo-labelled tiles of `unlabelled`; returns `train`'s summary.

    The pseudo-labels are written to `<checkpoint folder>.pseudo-labels` beside the run. `weights` defaults to
    model.toml's `weights`, which must then be such a checkpoint. Raises ConfigError without one.
    """
    from robosat_effnet.training.loop import train

    if not isinstance(dataset_cfg, DatasetConfig):
        dataset_cfg = load_dataset_config(dataset_cfg)
    if not isinstance(model_cfg, ModelConfig):
        model_cfg = load_model_config(model_cfg)
    if weights is not None:
        model_cfg = apply_overrides(model_cfg, weights=str(weights))
    start = model_cfg.weights
    need = ("learning from unlabelled tiles needs a trained model to label them: pass --weights CHECKPOINT (a .pth "
            "of `rs-effnet train`, e.g. the model fine-tuned on the area's labelled blocks)")
    if not start or str(start).lower() in ("none", "imagenet"):
        raise ConfigError(need)
    if len(dataset_cfg.images) != 1:
        raise ConfigError(f"{dataset_cfg.source}: unlabelled tiles go with datasets of one image folder; this one "
                          f"stacks {', '.join(dataset_cfg.images)}")
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else Path(model_cfg.checkpoint)
    try:  # predict reads the checkpoint before it writes anything: a file that is none of ours is refused there
        extra = pseudo_labels(start, unlabelled, folder.with_name(folder.name + PSEUDO_SUFFIX), threshold=threshold,
                              device=device, progress=progress)
    except CheckpointError as e:
        raise ConfigError(f"{need}; {e}") from None
    return train(dataset_cfg, model_cfg, device=device, checkpoint_dir=folder, progress=progress,
                 overwrite=overwrite, resume=resume, extra_training=extra)
