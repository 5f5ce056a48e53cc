"""The final model's outlines plus the cross-region model's where the final model has none (issue 28):
lost_roofs.py found the cross-region model half-seeing large roofs that the local fine-tune teaches away, so its
outlines of at least --min-area m2 that touch no outline of the final model are added, and the sum scored on the
rest tiles as exp_post.py scores (the final model's outlines of 5 m2 or more, truth at 2 m2, IoU 0.5).

    python union_cross.py FINAL_POST CROSS_POST [--threshold 0.5] [--cross-threshold 0.7]
    e.g. post-b-ust2-common-s0 post-b-cross-common   # two exp_post.py folders scored on the same rest tiles
"""
import argparse
from pathlib import Path

from robosat_effnet.evaluation.buildings import mask_polygons
from robosat_effnet.scoring.objects import equal_area_crs, match, project
from robosat_effnet.vectorize.features import mask_features


def outlines(post: Path, threshold: str) -> list:
    return mask_features(post / f"masks-rest-{threshold}-0", {1: "building"}, min_area=0.0, progress=False).features


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("final", type=Path)
    p.add_argument("cross", type=Path)
    p.add_argument("--threshold", default="0.5")
    p.add_argument("--cross-threshold", default="0.7")
    args = p.parse_args()
    truth = mask_polygons(args.final / "truth-rest", {1: "building"}, min_area=2.0)["building"]
    final = [f for f in outlines(args.final, args.threshold) if f.area_m2 >= 5]
    cross = outlines(args.cross, args.cross_threshold)
    crs = equal_area_crs([f.geometry for f in final], truth)
    truth_p = project(truth, crs)
    final_p = list(project([f.geometry for f in final], crs))
    cross_p = list(project([f.geometry for f in cross], crs))
    for min_area in (None, 5, 20, 40, 80):
        added = [] if min_area is None else [g for f, g in zip(cross, cross_p, strict=True)
                                             if f.area_m2 >= min_area
                                             and not any(g.intersects(h) for h in final_p)]
        r = match(final_p + added, truth_p, 0.5)
        what = "the final model alone" if min_area is None else f"+ cross-region >= {min_area} m2 ({len(added)})"
        print(f"{what}: F1 {r.f1:.3f} ({r.precision:.2f} / {r.recall:.2f}), tp {r.tp} fp {r.fp} fn {r.fn}")


if __name__ == "__main__":
    main()
