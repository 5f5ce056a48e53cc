"""Why the buildings a model misses are missed (issue 28): each unmatched true building of an exp_post.py run
(threshold 0.5, rest tiles, outlines of 5 m2 or more) sorted by what the predictions do there, and each false
outline by whether it touches a true building at all.

    python error_kinds.py POST_DIR [--subset rest] [--threshold 0.5] [--min-area 5]

missed: predictions cover under 30% of it; merged: one prediction covers half of it and half of another true
building too; broken: predictions cover half of it but none alone does; shape: the rest (one prediction on it,
IoU under 0.5: its outline is off, or it spills over). Also how many of the missed ones are small (under
--small m2: sheds, latrines, water tanks, the walls of a compound).
"""
import argparse
from pathlib import Path

import shapely

from robosat_effnet.evaluation.buildings import mask_polygons
from robosat_effnet.scoring.objects import equal_area_crs, match, project
from robosat_effnet.vectorize.features import mask_features


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("post")
    p.add_argument("--subset", default="rest")
    p.add_argument("--threshold", default="0.5")
    p.add_argument("--min-area", type=float, default=5.0)
    p.add_argument("--small", type=float, default=10.0)
    args = p.parse_args()
    post = Path(args.post)
    truth = mask_polygons(post / f"truth-{args.subset}", {1: "building"}, min_area=2.0)["building"]
    feats = mask_features(post / f"masks-{args.subset}-{args.threshold}-0", {1: "building"}, min_area=0.0,
                          progress=False).features
    pred = [f.geometry for f in feats if f.area_m2 >= args.min_area]
    crs = equal_area_crs(pred, truth)
    pred, truth = project(pred, crs), project(truth, crs)
    r = match(pred, truth, 0.5)
    matched_pred, matched_truth = {i for i, _, _ in r.matches}, {j for _, j, _ in r.matches}
    kinds = {"missed": 0, "merged": 0, "broken": 0, "shape": 0}
    small = 0
    union = shapely.union_all(pred)
    for j, t in enumerate(truth):
        if j in matched_truth:
            continue
        area = t.area
        covered = t.intersection(union).area / area
        cover = [(t.intersection(a).area / area, i) for i, a in enumerate(pred) if a.intersects(t)]
        best, i = max(cover, default=(0.0, None))
        if covered < 0.3:
            kinds["missed"] += 1
            small += area < args.small
        elif best >= 0.5 and sum(o.intersection(pred[i]).area / o.area >= 0.5 for o in truth) >= 2:
            kinds["merged"] += 1
        elif best < 0.5 and covered >= 0.5:
            kinds["broken"] += 1
        else:
            kinds["shape"] += 1
    false = [a for i, a in enumerate(pred) if i not in matched_pred]
    touching = sum(any(a.intersection(t).area / a.area >= 0.1 for t in truth) for a in false)
    print(f"{post.name}: tp {r.tp} fp {r.fp} fn {r.fn}; misses: " + ", ".join(f"{k} {v}" for k, v in kinds.items())
          + f" (missed under {args.small:g} m2: {small}; true buildings under it: "
          f"{sum(t.area < args.small for t in truth)} of {len(truth)}); false outlines on a true building "
          f"{touching}, elsewhere {len(false) - touching}")


if __name__ == "__main__":
    main()
