"""Average the building probabilities of several models (e.g. one recipe run at three seeds) into the probability
folder exp_post.py scores, so an ensemble is scored exactly as each model alone.

    python ensemble.py OUT post-a-st-s0/probs post-a-st-s1/probs post-a-st-s2/probs
    python exp_post.py - data-a OUT --split blocks-a        # the checkpoint is not read: OUT/probs.done exists
"""
import sys
from pathlib import Path

import numpy as np

from robosat_effnet.data.probabilities import quantize, read_probability, write_probability
from robosat_effnet.tiles import tile_files, tile_path

out, folders = Path(sys.argv[1]), [Path(f) for f in sys.argv[2:]]
tiles = [tile_files(f, {".png"}) for f in folders]
common = set.intersection(*(set(t) for t in tiles))
for tile in sorted(common):
    mean = np.mean([read_probability(t[tile]) for t in tiles], axis=0)
    path = tile_path(out / "probs", tile, "png")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_probability(path, quantize(mean))
(out / "probs.done").touch()
print(f"{len(common)} tiles, the mean of {len(folders)} models")
