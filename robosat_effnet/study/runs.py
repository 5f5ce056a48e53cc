"""One run of a study: train it (or skip it, or resume it) and evaluate its last (or best) checkpoint.

Each run lives in `<out>/<backbone>-s<seed>/`, the trainer's own checkpoint folder. Two small records say how far
it got, each written atomically once its step is complete:

    run.json    training finished: backbone, seed, epochs, best epoch, training seconds, device
    eval.json   the scored checkpoint's metrics on the validation split (`evaluate`'s result: pixel metrics
                and per-building matching)
    cost.json   parameters and multiply-adds (speed.py)

A run without run.json but with last.pth was interrupted: it continues from last.pth (`train(resume=...)`), which
gives the same weights as an uninterrupted run.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from robosat_effnet.config import DatasetConfig, ModelConfig, apply_overrides
from robosat_effnet.errors import ConfigError
from robosat_effnet.evaluation.evaluate import evaluate, to_json
from robosat_effnet.io import atomic_path
from robosat_effnet.models.checkpoint import load_checkpoint
from robosat_effnet.study.recipe import RunKey, fresh_name, read_json, weights_file, weights_label, write_json
from robosat_effnet.threshold import MASK_THRESHOLD
from robosat_effnet.training.loop import train
from robosat_effnet.training.resume import check_training_state

log = logging.getLogger("robosat_effnet")

RUN_FILE, EVAL_FILE = "run.json", "eval.json"
CHECKPOINTS = ("last", "best")


def run_config(model_cfg: ModelConfig, key: RunKey, folder: Path) -> ModelConfig:
    """The study's model config for one run: its backbone, its seed, its weights, its folder; everything else
    shared."""
    return apply_overrides(model_cfg, backbone=key.backbone, seed=key.seed, weights=key.weights or "none",
                           checkpoint=folder)


def train_run(dataset_cfg: DatasetConfig, model_cfg: ModelConfig, key: RunKey, folder: Path, *,
              device: str | None = None, progress: bool = True) -> tuple[dict[str, Any], bool]:
    """Train one run unless its run.json says it is done; returns (its record, whether training ran now).

    An interrupted run (last.pth, no run.json) resumes from last.pth; a fresh run trains into its own folder.
    """
    record = read_json(folder / RUN_FILE)
    if record is not None:
        if "weights_file" in record:  # older records say only the file's name
            _same_weights(key, record["weights_file"] or record.get("weights"), folder)
        return record, False
    cfg = run_config(model_cfg, key, folder)
    last = folder / "last.pth"
    resume, done_before = None, 0
    if last.is_file():
        state = load_checkpoint(last)
        check_training_state(state, last)  # epochs, best epoch and history are read from it below
        trained = state.get("model_config")
        if isinstance(trained, dict):
            _same_weights(key, _setting(trained.get("weights")), folder)
        done_before = state["epoch"]
        if done_before >= cfg.epochs:  # stopped after its last epoch but before its record was written
            if state["best_epoch"] == done_before:  # best.pth may not have been copied from last.pth yet
                with atomic_path(folder / "best.pth") as tmp:
                    shutil.copyfile(last, tmp)
            record = _record(key, cfg, state["best_epoch"], state["best_miou"], state["history"], "unknown")
            write_json(folder / RUN_FILE, record)
            return record, False
        resume = last
        log.info("%s: resuming from %s (epoch %d of %d)", key.name, last, done_before, cfg.epochs)
    result = train(dataset_cfg, cfg, device=device, resume=resume, checkpoint_dir=folder, progress=progress)
    if result["epochs_done"] < cfg.epochs:
        raise ConfigError(f"{key.name} stopped after {result['epochs_done']} of {cfg.epochs} epochs; "
                          "run the study again to continue it")
    record = _record(key, cfg, result["best_epoch"], result["best_miou"], result["history"],
                     _device_name(device, cfg.cuda), resumed_from=done_before)
    write_json(folder / RUN_FILE, record)
    return record, True


def _same_weights(key: RunKey, recorded: Any, folder: Path) -> None:
    """A run folder continued or skipped must have started from this run's weights: a study rerun with another
    file of the same name (x2/w.pth after x1/w.pth, imagenet.pth after imagenet) is refused, never counted as the
    first one's run."""
    wanted = _setting(key.weights)
    if recorded != wanted:
        raise ConfigError(f"{folder} holds a run that started from the weights {recorded}, not {wanted} (another "
                          f"setting of the same name); use a new --out, e.g. --out {fresh_name(folder.parent)}")


def _setting(weights: str | None) -> str:
    """What a run starts from, comparable across runs: a file's resolved path, 'imagenet' or 'none'."""
    return weights_file(weights) or weights_label(weights)


def evaluate_run(dataset_cfg: DatasetConfig, folder: Path, *, device: str | None = None, min_area: float = 0.0,
                 checkpoint: str = "last", progress: bool = True, threshold: float = MASK_THRESHOLD) -> dict[str, Any]:
    """One checkpoint's metrics on the validation split: pixel metrics and per-building matching.

    `checkpoint` is "last" (the end of the schedule: nothing chosen by looking at the validation split) or
    "best" (the epoch of highest validation mIoU, which is selection on the split that is also scored). Read
    from eval.json when it holds per-building metrics made with this checkpoint and `min_area` (m2, polygons
    smaller than it are dropped on both sides, as `rs-effnet features --min-area` does); computed and recorded
    otherwise, which costs one pass over the validation tiles, never a retraining. So is another mask
    `threshold` (`predict.threshold`; eval.json files from before it was recorded were made with the argmax,
    threshold 0: with three classes or more 0.5 is another rule).
    """
    if checkpoint not in CHECKPOINTS:
        raise ConfigError(f"unknown checkpoint {checkpoint!r} to score; valid: {', '.join(CHECKPOINTS)}")
    recorded = read_json(folder / EVAL_FILE)
    if (recorded is not None and "buildings" in recorded and recorded.get("building_min_area") == min_area
            and recorded.get("checkpoint", "best") == checkpoint and recorded.get("mask_threshold", 0) == threshold):
        return recorded
    if len(dataset_cfg.images) != 1:
        raise ConfigError(f"{dataset_cfg.source}: the study evaluates datasets with one image folder; "
                          f"this one stacks {', '.join(dataset_cfg.images)}")
    split = Path(dataset_cfg.dataset) / "validation"
    result = to_json(evaluate(folder / f"{checkpoint}.pth", split / dataset_cfg.images[0],
                              split / dataset_cfg.labels, device=device, min_area=min_area, progress=progress,
                              threshold=threshold))
    result["checkpoint"] = checkpoint
    write_json(folder / EVAL_FILE, result)
    return result


def building_scores(result: dict[str, Any]) -> dict[str, dict[str, float]]:
    """{class name: {tp, fp, fn, precision, recall, f1, mean_iou}} per building (SpaceNet one-to-one matching at
    IoU >= 0.5, `robosat_effnet.evaluation`) from an evaluate() result; {} when it has none."""
    return {name: {k: _number(values.get(k)) for k in ("tp", "fp", "fn", "precision", "recall", "f1", "mean_iou")}
            for name, values in (result.get("buildings") or {}).items()}


def _record(key: RunKey, cfg: ModelConfig, best_epoch: int, best_miou: float, history: list[dict], device: str,
            resumed_from: int = 0) -> dict[str, Any]:
    seconds = sum(float(row.get("seconds", 0.0)) for row in history)
    return {"backbone": key.backbone, "seed": key.seed, "weights": key.weights_label,
            "weights_file": weights_file(key.weights), "model": key.model,
            "epochs": cfg.epochs, "best_epoch": int(best_epoch),
            "best_val_miou": _number(best_miou), "train_seconds": round(seconds, 1), "device": device,
            "resumed_from_epoch": resumed_from}


def _device_name(device: str | None, cuda: bool | None) -> str:
    from robosat_effnet.models.device import resolve_device

    return str(resolve_device(device, cuda))


def _number(value: Any) -> float:
    return float("nan") if value is None else float(value)
