"""Turning image tiles into network inputs, and the joint augmentations of training.

The one definition of input scaling, shared by training and prediction (`to_tensor`):

- uint8 images are divided by 255;
- uint16 images are divided by 65535, or by `max_value` when the dataset config gives one
  (e.g. 10000 for reflectance products that store 0..1 as 0..10000; larger values are kept, not clipped);
- float images are taken as already scaled to 0..1;
- then each channel is normalised: (value - mean) / std.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from robosat_effnet.errors import DatasetError

DIHEDRAL = 8  # 4 rotations x optional flip: every symmetry of a square tile
# ImageNet's per-channel (R, G, B) statistics of images scaled to 0..1: the normalisation torchvision's weights
# were trained with, and ours when neither dataset.toml nor the pretrained weights say otherwise.
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def scale_factor(dtype: np.dtype, max_value: float | None = None) -> float:
    """The value of `dtype` that maps to 1.0 (see the module docstring)."""
    dtype = np.dtype(dtype)
    if dtype == np.uint8:
        return 255.0
    if dtype == np.uint16:
        return float(max_value) if max_value else 65535.0
    if dtype.kind == "f":
        return 1.0
    if max_value:
        return float(max_value)
    raise DatasetError(f"images of type {dtype} need [common] max_value in dataset.toml to be scaled to 0..1")


def to_tensor(image: np.ndarray, mean: Sequence[float], std: Sequence[float],
              max_value: float | None = None) -> torch.Tensor:
    """An H x W x C image array (uint8, uint16 or float) as a normalised float32 C x H x W tensor."""
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[-1] != len(mean) or len(mean) != len(std):
        raise DatasetError(f"image has {image.shape[-1]} channels but mean/std have {len(mean)}/{len(std)} values")
    scale = scale_factor(image.dtype, max_value)
    tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)).astype(np.float32, copy=False))
    mean_ = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1) * scale
    std_ = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1) * scale
    return (tensor - mean_) / std_


def fill_nodata(image: torch.Tensor, valid: np.ndarray | torch.Tensor | None) -> torch.Tensor:
    """Set the pixels of a normalised C x H x W image where `valid` (H x W) is False to 0, the mean colour.

    Outside a scene or under its nodata the raw pixels are usually 0, which the network reads as a dark
    object (a roof, a shadow) and answers with false detections along the edge; the mean colour is the
    most neutral value a normalised input has.
    """
    if valid is None:
        return image
    invalid = ~torch.as_tensor(np.asarray(valid, dtype=bool))
    if invalid.any():
        image[:, invalid] = 0.0
    return image


def select_bands(image: np.ndarray, bands: Sequence[int] | None) -> np.ndarray:
    """Keep the 1-based channels `bands` of an H x W x C image, in that order (None: all)."""
    if not bands:
        return image
    if max(bands) > image.shape[-1]:
        raise DatasetError(f"bands {list(bands)} asked for, but the image has only {image.shape[-1]} channels")
    return image[..., [b - 1 for b in bands]]


def resize(image: torch.Tensor, label: torch.Tensor | None, size: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Resize a C x H x W image (bilinear) and an H x W label (nearest) to size x size, as robosat did."""
    if image.shape[-2:] == (size, size):
        return image, label
    image = F.interpolate(image[None], size=(size, size), mode="bilinear", align_corners=False,
                          antialias=True)[0]
    if label is not None:
        label = F.interpolate(label[None, None].float(), size=(size, size), mode="nearest-exact")[0, 0].long()
    return image, label


def dihedral(tensor: torch.Tensor, k: int) -> torch.Tensor:
    """Apply the k-th (0..7) symmetry of the square to the last two dims: k % 4 quarter turns, then a
    horizontal flip when k >= 4. Applied to an image and its label with the same k, they stay aligned."""
    out = torch.rot90(tensor, k % 4, dims=(-2, -1))
    return torch.flip(out, dims=(-1,)) if k >= 4 else out


def color_jitter(image: torch.Tensor, strength: float, generator: torch.Generator) -> torch.Tensor:
    """Random brightness and contrast change of a normalised C x H x W image.

    Brightness shifts every channel by up to `strength` (in units of the normalised image), contrast scales
    deviations from the image mean by a factor in [1 - strength, 1 + strength].
    """
    if strength <= 0:
        return image
    draws = torch.rand(2, generator=generator)
    contrast = 1 + strength * (2 * draws[0].item() - 1)
    brightness = strength * (2 * draws[1].item() - 1)
    mean = image.mean(dim=(-2, -1), keepdim=True)
    return (image - mean) * contrast + mean + brightness


# The cross-product matrix of the grey axis (1, 1, 1): Rodrigues' turn about it is cos I + (1 - cos) J/3 + sin K/sqrt(3)
_GREY_AXIS = torch.tensor([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]])


def hue_turn(degrees: float) -> torch.Tensor:
    """The 3 x 3 matrix that turns RGB colours about the grey axis by `degrees` (red -> green at 120): a hue
    shift that keeps each pixel's mean of R, G and B."""
    a = math.radians(degrees)
    return (math.cos(a) * torch.eye(3) + (1 - math.cos(a)) / 3 * torch.ones(3, 3)
            + math.sin(a) / math.sqrt(3) * _GREY_AXIS)


def colour_shift(image: torch.Tensor, mean: Sequence[float], std: Sequence[float], hue: float, saturation: float,
                 grayscale: float, generator: torch.Generator) -> torch.Tensor:
    """A normalised 3 x H x W RGB image with its hue turned by up to `hue` degrees either way, its saturation
    scaled by a factor in [1 - saturation, 1 + saturation], or, with chance `grayscale`, made grey (the mean of
    its channels); values stay in 0..1 before normalising again. Roofs are then told by shape and texture more
    than by colour (issue 28: a region's rust-brown roofs that the source regions' colours teach as ground)."""
    draws = torch.rand(3, generator=generator)
    m, s = torch.tensor(mean).view(3, 1, 1), torch.tensor(std).view(3, 1, 1)
    rgb = torch.einsum("ij,jhw->ihw", hue_turn(hue * (2 * draws[0].item() - 1)), image * s + m)
    grey = rgb.mean(dim=0, keepdim=True)
    factor = 0.0 if draws[1].item() < grayscale else 1 + saturation * (2 * draws[2].item() - 1)
    return ((grey + factor * (rgb - grey)).clamp(0, 1) - m) / s


def augment(image: torch.Tensor, label: torch.Tensor, generator: torch.Generator,
            jitter: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """One random dihedral transform applied jointly to image and label, then optional colour jitter."""
    k = int(torch.randint(DIHEDRAL, (1,), generator=generator))
    image, label = dihedral(image, k), dihedral(label, k)
    return color_jitter(image, jitter, generator), label


COLOUR_SEED = 104729  # added to the run's seed for colour_shift's own draws: the flips' and jitter's stay as they were


def sample_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """A generator for one tile in one epoch: augmentation is reproducible whatever the workers or ranks."""
    # Large prime multipliers keep (seed, epoch, index) triples from colliding for realistic sizes.
    return torch.Generator().manual_seed(((seed * 1_000_003 + epoch) * 2_147_483_629 + index) % 2**63)

