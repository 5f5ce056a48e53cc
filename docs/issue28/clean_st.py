"""Self-training rounds with other pseudo-labels than `train --unlabelled` makes (issue 28): the previous model's
masks of the unlabelled tiles, optionally predicted with the 8 flips averaged (--tta: a smoother teacher) and
then cleaned per object (--min-area: buildings under that many m2 dropped, holes filled: no cars, whole roofs),
before training continues from that model on them and the labelled tiles. Everything else is the recommended
run's self-training round (`train --unlabelled UNLABELLED --weights PREV`).

    python clean_st.py DATASET.toml ST.toml PREV.pth UNLABELLED OUT [--min-area 5] [--tta] [--threshold 0.7]
                       [--repeat-labelled K] [--strong S] [--init CHECKPOINT]

--repeat-labelled K trains on the labelled tiles K times beside the pseudo-labelled ones (epochs scaled down so
the steps stay those of the recipe's round); --strong S gives the pseudo-labelled tiles a stronger colour noise
than the labelled ones (each channel's contrast and brightness moved by up to S in the normalised image: a noisy
student, whose teacher saw the clean image); --init trains a student from another checkpoint (e.g. the
cross-region model) instead of continuing from PREV, the teacher.

Run from the study folder of docs/recipe-buildings.md; score OUT/last.pth with exp_post.py like the rounds.
"""
import argparse
import shutil
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy.ndimage import binary_fill_holes, label

from robosat_effnet.colors import NODATA_INDEX
from robosat_effnet.config import apply_overrides, load_dataset_config, load_model_config
from robosat_effnet.deploy.deepness import ground_resolution
from robosat_effnet.predict import predict_tiles
from robosat_effnet.tiles import tile_files
from robosat_effnet.training import datasets
from robosat_effnet.training.datasets import Sample, find_samples
from robosat_effnet.training.loop import train


def clean(mask: np.ndarray, min_px: float) -> np.ndarray:
    """Buildings (1) of at least min_px pixels, holes filled."""
    components, n = label(mask == 1)
    keep = np.bincount(components.ravel(), minlength=n + 1) >= min_px
    keep[0] = False
    return binary_fill_holes(keep[components]).astype(np.uint8)


def noisy_student(pseudo: set, strength: float) -> None:
    """Patch this process's training tiles: a pseudo-labelled tile's image gets each channel's contrast and
    brightness moved by up to `strength`, drawn from its own (seed, epoch, index) generator."""
    plain = datasets.SegmentationTiles.__getitem__

    def getitem(self, index):
        image, label = plain(self, index)
        if not self.augment or str(self.samples[index].label) not in pseudo:
            return image, label
        g = datasets.sample_generator(self.seed + 7919, self.epoch, index)
        gain = 1 + strength * (2 * torch.rand(image.shape[0], 1, 1, generator=g) - 1)
        shift = strength * (2 * torch.rand(image.shape[0], 1, 1, generator=g) - 1)
        mean = image.mean(dim=(-2, -1), keepdim=True)
        return ((image - mean) * gain + mean + shift).contiguous(), label

    datasets.SegmentationTiles.__getitem__ = getitem


def main() -> None:
    p = argparse.ArgumentParser()
    for name in ("dataset", "model", "prev", "unlabelled", "out"):
        p.add_argument(name)
    p.add_argument("--min-area", type=float, default=5.0, help="m2; 0: no cleaning")
    p.add_argument("--tta", action="store_true")
    p.add_argument("--threshold", type=float, default=0.7)
    p.add_argument("--repeat-labelled", type=int, default=1)
    p.add_argument("--strong", type=float, default=0.0)
    p.add_argument("--init", default=None, help="the student's start; default PREV")
    args = p.parse_args()
    out = Path(args.out)
    raw, cleaned_dir = out.with_name(out.name + ".pseudo-labels"), out.with_name(out.name + ".clean-labels")
    predict_tiles(args.prev, args.unlabelled, raw, threshold=args.threshold, tta=args.tta, progress=False)
    cleaned_dir.mkdir(exist_ok=True)
    images, samples, before, after = tile_files(args.unlabelled), [], 0, 0
    for tile, path in sorted(tile_files(raw, {".png"}).items()):
        with Image.open(path) as image:
            mask, palette = np.array(image), image.getpalette()
        mask = np.where(mask == NODATA_INDEX, 0, mask)
        pixel_m2 = (ground_resolution(tile, mask.shape[1]) / 100) ** 2  # cm per pixel at the tile's latitude
        fixed = clean(mask, args.min_area / pixel_m2) if args.min_area > 0 else mask
        before, after = before + int((mask == 1).sum()), after + int((fixed == 1).sum())
        target = cleaned_dir / f"{tile.z}-{tile.x}-{tile.y}.png"
        image = Image.fromarray(fixed.astype(np.uint8), mode="P")
        image.putpalette(palette)
        image.save(target.with_suffix(".tmp.png"), format="PNG")
        shutil.move(target.with_suffix(".tmp.png"), target)
        samples.append(Sample(tile, (Path(images[tile]),), target))
    print(f"{len(samples)} pseudo-labels: building pixels {before} -> {after}")
    if not (out / "last.pth").exists():  # from PREV, as `train --unlabelled --weights PREV` does
        model = apply_overrides(load_model_config(args.model), weights=args.init or args.prev)
        extra = list(samples)
        if args.repeat_labelled > 1:
            labelled = find_samples(load_dataset_config(args.dataset), "training")
            tiles = len(labelled) + len(samples)  # what one epoch of the recipe's round passes over
            extra += labelled * (args.repeat_labelled - 1)
            epochs = max(1, round(model.epochs * tiles / (len(labelled) + len(extra))))
            model = apply_overrides(model, epochs=epochs)
            print(f"labelled tiles x{args.repeat_labelled}: {tiles} -> {len(labelled) + len(extra)} tiles, "
                  f"{epochs} epochs")
        if args.strong > 0:
            noisy_student({str(x.label) for x in samples}, args.strong)
        train(args.dataset, model, checkpoint_dir=out, progress=False, extra_training=extra)


if __name__ == "__main__":
    main()
