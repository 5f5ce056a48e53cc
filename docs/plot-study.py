"""docs/study-pretrained.png from a study folder's final-<fold>*/results.csv (docs/recipe-buildings.md):
per-building F1 of every model on each fold, one dot per seed and a bar for the mean; the scratch B0/B4/ResNet50
of folds a and b come from the study of 2026-12-01 (BENCHMARKS.md), whose per-seed values were not kept.

    python docs/plot-study.py ../study-runs docs/study-pretrained.png
"""

import csv
import glob
import os
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

FOLDS = {"a": "fold a: Philippines", "b": "fold b: Kampala", "c": "fold c: Zanzibar"}
# The 2026-12-01 study (same recipe, from scratch): per-seed F1 and pixel IoU are not kept, only mean and range.
OLD = {
    "efficientnet-b0": {"a": (0.321, 0.243, 0.413, 0.567), "b": (0.031, 0.020, 0.043, 0.268)},
    "efficientnet-b4": {"a": (0.417, 0.340, 0.478, 0.543), "b": (0.055, 0.049, 0.064, 0.365)},
    "resnet50": {"a": (0.367, 0.324, 0.435, 0.531), "b": (0.110, 0.034, 0.193, 0.410)},
}
ORDER = [
    "efficientnet-lite0 imagenet",
    "efficientnet-lite1 imagenet",
    "efficientnet-lite2 imagenet",
    "efficientnet-lite0",
    "efficientnet-b0",
    "efficientnet-b4",
    "resnet50",
]
runs = {}
for fold in FOLDS:
    for path in glob.glob(os.path.join(sys.argv[1], f"final-{fold}*/results.csv")):
        for r in csv.DictReader(open(path)):
            runs.setdefault((r["model"], fold), []).append(r)
fig, axes = plt.subplots(1, 3, figsize=(16, 5), sharey=True)
for ax, (fold, title) in zip(axes, FOLDS.items(), strict=True):
    for i, model in enumerate(ORDER):
        colour = "C0" if "imagenet" in model else "C7"
        rows = runs.get((model, fold))
        if rows:
            f1 = [float(r["objects_f1_building"]) for r in rows]
            ax.bar(i, statistics.fmean(f1), color=colour, alpha=0.6)
            ax.plot([i] * len(f1), f1, "o", color="black", markersize=4)
        elif model in OLD and fold in OLD[model]:
            mean, low, high, _ = OLD[model][fold]
            ax.bar(i, mean, color=colour, alpha=0.35, hatch="//")
            ax.errorbar(i, mean, yerr=[[mean - low], [high - mean]], color="black", capsize=3)
    ax.set_xticks(
        range(len(ORDER)),
        [m.replace("efficientnet-", "").replace(" imagenet", "\nImageNet") for m in ORDER],
        fontsize=8,
    )
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
axes[0].set_ylabel("per-building F1 (IoU >= 0.5), validation region")
fig.suptitle(
    "Buildings on a region never trained on: blue from ImageNet weights, grey from scratch "
    "(dots: seeds; hatched: the 2026-12-01 study, bar = range)"
)
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=100)
