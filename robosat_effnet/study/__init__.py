"""`rs-effnet study`: several backbones trained with one recipe, compared in one table and one plot.

    >>> from robosat_effnet.study import run_study
    >>> result = run_study("dataset.toml", "model.toml", ["b0", "resnet50"], "study/", seeds=[0, 1])
    >>> result["markdown"], result["rows"][0]["iou_building"]

Each backbone x seed trains in `<out>/<backbone>-s<seed>/` with the same settings (recipe.py records them in
`study.json` and refuses a folder made with another recipe), its last checkpoint (or its best) is scored on the
validation split (runs.py), every model's cost is measured side by side (speed.py), and report.py writes
`results.csv`, `results.md` and `accuracy-vs-speed.png`. Finished steps are skipped on a rerun and an
interrupted run resumes from its last.pth, so a long study can be run in parts (or stopped with Ctrl-C and
started again).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from robosat_effnet.config import DatasetConfig, ModelConfig, apply_overrides, load_dataset_config, load_model_config
from robosat_effnet.errors import ConfigError
from robosat_effnet.io import atomic_path
from robosat_effnet.models.device import resolve_device
from robosat_effnet.models.fitting import check_fits
from robosat_effnet.outputs import plain_folder, sweep_temp
from robosat_effnet.study import report
from robosat_effnet.study.recipe import RunKey, check_or_create, fresh_name, plan, read_json, study_lock
from robosat_effnet.study.runs import RUN_FILE, building_scores, evaluate_run, run_config, train_run
from robosat_effnet.study.speed import measure
from robosat_effnet.threshold import MASK_THRESHOLD

__all__ = ["run_study"]

OUTPUTS = {"csv": "results.csv", "markdown": "results.md", "plot": "accuracy-vs-speed.png"}


def run_study(dataset_cfg: DatasetConfig | str | os.PathLike, model_cfg: ModelConfig | str | os.PathLike,
              backbones: Sequence[str], out: str | os.PathLike, *, seeds: Sequence[int] = (0,),
              weights: Sequence[str | None] | None = None, epochs: int | None = None, device: str | None = None,
              min_area: float = 0.0, checkpoint: str = "last", speed_repeats: int = 10,
              progress: bool = True, threshold: float = MASK_THRESHOLD) -> dict[str, Any]:
    """Train, evaluate and measure every backbone x weights x seed with one recipe; write the study's three files.

    Args:
        dataset_cfg, model_cfg: configs or paths to dataset.toml / model.toml (the recipe; their backbone and
            seed are replaced by each run's).
        backbones: names or aliases ("b0", "resnet50"); unknown names raise UnknownNameError listing valid ones.
        out: the study folder; a rerun continues it, one made with another recipe is refused.
        seeds: each backbone is trained once per seed.
        weights: the encoder initialisations to compare, each a value of model.toml's `weights` (None or "none":
            from scratch, "imagenet", a file); default: model.toml's. Runs with weights get folders and table
            rows of their own ("efficientnet-lite0-imagenet-s0", "efficientnet-lite0 imagenet").
        epochs: overrides model.toml's epochs (part of the recipe).
        device: where to train and evaluate ("cpu", "cuda"); default a GPU when there is one. Speed is always
            measured on the CPU.
        min_area: per-building scoring drops polygons under this many m2 on both sides (as `rs-effnet features
            --min-area`); changing it re-scores the runs, it does not retrain them.
        checkpoint: which checkpoint of each run is scored: "last" (end of the cosine schedule; nothing is
            chosen on the validation split) or "best" (highest validation mIoU: chosen on the scored split).
        speed_repeats: interleaved timing rounds.
        threshold: masks are scored as `predict` makes them (`predict.threshold`); changing it re-scores the runs.
    Returns {"rows" (one per finished run in `out`), "summary" (per backbone), "trained" / "skipped" (run names),
    "csv", "markdown", "plot" (paths)}. Raises RobosatEffnetError subclasses for bad input.
    """
    if not isinstance(dataset_cfg, DatasetConfig):
        dataset_cfg = load_dataset_config(dataset_cfg)
    if not isinstance(model_cfg, ModelConfig):
        model_cfg = load_model_config(model_cfg)
    model_cfg = apply_overrides(model_cfg, epochs=epochs)
    if device is None:  # once for the whole study: model.toml's `cuda = true` without a GPU warns once, naming it
        device = str(resolve_device(None, model_cfg.cuda, model_cfg.source))
    keys = plan(backbones, seeds, [_weights(w) for w in weights] if weights else [model_cfg.weights])
    out = Path(out)
    plain_folder(out)  # a dangling link, a file, a file above it: one line naming it
    _check_outside(out, Path(dataset_cfg.dataset))
    for key in keys:  # every run's settings are valid before the folder records the recipe
        run_config(model_cfg, key, out / key.name)
    for backbone, weights_ in dict.fromkeys((k.backbone, k.weights) for k in keys if k.weights):
        check_fits(weights_, backbone, dataset_cfg.in_channels)  # a missing or unfit file: before any run trains
    check_or_create(out, dataset_cfg, model_cfg)
    with study_lock(out):
        sweep_temp(out, recursive=True)  # what a killed study left half-written (results, records, checkpoints)
        trained, skipped = [], []
        bar = tqdm(keys, desc="study", unit="run", disable=not progress, delay=0.1)
        for key in bar:
            bar.set_postfix_str(key.name)
            _, ran = train_run(dataset_cfg, model_cfg, key, out / key.name, device=device, progress=progress)
            (trained if ran else skipped).append(key.name)
            evaluate_run(dataset_cfg, out / key.name, device=device, min_area=min_area, checkpoint=checkpoint,
                         progress=progress, threshold=threshold)
        bar.close()
        return write_results(dataset_cfg, model_cfg, out, keys, speed_repeats=speed_repeats, device=device,
                             min_area=min_area, checkpoint=checkpoint, progress=progress, threshold=threshold) | {
            "trained": trained, "skipped": skipped}


def write_results(dataset_cfg: DatasetConfig, model_cfg: ModelConfig, out: Path, keys: Sequence[RunKey] = (), *,
                  speed_repeats: int = 10, device: str | None = None, min_area: float = 0.0,
                  checkpoint: str = "last", progress: bool = True, threshold: float = MASK_THRESHOLD
                  ) -> dict[str, Any]:
    """Measure the finished runs in `out` side by side and write results.csv, results.md, accuracy-vs-speed.png.

    Every finished run of the folder is reported (they share one recipe), those of `keys` first.
    """
    finished = _finished_runs(out, keys)
    if not finished:
        raise ConfigError(f"{out} holds no finished run yet; run the study first")
    records = {name: read_json(out / name / RUN_FILE) for name in finished}
    evaluations = {name: evaluate_run(dataset_cfg, out / name, device=device, min_area=min_area,
                                      checkpoint=checkpoint, progress=progress, threshold=threshold)
                   for name in finished}
    # One model per backbone for the cost: the weights differ between seeds, the work does not.
    first = {}
    for name in finished:
        first.setdefault(records[name]["backbone"], name)
    costs = measure({b: out / name / "best.pth" for b, name in first.items()}, dataset_cfg, speed_repeats)
    rows = [report.result_row(records[n], evaluations[n], costs[records[n]["backbone"]],
                              building_scores(evaluations[n])) for n in finished]
    summary = report.summarise(rows)
    classes = dataset_cfg.classes
    paths = {kind: out / name for kind, name in OUTPUTS.items()}
    report.write_csv(rows, paths["csv"])
    from robosat_effnet.bench.timing import machine

    text = (_heading(dataset_cfg, model_cfg, min_area, checkpoint, threshold)
            + report.markdown(summary, classes, machine()))
    with atomic_path(paths["markdown"]) as tmp:
        tmp.write_text(text)
    main = "building" if "building" in classes else classes[1]
    report.plot(summary, main, paths["plot"])
    return {"rows": rows, "summary": summary, **paths}


def _finished_runs(out: Path, keys: Sequence[RunKey]) -> list[str]:
    names = [k.name for k in keys if (out / k.name / RUN_FILE).is_file()]
    others = sorted(p.parent.name for p in out.glob(f"*/{RUN_FILE}") if p.parent.name not in names)
    return names + others


def _heading(dataset_cfg: DatasetConfig, model_cfg: ModelConfig, min_area: float, checkpoint: str,
             threshold: float) -> str:
    m = model_cfg
    scored = ("the last epoch's (end of the schedule; nothing chosen on the validation split)" if checkpoint == "last"
              else "the best epoch's (highest validation mIoU: chosen on the split it is scored on)")
    colour = (f"hue {m.hue:g}, saturation {m.saturation:g}, grayscale {m.grayscale:g}, "
              if m.hue or m.saturation or m.grayscale else "")
    return (f"# Backbone study\n\nDataset {dataset_cfg.dataset} (classes {', '.join(dataset_cfg.classes)}); "
            f"{m.decoder} decoder, {m.epochs} epochs, lr {m.lr:g}, loss {m.loss}, batch {m.batch_size}, "
            f"{m.image_size} px, augment {str(m.augment).lower()}, jitter {m.jitter:g}, {colour}"
            f"precision {m.precision}. "
            f"Scored checkpoint: {scored}. Masks: a building where its probability reaches {threshold:g}. "
            f"Per-building scoring drops polygons under {min_area:g} m2. "
            f"Weights: each run's own (the model column), {m.weights or 'none'} in model.toml.\n\n")


def _weights(value: str | None) -> str | None:
    return None if value is None or str(value).lower() in ("none", "") else \
        "imagenet" if str(value).lower() == "imagenet" else str(value)


def _check_outside(out: Path, dataset: Path) -> None:
    """The study folder must not be, or lie inside, the dataset: a study never writes among its inputs."""
    out_abs, data_abs = out.resolve(), dataset.resolve()
    if out_abs == data_abs or data_abs in out_abs.parents:
        raise ConfigError(f"--out {out} lies inside the dataset folder {dataset}; put the study elsewhere, "
                          f"e.g. --out {fresh_name(data_abs.parent / 'study')}")
