"""Time `tile` per tile in the tree at ROOT (BENCHMARKS.md, "What the layout of issue 30 costs and saves").

    OMP_NUM_THREADS=1 .venv/bin/python docs/bench-tile-warp.py ROOT     # ROOT: a checkout of this project
"""
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

root = sys.argv[1]
sys.path.insert(0, root)
try:
    from robosat_effnet.prepare.tile import tile_geotiff
except ImportError:
    from robosat_effnet.geo.tile import tile_geotiff
tmp = Path(tempfile.mkdtemp())
scene = tmp / "scene.tif"
data = np.random.default_rng(1).integers(1, 256, (3, 3000, 3000)).astype(np.uint8)
with rasterio.open(scene, "w", driver="GTiff", width=3000, height=3000, count=3, dtype="uint8", crs="EPSG:32636",
                   transform=from_origin(452000.0, 38800.0, 1.0, 1.0), tiled=True) as dst:
    dst.write(data)
times = []
for r in range(3):
    out = tmp / f"t{r}"
    t = time.perf_counter()
    rep = tile_geotiff(scene, out, 18, size=256, workers=1, progress=False)
    times.append((time.perf_counter() - t) / len(rep.written))
print(root, len(rep.written), "tiles", f"{statistics.median(times)*1000:.1f} ms/tile")
shutil.rmtree(tmp)
