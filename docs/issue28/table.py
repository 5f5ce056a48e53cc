"""Per-building F1 (precision, recall) of exp_post.py grids side by side, for a few object-level settings.

    python table.py rest post-a-cross-s0 post-a-ft-s0     # SUBSET (all, local, rest) and grid folders
"""
import csv
import sys

SETTINGS = [  # (mask threshold, min area m2, min score)
    ("0.5", "2", "0.0"), ("0.5", "5", "0.0"), ("0.5", "10", "0.0"), ("0.6", "5", "0.0"), ("0.7", "2", "0.0"),
    ("0.7", "5", "0.0"), ("0.7", "10", "0.0"), ("0.5", "5", "0.8"), ("0.5", "10", "0.8"), ("0.6", "5", "0.8"),
    ("0.7", "5", "0.8"), ("0.7", "10", "0.8"), ("0.5", "5", "0.9"),
]


def cell(folder: str, subset: str, setting: tuple) -> str:
    for r in csv.DictReader(open(f"{folder}/grid.csv")):
        if (r["subset"] == subset and (r["threshold"], r["min_area"], r["min_score"]) == setting
                and r["closing"] == "0" and r["fill_holes"] == "False"):
            return f"{float(r['f1']):.3f} P{float(r['precision']):.2f} R{float(r['recall']):.2f}"
    return "-"


subset, folders = sys.argv[1], sys.argv[2:]
print("t,area,score | " + " | ".join(folders))
for setting in SETTINGS:
    print(",".join(setting), "|", " | ".join(cell(f, subset, setting) for f in folders))
