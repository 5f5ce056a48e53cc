"""Metrics of a trained model on a labelled slippy map (`rs-effnet eval`).

Tiles are predicted in memory exactly as `rs-effnet predict` does (same reader with neighbour context,
same Predictor), and compared with the label tiles through one confusion matrix, from which
`metrics.scores` derives everything. Pixels without imagery (alpha 0) or labelled 255 are not counted.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from robosat_effnet.colors import NODATA_INDEX
from robosat_effnet.errors import DatasetError
from robosat_effnet.io import read_label
from robosat_effnet.models.loaded import ModelSource
from robosat_effnet.outputs import warn_other_classes
from robosat_effnet.scoring.pixels import confusion_matrix, scores
from robosat_effnet.threshold import MASK_THRESHOLD, to_classes
from robosat_effnet.tiles import tile_files

EXAMPLES = 3  # tiles an error message names


def evaluate(
    checkpoint: ModelSource,
    images: str | os.PathLike,
    labels: str | os.PathLike,
    batch_size: int = 8,
    border: int = 32,
    device: str | None = None,
    workers: int = 0,
    progress: bool = True,
    match_iou: float | None = 0.5,
    min_area: float = 0.0,
    precision: str | None = None,
    threshold: float = MASK_THRESHOLD,
) -> dict[str, Any]:
    """Per-class IoU, precision, recall, F1 and one-vs-rest MCC of a checkpoint on image/label tiles.

    `checkpoint` is a .pth from `rs-effnet train` or a .onnx from `rs-effnet export` (run by onnxruntime), or
    anything else `models.loaded.open_model` takes (a LoadedModel, a (network, spec) pair).
    `precision` is None (the device's default), "fp32" or "bf16", as for `Predictor`.

    Only tiles present in both folders are scored (`tiles` in the result; `unlabelled` counts image
    tiles without a label). Returns `metrics.scores(...)` plus "mcc_per_class", "pixels" (labelled
    pixels per class), "confusion" (rows = truth, columns = prediction), "tiles" and "unlabelled".

    Per building (unless `match_iou` is None): predicted and label masks are polygonised as `rs-effnet features`
    does (merged across tile borders; polygons under `min_area` m2 dropped) and matched with the SpaceNet
    protocol (`scoring.objects`). "buildings" is {class name: {tp, fp, fn, precision, recall, f1, mean_iou}}
    for every class but the first (background), e.g. result["buildings"]["building"]["f1"]; "match_iou" and
    "building_min_area" record the settings. Masks are made as `predict` makes them: a building only where its
    probability reaches `threshold` (`predict.threshold`), recorded as "mask_threshold"; pixel metrics too.
    """
    from robosat_effnet.evaluation.buildings import BuildingMasks
    from robosat_effnet.models.device import resolve_device
    from robosat_effnet.models.loaded import open_model
    from robosat_effnet.predict.context import crop
    from robosat_effnet.predict.engine import Predictor, check_precision
    from robosat_effnet.predict.tiles import BufferedTiles

    check_precision(precision)
    image_files, label_files = tile_files(images), tile_files(labels, {".png"})
    if not image_files:
        raise DatasetError(f"no image tiles in {images}; expected a slippy-map folder z/x/y.<png|jpg|webp|tif>")
    common = [t for t in image_files if t in label_files]
    if not common:
        missing = ", ".join(f"{t.z}/{t.x}/{t.y}" for t in list(image_files)[:EXAMPLES])
        raise DatasetError(f"none of the {len(image_files)} image tiles in {images} has a label in {labels} "
                           f"(e.g. {missing}); pass the label folder made for these images (`rs-effnet rasterize`)")
    device = resolve_device(device)
    loaded = open_model(checkpoint, device)
    spec = loaded.spec
    name = f"checkpoint {loaded.path}" if loaded.path is not None else "the model"
    warn_other_classes(labels, spec.classes, name, "labels", "the scores compare class indices, which mean other "
                       "things there: score labels rasterized with the classes the model was trained on")
    predictor = Predictor(loaded.network, device=device, precision=precision)
    # All image tiles stay available as neighbour context, even those without labels.
    dataset = BufferedTiles(image_files, common, border, spec)
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers, collate_fn=list)
    confusion = torch.zeros(spec.num_classes, spec.num_classes, dtype=torch.long)
    buildings = BuildingMasks(spec.classes) if match_iou is not None else None
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(common), desc="eval", unit="tile")
    for items in loader:
        errors = [item["error"] for item in items if item["error"]]
        if errors:
            raise DatasetError(errors[0])
        items = [item for item in items if item["image"] is not None]  # tiles without any imagery
        groups: dict[tuple, list[dict]] = {}
        for item in items:
            groups.setdefault(tuple(item["image"].shape), []).append(item)
        for group in groups.values():
            probs = crop(predictor(torch.stack([item["image"] for item in group])), border)
            pred = to_classes(probs, threshold).long().cpu()
            for item, mask in zip(group, pred, strict=True):
                tile = common[item["index"]]
                target = _target(label_files[tile], mask.shape, spec.num_classes, item["valid"])
                confusion += confusion_matrix(mask, target, spec.num_classes, ignore_index=NODATA_INDEX)
                if buildings is not None:
                    buildings.add(tile, mask.numpy(), target)
        if bar is not None:
            bar.update(len(items))
    if bar is not None:
        bar.close()
    result = scores(confusion, spec.classes)
    result.update(
        mcc_per_class=one_vs_rest_mcc(confusion),
        pixels=confusion.sum(dim=1).tolist(),
        confusion=confusion.tolist(),
        tiles=len(common),
        unlabelled=len(image_files) - len(common),
        mask_threshold=threshold,
    )
    if buildings is not None:
        with buildings:
            found = buildings.score(match_iou, min_area, progress)
        result.update(buildings={name: r.as_dict() for name, r in found.items()}, match_iou=match_iou,
                      building_min_area=min_area)
    return result


def _target(path: Path, shape: tuple[int, int], num_classes: int, valid: torch.Tensor | None) -> np.ndarray:
    """A label tile checked against the prediction's size and the classes, with no-data pixels set to 255."""
    target = read_label(path).copy()  # writable: torch warns about read-only arrays
    if target.shape != tuple(shape):
        raise DatasetError(f"label {path} is {target.shape[1]}x{target.shape[0]} px but its image is "
                           f"{shape[1]}x{shape[0]}; re-create the labels at the size of their images")
    bad = (target >= num_classes) & (target != NODATA_INDEX)
    if bad.any():
        raise DatasetError(f"label {path} holds class {int(target[bad].max())} but the model knows "
                           f"{num_classes} classes; check that labels and checkpoint belong together")
    if valid is not None:
        target = np.where(valid.numpy(), target, NODATA_INDEX)
    return target


def one_vs_rest_mcc(confusion: Any) -> list[float]:
    """Matthews correlation of each class against all others (0.0 where undefined, as scikit-learn does)."""
    c = np.asarray(confusion, dtype=np.float64)
    total = c.sum()
    result = []
    for k in range(len(c)):
        tp = c[k, k]
        fn = c[k].sum() - tp
        fp = c[:, k].sum() - tp
        tn = total - tp - fn - fp
        denominator = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
        result.append(float((tp * tn - fp * fn) / denominator) if denominator > 0 else 0.0)
    return result


def format_table(result: dict[str, Any]) -> str:
    """The metrics as a fixed-width text table, one row per class, then the summary scores."""
    def number(value: float) -> str:
        return "   n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:6.4f}"

    width = max(8, *(len(name) for name in result["classes"]))
    lines = [f"{'class':<{width}}     IoU  precision  recall      F1     MCC       pixels"]
    for i, name in enumerate(result["classes"]):
        lines.append(f"{name:<{width}}  {number(result['iou'][i])}     {number(result['precision'][i])}  "
                     f"{number(result['recall'][i])}  {number(result['f1'][i])}  "
                     f"{number(result['mcc_per_class'][i])}  {result['pixels'][i]:11,d}")
    lines.append(f"mIoU {number(result['miou'])}  MCC {number(result['mcc'])}  accuracy {number(result['accuracy'])}"
                 f"  ({result['tiles']} tiles)")
    if result.get("buildings"):
        from robosat_effnet.evaluation.buildings import format_buildings

        lines.append(format_buildings(result["buildings"], result.get("match_iou")))
    return "\n".join(lines)


def to_json(result: dict[str, Any]) -> dict[str, Any]:
    """The result with NaN replaced by null, so it is valid JSON."""
    def clean(value: Any) -> Any:
        if isinstance(value, float) and math.isnan(value):
            return None
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        return value

    return clean(result)
