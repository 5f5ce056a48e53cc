"""Draw docs/outlines-issue28.png from the grids of docs/issue28/pipeline.sh and the smp runs.

    python docs/issue28/plot.py ../study-runs docs/outlines-issue28.png
"""
import csv
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

REGIONS = {"a": "Philippines", "b": "Kampala", "c": "Zanzibar"}
ROWS = [  # label, grid folder pattern, subset, (threshold, min area)
    ("smp Unet (cross-region)", "smp-{f}-s0", "all", None),
    ("ours, cross-region, 0.5 / 2 m2", "post-{f}-cross-s0", "all", ("0.5", "2")),
    ("ours, cross-region, new defaults 0.7 / 5 m2", "post-{f}-cross-s0", "all", ("0.7", "5")),
    ("fine-tuned on a quarter (rest tiles, 0.5 / 5 m2)", "post-{f}-ft-s0", "rest", ("0.5", "5")),
    ("+ self-training (rest tiles, 0.5 / 5 m2)", "post-{f}-st-s0", "rest", ("0.5", "5")),
]


def f1(runs: Path, pattern: str, fold: str, subset: str, setting) -> float | None:
    folder = runs / pattern.format(f=fold)
    if setting is None:
        path = folder / "result.json"
        return json.loads(path.read_text())["f1"] if path.is_file() else None
    if not (folder / "grid.csv").is_file():
        return None
    for r in csv.DictReader((folder / "grid.csv").open()):
        if (r["subset"], r["threshold"], r["min_area"], r["min_score"], r["closing"], r["fill_holes"]) == (
                subset, *setting, "0.0", "0", "False"):
            return float(r["f1"])
    return None


runs, out = Path(sys.argv[1]), sys.argv[2]
fig, ax = plt.subplots(figsize=(9, 4.5))
width = 0.8 / len(ROWS)
colors = ["#999999", "#9ecae1", "#4292c6", "#fdae6b", "#e6550d"]
for i, (label, pattern, subset, setting) in enumerate(ROWS):
    for j, fold in enumerate(REGIONS):
        value = f1(runs, pattern, fold, subset, setting)
        if value is not None:
            ax.bar(j + (i - len(ROWS) / 2 + 0.5) * width, value, width, color=colors[i], label=label if j == 0 or
                   i == 0 else None)
            ax.text(j + (i - len(ROWS) / 2 + 0.5) * width, value + 0.01, f"{value:.2f}", ha="center", fontsize=7)
ax.axhline(0.7, color="black", linestyle=":", linewidth=1)
ax.text(2.45, 0.71, "goal 0.7", fontsize=8, ha="right")
ax.set_xticks(range(len(REGIONS)), list(REGIONS.values()))
ax.set_ylabel("per-building F1 (IoU >= 0.5)")
ax.set_ylim(0, 0.8)
ax.set_title("buildings-oam z20, pretrained Lite0, seed 0: what a mapper gets in a new area")
handles, labels = ax.get_legend_handles_labels()
unique = dict(zip(labels, handles, strict=True))
ax.legend(unique.values(), unique.keys(), fontsize=7, loc="upper left")
fig.tight_layout()
fig.savefig(out, dpi=120)
print("wrote", out)
