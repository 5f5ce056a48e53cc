"""The cost side of a study: parameters, multiply-adds and CPU inference speed of each trained model.

Speed is measured on the trained checkpoints themselves (realistic activations, not a fresh network) and on a
real validation tile, all models side by side in one run: interleaved rounds at batch 1 (robosat_effnet.bench),
so a busy moment of the machine slows every model alike and the ratios hold.
"""

from __future__ import annotations

from pathlib import Path

import torch

from robosat_effnet.bench.timing import interleaved_timings, multiply_adds
from robosat_effnet.config import DatasetConfig
from robosat_effnet.models.checkpoint import ModelSpec, load_model
from robosat_effnet.study.recipe import read_json, write_json
from robosat_effnet.training.datasets import SegmentationTiles, find_samples

COST_FILE = "cost.json"


def measure(checkpoints: dict[str, Path], dataset_cfg: DatasetConfig, repeats: int = 10) -> dict[str, dict]:
    """{name: {"params_M", "GMACs", "cpu_tiles_per_s"}} for each named checkpoint, measured on the CPU.

    GMACs are counted at the checkpoint's tile size (once: kept in `cost.json` beside the checkpoint); tiles/s is
    the median over `repeats` interleaved rounds of one forward pass on one validation tile (torch's current CPU
    thread count), measured anew each time.
    """
    models, sizes, tiles = {}, {}, {}
    for name, path in checkpoints.items():
        model, spec = load_model(path, "cpu")
        models[name], sizes[name], tiles[name] = model, (spec.tile_size, spec.in_channels), _tile(dataset_cfg, spec)
    seconds = interleaved_timings({n: (lambda m=m, x=tiles[n]: m(x)) for n, m in models.items()},
                                  max(1, repeats), torch.device("cpu"))
    return {name: {**_cost(model, checkpoints[name].parent / COST_FILE, *sizes[name]),
                   "cpu_tiles_per_s": 1.0 / seconds[name]}
            for name, model in models.items()}


def _cost(model: torch.nn.Module, path: Path, size: int, in_channels: int) -> dict[str, float]:
    """Parameters (millions) and multiply-adds (billions) at size x size; counting them takes seconds, so they
    are recorded the first time."""
    cost = read_json(path)
    if cost is None or cost.get("tile_size") != size:
        cost = {"params_M": sum(p.numel() for p in model.parameters()) / 1e6,
                "GMACs": multiply_adds(model, size, in_channels) / 1e9, "tile_size": size}
        write_json(path, cost)
    return {"params_M": cost["params_M"], "GMACs": cost["GMACs"]}


def _tile(dataset_cfg: DatasetConfig, spec: ModelSpec) -> torch.Tensor:
    """The first validation tile, preprocessed as the model was trained, as a 1 x C x size x size batch."""
    samples = find_samples(dataset_cfg, "validation")
    image, _ = SegmentationTiles.from_spec(spec, samples[:1], size=spec.tile_size)[0]
    return image.unsqueeze(0)
