"""Models loaded whole (a checkpoint for inference, a classifier from its weights file) are built on the meta
device and given the file's tensors: no random initialisation (half of L2's load time), no draw from the seeded
generator, and each file's values checked for nan/inf once.

Also: a state dict torch.save'd from `weights.load_state_dict` loads back with weights_only=True (a plain dict)."""

import math
import subprocess
import sys
from collections import OrderedDict

import pytest
import torch

from robosat_effnet import models
from robosat_effnet.errors import WeightsError
from robosat_effnet.models.checkpoint import (
    ModelSpec,
    load_checkpoint,
    load_model,
    model_from_checkpoint,
    save_checkpoint,
)
from robosat_effnet.models.fitting import map_state
from robosat_effnet.models.materialise import load_assigned, on_meta


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("variant", ["b0", "lite0", "v2-s"])
def test_a_classifier_from_its_file_draws_nothing_at_random_and_owns_its_tensors(tmp_path, variant):
    torch.manual_seed(0)
    reference = models.efficientnet(variant, num_classes=10).eval()
    path = tmp_path / "weights.pth"
    torch.save({k: v.double() if v.is_floating_point() else v for k, v in reference.state_dict().items()}, path)
    before = torch.random.get_rng_state()
    loaded = models.efficientnet(variant, num_classes=10, weights=path).eval()
    assert torch.equal(torch.random.get_rng_state(), before)  # a random initialisation would have advanced it
    assert all(not t.is_meta for t in [*loaded.parameters(), *loaded.buffers()])
    assert {p.dtype for p in loaded.parameters()} == {torch.float32}  # the model's dtype, not the file's float64
    assert all(p.requires_grad for p in loaded.parameters())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(loaded(x), reference(x), atol=1e-5)


def test_a_checkpoint_loads_without_drawing_and_a_damaged_one_is_still_one_line(tmp_path):
    spec = ModelSpec(tile_size=64)
    torch.manual_seed(0)
    model = models.build_model("efficientnet-b0", "unet", 2).eval()
    path = save_checkpoint(tmp_path / "m.pth", model, spec)
    before = torch.random.get_rng_state()
    loaded, _ = load_model(path)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert _same(loaded, model) and not loaded.training
    data = load_checkpoint(path)
    first = next(iter(data["model"]))
    kept = data["model"][first].clone()
    again, _ = model_from_checkpoint(data, path)
    with torch.no_grad():
        again.state_dict()[first].add_(1)  # the model's tensors are its own: the caller's table stays as it was
    assert torch.equal(data["model"][first], kept)
    state = torch.load(path, weights_only=True)
    del state["model"][next(k for k in state["model"] if k.startswith("decoder."))]
    torch.save(state, tmp_path / "damaged.pth")
    from robosat_effnet.errors import CheckpointError

    with pytest.raises(CheckpointError, match="does not match its own model description.*missing"):
        load_model(tmp_path / "damaged.pth")


def test_load_assigned_gives_a_meta_model_copies_and_a_real_one_loads_as_torch_does():
    def build():
        return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))

    state = build().state_dict()
    meta = on_meta(build)
    assert next(meta.parameters()).is_meta
    load_assigned(meta, state)
    assert all(not t.is_meta for t in meta.state_dict().values())
    assert meta[0].weight.data_ptr() != state["0.weight"].data_ptr()
    real = build()
    load_assigned(real, state)
    assert torch.equal(real[0].weight, state["0.weight"])
    with pytest.raises(RuntimeError):
        load_assigned(on_meta(build), {k: v for k, v in state.items() if k != "1.running_mean"})

    class WithScratch(torch.nn.Module):  # a buffer no state dict holds cannot come from the file: built for real
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 1, 1)
            self.register_buffer("scratch", torch.ones(2), persistent=False)

    assert not on_meta(WithScratch).scratch.is_meta


def test_each_file_is_checked_for_nan_once(tmp_path, monkeypatch):
    path = tmp_path / "weights.pth"
    torch.save(models.efficientnet("b0").state_dict(), path)
    calls = []
    real = torch.isfinite
    monkeypatch.setattr(torch, "isfinite", lambda t: calls.append(1) or real(t))
    models.efficientnet("b0", weights=path)
    floats = sum(1 for v in torch.load(path, weights_only=True).values() if v.is_floating_point())
    assert len(calls) == floats  # once per tensor: load_state_dict checks, map_state takes its word
    calls.clear()
    with pytest.raises(WeightsError, match="nan or infinite"):  # what is not known to be checked still is
        map_state(models.efficientnet("b0"), {"stem.conv.weight": torch.full((1,), math.nan)}, "stem.conv.weight")


def test_loading_a_checkpoint_imports_no_compiler(tmp_path):
    """torch fills a meta tensor's `normal_` through a decomposition that imports torch._dynamo (1.4 s, more than
    B0's whole load): the meta build skips random fills, so predicting with a checkpoint, or checking a weights
    file before a study's runs, never pays for it."""
    model = models.build_model("efficientnet-b0", "unet", 2)
    path = save_checkpoint(tmp_path / "m.pth", model, ModelSpec(tile_size=64))
    weights = tmp_path / "b0.pth"
    torch.save(models.efficientnet("b0").state_dict(), weights)
    shown = "print(sorted(m for m in ('torch._dynamo', 'torchvision') if m in sys.modules))"
    for load in ("from robosat_effnet.models.checkpoint import load_model; load_model(sys.argv[1])",
                 "from robosat_effnet.models.fitting import check_fits; check_fits(sys.argv[2], 'efficientnet-b0')"):
        out = subprocess.run([sys.executable, "-c", f"import sys; {load}; {shown}", str(path), str(weights)],
                             capture_output=True, text=True, check=True)
        assert out.stdout.strip() == "[]", load  # check_fits (every study run) builds on meta too


def test_a_loaded_state_dict_is_a_plain_table_that_saves_and_loads_safely(tmp_path):
    from robosat_effnet.models.weights import load_state_dict

    path = tmp_path / "b0.pth"
    torch.save(models.efficientnet("b0").state_dict(), path)
    state = load_state_dict(path, "efficientnet-b0")
    assert type(state) in (dict, OrderedDict)  # what torch.load gives, no class of ours
    torch.save(state, tmp_path / "again.pth")
    assert torch.load(tmp_path / "again.pth", weights_only=True).keys() == state.keys()
