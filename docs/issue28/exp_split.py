"""Neighbours apart from the probabilities alone (issue 28, item 4): seeds where the model is sure (p > HI, parts
of at least SEED_PX pixels, optionally eroded), the rest of the mask (LO < p) flooded from them by distance with the
watershed `features` uses for the touching band. Scored as exp_post.py scores (rest tiles, truth at 2 m2).

    python exp_split.py POST_DIR DATA OUT --split blocks-a      # POST_DIR/probs from exp_post.py
"""
import argparse
import csv
import itertools
import shutil
from pathlib import Path

import mercantile
import numpy as np
from PIL import Image
from scipy import ndimage

from robosat_effnet.colors import NODATA_INDEX
from robosat_effnet.data.probabilities import read_probability
from robosat_effnet.evaluation.buildings import mask_polygons
from robosat_effnet.io import write_mask
from robosat_effnet.scoring.objects import equal_area_crs, match, project
from robosat_effnet.tiles import tile_files, tile_path
from robosat_effnet.vectorize.features import mask_features

LOWS = (0.5, 0.7)
HIGHS = (None, 0.85, 0.9, 0.95)
SEED_PX = (0, 20)
ERODE = (0, 1)
MIN_AREAS = (5, 10)


def read_csv(path):
    return {mercantile.Tile(int(x), int(y), int(z)) for x, y, z in csv.reader(path.open())}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("post")
    p.add_argument("data")
    p.add_argument("out")
    p.add_argument("--split", required=True)
    p.add_argument("--subset", default="rest")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    probs = tile_files(Path(args.post) / "probs", {".png"})
    labels = tile_files(Path(args.data) / "validation" / "labels", {".png"})
    tiles = read_csv(Path(args.split) / f"{args.subset}.csv") & set(labels)
    truth = mask_polygons(Path(args.post) / f"truth-{args.subset}", {1: "building"}, min_area=2.0)["building"]
    rows = []
    for lo, hi, seed_px, erode in itertools.product(LOWS, HIGHS, SEED_PX, ERODE):
        if hi is None and (seed_px or erode):
            continue
        masks = out / "masks"
        shutil.rmtree(masks, ignore_errors=True)
        for t in tiles:
            label = np.array(Image.open(labels[t]))
            p_ = read_probability(probs[t])
            mask = (p_ > lo).astype(np.uint8)
            if hi is not None:
                seeds = p_ > hi
                if erode:
                    seeds = ndimage.binary_erosion(seeds, iterations=erode)
                if seed_px:
                    parts, n = ndimage.label(seeds)
                    sizes = ndimage.sum(seeds, parts, index=np.arange(1, n + 1))
                    seeds = np.isin(parts, 1 + np.flatnonzero(sizes >= seed_px))
                mask = np.where(mask == 1, np.where(seeds, 1, 2), 0).astype(np.uint8)
            mask = np.where(label == NODATA_INDEX, NODATA_INDEX, mask).astype(np.uint8)
            write_mask(tile_path(masks, t, "png"), mask, ["#000000", "#ffffff", "#ff0000"])
        report = mask_features(masks, {1: "building"}, min_area=0.0, progress=False,
                               touching=2 if hi is not None else None)
        feats = report.features
        crs = equal_area_crs([f.geometry for f in feats], truth)
        truth_p = project(truth, crs)
        for min_area in MIN_AREAS:
            chosen = [f.geometry for f in feats if f.area_m2 >= min_area]
            r = match(project(chosen, crs), truth_p, 0.5)
            row = {"lo": lo, "hi": hi, "seed_px": seed_px, "erode": erode, "min_area": min_area, "tp": r.tp,
                   "fp": r.fp, "fn": r.fn, "precision": round(r.precision, 4), "recall": round(r.recall, 4),
                   "f1": round(r.f1, 4)}
            rows.append(row)
            print(row, flush=True)
    with (out / "grid.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


if __name__ == "__main__":
    main()
