"""Where in the recipe the buildings the final model misses were lost (issue 28): for the true buildings of at
least --min-px pixels that the last model covers under 30% of (p > 0.5), how much of them each earlier stage's
probabilities covered. Each stage is an exp_post.py folder (its probs/); the first one's truth-rest tiles are the
buildings looked at.

    python lost_roofs.py FINAL_POST [STAGE_POST ...] [--min-px 400]
    e.g. post-b-ust2-common-s0 post-b-cross-s0 post-b-uft-s0 post-b-ust-common-s0
"""
import argparse
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from robosat_effnet.data.probabilities import read_probability
from robosat_effnet.tiles import tile_files


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("final")
    p.add_argument("stages", nargs="*")
    p.add_argument("--min-px", type=int, default=400)
    args = p.parse_args()
    labels = tile_files(Path(args.final) / "truth-rest", {".png"})
    runs = [*args.stages, args.final]
    probs = {run: tile_files(Path(run) / "probs", {".png"}) for run in runs}
    covered = {run: [] for run in runs}
    for tile, path in labels.items():
        components, n = ndimage.label(np.array(Image.open(path)) == 1)
        if not n:
            continue
        last = read_probability(probs[args.final][tile]) > 0.5
        share = np.asarray(ndimage.mean(last, components, range(1, n + 1)))
        size = np.bincount(components.ravel())[1:]
        lost = 1 + np.flatnonzero((share < 0.3) & (size >= args.min_px))
        for run in runs:
            mask = read_probability(probs[run][tile]) > 0.5
            covered[run] += [float(mask[components == i].mean()) for i in lost]
    print(f"{len(covered[args.final])} true buildings of {args.min_px}+ px missed by {args.final}; "
          "the share of them each stage covered (p > 0.5): "
          + ", ".join(f"{run} {np.mean(v):.2f}" for run, v in covered.items() if v))


if __name__ == "__main__":
    main()
