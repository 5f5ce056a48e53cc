"""Object-level choices on a trained model's probabilities (issue 28, item 4), scored as the study scores.

    python exp_post.py CHECKPOINT DATA OUT [--split blocks-a]   # DATA/validation/{images,labels}

(probabilities from `predict_tiles(probs=True)`; masks at each threshold, optionally closed; polygons as
`features` makes them with their mean probability; matched at IoU 0.5 in an equal-area CRS). Run from the
study folder of docs/recipe-buildings.md with the project installed.

Writes OUT/grid.csv: for every (subset, threshold, min_area, min_score, fill_holes) the per-building tp/fp/fn/F1
against the label tiles' polygons (truth at min_area 2, as the study).
"""
import argparse
import csv
import itertools
import shutil
import sys
from pathlib import Path

import mercantile
import numpy as np
import shapely
from PIL import Image
from scipy.ndimage import binary_closing

from robosat_effnet.colors import NODATA_INDEX
from robosat_effnet.data.probabilities import read_probability
from robosat_effnet.evaluation.buildings import mask_polygons
from robosat_effnet.io import write_mask
from robosat_effnet.predict import predict_tiles
from robosat_effnet.scoring.objects import equal_area_crs, match, project
from robosat_effnet.tiles import tile_files, tile_path
from robosat_effnet.vectorize.features import mask_features

THRESHOLDS = (0.4, 0.5, 0.6, 0.7)
CLOSINGS = (0, 2)  # px radius of a morphological closing of the mask (joins broken roofs)
MIN_AREAS = (2, 5, 10, 20, 40)
MIN_SCORES = (0.0, 0.6, 0.7, 0.8, 0.9)


def read_csv(path: Path) -> set:
    return {mercantile.Tile(int(x), int(y), int(z)) for x, y, z in csv.reader(path.open())}


def predict_once(checkpoint: str, data: str, out: str, tta: bool = False) -> tuple[Path, dict, Path]:
    """OUT, DATA's validation label tiles and OUT/probs: the checkpoint's probabilities of DATA's validation
    images, predicted on the first run only (OUT/probs.done)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    labels = tile_files(Path(data) / "validation" / "labels", {".png"})
    probs = out / "probs"
    if not (out / "probs.done").exists():
        predict_tiles(checkpoint, Path(data) / "validation" / "images", probs, probs=True, tta=tta, progress=False)
        (out / "probs.done").touch()
    return out, labels, probs


def tile_subsets(labels: dict, split: str | None) -> dict[str, set]:
    """{"all": every label tile} and, with a blocks folder, its "local" and "rest" tiles among them."""
    subsets = {"all": set(labels)}
    if split:
        subsets["local"] = read_csv(Path(split) / "local.csv") & set(labels)
        subsets["rest"] = read_csv(Path(split) / "rest.csv") & set(labels)
    return subsets


def copy_tiles(files: dict, tiles, out: Path) -> Path:
    """Copy `files` {tile: path} of `tiles` (None: all) into the slippy-map folder `out`; returns `out`."""
    for t, path in files.items():
        if tiles is None or t in tiles:
            dest = tile_path(out, t, "png")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, dest)
    return out


def truth_polygons(out: Path, name: str, tiles: set, labels: dict) -> list:
    """The label tiles' building polygons of `tiles` at 2 m2 (as the study), from a copy in OUT/truth-NAME."""
    truth_dir = out / f"truth-{name}"
    if not truth_dir.exists():
        copy_tiles(labels, tiles, truth_dir)
    return mask_polygons(truth_dir, {1: "building"}, min_area=2.0)["building"]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("checkpoint")
    p.add_argument("data")
    p.add_argument("out")
    p.add_argument("--split", default=None, help="blocks folder with local.csv and rest.csv")
    p.add_argument("--tta", action="store_true")
    args = p.parse_args()
    out, labels, probs = predict_once(args.checkpoint, args.data, args.out, args.tta)
    folder = probs  # two classes: the building's probabilities are the folder itself
    prob_tiles = tile_files(folder, {".png"})
    rows = []
    for name, tiles in tile_subsets(labels, args.split).items():
        truth = truth_polygons(out, name, tiles, labels)
        for threshold, closing in itertools.product(THRESHOLDS, CLOSINGS):
            masks = out / f"masks-{name}-{threshold}-{closing}"
            if masks.exists():
                shutil.rmtree(masks)
            for t in tiles:
                label = np.array(Image.open(labels[t]))
                mask = read_probability(prob_tiles[t]) > threshold
                if closing:
                    yy, xx = np.mgrid[-closing:closing + 1, -closing:closing + 1]
                    mask = binary_closing(mask, structure=xx**2 + yy**2 <= closing**2)
                mask = mask.astype(np.uint8)
                mask = np.where(label == NODATA_INDEX, NODATA_INDEX, mask).astype(np.uint8)
                write_mask(tile_path(masks, t, "png"), mask, ["#000000", "#ffffff"])
            report = mask_features(masks, {1: "building"}, min_area=0.0, progress=False,
                                   probabilities={1: folder})
            feats = report.features
            crs = equal_area_crs([f.geometry for f in feats], truth)
            truth_p = project(truth, crs)
            for min_area, min_score, fill in itertools.product(MIN_AREAS, MIN_SCORES, (False, True)):
                chosen = [f.geometry for f in feats if f.area_m2 >= min_area and (f.score or 0) >= min_score]
                if fill:
                    chosen = [shapely.Polygon(g.exterior) if g.geom_type == "Polygon" else g for g in chosen]
                r = match(project(chosen, crs), truth_p, 0.5)
                rows.append({"subset": name, "threshold": threshold, "closing": closing, "min_area": min_area,
                             "min_score": min_score, "fill_holes": fill, "tp": r.tp, "fp": r.fp, "fn": r.fn,
                             "precision": round(r.precision, 4), "recall": round(r.recall, 4),
                             "f1": round(r.f1, 4)})
    with (out / "grid.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    base = [r for r in rows if r["threshold"] == 0.5 and r["closing"] == 0 and r["min_area"] == 2
            and r["min_score"] == 0 and not r["fill_holes"]]
    for r in base:
        print("default", r, file=sys.stderr)


if __name__ == "__main__":
    main()
