"""Per-building (object) metrics: the SpaceNet matching protocol on polygons.

- `objects`: `match(pred, truth, match_iou) -> MatchResult`, the greedy one-to-one matching, and the
  equal-area projection the IoUs are computed in;
- `vectors`: polygons and scoring areas read from GeoJSON (any declared CRS), GeoPackage, tile folders;
- `score`: GeoJSON against GeoJSON (`rs-effnet score`);
- `buildings`: polygons of predicted and label masks, made as `rs-effnet features` makes them, matched
  (the per-building part of `rs-effnet eval`).
"""

from robosat_effnet.evaluation.objects import MatchResult, match

__all__ = ["MatchResult", "match"]
