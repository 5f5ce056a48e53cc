"""Score a model with a rim class (edge_labels.py) per building, split along the rim or not (issue 28).

    python exp_edge.py CHECKPOINT DATA OUT [--split blocks-a-common]   # DATA/validation/{images,labels}: 2 classes

A building pixel is one whose background probability is below 1 - T (roof and rim together reach T); the seeds
are the building pixels where the roof's probability reaches S ("argmax": roof above rim), and the rest of the
building goes to the nearest seed (`vectorize.split`, as `features` splits along a "touching" band). "none": no
split, the buildings as one mask (what a two-class model gives). Truth: the two-class label tiles' polygons at
2 m2; matching as the study (IoU 0.5, equal-area CRS). Writes OUT/grid.csv, one row per subset and setting.
Run from the study folder with exp_post.py beside it (its subsets and truth are this script's).
"""
import argparse
import csv
import itertools
import shutil

import numpy as np
from exp_post import predict_once, tile_subsets, truth_polygons
from PIL import Image

from robosat_effnet.colors import NODATA_INDEX
from robosat_effnet.data.probabilities import read_probability
from robosat_effnet.io import write_mask
from robosat_effnet.scoring.objects import equal_area_crs, match, project
from robosat_effnet.tiles import tile_files, tile_path
from robosat_effnet.vectorize.features import mask_features

THRESHOLDS = (0.5, 0.6, 0.7)
SEEDS = ("none", "argmax", 0.5, 0.7)
MIN_AREAS = (2, 5, 10)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("checkpoint")
    p.add_argument("data")
    p.add_argument("out")
    p.add_argument("--split", default=None)
    args = p.parse_args()
    out, labels, probs = predict_once(args.checkpoint, args.data, args.out)
    background, roof = tile_files(probs / "background", {".png"}), tile_files(probs / "building", {".png"})
    rim = tile_files(probs / "touching", {".png"})
    # each tile's label and probabilities, read once for the whole grid
    tiles_read = {t: (np.array(Image.open(labels[t])), read_probability(background[t]), read_probability(roof[t]),
                      read_probability(rim[t])) for t in labels}
    rows = []
    for name, tiles in tile_subsets(labels, args.split).items():
        truth = truth_polygons(out, name, tiles, labels)
        for threshold, seed in itertools.product(THRESHOLDS, SEEDS):
            masks = out / "masks"
            if masks.exists():
                shutil.rmtree(masks)
            for t in tiles:
                label, p_bg, p_roof, p_rim = tiles_read[t]
                building = 1 - p_bg >= threshold
                if seed == "none":
                    mask = building.astype(np.uint8)
                else:
                    core = p_roof >= p_rim if seed == "argmax" else p_roof >= seed
                    mask = np.where(building, np.where(core, 1, 2), 0).astype(np.uint8)
                mask = np.where(label == NODATA_INDEX, NODATA_INDEX, mask).astype(np.uint8)
                write_mask(tile_path(masks, t, "png"), mask, ["#000000", "#ffffff", "#ff0000"])
            touching = None if seed == "none" else 2
            feats = mask_features(masks, {1: "building", 2: "touching"} if touching else {1: "building"},
                                  min_area=0.0, progress=False, touching=touching).features
            crs = equal_area_crs([f.geometry for f in feats], truth)
            truth_p = project(truth, crs)
            for min_area in MIN_AREAS:
                chosen = [f.geometry for f in feats if f.area_m2 >= min_area]
                r = match(project(chosen, crs), truth_p, 0.5)
                rows.append({"subset": name, "threshold": threshold, "seed": seed, "min_area": min_area,
                             "tp": r.tp, "fp": r.fp, "fn": r.fn, "precision": round(r.precision, 4),
                             "recall": round(r.recall, 4), "f1": round(r.f1, 4)})
    with (out / "grid.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    for r in rows:
        if r["subset"] == "rest" and r["min_area"] == 5:
            print(r)


if __name__ == "__main__":
    main()
