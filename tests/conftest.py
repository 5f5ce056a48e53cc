"""Shared fixtures: a generated robosat-layout dataset and a tiny model trained on it once per session.

    def test_something(synthetic_dataset):          # a fresh 64 px dataset in tmp_path
        ds = synthetic_dataset                      # .dataset_toml, .model_toml, .root
    def test_other(tmp_path):
        ds = make_dataset(tmp_path, n_train=4, n_val=2, num_classes=3)   # from conftest import make_dataset
    def test_predict(trained_checkpoint):           # Path to best.pth of a model that has learnt
        ...
    def test_predict_more(trained_run):             # dict: checkpoint, dataset (SyntheticDataset), result
        ...

The label is learnable from the image: class k >= 1 is a rectangle of a distinctive colour (class 1 bright
grey-white) on textured dark noise. Tiles are real slippy-map neighbours at zoom 18 (a 4-wide grid).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, NamedTuple

import mercantile
import numpy as np
import pytest
import torch

from robosat_effnet.io import write_image, write_mask
from robosat_effnet.models import build_model
from robosat_effnet.models.checkpoint import ModelSpec, save_checkpoint
from robosat_effnet.tiles import tile_path

ZOOM, X0, Y0, COLUMNS = 18, 70760, 104110, 4
if os.environ.get("PYTEST_XDIST_WORKER"):  # `make test` runs a worker per core: one thread each, no oversubscription
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))))

CLASS_RGB = [(0, 0, 0), (235, 232, 220), (40, 90, 230), (230, 60, 40), (250, 220, 40)]  # index 0 unused
CLASS_NAMES = ["background", "building", "water", "road", "field"]
CLASS_COLORS = ["denim", "orange", "blue", "red", "yellow"]


class SyntheticDataset(NamedTuple):
    dataset_toml: Path
    model_toml: Path
    root: Path  # the dataset folder with training/ and validation/


def synthetic_tile(rng: np.random.Generator, size: int, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """One RGB uint8 tile and its label: 1-3 coloured rectangles on textured noise."""
    coarse = rng.uniform(40, 120, size=(size // 8, size // 8, 3))
    image = np.kron(coarse, np.ones((8, 8, 1))) + rng.normal(0, 12, size=(size, size, 3))
    label = np.zeros((size, size), np.uint8)
    for _ in range(rng.integers(1, 4)):
        k = int(rng.integers(1, num_classes))
        h, w = rng.integers(size // 8, size // 2, size=2)
        y, x = rng.integers(0, size - h), rng.integers(0, size - w)
        image[y:y + h, x:x + w] = np.array(CLASS_RGB[k]) + rng.normal(0, 8, size=(h, w, 3))
        label[y:y + h, x:x + w] = k
    return np.clip(image, 0, 255).astype(np.uint8), label


def make_dataset(tmp_path: Path, n_train: int = 8, n_val: int = 4, size: int = 64, num_classes: int = 2,
                 seed: int = 0, ext: str = "png", model: dict[str, Any] | None = None,
                 dataset: dict[str, Any] | None = None) -> SyntheticDataset:
    """Write a robosat-layout dataset plus dataset.toml and model.toml (relative paths) into tmp_path.

    `model` / `dataset` override keys of the written TOMLs ({"epochs": 3, "loss": "Dice"}; table chosen
    automatically for known keys).
    """
    rng = np.random.default_rng(seed)
    root = Path(tmp_path) / "dataset"
    counts = np.zeros(num_classes, np.int64)
    for split, n, y0 in (("training", n_train, Y0), ("validation", n_val, Y0 + 20)):
        for i in range(n):
            x, y = X0 + i % COLUMNS, y0 + i // COLUMNS
            image, label = synthetic_tile(rng, size, num_classes)
            write_image(root / split / "images" / str(ZOOM) / str(x) / f"{y}.{ext}", image)
            write_mask(root / split / "labels" / str(ZOOM) / str(x) / f"{y}.png", label, CLASS_COLORS[:num_classes])
            if split == "training":
                counts += np.bincount(label.ravel(), minlength=num_classes)
    weights = [round(float(1 / np.log(1.02 + c / counts.sum())), 6) for c in counts] if counts.sum() else None
    common = {"dataset": "dataset", "classes": CLASS_NAMES[:num_classes], "colors": CLASS_COLORS[:num_classes]}
    common.update(dataset or {})
    tables = {"common": common} | ({"weights": {"values": weights}} if weights else {})
    dataset_toml = Path(tmp_path) / "dataset.toml"
    dataset_toml.write_text(_toml(tables))

    opt_keys = {"epochs", "lr", "encoder_lr", "loss", "weight_decay", "warmup", "grad_clip", "augment", "jitter",
                "hue", "saturation", "grayscale", "gamma", "gap_weight", "gap_px"}
    model_common = {"cuda": False, "batch_size": 4, "image_size": size, "checkpoint": "checkpoints",
                    "backbone": "b0", "workers": 0, "seed": 0}
    opt = {"epochs": 1, "lr": 3e-3, "loss": "CrossEntropy", "warmup": 0.0}
    for key, value in (model or {}).items():
        (opt if key in opt_keys else model_common)[key] = value
    model_toml = Path(tmp_path) / "model.toml"
    model_toml.write_text(_toml({"common": model_common, "opt": opt}))
    return SyntheticDataset(dataset_toml, model_toml, root)


def _toml(tables: dict[str, dict[str, Any]]) -> str:
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(i) for i in v) + "]"
        if isinstance(v, (str, Path)):
            return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'
        return repr(v)

    return "\n".join(f"[{name}]\n" + "".join(f"{k} = {value(v)}\n" for k, v in body.items())
                     for name, body in tables.items())


@pytest.fixture
def synthetic_dataset(tmp_path: Path) -> SyntheticDataset:
    """A fresh 64 px, 2-class dataset (8 training, 4 validation tiles) with its two TOMLs."""
    return make_dataset(tmp_path)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A tiny efficientnet-b0 U-Net trained once per session on CPU until it has clearly learnt.

    {"checkpoint": best.pth, "dataset": SyntheticDataset, "result": train()'s summary}
    """
    from robosat_effnet.training.loop import train

    tmp = tmp_path_factory.mktemp("trained")
    # Many small steps rather than few big ones: BatchNorm's running statistics (used in eval mode) need them.
    data = make_dataset(tmp, n_train=16, n_val=8, seed=1,
                        model={"epochs": 5, "batch_size": 2, "lr": 1e-3, "save_every": 100})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: no OpenMP spinning when cores are shared
    try:
        result = train(data.dataset_toml, data.model_toml, device="cpu", progress=False)
    finally:
        torch.set_num_threads(threads)
    return {"checkpoint": result["best"], "dataset": data, "result": result}


@pytest.fixture(scope="session")
def trained_checkpoint(trained_run: dict[str, Any]) -> Path:
    """Path to best.pth of the session's tiny trained model (see trained_run)."""
    return trained_run["checkpoint"]


@pytest.fixture
def tiles(tmp_path) -> Path:
    """Two neighbouring 64 px RGB tiles (z18) of one random image, in a slippy-map folder."""
    root = tmp_path / "tiles"
    image = np.random.default_rng(0).integers(0, 255, (64, 128, 3), dtype=np.uint8)
    for i in range(2):
        write_image(tile_path(root, mercantile.Tile(70700 + i, 104100, 18), "png"), image[:, 64 * i:64 * (i + 1)])
    return root


@contextlib.contextmanager
def single_torch_thread():
    """One torch thread: where cores are shared, OpenMP threads spinning against each other cost far more."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture
def one_thread():
    """One torch thread for the test (`single_torch_thread`)."""
    with single_torch_thread():
        yield


@pytest.fixture(scope="session")
def random_checkpoint(tmp_path_factory) -> Path:
    """An untrained 2-class b0 U-Net checkpoint (64 px tiles): enough for shapes, I/O, resume and shards."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "random.pth"
    return save_checkpoint(path, build_model("efficientnet-b0", num_classes=2), ModelSpec(tile_size=64))


def randomise_batchnorm(model: torch.nn.Module, seed: int = 0) -> None:
    """Give every BatchNorm non-trivial statistics and affine parameters, as trained weights would have."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=g) * 0.4 - 0.2)


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


def command_inputs(root: Path, checkpoint: Path, n_val: int) -> dict[str, Path]:
    """Inputs for running every command once: a tiny dataset (n_val validation tiles), a 64 px EPSG:3857 GeoTIFF,
    a GeoJSON polygon over its tile, an empty folder and `checkpoint`."""
    import json

    import rasterio
    from rasterio.transform import from_origin

    data = make_dataset(root, n_train=1, n_val=n_val)
    scene = root / "scene.tif"
    west, _, _, north = mercantile.xy_bounds(mercantile.Tile(70760, 104130, 18))
    with rasterio.open(scene, "w", driver="GTiff", width=64, height=64, count=3, dtype="uint8", crs="EPSG:3857",
                       transform=from_origin(west, north, 0.6, 0.6)) as dst:
        dst.write(np.random.default_rng(0).integers(0, 255, (3, 64, 64), dtype=np.uint8))
    b = mercantile.bounds(mercantile.Tile(70760, 104130, 18))
    ring = [[b.west, b.south], [b.east, b.south], [b.east, b.north], [b.west, b.north], [b.west, b.south]]
    (root / "a.geojson").write_text(json.dumps({"type": "Polygon", "coordinates": [ring]}))
    (root / "empty").mkdir()
    return {"checkpoint": checkpoint, "images": data.root / "validation" / "images",
            "labels": data.root / "validation" / "labels", "scene": scene, "geojson": root / "a.geojson",
            "empty": root / "empty", "dataset": data.dataset_toml, "model": data.model_toml}


def one_line_error(result, code: int = 1) -> str:
    """A command's refusal: exit `code`, no traceback, exactly one line of output; returns it."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output and result.output.strip().count("\n") == 0, result.output
    return result.output
