"""`rs-effnet` with a random zoom of each training tile (issue 28): after the flips and jitter, image and label
are scaled by a factor drawn log-uniformly in [1/ZOOM, ZOOM] (environment variable ZOOM, default 1.33; bilinear
image, nearest label) and cropped back to the tile's size, or, zoomed out, mirrored at the edges to fill it. The
regions' buildings differ in size (the Philippines' sheds, Zanzibar's large roofs) and a network that has seen
roofs only at one size may not know them at another: the standard scale augmentation of segmentation recipes.

A prototype for the measurement, not the package's code: it wraps the training tiles' augment() for this process
only (validation tiles are never augmented).

    ZOOM=1.33 python zoom_aug.py train --dataset ... --model ... --checkpoint-dir ...
"""
import math
import os

import torch
import torch.nn.functional as F

import robosat_effnet.training.datasets as datasets
from robosat_effnet.cli import main

ZOOM = float(os.environ.get("ZOOM", "1.33"))
_augment = datasets.augment


def zoom(image: torch.Tensor, label: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale a C x H x W image and its H x W label by a random factor, then back to H x W (crop or mirror)."""
    h, w = label.shape
    draws = torch.rand(3, generator=generator)
    s = math.exp(math.log(ZOOM) * (2 * draws[0].item() - 1))
    size = (max(1, round(h * s)), max(1, round(w * s)))
    image = F.interpolate(image[None], size=size, mode="bilinear", align_corners=False, antialias=True)[0]
    label = F.interpolate(label[None, None].float(), size=size, mode="nearest-exact")[0, 0]
    if s >= 1:  # crop a random window of the tile's size
        y, x = int(draws[1].item() * (size[0] - h + 1)), int(draws[2].item() * (size[1] - w + 1))
        return image[:, y:y + h, x:x + w], label[y:y + h, x:x + w].long()
    pad = (0, w - size[1], 0, h - size[0])  # mirror into the missing right and bottom strips
    image = F.pad(image[None], pad, mode="reflect")[0]
    label = F.pad(label[None, None], pad, mode="reflect")[0, 0]
    return image, label.long()


def augment_and_zoom(image, label, generator, jitter=0.0):
    image, label = _augment(image, label, generator, jitter)
    return zoom(image, label, generator)


datasets.augment = augment_and_zoom

if __name__ == "__main__":
    main(prog_name="rs-effnet")
