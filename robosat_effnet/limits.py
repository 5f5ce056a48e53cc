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
MAX_BANDS = 256  # input channels of a network (in_channels, bands): the stem's weights grow with them
MAX_DECODER_CHANNELS = 8192  # width of one decoder block (decoder_channels); the defaults are 16..256
# How far from 0 a normalised pixel, (x - mean) / std for x in 0..1, may lie. ImageNet's statistics give about
# +-2.6; beyond this float16 autocast (largest value 65504) overflows within the first layers and the loss is nan.
MAX_NORMALISED = 1e4


def normalisation_problem(mean: object, std: object) -> str | None:
    """What is wrong with a per-band (mean, std) pair, in words ("std 1e-300 makes ..."), or None when usable:
    two lists of finite numbers of one length, std positive, and normalised pixels of 0..1 within MAX_NORMALISED."""
    def numbers(values: object) -> bool:
        return isinstance(values, list) and bool(values) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) < float("inf") for v in values)

    if not numbers(mean) or not numbers(std) or len(mean) != len(std):  # type: ignore[arg-type]
        return "must be lists of finite numbers, one per input band"
    for m, s in zip(mean, std, strict=True):  # type: ignore[call-overload]
        if s <= 0:
            return f"std {s} is not positive"
        if max(abs(m), abs(1 - m)) / s > MAX_NORMALISED:
            return (f"mean {m} with std {s} make normalised pixels as large as {max(abs(m), abs(1 - m)) / s:.3g} "
                    f"(at most {MAX_NORMALISED:g}: they are of images scaled to 0..1, e.g. mean 0.45, std 0.22)")
    return None
