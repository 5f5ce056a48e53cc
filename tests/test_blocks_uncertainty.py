"""`blocks --probs`: label first the blocks a trained model is least sure of (issue 28, "label where it matters")."""

from __future__ import annotations

import mercantile
import numpy as np
import pytest
from click.testing import CliRunner
from scipy.stats import entropy

from robosat_effnet.cli import main
from robosat_effnet.data.probabilities import quantize, write_probability
from robosat_effnet.errors import DatasetError
from robosat_effnet.prepare.blocks import blocks_of, pick_blocks, uncertainty
from robosat_effnet.tiles import read_tiles_csv, tile_path


def _area(z: int = 18) -> list[mercantile.Tile]:
    return [mercantile.Tile(1000 + x, 2000 + y, z) for x in range(6) for y in range(4)]  # six 2x2 blocks


def _write_probs(root, values: dict) -> None:
    for tile, p in values.items():
        write_probability(tile_path(root, tile, "png"), quantize(np.asarray(p, np.float32)))


def test_entropy_of_a_tile_is_scipys_binary_entropy_in_bits(tmp_path):
    rng = np.random.default_rng(0)
    tiles = _area()[:3]
    probs = {t: rng.uniform(0, 1, (16, 16)) for t in tiles}
    _write_probs(tmp_path, probs)
    scores = uncertainty(tmp_path, tiles)
    for tile, p in probs.items():
        levels = quantize(p.astype(np.float32)).astype(np.float64) / 255  # what the PNG holds
        levels = np.clip(levels, 1e-6, 1 - 1e-6)
        expected = np.mean(entropy(np.stack([levels, 1 - levels]), base=2, axis=0))
        assert scores[tile] == pytest.approx(expected, rel=1e-6)
    sure = {tiles[0]: np.zeros((8, 8)), tiles[1]: np.ones((8, 8)), tiles[2]: np.full((8, 8), 0.5)}
    _write_probs(tmp_path / "b", sure)
    scores = uncertainty(tmp_path / "b", tiles)
    assert scores[tiles[0]] < 1e-4 and scores[tiles[1]] < 1e-4 and scores[tiles[2]] > 0.99


def test_the_least_certain_blocks_are_picked_whole(tmp_path):
    tiles = _area()
    blocks = list(blocks_of(tiles).values())
    unsure = blocks[4]
    scores = {t: (0.9 if t in unsure else 0.1) for t in tiles}
    scores[blocks[1][0]] = 0.95  # one unsure tile in a sure block does not outweigh a whole unsure block
    local, rest = pick_blocks(tiles, 0.15, seed=0, scores=scores)
    assert sorted(local) == sorted(unsure) and not set(local) & set(rest)
    random_local, _ = pick_blocks(tiles, 0.15, seed=0)
    assert sorted(random_local) != sorted(unsure)  # the draw alone would have taken another block
    two, _ = pick_blocks(tiles, 0.3, seed=0, scores=scores)
    assert set(unsure) <= set(two) and set(blocks[1]) <= set(two)  # then the next most uncertain block


def test_blocks_command_ranks_by_the_probability_tiles(tmp_path):
    tiles = _area()
    unsure = list(blocks_of(tiles).values())[2]
    images = tmp_path / "images"
    for t in tiles:
        path = tile_path(images, t, "png")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    _write_probs(tmp_path / "probs", {t: np.full((8, 8), 0.45 if t in unsure else 0.02) for t in tiles})
    result = CliRunner().invoke(main, ["blocks", str(images), str(tmp_path / "split"), "--fraction", "0.15",
                                       "--probs", str(tmp_path / "probs")])
    assert result.exit_code == 0, result.output
    assert sorted(read_tiles_csv(tmp_path / "split" / "local.csv")) == sorted(unsure)
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(main, ["blocks", str(images), str(tmp_path / "split2"), "--probs", str(empty)])
    assert result.exit_code == 1 and "predict --probs" in result.output and "Traceback" not in result.output


def test_probability_folder_without_the_tiles_is_refused(tmp_path):
    _write_probs(tmp_path, {mercantile.Tile(0, 0, 3): np.zeros((4, 4))})
    with pytest.raises(DatasetError, match="predict --probs"):
        uncertainty(tmp_path, _area())
