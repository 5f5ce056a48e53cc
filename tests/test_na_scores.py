"""Undefined scores print n/a in every table: a ratio whose denominator is 0 (precision with no prediction, recall
with no truth, F1 with neither) is n/a per building (eval, score) as it is per pixel (eval), not 0.0000.
The JSON keeps 0.0 per building, as solaris and ramp define it.
"""

from __future__ import annotations

import json

import mercantile
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from robosat_effnet.cli import main
from robosat_effnet.evaluation.buildings import format_buildings
from robosat_effnet.evaluation.score import format_table
from robosat_effnet.io import write_image, write_mask
from robosat_effnet.models import build_model
from robosat_effnet.models.checkpoint import ModelSpec, save_checkpoint
from robosat_effnet.scoring.objects import as_shown
from robosat_effnet.tiles import tile_path

COUNTS = [  # tp, fp, fn -> precision, recall, f1 as printed
    ((0, 0, 0), ("n/a", "n/a", "n/a")),
    ((0, 0, 3), ("n/a", "0.0000", "0.0000")),
    ((0, 2, 0), ("0.0000", "n/a", "0.0000")),
    ((0, 2, 3), ("0.0000", "0.0000", "0.0000")),
    ((1, 1, 0), ("0.5000", "1.0000", "0.6667")),
]


def scores(tp: int, fp: int, fn: int) -> dict:
    precision = tp / (tp + fp) if tp + fp else 0.0  # the protocol's values: 0.0 where undefined
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {"tp": tp, "fp": fp, "fn": fn, "precision": precision, "recall": recall,
            "f1": 2 * tp / (2 * tp + fp + fn) if tp else 0.0, "mean_iou": None}


@pytest.mark.parametrize("counts, shown", COUNTS, ids=[str(c) for c, _ in COUNTS])
def test_both_per_building_tables_print_n_a_where_a_ratio_is_undefined(counts, shown):
    row = scores(*counts)
    eval_row = format_buildings({"building": row}).splitlines()[-1].split()
    score_row = format_table({**row, "classes": {"building": row}}).splitlines()[-1].split()
    for printed in (eval_row, score_row):
        assert printed[4:7] == list(shown), printed
    assert as_shown(row)["tp"] == counts[0] and row["precision"] == scores(*counts)["precision"]  # values kept


def test_eval_prints_n_a_alike_per_pixel_and_per_building(tmp_path):
    """A model that finds nothing on tiles without buildings: every building ratio is 0 / 0 in both tables."""
    tile = mercantile.Tile(70760, 104130, 18)
    write_image(tile_path(tmp_path / "images", tile, "png"), np.full((64, 64, 3), 80, np.uint8))
    write_mask(tile_path(tmp_path / "labels", tile, "png"), np.zeros((64, 64), np.uint8), ["denim", "orange"])
    model = build_model("efficientnet-b0", num_classes=2)
    head = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    with torch.no_grad():
        head.bias[0] += 1000.0  # background everywhere
    checkpoint = save_checkpoint(tmp_path / "m.pth", model, ModelSpec(tile_size=64))
    result = CliRunner().invoke(main, ["eval", "--checkpoint", str(checkpoint), str(tmp_path / "images"),
                                       str(tmp_path / "labels"), "--json", str(tmp_path / "e.json"), "-q",
                                       "--device", "cpu"])
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.output.splitlines() if line.startswith("foreground")]
    pixel, building = rows  # the pixel table's row, then the per-building one
    assert pixel[1:5] == ["n/a"] * 4  # IoU, precision, recall, F1
    assert building[1:4] == ["0", "0", "0"] and building[4:7] == ["n/a"] * 3
    saved = json.loads((tmp_path / "e.json").read_text())["buildings"]["foreground"]
    assert (saved["precision"], saved["recall"], saved["f1"]) == (0.0, 0.0, 0.0)
