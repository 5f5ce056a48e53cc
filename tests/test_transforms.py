"""Input scaling (uint8/uint16), the 8 dihedral transforms, joint augmentation, resizing."""

import numpy as np
import pytest
import torch

from robosat_effnet.data.transforms import (
    DIHEDRAL,
    IMAGENET_MEAN,
    IMAGENET_STD,
    augment,
    color_jitter,
    colour_shift,
    dihedral,
    hue_turn,
    resize,
    sample_generator,
    scale_factor,
    select_bands,
    to_tensor,
)
from robosat_effnet.errors import DatasetError


def test_uint8_scaling_and_normalisation():
    image = np.full((2, 3, 3), [255, 0, 51], np.uint8)
    t = to_tensor(image, mean=[0.5, 0.5, 0.2], std=[0.5, 0.25, 0.1])
    assert t.shape == (3, 2, 3) and t.dtype == torch.float32
    assert torch.allclose(t[:, 0, 0], torch.tensor([1.0, -2.0, 0.0]))


def test_uint16_scaling_default_and_max_value():
    image = np.array([[[65535, 10000, 20000]]], np.uint16)
    assert torch.allclose(to_tensor(image, [0, 0, 0], [1, 1, 1])[:, 0, 0],
                          torch.tensor([1.0, 10000 / 65535, 20000 / 65535]))
    # reflectance 0..10000: values above max_value are kept, not clipped
    assert torch.allclose(to_tensor(image, [0, 0, 0], [1, 1, 1], max_value=10000)[:, 0, 0],
                          torch.tensor([6.5535, 1.0, 2.0]))
    assert scale_factor(np.uint8, max_value=10000) == 255.0  # max_value only concerns uint16
    assert scale_factor(np.float32) == 1.0
    with pytest.raises(DatasetError, match="max_value"):
        scale_factor(np.int16)


def test_imagenet_statistics_are_defined_once():
    """The checkpoint's defaults and torchvision's weights' normalisation are this module's lists, not copies."""
    from robosat_effnet.models import checkpoint, weights

    assert (IMAGENET_MEAN, IMAGENET_STD) == ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    assert checkpoint.IMAGENET_MEAN is IMAGENET_MEAN and checkpoint.IMAGENET_STD is IMAGENET_STD
    assert weights.IMAGENET_NORMALISATION[0] is IMAGENET_MEAN and weights.IMAGENET_NORMALISATION[1] is IMAGENET_STD
    spec = checkpoint.ModelSpec()
    assert (spec.mean, spec.std) == (IMAGENET_MEAN, IMAGENET_STD) and spec.mean is not IMAGENET_MEAN  # a copy each
    assert weights.normalisation("efficientnet-b4", None) == (IMAGENET_MEAN, IMAGENET_STD)


def test_channel_count_must_match_mean():
    with pytest.raises(DatasetError, match="4 channels"):
        to_tensor(np.zeros((2, 2, 4), np.uint8), [0.5] * 3, [0.2] * 3)


def test_select_bands_is_one_based():
    image = np.arange(4).reshape(1, 1, 4)
    assert select_bands(image, [4, 1])[0, 0].tolist() == [3, 0]
    assert select_bands(image, None) is image
    with pytest.raises(DatasetError):
        select_bands(image, [5])


def test_dihedral_are_the_8_symmetries_numpy_knows():
    a = np.arange(12).reshape(3, 4)
    expected = [np.rot90(a, k) for k in range(4)] + [np.fliplr(np.rot90(a, k)) for k in range(4)]
    got = [dihedral(torch.from_numpy(a), k).numpy() for k in range(DIHEDRAL)]
    for e, g in zip(expected, got, strict=True):
        np.testing.assert_array_equal(g, e)
    assert len({g.tobytes() + bytes(g.shape) for g in got}) == 8


def test_augment_moves_image_and_label_together():
    label = torch.zeros(8, 8, dtype=torch.long)
    label[1:3, 5:8] = 1
    image = torch.stack([label.float() * 2, label.float() * 3, -label.float()])
    seen = set()
    for index in range(40):
        im, lb = augment(image, label, sample_generator(0, 0, index))
        assert torch.equal(im[0], lb.float() * 2) and torch.equal(im[2], -lb.float())
        seen.add(lb.numpy().tobytes())
    assert len(seen) == 8  # every symmetry gets drawn


def test_sample_generator_is_reproducible():
    draw = lambda *key: torch.rand(3, generator=sample_generator(*key))  # noqa: E731
    assert torch.equal(draw(1, 2, 3), draw(1, 2, 3))
    assert not torch.equal(draw(1, 2, 3), draw(1, 3, 3))


def test_color_jitter_bounds():
    image = torch.randn(3, 16, 16)
    assert color_jitter(image, 0.0, torch.Generator()) is image
    out = color_jitter(image, 0.2, torch.Generator().manual_seed(0))
    assert out.shape == image.shape and not torch.equal(out, image)
    assert (out.mean() - image.mean()).abs() <= 0.2 + 1e-5


def test_resize_image_bilinear_label_nearest():
    image = torch.rand(3, 64, 64)
    label = torch.zeros(64, 64, dtype=torch.long)
    label[:, 32:] = 1
    im, lb = resize(image, label, 128)
    assert im.shape == (3, 128, 128) and lb.shape == (128, 128) and lb.dtype == torch.long
    assert set(lb.unique().tolist()) == {0, 1} and lb[:, 64:].eq(1).all() and lb[:, :64].eq(0).all()
    same, same_label = resize(image, label, 64)
    assert same is image and same_label is label


@pytest.mark.parametrize("degrees", [0.0, 37.0, 120.0, -90.0, 180.0])
def test_hue_turn_is_the_rotation_about_the_grey_axis(degrees):
    from scipy.spatial.transform import Rotation

    axis = np.ones(3) / np.sqrt(3)
    reference = Rotation.from_rotvec(np.radians(degrees) * axis).as_matrix()
    np.testing.assert_allclose(hue_turn(degrees).numpy(), reference, atol=1e-6)
    if degrees == 120.0:  # red becomes green, green blue
        np.testing.assert_allclose(hue_turn(degrees) @ torch.eye(3), torch.eye(3)[:, [1, 2, 0]], atol=1e-6)


def normalised(rgb: torch.Tensor) -> torch.Tensor:
    return (rgb - torch.tensor(IMAGENET_MEAN).view(3, 1, 1)) / torch.tensor(IMAGENET_STD).view(3, 1, 1)


def back_to_rgb(image: torch.Tensor) -> torch.Tensor:
    return image * torch.tensor(IMAGENET_STD).view(3, 1, 1) + torch.tensor(IMAGENET_MEAN).view(3, 1, 1)


def test_colour_shift_turns_greys_and_scales_saturation():
    rgb = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(1)) * 0.5 + 0.25
    image = normalised(rgb)
    shift = lambda hue, sat, grey, seed: back_to_rgb(colour_shift(  # noqa: E731
        image, IMAGENET_MEAN, IMAGENET_STD, hue, sat, grey, torch.Generator().manual_seed(seed)))
    torch.testing.assert_close(shift(0.0, 0.0, 0.0, 0), rgb)  # all off: the same colours
    grey = shift(0.0, 0.0, 1.0, 0)  # always grey: the three channels equal their mean
    torch.testing.assert_close(grey, rgb.mean(dim=0, keepdim=True).expand(3, -1, -1))
    for seed in range(8):
        turned = shift(60.0, 0.0, 0.0, seed)  # a hue turn keeps each pixel's mean and its distance from grey
        torch.testing.assert_close(turned.mean(dim=0), rgb.mean(dim=0))
        torch.testing.assert_close((turned - turned.mean(dim=0)).norm(dim=0), (rgb - rgb.mean(dim=0)).norm(dim=0))
        draws = torch.rand(3, generator=torch.Generator().manual_seed(seed))
        factor = 1 + 0.4 * (2 * draws[2] - 1)  # saturation alone: the distance from grey scaled by one factor
        saturated = shift(0.0, 0.4, 0.0, seed)
        expected = rgb.mean(dim=0) + factor * (rgb - rgb.mean(dim=0))
        torch.testing.assert_close(saturated, expected.clamp(0, 1))
    assert not torch.allclose(shift(60.0, 0.0, 0.0, 0), shift(60.0, 0.0, 0.0, 1))  # each tile its own turn
