"""Segmentation networks: every backbone x decoder, shapes, gradients, dilation, bands, names, sizes."""

from itertools import pairwise

import pytest
import torch
import torchvision

from robosat_effnet import build_encoder, build_model, list_backbones, list_decoders
from robosat_effnet.errors import InputSizeError, UnknownNameError
from robosat_effnet.models.weights import adapt_stem

# V2-M and V2-L reuse V2-S's blocks and take seconds each to build: tests/test_efficientnet_v2.py covers them.
# B8 and L2 (87M and 480M parameters) are the B-builder's rows: test_huge_variants_take_every_decoder below.
BIG = ("efficientnet-v2-m", "efficientnet-v2-l", "efficientnet-b8", "efficientnet-l2")
BACKBONES = [b for b in list_backbones() if b not in BIG]
# unet-lite is the U-Net's code with other widths: tests/test_decoders.py covers it (b0, resnet50).
DECODERS = [d for d in list_decoders() if d != "unet-lite"]


def test_registries():
    assert list_backbones() == ([f"efficientnet-b{i}" for i in range(9)] + ["efficientnet-l2"]
                                + [f"efficientnet-lite{i}" for i in range(5)]
                                + ["efficientnet-v2-s", "efficientnet-v2-m", "efficientnet-v2-l", "resnet50"])
    assert list_decoders() == ["unet", "unet-lite", "fpn"]


@pytest.mark.parametrize("output_stride, strides", [(32, [2, 4, 8, 16, 32]), (16, [2, 4, 8, 16, 16]),
                                                   (8, [2, 4, 8, 8, 8])])
@pytest.mark.parametrize("decoder", list_decoders())
@pytest.mark.parametrize("backbone", ["b8", "l2"])
def test_huge_variants_take_every_decoder(backbone, decoder, output_stride, strides):
    with torch.device("meta"):  # shapes only: no memory, no arithmetic
        model = build_model(backbone, decoder, num_classes=3, output_stride=output_stride)
        assert model(torch.empty(1, 3, 64, 96)).shape == (1, 3, 64, 96)
    assert model.encoder.strides == strides


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("backbone", BACKBONES)
def test_logits_shape_and_backward(backbone, decoder):
    torch.manual_seed(0)
    model = build_model(backbone, decoder, num_classes=3)
    logits = model(torch.randn(1, 3, 64, 64))
    assert logits.shape == (1, 3, 64, 64)
    logits.square().mean().backward()
    grads = [p.grad for p in model.encoder.parameters()]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 256, 256)).shape == (2, 3, 256, 256)


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("backbone", ["efficientnet-b0", "resnet50"])
def test_non_square_inputs(backbone, decoder):
    model = build_model(backbone, decoder, num_classes=3).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 96, 160)).shape == (1, 3, 96, 160)


def test_decoder_channels_follow_the_encoder():
    for backbone in ("b0", "b4", "resnet50"):
        model = build_model(backbone, "unet")
        skips = model.encoder.out_channels[::-1][1:]
        first_convs = [block.convs[0][0] for block in model.decoder.blocks]
        assert first_convs[0].in_channels == model.encoder.out_channels[-1] + skips[0]
        assert [c.in_channels - prev.out_channels for prev, c in pairwise(first_convs)] == skips[1:] + [0]
        fpn = build_model(backbone, "fpn")
        assert [lat.in_channels for lat in fpn.decoder.lateral] == model.encoder.out_channels[1:]


@pytest.mark.parametrize("backbone", ["efficientnet-b0", "resnet50"])
@pytest.mark.parametrize("output_stride,strides", [(16, [2, 4, 8, 16, 16]), (8, [2, 4, 8, 8, 8])])
def test_output_stride_dilates(backbone, output_stride, strides):
    encoder = build_encoder(backbone, output_stride=output_stride)
    assert encoder.strides == strides
    taps = encoder(torch.randn(1, 3, 64, 64))
    assert [64 // t.shape[-1] for t in taps] == strides
    for decoder in DECODERS:
        model = build_model(backbone, decoder, output_stride=output_stride)
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 2, 64, 64)


@pytest.mark.parametrize("backbone,first", [("efficientnet-b0", 1), ("resnet50", 0)])
def test_fourth_zero_band_gives_the_rgb_features(tmp_path, backbone, first):
    """A pretrained RGB stem fitted to 4 bands: with the 4th band zero the features are exactly RGB's."""
    torch.manual_seed(0)
    reference = build_encoder(backbone).eval()
    path = tmp_path / "rgb.pth"
    if backbone == "resnet50":
        torch.save(torchvision.models.resnet50().state_dict(), path)
    else:
        torch.save(torchvision.models.efficientnet_b0().state_dict(), path)
    rgb = build_encoder(backbone, weights=path).eval()
    four = build_encoder(backbone, in_channels=4, weights=path).eval()
    grey = build_encoder(backbone, in_channels=1, weights=path).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = rgb(x)
        for a, b in zip(four(torch.cat([x, torch.zeros(1, 1, 64, 64)], 1)), expected, strict=True):
            assert torch.equal(a, b)
        # One band: the sum of the RGB filters, so a grey image responds as the RGB image with equal bands.
        g = x[:, :1]
        for a, b in zip(grey(g), rgb(g.expand(-1, 3, -1, -1)), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    assert not torch.equal(reference(x)[first], expected[first])  # the file really was loaded


def test_adapt_stem():
    w = torch.randn(8, 3, 3, 3)
    assert torch.equal(adapt_stem(w, 3), w)
    assert torch.equal(adapt_stem(w, 5)[:, :3], w) and adapt_stem(w, 5)[:, 3:].abs().sum() == 0
    assert torch.allclose(adapt_stem(w, 1)[:, 0], w.sum(1))


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(UnknownNameError, match="efficientnet-b0.*resnet50"):
        build_model("efficientnet-b9")
    with pytest.raises(UnknownNameError, match="unet, unet-lite, fpn"):
        build_model("b0", decoder="deeplab")
    assert build_encoder("B3").out_channels == build_encoder("efficientnet-b3").out_channels
    assert build_encoder("efficientnet-phi0").out_channels == build_encoder("b0").out_channels


def test_bad_sizes_name_the_nearest_valid_ones():
    model = build_model("b0")
    with pytest.raises(InputSizeError, match=r"100 x 70 px.*96 or 128 x 64 or 96"):
        model(torch.randn(1, 3, 100, 70))
    with pytest.raises(InputSizeError, match=r"use 32 x 64"):
        model(torch.randn(1, 3, 20, 64))
