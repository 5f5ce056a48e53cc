"""Decoder widths as a setting (`decoder_channels`) and the light `unet-lite` decoder."""

import pytest
import torch

from conftest import make_dataset
from robosat_effnet.bench import multiply_adds
from robosat_effnet.config import load_model_config
from robosat_effnet.errors import ConfigError
from robosat_effnet.models import build_model, list_decoders
from robosat_effnet.models.checkpoint import ModelSpec, load_model
from robosat_effnet.models.unet import UNET_CHANNELS, UNET_LITE_CHANNELS


def _widths(model) -> list[int]:
    return [block.convs[1][0].out_channels for block in model.decoder.blocks]


def _unet_macs(encoder_channels, widths, size, num_classes=2) -> float:
    """Multiply-adds of the U-Net decoder's convolutions, by hand: 3x3 convs k*k*cin*cout per output pixel."""
    skips = (list(encoder_channels[::-1][1:]) + [0])[: len(widths)]
    ins = [encoder_channels[-1]] + list(widths[:-1])
    total, side = 0.0, size // 32
    for cin, skip, cout in zip(ins, skips, widths, strict=True):
        side *= 2  # every block works at twice the previous block's resolution
        total += 9 * side * side * ((cin + skip) * cout + cout * cout)
    return total + side * side * widths[-1] * num_classes  # the 1x1 head


def test_decoder_channels_round_trip_through_train_and_checkpoint(tmp_path):
    from robosat_effnet.training.loop import train

    widths = [32, 24, 16, 8, 8]
    data = make_dataset(tmp_path, n_train=4, n_val=2, model={"decoder_channels": widths, "save_every": 100})
    assert load_model_config(data.model_toml).decoder_channels == widths
    result = train(data.dataset_toml, data.model_toml, device="cpu", progress=False)
    model, spec = load_model(result["best"])
    assert spec.decoder_channels == widths
    assert _widths(model) == widths
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 2, 64, 64)


def test_checkpoint_without_decoder_channels_loads_with_default_widths(tmp_path):
    spec = ModelSpec(backbone="efficientnet-b0", decoder="unet")
    model = build_model("b0", "unet")
    old = spec.to_dict()
    del old["decoder_channels"]  # as written before the setting existed
    path = tmp_path / "old.pth"
    torch.save({"format": "robosat_effnet", "version": "0.1.0", "spec": old, "model": model.state_dict()}, path)
    loaded, spec = load_model(path)
    assert spec.decoder_channels is None and _widths(loaded) == list(UNET_CHANNELS)
    for a, b in zip(loaded.state_dict().values(), model.state_dict().values(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("backbone", ["efficientnet-b0", "resnet50"])
def test_unet_lite_builds_from_encoder_channels_and_costs_less(backbone):
    assert "unet-lite" in list_decoders()
    lite, full = build_model(backbone, "unet-lite").eval(), build_model(backbone, "unet").eval()
    channels = lite.encoder.out_channels
    first = lite.decoder.blocks[0].convs[0][0]
    assert first.in_channels == channels[-1] + channels[-2]  # deepest tap + the next skip
    assert _widths(lite) == list(UNET_LITE_CHANNELS)
    with torch.no_grad():
        assert lite(torch.zeros(1, 3, 64, 64)).shape == (1, 2, 64, 64)  # logits upsampled from stride 2
    encoder = multiply_adds(lite.encoder, 128)
    lite_decoder, full_decoder = multiply_adds(lite, 128) - encoder, multiply_adds(full, 128) - encoder
    assert lite_decoder == pytest.approx(_unet_macs(channels, UNET_LITE_CHANNELS, 128), rel=1e-6)
    assert full_decoder == pytest.approx(_unet_macs(channels, UNET_CHANNELS, 128), rel=1e-6)
    assert lite_decoder < 0.75 * full_decoder


@pytest.mark.parametrize("backbone", ["efficientnet-b0", "resnet50"])
def test_unet_lite_trains(backbone):
    torch.manual_seed(0)
    model = build_model(backbone, "unet-lite", num_classes=3).train()
    logits = model(torch.randn(2, 3, 64, 64))
    assert logits.shape == (2, 3, 64, 64) and logits.is_contiguous()
    torch.nn.functional.cross_entropy(logits, torch.randint(0, 3, (2, 64, 64))).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.decoder.parameters())


def test_fpn_decoder_channels():
    model = build_model("b0", "fpn", decoder_channels=[64, 32])
    assert {m.out_channels for m in model.decoder.lateral} == {64}
    assert model.decoder.head.in_channels == 32


@pytest.mark.parametrize("decoder, widths", [("unet", [64, 32, 16]), ("unet", [64, 32, 16, 8, 0]),
                                             ("fpn", [64, 48]), ("fpn", [64, 32, 16])])
def test_bad_decoder_channels_are_config_errors(decoder, widths):
    with pytest.raises(ConfigError, match="decoder_channels"):
        build_model("b0", decoder, decoder_channels=widths)


def test_bad_decoder_channels_in_model_toml(tmp_path):
    path = tmp_path / "model.toml"
    path.write_text("[common]\ndecoder_channels = [64, 'wide']\n")
    with pytest.raises(ConfigError, match="decoder_channels"):
        load_model_config(path)
