"""Scores, below every stage that reports them.

- `pixels`:  per-class IoU, precision, recall and MCC from one confusion matrix (training's validation and
             `rs-effnet eval` share it).
- `objects`: one-to-one matching of predicted and true polygons at an IoU threshold (the SpaceNet protocol),
             in an equal-area projection (`match`, `MatchResult`).
"""
