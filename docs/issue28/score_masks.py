"""Score a folder of mask tiles (e.g. smp_baseline.py's OUT/pred) per building as exp_post.py scores ours.

    python score_masks.py PRED LABELS [--tiles blocks-a-common/rest.csv] [--min-area 5] [--json OUT.json]

Truth: the label tiles' polygons at 2 m2 (as the study); predictions: polygons of at least --min-area m2; one-to-one
matches at IoU >= 0.5 in an equal-area CRS. --tiles: only those tiles (x,y,z per line) of both.
"""
import argparse
import csv
import json
import shutil
import tempfile
from pathlib import Path

import mercantile

from robosat_effnet.evaluation.buildings import mask_polygons
from robosat_effnet.scoring.objects import equal_area_crs, match, project
from robosat_effnet.tiles import tile_files, tile_path


def subset(folder: str, tiles: set | None, out: Path) -> Path:
    for tile, path in tile_files(folder, {".png"}).items():
        if tiles is None or tile in tiles:
            dest = tile_path(out, tile, "png")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, dest)
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("pred")
    p.add_argument("labels")
    p.add_argument("--tiles", default=None)
    p.add_argument("--min-area", type=float, default=5.0)
    p.add_argument("--json", default=None, help="also write the scores here (plot.py reads them)")
    args = p.parse_args()
    tiles = None
    if args.tiles:
        tiles = {mercantile.Tile(int(x), int(y), int(z)) for x, y, z in csv.reader(open(args.tiles))}
    with tempfile.TemporaryDirectory() as tmp:
        pred = mask_polygons(subset(args.pred, tiles, Path(tmp) / "pred"), {1: "building"}, min_area=args.min_area)
        truth = mask_polygons(subset(args.labels, tiles, Path(tmp) / "truth"), {1: "building"}, min_area=2.0)
    pred, truth = pred["building"], truth["building"]
    crs = equal_area_crs(pred, truth)
    r = match(project(pred, crs), project(truth, crs), 0.5)
    print(f"{args.pred}: F1 {r.f1:.3f} (precision {r.precision:.2f} / recall {r.recall:.2f}; tp {r.tp} fp {r.fp} "
          f"fn {r.fn})")
    if args.json:
        Path(args.json).write_text(json.dumps({"tiles": args.tiles, "min_area": args.min_area, **r.as_dict()}))


if __name__ == "__main__":
    main()
