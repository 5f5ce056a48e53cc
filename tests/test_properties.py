"""Properties over many generated cases (hypothesis): context borders, quantisation, shards."""

from __future__ import annotations

import os
from unittest import mock

import mercantile
import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from robosat_effnet.predict import dequantize, quantize, take_share
from robosat_effnet.predict.context import buffer_tile, crop

FAST = settings(max_examples=40, deadline=None)
OFFSETS = [(dx, dy) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dx, dy) != (0, 0)]


@st.composite
def scenes(draw):
    """A 3 x 3 block of tiles cut from one scene, the border, and which of the 8 neighbours are present."""
    height, width = draw(st.integers(2, 12)), draw(st.integers(2, 12))
    channels = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**32 - 1))
    scene = np.random.default_rng(seed).integers(0, 255, (3 * height, 3 * width, channels), dtype=np.uint8)
    border = draw(st.integers(0, min(height, width) - 1))
    present = draw(st.sets(st.sampled_from(OFFSETS)))
    return scene, height, width, border, present


def part(scene, height, width, dx, dy):
    return scene[(1 + dy) * height:(2 + dy) * height, (1 + dx) * width:(2 + dx) * width]


@FAST
@given(scenes())
def test_buffer_then_crop_gives_the_tile_back_and_neighbours_give_the_scene(case):
    scene, height, width, b, present = case
    center = part(scene, height, width, 0, 0)
    neighbours = {offset: part(scene, height, width, *offset) for offset in present}
    buffered = buffer_tile(center, neighbours, b)
    assert buffered.shape == (height + 2 * b, width + 2 * b, center.shape[2])
    # crop works on the last two dims (N x C x H x W predictions)
    np.testing.assert_array_equal(crop(np.moveaxis(buffered, -1, 0), b), np.moveaxis(center, -1, 0))
    torch.testing.assert_close(crop(torch.from_numpy(np.moveaxis(buffered, -1, 0)), b),
                               torch.from_numpy(np.moveaxis(center, -1, 0)))
    window = scene[height - b:2 * height + b, width - b:2 * width + b]
    for dx, dy in present:  # where a neighbour exists, the border holds exactly its pixels
        rows = {-1: slice(0, b), 0: slice(b, b + height), 1: slice(b + height, 2 * b + height)}[dy]
        cols = {-1: slice(0, b), 0: slice(b, b + width), 1: slice(b + width, 2 * b + width)}[dx]
        np.testing.assert_array_equal(buffered[rows, cols], window[rows, cols])
    if len(present) == 8:
        np.testing.assert_array_equal(buffered, window)


@FAST
@given(scenes())
def test_missing_sides_mirror_without_repeating_the_edge(case):
    scene, height, width, b, _ = case
    center = part(scene, height, width, 0, 0)
    buffered = buffer_tile(center, {}, b)
    for j in range(b):  # by hand: the j-th row/col outside the edge is the (j + 1)-th inside it
        np.testing.assert_array_equal(buffered[b - 1 - j, b:b + width], center[j + 1])
        np.testing.assert_array_equal(buffered[b + height + j, b:b + width], center[height - 2 - j])
        np.testing.assert_array_equal(buffered[b:b + height, b - 1 - j], center[:, j + 1])
        np.testing.assert_array_equal(buffered[b:b + height, b + width + j], center[:, width - 2 - j])


@FAST
@given(st.lists(st.floats(0, 1, allow_nan=False, width=32), min_size=1, max_size=64))
def test_quantisation_round_trip_is_within_half_a_level(values):
    p = np.array(values, np.float32)
    for q in (quantize(p), quantize(torch.from_numpy(p)).numpy()):
        assert q.dtype == np.uint8
        assert np.abs(dequantize(q) - p).max() <= 0.5 / 255 + 1e-6


def test_every_level_survives_the_round_trip():
    levels = np.arange(256, dtype=np.uint8)
    assert np.array_equal(quantize(dequantize(levels)), levels)
    assert torch.equal(quantize(torch.from_numpy(dequantize(levels))), torch.from_numpy(levels))


@FAST
@given(st.sets(st.tuples(st.integers(0, 40), st.integers(0, 40), st.integers(15, 17)), max_size=60),
       st.integers(1, 5), st.integers(1, 3))
def test_shards_and_ranks_are_disjoint_and_complete(cells, count, world):
    tiles = [mercantile.Tile(x, y, z) for x, y, z in cells]
    shares = []
    for rank in range(world):
        env = {"RANK": str(rank), "WORLD_SIZE": str(world)} if world > 1 else {}
        with mock.patch.dict(os.environ, env):
            if world == 1:
                os.environ.pop("RANK", None)
                os.environ.pop("WORLD_SIZE", None)
            shares += [take_share(list(reversed(tiles)), (index, count)) for index in range(count)]
    together = [t for share in shares for t in share]
    assert sorted(together) == sorted(tiles) and len(together) == len(set(together))
    sizes = [len(share) for share in shares]
    assert max(sizes) - min(sizes) <= 1  # balanced
