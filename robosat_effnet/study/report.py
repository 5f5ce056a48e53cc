"""A study's results: one CSV row per run, a Markdown table per backbone (mean and spread over seeds), a plot.

    results.csv              model, backbone, weights, seed, epochs, best_epoch, params_M, GMACs, cpu_tiles_per_s,
                             miou,
                             iou_<class>..., objects_{tp,fp,fn,precision,recall,f1,mean_iou}_<class> (per building,
                             SpaceNet one-to-one matching at IoU >= 0.5), train_minutes, device
    results.md               one row per model (backbone and initial weights): seeds, cost, and each metric as
                             mean (min-max over seeds)
    accuracy-vs-speed.png    per-building F1 and pixel IoU of the main class against CPU tiles/s, one point per
                             model, marker area proportional to the parameters, bars spanning the seeds
"""

from __future__ import annotations

import csv
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from robosat_effnet.io import atomic_path

OBJECT_KEYS = ("tp", "fp", "fn", "precision", "recall", "f1", "mean_iou")


def result_row(record: dict[str, Any], evaluation: dict[str, Any], cost: dict[str, float],
               objects: dict[str, dict[str, float]]) -> dict[str, Any]:
    """One run's row: its training record, its cost and its validation metrics (NaN where unknown)."""
    classes = evaluation["classes"]
    row: dict[str, Any] = {"model": record.get("model", record["backbone"]), "backbone": record["backbone"],
                           "weights": record.get("weights", "none"), "seed": record["seed"], "epochs": record["epochs"],
                           "best_epoch": record["best_epoch"], **cost, "miou": _num(evaluation.get("miou"))}
    row.update({f"iou_{name}": _num(value) for name, value in zip(classes, evaluation["iou"], strict=True)})
    for name in classes[1:]:  # background has no objects
        row.update({f"objects_{k}_{name}": _num(objects.get(name, {}).get(k)) for k in OBJECT_KEYS})
        for k in ("tp", "fp", "fn"):  # counts stay integers in the CSV
            if not _nan(row[f"objects_{k}_{name}"]):
                row[f"objects_{k}_{name}"] = int(row[f"objects_{k}_{name}"])
        # Outlines made per true outline: what a mapper has to sift through (1.0 is ideal).
        found, true = row[f"objects_tp_{name}"] + row[f"objects_fp_{name}"], row[f"objects_tp_{name}"] + row[
            f"objects_fn_{name}"]
        row[f"objects_per_truth_{name}"] = found / true if true else float("nan")
    row["train_minutes"] = round(record.get("train_seconds", float("nan")) / 60, 2)
    row["device"] = record.get("device", "")
    return row


def write_csv(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """The rows as CSV (NaN as an empty cell), written atomically."""
    columns = list(dict.fromkeys(k for row in rows for k in row))
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows({k: ("" if _nan(v) else v) for k, v in row.items()} for row in rows)
    return path


def summarise(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows grouped by model, a backbone and its initial weights (in order of first appearance):
    {"model", "backbone", "weights", "seeds", column: [values]...}."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row.get("model", row["backbone"]), []).append(row)
    summary = []
    for model, members in groups.items():
        entry: dict[str, Any] = {"model": model, "backbone": members[0]["backbone"],
                                 "weights": members[0].get("weights", "none"), "seeds": [m["seed"] for m in members]}
        for key in members[0]:
            if key not in ("backbone", "seed", "device") and isinstance(members[0][key], (int, float)):
                entry[key] = [m[key] for m in members]
        summary.append(entry)
    return summary


def markdown(summary: Sequence[dict[str, Any]], classes: Sequence[str], machine: str) -> str:
    """The per-backbone table: cost (with ratios to resnet50 when it is in the study) and metrics over seeds."""
    metrics = ["miou"] + [f"iou_{c}" for c in classes]
    for name in classes[1:]:
        metrics += [f"objects_{k}_{name}" for k in ("precision", "recall", "f1", "per_truth")]
    metrics = [m for m in metrics if any(not _nan(v) for e in summary for v in e.get(m, []))]
    base = next((e for e in summary if e["backbone"] == "resnet50"), None)
    header = ["model", "seeds", "params (M)", "GMACs", "CPU tiles/s"]
    header += ["params / resnet50", "speed / resnet50"] if base else []
    header += metrics + ["best epoch", "train min"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for e in summary:
        cells = [e["model"], ",".join(str(s) for s in e["seeds"]), _fmt(_mean(e["params_M"]), 2),
                 f"{_mean(e['GMACs']):.3g}", _fmt(_mean(e["cpu_tiles_per_s"]), 2)]
        if base:
            cells += [_fmt(_mean(e["params_M"]) / _mean(base["params_M"]), 2),
                      _fmt(_mean(e["cpu_tiles_per_s"]) / _mean(base["cpu_tiles_per_s"]), 2)]
        cells += [_spread(e[m]) for m in metrics]
        cells += [",".join(str(v) for v in e["best_epoch"]), _fmt(_mean(e["train_minutes"]), 1)]
        lines.append("| " + " | ".join(cells) + " |")
    note = ("Metrics on the validation split: mean over seeds, (min-max) when there are several. IoU is per pixel; "
            "objects_* are per building (one-to-one matches at IoU >= 0.5; per_truth: outlines predicted per true "
            "outline). CPU tiles/s: batch 1, trained "
            f"checkpoints, interleaved rounds in one run on {machine}.")
    return "\n".join(lines) + "\n\n" + note + "\n"


def plot(summary: Sequence[dict[str, Any]], main_class: str, path: Path) -> Path:
    """Per-building F1 and pixel IoU of `main_class` against CPU tiles/s, one point per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(f"objects_f1_{main_class}", f"per-building F1 ({main_class})"),
              (f"iou_{main_class}", f"pixel IoU ({main_class})")]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, (key, label) in zip(axes, panels, strict=True):
        known = False
        for i, e in enumerate(summary):
            values = [v for v in e.get(key, []) if not _nan(v)]
            if not values:
                continue
            known = True
            x, y, size = _mean(e["cpu_tiles_per_s"]), statistics.fmean(values), _mean(e["params_M"])
            colour = f"C{i % 10}"
            ax.errorbar(x, y, yerr=[[y - min(values)], [max(values) - y]], fmt="none", ecolor=colour, capsize=3)
            ax.scatter(x, y, s=20 + 12 * size, color=colour, alpha=0.7, edgecolors="black",
                       label=f"{e['model']} ({size:.1f} M params)")
            ax.annotate(e["model"], (x, y), textcoords="offset points", xytext=(6, 6), fontsize=8)
        ax.set_xlabel("CPU inference tiles/s (batch 1)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if not known:
            ax.text(0.5, 0.5, "not measured", transform=ax.transAxes, ha="center", va="center", color="gray")
        elif ax is axes[1]:
            ax.legend(fontsize=7, loc="best", markerscale=0.5)
    fig.suptitle("Accuracy against speed (marker area: parameters; bars: spread over seeds)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path


def _num(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _mean(values: Sequence[float]) -> float:
    known = [v for v in values if not _nan(v)]
    return statistics.fmean(known) if known else float("nan")


def _fmt(value: float, digits: int) -> str:
    return "n/a" if _nan(value) else f"{value:.{digits}f}"


def _spread(values: Sequence[float]) -> str:
    known = [v for v in values if not _nan(v)]
    if not known:
        return "n/a"
    text = f"{statistics.fmean(known):.3f}"
    return text + (f" ({min(known):.3f}-{max(known):.3f})" if len(known) > 1 else "")
