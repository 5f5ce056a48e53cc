"""The tiles two splits both leave to be scored, so that two ways of picking local blocks meet on equal ground.

    python common_split.py blocks-a blocks-a-unc-s0 blocks-a-common   # OUT/rest.csv: in both rests
"""
import os
import sys


def read(path: str) -> set[str]:
    return set(open(path).read().split())


a, b, out = sys.argv[1:4]
rest = read(f"{a}/rest.csv") & read(f"{b}/rest.csv")
local = (read(f"{a}/rest.csv") | read(f"{a}/local.csv")) - rest
os.makedirs(out, exist_ok=True)
with open(f"{out}/rest.csv", "w") as f:
    f.write("\n".join(sorted(rest)) + "\n")
with open(f"{out}/local.csv", "w") as f:
    f.write("\n".join(sorted(local)) + "\n")
print(len(rest), "common rest tiles,", len(local), "others")
