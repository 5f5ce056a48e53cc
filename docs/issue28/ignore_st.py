"""Self-training with pseudo-labels of confident pixels only (issue 28, item 2's "confident pixels"): the previous
model's probabilities of the unlabelled tiles become building where p >= --hi, background where p <= --lo, and
no label at all in between (255: left out of the loss), instead of `train --unlabelled`'s hard mask at 0.7 where
every unsure pixel is background. The roofs a fine-tuned model is unsure of are then not taught as ground
(lost_roofs.py: the self-training rounds erase what the fine-tune left half-seen).

A prototype for the measurement, not the package's code: it swaps in a Lovasz loss that skips label 255 and lets
such labels past the dataset check, for this process only.

    python ignore_st.py DATASET.toml ST.toml PREV.pth UNLABELLED OUT [--lo 0.2] [--hi 0.7]
"""
import argparse
import shutil
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

import robosat_effnet.training.loop as loop
from robosat_effnet.config import apply_overrides, load_model_config
from robosat_effnet.data.probabilities import read_probability
from robosat_effnet.predict import predict_tiles
from robosat_effnet.tiles import tile_files
from robosat_effnet.training import losses
from robosat_effnet.training.datasets import Sample

IGNORE = 255


class LovaszIgnoring(nn.Module):
    """losses.LovaszHingeLoss over each image's labelled pixels only (label 255 left out)."""

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        n, c = logits.shape[:2]
        total = logits.sum() * 0
        for i in range(n):
            keep = targets[i].reshape(-1) != IGNORE
            if not keep.any():
                continue
            truth = F.one_hot(targets[i].reshape(-1)[keep], c).T.reshape(1, -1).to(logits.dtype)
            errors = 1 - logits[i].reshape(c, -1)[:, keep].reshape(1, -1) * (2 * truth - 1)
            errors, order = torch.sort(errors, dim=1, descending=True)
            total = total + (F.relu(errors) * losses.jaccard_gradient(torch.gather(truth, 1, order))).sum()
        return total / n


def main() -> None:
    p = argparse.ArgumentParser()
    for name in ("dataset", "model", "prev", "unlabelled", "out"):
        p.add_argument(name)
    p.add_argument("--lo", type=float, default=0.2)
    p.add_argument("--hi", type=float, default=0.7)
    args = p.parse_args()
    out = Path(args.out)
    probs, labels = out.with_name(out.name + ".probs"), out.with_name(out.name + ".confident-labels")
    predict_tiles(args.prev, args.unlabelled, probs, probs=True, progress=False)
    labels.mkdir(exist_ok=True)
    images, samples, counts = tile_files(args.unlabelled), [], np.zeros(3, np.int64)
    for tile, path in sorted(tile_files(probs, {".png"}).items()):
        prob = read_probability(path)
        label = np.full(prob.shape, IGNORE, np.uint8)
        label[prob <= args.lo], label[prob >= args.hi] = 0, 1
        counts += [(label == 0).sum(), (label == 1).sum(), (label == IGNORE).sum()]
        target = labels / f"{tile.z}-{tile.x}-{tile.y}.png"
        Image.fromarray(label).save(target.with_suffix(".tmp.png"), format="PNG")
        shutil.move(target.with_suffix(".tmp.png"), target)
        samples.append(Sample(tile, (Path(images[tile]),), target))
    print(f"{len(samples)} pseudo-labels: background / building / no label {counts / counts.sum()}")
    losses.LOSSES["Lovasz"] = lambda weight, gamma: LovaszIgnoring()
    loop.check_samples = lambda *a, **k: None  # the pseudo-labels' 255 is no class: let it past, this process only
    if not (out / "last.pth").exists():  # from PREV, as `train --unlabelled --weights PREV` does
        model = apply_overrides(load_model_config(args.model), weights=args.prev)
        loop.train(args.dataset, model, checkpoint_dir=out, progress=False, extra_training=samples)


if __name__ == "__main__":
    main()
