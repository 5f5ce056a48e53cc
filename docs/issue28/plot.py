"""Draw docs/outlines-issue28.png from the grids of docs/issue28/pipeline.sh, seeds.sh, ust.sh, ust-round.sh,
colour.sh and the smp runs (smp_baseline.py, score_masks.py --json): each bar is the median over the seeds run (s0,
s1, s2), its whisker the lowest and highest seed, n the seeds.

    python docs/issue28/plot.py ../study-runs docs/outlines-issue28.png
"""
import csv
import json
import statistics
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

REGIONS = {"a": "Philippines", "b": "Kampala", "c": "Zanzibar"}
ROWS = [  # label, grid folder pattern, subset, (threshold, min area)
    ("smp Unet (cross-region, 0.5 / 2 m2)", "smp-{f}-s{s}", "all", None),
    ("ours, cross-region, 0.5 / 2 m2", "post-{f}-cross-s{s}", "all", ("0.5", "2")),
    ("ours, cross-region, new defaults 0.7 / 5 m2", "post-{f}-cross-s{s}", "all", ("0.7", "5")),
    ("smp fine-tuned on a quarter (rest tiles, 0.5 / 2 m2)", "smp-ft-{f}-s{s}", "all", None),
    ("ours fine-tuned on a quarter (rest tiles, 0.5 / 5 m2)", "post-{f}-ft-s{s}", "rest", ("0.5", "5")),
    ("+ self-training (rest tiles, 0.5 / 5 m2)", "post-{f}-st-s{s}", "rest", ("0.5", "5")),
    ("random blocks + self-training (tiles neither choice labelled)", "post-{f}-st-common-s{s}", "rest", ("0.5", "5")),
    ("uncertain blocks + self-training (same tiles)", "post-{f}-ust-common-s{s}", "rest", ("0.5", "5")),
    ("+ a second round of self-training, the recipe now (same tiles)", "post-{f}-ust2-common-s{s}", "rest",
     ("0.5", "5")),
    ("smp fine-tuned on the same uncertain blocks (same tiles)", "smp-uft-{f}-s{s}", "rest", "common.json"),
    ("colour augmentation, cross-region, 0.7 / 5 m2 (not adopted)", "post-{f}-col-cross-s{s}", "all", ("0.7", "5")),
    ("colour augmentation, the recipe's two rounds (same tiles; not adopted)", "post-{f}-colst2-common-s{s}", "rest",
     ("0.5", "5")),
]
SEEDS = (0, 1, 2)


def f1(runs: Path, pattern: str, fold: str, seed: int, subset: str, setting) -> float | None:
    folder = runs / pattern.format(f=fold, s=seed)
    if setting is None or isinstance(setting, str):  # smp_baseline.py's result.json, or score_masks.py --json
        path = folder / (setting or "result.json")
        return json.loads(path.read_text())["f1"] if path.is_file() else None
    if not (folder / "grid.csv").is_file():
        return None
    for r in csv.DictReader((folder / "grid.csv").open()):
        if (r["subset"], r["threshold"], r["min_area"], r["min_score"], r["closing"], r["fill_holes"]) == (
                subset, *setting, "0.0", "0", "False"):
            return float(r["f1"])
    return None


runs, out = Path(sys.argv[1]), sys.argv[2]
fig, ax = plt.subplots(figsize=(11, 6))
width = 0.8 / len(ROWS)
colors = ["#999999", "#9ecae1", "#4292c6", "#cccccc", "#fdae6b", "#e6550d", "#a1d99b", "#74c476", "#00441b", "#666666",
          "#bcbddc", "#756bb1"]
for i, (label, pattern, subset, setting) in enumerate(ROWS):
    for j, fold in enumerate(REGIONS):
        seeds = SEEDS if "{s}" in pattern else SEEDS[:1]
        values = sorted(v for s in seeds if (v := f1(runs, pattern, fold, s, subset, setting)) is not None)
        if not values:
            continue
        x, median = j + (i - len(ROWS) / 2 + 0.5) * width, statistics.median(values)
        ax.bar(x, median, width, color=colors[i], label=label)
        if len(values) > 1:
            ax.errorbar(x, median, yerr=[[median - values[0]], [values[-1] - median]], color="black", linewidth=0.8,
                        capsize=2)
        ax.text(x, values[-1] + 0.012, f"{median:.3f}" + (f"\nn={len(values)}" if len(values) > 1 else ""),
                ha="center", fontsize=5.5)
ax.axhline(0.7, color="black", linestyle=":", linewidth=1)
ax.text(-0.45, 0.71, "goal 0.7", fontsize=8, ha="left")
ax.set_xticks(range(len(REGIONS)), list(REGIONS.values()))
ax.set_ylabel("per-building F1 (IoU >= 0.5)")
ax.set_ylim(0, 0.85)
ax.set_title("buildings-oam z20, pretrained Lite0: what a mapper gets in a new area (median of the seeds run)")
handles, labels = ax.get_legend_handles_labels()
unique = dict(zip(labels, handles, strict=True))
ax.legend(unique.values(), unique.keys(), fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2)
fig.tight_layout()
fig.savefig(out, dpi=120)
print("wrote", out)
