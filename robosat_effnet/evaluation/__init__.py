"""Evaluation: a checkpoint on labelled tiles, per pixel and per building (the SpaceNet matching protocol).

- `evaluate`: `rs-effnet eval`, tiles predicted as `rs-effnet predict` does and scored against the labels
  through one confusion matrix (the pixel scores are `robosat_effnet.scoring.pixels`, which training's
  validation shares);
- `objects`: `match(pred, truth, match_iou) -> MatchResult`, the greedy one-to-one matching, and the
  equal-area projection the IoUs are computed in;
- `vectors`: polygons and scoring areas read from GeoJSON (any declared CRS), GeoPackage, tile folders;
- `score`: GeoJSON against GeoJSON (`rs-effnet score`);
- `buildings`: polygons of predicted and label masks, made as `rs-effnet features` makes them, matched
  (the per-building part of `rs-effnet eval`).
"""

from robosat_effnet.scoring.objects import MatchResult, match

__all__ = ["MatchResult", "match"]
