"""Time loading a model whole, in a fresh process per measurement: a classifier from its weights file
(`efficientnet(variant, weights=FILE)`), a U-Net from a checkpoint (`load_model`), and checking a weights file
against a backbone without loading it (`check_fits`, built on the meta device), one thread.

    OMP_NUM_THREADS=1 .venv/bin/python docs/bench-load.py ROOT [ROOT ...]   # a checkout of each tree to compare

The files are written once (random weights: only the time of reading and building is measured) into a temporary
folder; each tree loads each file in turn, interleaved, 3 times; the median is printed (BENCHMARKS.md, "Loading
a model").
"""
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

TIME = """
import sys, time, torch
torch.set_num_threads(1)
t = time.perf_counter()
if sys.argv[1] == "classifier":
    from robosat_effnet.models import efficientnet
    efficientnet(sys.argv[2], weights=sys.argv[3])
elif sys.argv[1] == "check_fits":
    from robosat_effnet.models.fitting import check_fits
    check_fits(sys.argv[3], sys.argv[2])
else:
    from robosat_effnet.models.checkpoint import load_model
    load_model(sys.argv[3])
import robosat_effnet
print(time.perf_counter() - t, robosat_effnet.__file__)
"""

WRITE = """
import sys, torch
from robosat_effnet.models import build_model, efficientnet
from robosat_effnet.models.checkpoint import ModelSpec, save_checkpoint
out = sys.argv[1]
for v in ("b0", "b4", "l2"):
    torch.save(efficientnet(v).state_dict(), f"{out}/{v}.pth")
for b in ("efficientnet-b0", "efficientnet-lite0"):
    save_checkpoint(f"{out}/{b}-unet.pth", build_model(b, "unet", 2), ModelSpec(backbone=b, tile_size=256))
"""


def main() -> None:
    roots = [Path(r).resolve() for r in sys.argv[1:]]
    python = sys.executable
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        # `python -c` puts the working folder first on sys.path: run from the temporary one, so that PYTHONPATH
        # (not the checkout this is started from) decides which tree is imported
        subprocess.run([python, "-c", WRITE, tmp], check=True, cwd=tmp, env={**env, "PYTHONPATH": str(roots[-1])})
        cases = [("classifier", v, f"{tmp}/{v}.pth") for v in ("b0", "b4", "l2")]
        cases += [("checkpoint", b, f"{tmp}/{b}-unet.pth") for b in ("efficientnet-b0", "efficientnet-lite0")]
        cases += [("check_fits", "efficientnet-b0", f"{tmp}/b0.pth")]  # what a study asks of each run's weights
        times = {(c, r): [] for c in cases for r in roots}
        for _ in range(3):
            for case in cases:
                for root in roots:
                    out = subprocess.run([python, "-c", TIME, *case], check=True, capture_output=True, text=True,
                                         cwd=tmp, env={**env, "PYTHONPATH": str(root)})
                    seconds, module = out.stdout.split()
                    assert module.startswith(str(root)), (module, root)  # the tree asked for, not another
                    times[case, root].append(float(seconds))
        print("| load | " + " | ".join(r.name for r in roots) + " |")
        print("|---|" + "---|" * len(roots))
        for case in cases:
            print(f"| {case[0]} {case[1]} | " + " | ".join(f"{statistics.median(times[case, r]):.2f} s"
                                                         for r in roots) + " |")


if __name__ == "__main__":
    main()
