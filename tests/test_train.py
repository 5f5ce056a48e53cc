"""The trainer: a tiny model learns, checkpoints are complete and safe to load, resume is exact, DDP works."""

import math
import os
import subprocess
import sys
import textwrap
from itertools import pairwise
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from conftest import make_dataset
from robosat_effnet.config import load_dataset_config
from robosat_effnet.models import build_model
from robosat_effnet.models.checkpoint import load_model
from robosat_effnet.scoring.pixels import confusion_matrix, scores
from robosat_effnet.training.datasets import SegmentationTiles, find_samples
from robosat_effnet.training.history import read_csv
from robosat_effnet.training.loop import train
from robosat_effnet.training.optim import lr_factor

ROOT = Path(__file__).parents[1]


pytestmark = pytest.mark.usefixtures("one_thread")


def test_tiny_model_learns(trained_run):
    data = trained_run["dataset"]
    model, spec = load_model(trained_run["checkpoint"])
    config = load_dataset_config(data.dataset_toml)
    tiles = SegmentationTiles.from_config(config, find_samples(config, "validation"))
    images = torch.stack([tiles[i][0] for i in range(len(tiles))])
    labels = torch.stack([tiles[i][1] for i in range(len(tiles))])
    with torch.no_grad():
        predicted = model(images).argmax(1)
    s = scores(confusion_matrix(predicted, labels, 2))
    background = scores(confusion_matrix(torch.zeros_like(labels), labels, 2))  # the all-background baseline
    assert background["iou"][1] == 0.0
    assert s["iou"][1] > 0.5, s
    assert s["miou"] > background["miou"] + 0.2
    assert s["mcc"] > 0.5
    assert trained_run["result"]["best_miou"] == pytest.approx(s["miou"], abs=1e-6)
    assert spec.classes == ["background", "building"] and spec.tile_size == 64


def test_checkpoint_is_complete_and_loads_safely(trained_run):
    result = trained_run["result"]
    folder = result["checkpoint_dir"]
    epochs = len(result["history"])
    # keep = 0 (the default): no numbered epoch files, only what resume and predict need
    assert {"best.pth", "last.pth", "history.csv", "history.png"} == {p.name for p in folder.iterdir()}
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temp files left behind
    state = torch.load(folder / "last.pth", map_location="cpu", weights_only=True)
    for key in ("spec", "model", "optimizer", "scheduler", "scaler", "epoch", "rng", "metrics", "history",
                "best_miou", "model_config", "dataset_config", "version"):
        assert key in state, key
    assert state["epoch"] == epochs and state["spec"]["backbone"] == "efficientnet-b0"
    assert state["model_config"]["loss"] == "CrossEntropy"
    assert set(state["rng"]) == {"torch", "cuda", "numpy", "python"}
    assert sum(map(sum, state["metrics"]["confusion"])) == 8 * 64 * 64  # every validation pixel once
    rows = read_csv(folder / "history.csv")
    assert [r["epoch"] for r in rows] == list(range(1, epochs + 1))
    assert {"train_loss", "val_loss", "val_miou", "val_mcc", "val_iou_building", "lr"} <= set(rows[0])
    assert rows[-1]["val_miou"] == pytest.approx(state["metrics"]["miou"])
    assert (folder / "history.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_lr_schedule_warms_up_then_decays():
    factors = [lr_factor(step, total=10, warmup=4) for step in range(10)]
    assert factors[:4] == pytest.approx([0.2, 0.4, 0.6, 0.8])
    assert factors[4] == 1.0 and all(a > b for a, b in pairwise(factors[4:]))
    assert factors[9] == pytest.approx(0.5 * (1 + math.cos(math.pi * 5 / 6)))


def test_resume_is_exact(tmp_path):
    data = make_dataset(tmp_path, n_train=4, n_val=2, size=32, model={"epochs": 2, "batch_size": 2,
                                                                      "warmup": 0.5, "jitter": 0.1})
    straight = train(data.dataset_toml, data.model_toml, checkpoint_dir=tmp_path / "a", progress=False)
    first = train(data.dataset_toml, data.model_toml, checkpoint_dir=tmp_path / "b", progress=False, stop_after=1)
    assert first["epochs_done"] == 1 and not (tmp_path / "b" / "checkpoint-00002.pth").exists()
    resumed = train(data.dataset_toml, data.model_toml, checkpoint_dir=tmp_path / "b", progress=False,
                    resume=tmp_path / "b" / "last.pth")
    a = torch.load(tmp_path / "a" / "last.pth", weights_only=True)
    b = torch.load(tmp_path / "b" / "last.pth", weights_only=True)
    assert a["epoch"] == b["epoch"] == 2
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert a["scheduler"]["last_epoch"] == b["scheduler"]["last_epoch"] == 4
    for row, again in zip(straight["history"], resumed["history"], strict=True):
        for key in row.keys() - {"seconds"}:
            assert row[key] == again[key] or (math.isnan(row[key]) and math.isnan(again[key])), key
    assert read_csv(tmp_path / "b" / "history.csv")[0]["epoch"] == 1  # the history continues, not restarts


def test_two_processes_with_gloo(tmp_path):
    """Two gloo ranks hold the same weights after training, and those equal one process stepping on the global
    batch (each rank's half through the network with its own BatchNorm statistics, gradients averaged)."""
    data = make_dataset(tmp_path, n_train=8, n_val=3, size=32, model={"epochs": 1, "batch_size": 2})
    script = tmp_path / "run.py"
    # Each rank records the batches it trained on (with the global RNG state before each forward, which
    # stochastic depth draws from) and its final parameters.
    script.write_text(textwrap.dedent(f"""
        import os
        import torch
        torch.set_num_threads(1)
        from robosat_effnet.cli import main
        from robosat_effnet.training.engine import Engine

        original, record = Engine.train_one_epoch, {{"batches": [], "rng": []}}

        def recording(self, model, loader, *args, **kwargs):
            def batches():
                for images, labels in loader:
                    record["batches"].append((images.clone(), labels.clone()))
                    record["rng"].append(torch.get_rng_state())
                    yield images, labels
            out = original(self, model, batches(), *args, **kwargs)
            net = getattr(model, "module", model)
            record["params"] = {{k: v.detach().clone() for k, v in net.named_parameters()}}
            torch.save(record, f"rank{{os.environ['RANK']}}.pt")
            return out

        Engine.train_one_epoch = recording
        main(["train", "--dataset", {str(data.dataset_toml)!r}, "--model", {str(data.model_toml)!r},
              "--device", "cpu", "--quiet"])
    """))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    folder = tmp_path / "checkpoints"
    state = torch.load(folder / "last.pth", weights_only=True)
    assert state["world_size"] == 2
    # validation metrics are summed over ranks: each of the 3 tiles counted once, not 2 or 4
    assert sum(map(sum, state["metrics"]["confusion"])) == 3 * 32 * 32
    # 8 tiles, 2 ranks, batch 2: 2 steps per rank
    assert state["scheduler"]["last_epoch"] == 2
    assert len(read_csv(folder / "history.csv")) == 1

    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    for name, value in ranks[0]["params"].items():
        assert torch.equal(value, ranks[1]["params"][name]), name  # DDP keeps the replicas identical
    seen = [tuple(torch.cat([b[0] for b in rank["batches"]]).flatten(1).sum(1).tolist()) for rank in ranks]
    assert not set(seen[0]) & set(seen[1])  # the ranks trained on different tiles

    # One process, the same global batches, by hand: AdamW (decay on weights only), no warm-up, cosine over
    # 2 steps (lr factors 1, then 0.5), gradient norm clipped to 1, the mean of the two ranks' losses.
    # One thread, as the ranks: CPU dropout/stochastic-depth draws depend on the thread count, and AdamW's first
    # steps (about lr * sign(gradient)) would turn float-level differences into lr-sized ones.
    assert torch.get_num_threads() == 1
    config = load_dataset_config(data.dataset_toml)
    torch.manual_seed(0)
    model = build_model("efficientnet-b0", "unet", 2, 3).train()
    start = {k: v.detach().clone() for k, v in model.named_parameters()}
    decay = [p for p in model.parameters() if p.ndim > 1]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 1e-4},
                                   {"params": [p for p in model.parameters() if p.ndim <= 1], "weight_decay": 0.0}],
                                  lr=3e-3, foreach=True)
    weight = torch.tensor(config.weights)
    for step, factor in enumerate((1.0, 0.5)):
        optimizer.zero_grad()
        for rank in ranks:
            images, labels = rank["batches"][step]
            torch.set_rng_state(rank["rng"][step])
            (F.cross_entropy(model(images), labels, weight=weight) / 2).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        for group in optimizer.param_groups:
            group["lr"] = 3e-3 * factor
        optimizer.step()
    moved = 0
    for name, value in model.named_parameters():
        torch.testing.assert_close(ranks[0]["params"][name], value.detach(), atol=1e-6, rtol=0, msg=name)
        moved += (value - start[name]).abs().max().item() > 1e-4
    assert moved > 100  # the step moved (nearly) every tensor by far more than the tolerance


@pytest.mark.parametrize("loss", ["Focal", "mIoU", "Lovasz", "Dice"])
def test_four_band_tifs_three_classes_and_every_loss_train_and_predict(tmp_path, loss):
    """RGB + NIR uint16 GeoTIFF tiles, three classes, each loss: a run, a checkpoint that says so, masks."""
    import numpy as np

    from robosat_effnet.io import read_image, read_label, write_image
    from robosat_effnet.predict import predict_tiles

    data = make_dataset(tmp_path, n_train=4, n_val=2, size=32, num_classes=3, ext="tif",
                        model={"epochs": 1, "batch_size": 2, "loss": loss},
                        dataset={"in_channels": 4, "mean": [0.4] * 4, "std": [0.2] * 4, "max_value": 255})
    for path in data.root.rglob("images/*/*/*.tif"):
        rgb = read_image(path).astype(np.uint16)
        write_image(path, np.concatenate([rgb, rgb[..., :1] // 2], axis=-1))  # a 4th, "NIR" band
    result = train(data.dataset_toml, data.model_toml, device="cpu", progress=False)
    model, spec = load_model(result["last"])
    assert (spec.in_channels, spec.num_classes, spec.max_value) == (4, 3, 255)
    assert model.encoder.stem.conv.in_channels == 4
    assert math.isfinite(result["history"][0]["train_loss"])
    out = predict_tiles(result["last"], data.root / "validation" / "images", tmp_path / "masks", border=0,
                        progress=False)
    assert out.written == 2
    for path in (tmp_path / "masks").rglob("*.png"):
        assert read_label(path).max() < 3
