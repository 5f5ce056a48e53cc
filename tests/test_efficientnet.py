"""Our EfficientNet against torchvision's reference implementation and the paper's Table 2."""

from itertools import pairwise

import pytest
import torch
import torchvision
from torch.utils.flop_counter import FlopCounterMode

from conftest import randomise_batchnorm, relative_error
from robosat_effnet import build_encoder, efficientnet
from robosat_effnet.errors import ConfigError, UnknownNameError
from robosat_effnet.models.scaling import VARIANTS, compound_scaling, round_channels

VARIANT_NAMES = [f"b{i}" for i in range(8)]  # torchvision's; B8, L2 and Lite are tested against timm
# Table 2 of Tan & Le (2019): parameters (millions) and FLOPs (billions of multiply-adds).
PAPER = {"b0": (5.3, 0.39), "b1": (7.8, 0.70), "b2": (9.2, 1.0), "b3": (12, 1.8), "b4": (19, 4.2),
         "b5": (30, 9.9), "b6": (43, 19), "b7": (66, 37)}
# torchvision taps: the last block at each stride is features[1], [2], [3], [5], [7].
TV_TAPS = [1, 2, 3, 5, 7]


@pytest.fixture(scope="module", params=VARIANT_NAMES)
def reference(request, tmp_path_factory):
    """A torchvision EfficientNet with random weights saved as torchvision publishes them."""
    torch.manual_seed(0)
    tv = getattr(torchvision.models, f"efficientnet_{request.param}")()
    randomise_batchnorm(tv)
    path = tmp_path_factory.mktemp("tv") / f"efficientnet_{request.param}.pth"
    torch.save(tv.state_dict(), path)
    return request.param, tv.eval(), path


@torch.no_grad()
def test_classifier_equals_torchvision(reference):
    variant, tv, path = reference
    ours = efficientnet(variant, weights=path).eval()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    assert relative_error(ours(x), tv(x)) < 1e-4
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in tv.parameters())


@torch.no_grad()
def test_encoder_taps_equal_torchvision_features(reference):
    variant, tv, path = reference
    encoder = build_encoder(variant, weights=path).eval()
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    expected, feature = [], x
    for layer in tv.features:
        feature = layer(feature)
        expected.append(feature)
    taps = encoder(x)
    assert encoder.strides == [2, 4, 8, 16, 32]
    assert len(taps) == 5
    for tap, index, stride, channels in zip(taps, TV_TAPS, encoder.strides, encoder.out_channels, strict=True):
        assert tap.shape == expected[index].shape
        assert tap.shape[1] == channels and tap.shape[-1] == 64 // stride
        assert relative_error(tap, expected[index]) < 1e-4


def test_batchnorm_settings_match_published_weights():
    for variant in VARIANT_NAMES:
        with torch.device("meta"):
            ours, tv = efficientnet(variant), getattr(torchvision.models, f"efficientnet_{variant}")()
        bn = next(m for m in ours.modules() if isinstance(m, torch.nn.BatchNorm2d))
        ref = next(m for m in tv.modules() if isinstance(m, torch.nn.BatchNorm2d))
        assert (bn.eps, bn.momentum) == (ref.eps, ref.momentum)
        assert (bn.eps, bn.momentum) == ((1e-3, 0.01) if variant in ("b5", "b6", "b7") else (1e-5, 0.1))


def multiply_adds(model: torch.nn.Module, resolution: int) -> float:
    """Multiply-adds of one forward pass, counted by torch's FlopCounterMode on the meta device (no compute)."""
    model = model.to("meta").eval()
    with FlopCounterMode(display=False) as counter:
        model(torch.empty(1, 3, resolution, resolution, device="meta"))
    return counter.get_total_flops() / 2


@pytest.mark.parametrize("variant", VARIANT_NAMES)
def test_size_and_cost_match_torchvision_metadata_and_paper(variant):
    meta = getattr(torchvision.models, f"EfficientNet_{variant.upper()}_Weights").IMAGENET1K_V1
    with torch.device("meta"):
        model = efficientnet(variant)
    params = sum(p.numel() for p in model.parameters())
    assert abs(params - meta.meta["num_params"]) / meta.meta["num_params"] < 0.01
    # torchvision measured its GFLOPS at its evaluation crop size.
    crop = meta.transforms().crop_size[0]
    assert abs(multiply_adds(model, crop) / 1e9 - meta.meta["_ops"]) / meta.meta["_ops"] < 0.01
    # The paper's Table 2 at the paper's resolution (its FLOPs count a few ops differently: within 6%).
    paper_params, paper_flops = PAPER[variant]
    assert abs(params / 1e6 - paper_params) / paper_params < 0.06
    assert abs(multiply_adds(model, VARIANTS[variant].resolution) / 1e9 - paper_flops) / paper_flops < 0.06


def test_resnet50_cost_matches_torchvision_metadata():
    meta = torchvision.models.ResNet50_Weights.IMAGENET1K_V1.meta
    with torch.device("meta"):
        model = torchvision.models.resnet50()
        encoder = build_encoder("resnet50")
    encoder_params = sum(p.numel() for p in encoder.parameters())
    assert encoder_params == meta["num_params"] - 2048 * 1000 - 1000  # all but the fc layer
    assert abs(multiply_adds(model, 224) / 1e9 - meta["_ops"]) / meta["_ops"] < 0.01


def test_b0_is_about_5x_smaller_and_11x_cheaper_than_resnet50():
    with torch.device("meta"):
        b0, r50 = efficientnet("b0"), torchvision.models.resnet50()
    ratio_params = sum(p.numel() for p in r50.parameters()) / sum(p.numel() for p in b0.parameters())
    ratio_flops = multiply_adds(r50, 224) / multiply_adds(b0, 224)
    assert 4.5 < ratio_params < 5.2
    assert 10 < ratio_flops < 11.5


def test_compound_coefficient():
    s = compound_scaling(0)
    assert (s.width, s.depth, s.resolution) == (1.0, 1.0, 224)
    s = compound_scaling(1.5)
    assert s.depth == pytest.approx(1.2**1.5) and s.width == pytest.approx(1.1**1.5)
    assert s.resolution == 224 * 1.15**1.5 // 8 * 8 or abs(s.resolution - 224 * 1.15**1.5) <= 4
    model = efficientnet(phi=1.5)
    assert model.stem.conv.out_channels == round_channels(32, 1.1**1.5) == 40
    assert all(m.out_channels % 8 == 0 for m in model.modules() if isinstance(m, torch.nn.Conv2d)
               and m.groups == 1 and m.kernel_size == (1, 1) and m.out_channels != 1000 and m.bias is None)
    # Depth: ceil(repeats * 1.2^1.5) blocks per stage.
    assert [len(s) for s in model.stages] == [2, 3, 3, 4, 4, 6, 2]
    with pytest.raises(ConfigError):
        compound_scaling(-1)


def test_stochastic_depth_grows_linearly_and_acts_only_in_training():
    model = efficientnet("b0")
    rates = [block.drop.p for stage in model.stages for block in stage]
    assert rates[0] == 0.0 and rates[-1] == pytest.approx(0.2 * 15 / 16)
    assert all(b > a for a, b in pairwise(rates))
    block = model.stages[-2][-1]
    assert block.residual
    x = torch.randn(64, block.project.conv.out_channels, 4, 4)
    block.drop.p = 0.5
    block.drop.train()
    dropped = block.drop(x)
    kept = (dropped != 0).flatten(1).any(1)
    assert 10 < kept.sum() < 54  # about half the samples survive
    assert torch.allclose(dropped[kept], x[kept] * 2)
    block.drop.eval()
    assert torch.equal(block.drop(x), x)


def test_variant_names():
    assert efficientnet("efficientnet-b1").stem.conv.out_channels == 32
    with pytest.raises(ConfigError, match="b0, b1.*lite4"):
        efficientnet("b9")
    with pytest.raises(UnknownNameError):
        efficientnet()
