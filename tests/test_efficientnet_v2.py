"""Our EfficientNetV2 against torchvision's reference implementation, its published metadata and the paper."""

from pathlib import Path

import pytest
import torch
import torchvision

from conftest import randomise_batchnorm, relative_error
from robosat_effnet import build_encoder, build_model, efficientnet, list_backbones
from robosat_effnet.bench import multiply_adds
from robosat_effnet.errors import ConfigError, UnknownNameError
from robosat_effnet.models.checkpoint import ModelSpec, load_model, save_checkpoint
from robosat_effnet.models.efficientnet import MBConv, SqueezeExcite
from robosat_effnet.models.efficientnet_v2 import V2_VARIANTS, FusedMBConv
from robosat_effnet.models.weights import torchvision_weights

VARIANTS = list(V2_VARIANTS)  # "v2-s", "v2-m", "v2-l"
# torchvision's features: [0] stem, [1..6 or 7] stages, [-1] head conv. The last stage at each stride:
TV_TAPS = {"v2-s": [1, 2, 3, 5, 6], "v2-m": [1, 2, 3, 5, 7], "v2-l": [1, 2, 3, 5, 7]}
# Table 7 of Tan & Le (2021): parameters (millions) and FLOPs (billions) at the evaluation size.
PAPER = {"v2-s": (22, 8.8), "v2-m": (54, 24), "v2-l": (120, 53)}


def torchvision_v2(variant: str, **kwargs) -> torch.nn.Module:
    return getattr(torchvision.models, f"efficientnet_{variant.replace('-', '_')}")(**kwargs)


@torch.no_grad()
def torchvision_taps(tv: torch.nn.Module, variant: str, x: torch.Tensor) -> list[torch.Tensor]:
    """torchvision's `features` outputs at the last stage of each stride."""
    outputs = []
    for layer in tv.features:
        x = layer(x)
        outputs.append(x)
    return [outputs[i] for i in TV_TAPS[variant]]


def torchvision_meta(variant: str):
    return getattr(torchvision.models, f"EfficientNet_{variant.replace('-', '_').upper()}_Weights").IMAGENET1K_V1


@pytest.fixture(scope="module", params=VARIANTS)
def reference(request, tmp_path_factory):
    """A torchvision EfficientNetV2 with random weights and BatchNorm statistics, saved as torchvision publishes it.

    Module-scoped: V2-M and V2-L take seconds to build, so each is built and saved once.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    tv = torchvision_v2(request.param)
    randomise_batchnorm(tv)
    path = tmp_path_factory.mktemp("tv") / f"efficientnet_{request.param}.pth"
    torch.save(tv.state_dict(), path)
    yield request.param, tv.eval(), path
    torch.set_num_threads(threads)
    path.unlink()  # V2-L's file is ~470 MB


@torch.no_grad()
def test_classifier_equals_torchvision(reference):
    variant, tv, path = reference
    ours = efficientnet(variant, weights=path).eval()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    expected = tv(x)
    assert relative_error(ours(x), expected) < 1e-4
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in tv.parameters())


@torch.no_grad()
def test_unet_encoder_taps_equal_torchvision_features(reference):
    variant, tv, path = reference
    model = build_model(variant, "unet", weights=path).eval()
    encoder = model.encoder
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    taps = encoder(x)
    assert encoder.strides == [2, 4, 8, 16, 32] and len(taps) == 5
    for tap, expected, stride, channels in zip(taps, torchvision_taps(tv, variant, x), encoder.strides,
                                               encoder.out_channels, strict=True):
        assert tap.shape == expected.shape
        assert tap.shape[1] == channels and tap.shape[-1] == 64 // stride
        assert relative_error(tap, expected) < 1e-4
    assert model(x).shape == (1, 2, 64, 64)


@pytest.mark.parametrize("variant", VARIANTS)
def test_size_cost_and_blocks_match_torchvision_and_paper(variant):
    meta = torchvision_meta(variant)
    with torch.device("meta"):  # shapes only: nothing is allocated or computed
        ours, tv = efficientnet(variant), torchvision_v2(variant)
    params = sum(p.numel() for p in ours.parameters())
    assert abs(params - meta.meta["num_params"]) / meta.meta["num_params"] < 0.01
    crop = meta.transforms().crop_size[0]  # torchvision's evaluation size: 384 / 480 / 480
    assert crop == V2_VARIANTS[variant].resolution
    macs = multiply_adds(ours, crop) / 1e9
    assert abs(macs - meta.meta["_ops"]) / meta.meta["_ops"] < 0.01
    # The paper rounds its counts (22M, 8.8B...) and counts a few ops differently: within 6%.
    paper_params, paper_flops = PAPER[variant]
    assert abs(params / 1e6 - paper_params) / paper_params < 0.06
    assert abs(macs - paper_flops) / paper_flops < 0.06

    bn = [m for m in ours.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    ref = [m for m in tv.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(bn) == len(ref)
    assert {(m.eps, m.momentum) for m in bn} == {(m.eps, m.momentum) for m in ref} == {(1e-3, 0.1)}
    ours_blocks = [b for stage in ours.stages for b in stage]
    tv_blocks = [b for stage in tv.features[1:-1] for b in stage]
    assert [b.drop.p for b in ours_blocks] == pytest.approx([b.stochastic_depth.p for b in tv_blocks])
    assert [b.residual for b in ours_blocks] == [b.use_res_connect for b in tv_blocks]
    assert [type(b).__name__ for b in ours_blocks] == [type(b).__name__ for b in tv_blocks]
    assert ours.dropout.p == tv.classifier[0].p


def test_fused_blocks_as_the_paper_draws_them():
    model = efficientnet("v2-s")
    first, fused, mbconv = model.stages[0][0], model.stages[1][0], model.stages[3][0]
    # Fused-MBConv1: one 3x3 full convolution (no expand, no depthwise, no squeeze-excitation).
    assert isinstance(first, FusedMBConv) and first.project is None
    convs = [m for m in first.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.kernel_size, c.groups, c.in_channels, c.out_channels) for c in convs] == [((3, 3), 1, 24, 24)]
    # Fused-MBConv4: 3x3 full conv to 4x the width, then the 1x1 projection; stride on the 3x3.
    convs = [m for m in fused.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.kernel_size, c.stride, c.groups, c.out_channels) for c in convs] == [((3, 3), (2, 2), 1, 96),
                                                                                  ((1, 1), (1, 1), 1, 48)]
    assert not any(isinstance(m, SqueezeExcite) for s in model.stages[:3] for m in s.modules())
    # MBConv stages keep depthwise convolutions and squeeze-excitation (SE 0.25 of the block input).
    assert isinstance(mbconv, MBConv) and mbconv.se.reduce.out_channels == 64 // 4
    assert all(isinstance(b, MBConv) for s in model.stages[3:] for b in s)


def test_stochastic_depth_acts_only_in_training():
    block = efficientnet("v2-s").stages[1][-1]
    assert isinstance(block, FusedMBConv) and block.residual and block.drop.p > 0
    x = torch.randn(64, 48, 4, 4)
    block.drop.p = 0.5
    block.drop.train()
    dropped = block.drop(x)
    kept = (dropped != 0).flatten(1).any(1)
    assert 10 < kept.sum() < 54  # about half the samples survive, scaled by 1 / (1 - p)
    assert torch.allclose(dropped[kept], x[kept] * 2)
    block.drop.eval()
    assert torch.equal(block.drop(x), x)


@pytest.fixture(scope="module")
def v2s_file(tmp_path_factory):
    torch.manual_seed(3)
    tv = torchvision_v2("v2-s")
    randomise_batchnorm(tv, seed=3)
    path = tmp_path_factory.mktemp("v2s") / "efficientnet_v2_s.pth"
    torch.save(tv.state_dict(), path)
    return tv.eval(), path


@torch.no_grad()
def test_output_stride_dilates_and_keeps_the_shallow_taps(v2s_file, one_thread):
    tv, path = v2s_file
    x = torch.randn(1, 3, 64, 64)
    plain = torchvision_taps(tv, "v2-s", x)
    for output_stride, decoder, strides, same in ((16, "fpn", [2, 4, 8, 16, 16], 4), (8, "unet", [2, 4, 8, 8, 8], 3)):
        model = build_model("v2-s", decoder, output_stride=output_stride, weights=path).eval()
        assert model.encoder.strides == strides
        taps = model.encoder(x)
        assert [64 // t.shape[-1] for t in taps] == strides
        for a, b in zip(taps[:same], plain[:same], strict=True):  # before the dilated stage: the same network
            assert relative_error(a, b) < 1e-4
        assert model(x).shape == (1, 2, 64, 64)


@torch.no_grad()
def test_extra_zero_band_gives_the_rgb_features(v2s_file, one_thread):
    tv, path = v2s_file
    x = torch.randn(1, 3, 64, 64)
    four = build_encoder("v2-s", in_channels=4, weights=path).eval()
    for a, b in zip(four(torch.cat([x, torch.zeros(1, 1, 64, 64)], 1)), torchvision_taps(tv, "v2-s", x), strict=True):
        assert relative_error(a, b) < 1e-4
    assert four.stem.conv.in_channels == 4


def test_imagenet_comes_from_the_torch_hub_cache(v2s_file, tmp_path, monkeypatch, one_thread):
    """'imagenet' for V2-S loads torchvision's published file name from $TORCH_HOME without a download."""
    tv, path = v2s_file
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    url = torchvision_weights("efficientnet-v2-s").url
    assert url == torchvision.models.EfficientNet_V2_S_Weights.IMAGENET1K_V1.url
    cached = tmp_path / "hub" / "checkpoints" / Path(url).name
    cached.parent.mkdir(parents=True)
    cached.symlink_to(path)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert relative_error(efficientnet("v2-s", weights="imagenet").eval()(x), tv(x)) < 1e-4


def test_checkpoint_rebuilds_a_v2_model(tmp_path, one_thread):
    torch.manual_seed(0)
    model = build_model("v2-s", "fpn", num_classes=3).eval()
    spec = ModelSpec(backbone="efficientnet-v2-s", decoder="fpn", classes=["a", "b", "c"],
                     colors=["denim", "orange", "red"], tile_size=64)
    loaded, loaded_spec = load_model(save_checkpoint(tmp_path / "v2s.pth", model, spec))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded.eval()(x), model(x))
    assert loaded_spec.backbone == "efficientnet-v2-s"


def test_names_and_aliases():
    assert [b for b in list_backbones() if "v2" in b] == ["efficientnet-v2-s", "efficientnet-v2-m",
                                                          "efficientnet-v2-l"]
    with torch.device("meta"):
        for alias in ("v2-s", "V2-S", "efficientnet_v2_s", "efficientnet-v2-s"):
            assert build_encoder(alias).out_channels == [24, 48, 64, 160, 256]
        assert efficientnet("efficientnet_v2_s").head.conv.out_channels == 1280
    with pytest.raises(ConfigError, match="v2-s, v2-m, v2-l"):
        efficientnet("v2-xl")
    with pytest.raises(UnknownNameError, match="efficientnet-v2-s"):
        build_encoder("v2-xl")
