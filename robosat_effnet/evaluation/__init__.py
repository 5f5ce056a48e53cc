"""Evaluation: a checkpoint on labelled tiles, per pixel and per building (the SpaceNet matching protocol).

- `evaluate`: `rs-effnet eval`, tiles predicted as `rs-effnet predict` does and scored against the labels
  through one confusion matrix (the pixel scores are `robosat_effnet.scoring.pixels`, which training's
  validation shares);
- the matching itself (`match(pred, truth, match_iou) -> MatchResult`, greedy one-to-one, in an equal-area
  projection) is `robosat_effnet.scoring.objects`, re-exported here;
- `vectors`: polygons and scoring areas read from GeoJSON (any declared CRS), GeoPackage, tile folders;
- `score`: GeoJSON against GeoJSON (`rs-effnet score`);
- `buildings`: polygons of predicted and label masks, made as `rs-effnet features` makes them, matched
  (the per-building part of `rs-effnet eval`).
"""

from robosat_effnet.scoring.objects import MatchResult, match

__all__ = ["MatchResult", "match"]
