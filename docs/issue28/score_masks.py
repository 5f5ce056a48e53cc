"""Score a folder of mask tiles (e.g. smp_baseline.py's OUT/pred) per building as exp_post.py scores ours.

    python score_masks.py PRED LABELS [--tiles blocks-a-common/rest.csv] [--min-area 5] [--json OUT.json]

Truth: the label tiles' polygons at 2 m2 (as the study); predictions: polygons of at least --min-area m2; one-to-one
matches at IoU >= 0.5 in an equal-area CRS. --tiles: only those tiles (x,y,z per line) of both. Run with
exp_post.py beside it (its tile list reader and copy are this script's).
"""
import argparse
import json
import tempfile
from pathlib import Path

from exp_post import copy_tiles, read_csv

from robosat_effnet.evaluation.buildings import mask_polygons
from robosat_effnet.scoring.objects import equal_area_crs, match, project
from robosat_effnet.tiles import tile_files


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("pred")
    p.add_argument("labels")
    p.add_argument("--tiles", default=None)
    p.add_argument("--min-area", type=float, default=5.0)
    p.add_argument("--json", default=None, help="also write the scores here (plot.py reads them)")
    args = p.parse_args()
    tiles = read_csv(Path(args.tiles)) if args.tiles else None
    with tempfile.TemporaryDirectory() as tmp:
        def polygons(folder: str, name: str, min_area: float) -> list:
            chosen = copy_tiles(tile_files(folder, {".png"}), tiles, Path(tmp) / name)
            return mask_polygons(chosen, {1: "building"}, min_area=min_area)["building"]

        pred = polygons(args.pred, "pred", args.min_area)
        truth = polygons(args.labels, "truth", 2.0)
    crs = equal_area_crs(pred, truth)
    r = match(project(pred, crs), project(truth, crs), 0.5)
    print(f"{args.pred}: F1 {r.f1:.3f} (precision {r.precision:.2f} / recall {r.recall:.2f}; tp {r.tp} fp {r.fp} "
          f"fn {r.fn})")
    if args.json:
        Path(args.json).write_text(json.dumps({"tiles": args.tiles, "min_area": args.min_area, **r.as_dict()}))


if __name__ == "__main__":
    main()
