"""The largest values the commands (and the library functions behind them) accept for sizes and counts.

Each bounds something that costs memory or processes in proportion (or in square) to it, so a typo such as
`--size 100000` is a one-line usage error instead of minutes of work ending in an allocation failure. They sit
far above any sensible setting; the command reference shows each one in its option's range.
"""

MAX_ZOOM = 30  # slippy-map zoom levels 0..30 (a z30 tile is about 4 cm across)
MAX_TILE_SIZE = 4096  # px per side of a tile or a network input (tile, rasterize, predict, bench; image_size)
MAX_WINDOW = 4096  # px per side of predict --geotiff's sliding window
MAX_BORDER = 1024  # px of neighbour context around each predicted tile
MAX_TOUCHING_PX = 32  # px of the touching band rasterize burns between buildings
MAX_BATCH_SIZE = 1024  # tiles per batch (train, predict, eval, bench; batch_size)
MAX_WORKERS = 64  # loader processes or reader threads (workers)
MAX_THREADS = 256  # intra-op threads of torch and onnxruntime (bench --threads)
MAX_CALIBRATION_TILES = 1024  # tiles export --int8 holds in memory to calibrate on
MAX_SCENE_SIZE = 32768  # px per side of bench's generated large scene
MAX_REPEATS = 1000  # timing rounds (bench --repeats, study --speed-repeats)
MAX_SEED = 2**32 - 1  # seeds torch, numpy and the loaders take
MIN_RESOLUTION_CM = 1e-4  # cm of ground per pixel (export --deepness): 1 um, far below any aerial imagery
MAX_RESOLUTION_CM = 1e8  # cm per pixel: 1000 km, coarser than any imagery of the ground
MAX_AREA_M2 = 5.1e14  # m2: the surface of the Earth, more than any area option can mean
