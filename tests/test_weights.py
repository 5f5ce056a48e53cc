"""Weights: torchvision files, our own checkpoints, the ImageNet cache, and what happens offline."""

import urllib.error
from pathlib import Path

import pytest
import torch
import torchvision

from robosat_effnet import build_encoder, build_model, efficientnet
from robosat_effnet.errors import WeightsError
from robosat_effnet.models.checkpoint import ModelSpec, save_checkpoint
from robosat_effnet.models.weights import torchvision_weights


@pytest.fixture(scope="module")
def tv_b0(tmp_path_factory):
    torch.manual_seed(0)
    model = torchvision.models.efficientnet_b0().eval()
    path = tmp_path_factory.mktemp("w") / "efficientnet_b0.pth"
    torch.save(model.state_dict(), path)
    return model, path


@torch.no_grad()
def test_resnet50_taps_equal_torchvision(tmp_path):
    torch.manual_seed(0)
    tv = torchvision.models.resnet50().eval()
    path = tmp_path / "resnet50.pth"
    torch.save(tv.state_dict(), path)
    encoder = build_encoder("resnet50", weights=path).eval()
    x = torch.randn(1, 3, 64, 64)
    stem = tv.relu(tv.bn1(tv.conv1(x)))
    l1 = tv.layer1(tv.maxpool(stem))
    l2 = tv.layer2(l1)
    l3 = tv.layer3(l2)
    expected = [stem, l1, l2, l3, tv.layer4(l3)]
    for tap, ref in zip(encoder(x), expected, strict=True):
        assert torch.equal(tap, ref)


@torch.no_grad()
def test_own_checkpoint_and_plain_state_dict_load(tv_b0, tmp_path):
    tv, path = tv_b0
    model = build_model("b0", weights=path).eval()
    checkpoint = save_checkpoint(tmp_path / "ckpt.pth", model, ModelSpec())
    again = build_encoder("b0", weights=checkpoint).eval()
    x = torch.randn(1, 3, 64, 64)
    for a, b in zip(again(x), model.encoder(x), strict=True):
        assert torch.equal(a, b)
    plain = tmp_path / "ours.pth"
    torch.save(efficientnet("b0", weights=path).state_dict(), plain)
    assert torch.equal(efficientnet("b0", weights=plain).eval()(x), tv(x))


def test_imagenet_comes_from_the_torch_hub_cache(tv_b0, tmp_path, monkeypatch):
    """With the file torchvision publishes already in $TORCH_HOME, 'imagenet' loads it without a download."""
    tv, path = tv_b0
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    url = torchvision_weights("efficientnet-b0").url
    cached = tmp_path / "hub" / "checkpoints" / Path(url).name
    cached.parent.mkdir(parents=True)
    cached.write_bytes(path.read_bytes())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(efficientnet("b0", weights="imagenet").eval()(x), tv(x))


def test_imagenet_offline_names_the_url_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("network unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(WeightsError) as info:
        build_encoder("b4", weights="imagenet")
    message = str(info.value)
    assert torchvision_weights("efficientnet-b4").url in message
    assert "--weights" in message and "\n" not in message
    assert not any((tmp_path / "hub" / "checkpoints").glob("*.pth"))


def test_bad_weights_files(tmp_path, tv_b0):
    with pytest.raises(WeightsError, match="does not exist"):
        build_encoder("b0", weights=tmp_path / "missing.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot load"):
        build_encoder("b0", weights=junk)
    with pytest.raises(WeightsError, match="do not fit"):
        build_encoder("b1", weights=tv_b0[1])  # b1 has more blocks than the b0 file
    robosat = tmp_path / "robosat.pth"
    torch.save({"module." + k: v for k, v in torchvision.models.resnet50().state_dict().items()}, robosat)
    with pytest.raises(WeightsError, match="DataParallel"):
        build_encoder("resnet50", weights=robosat)
