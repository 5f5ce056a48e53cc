"""Prediction: slippy-map folders and GeoTIFF scenes in, slippy-map masks (or probabilities) out.

    from robosat_effnet.predict import predict_tiles, predict_geotiff, predict_mask_geotiff

    predict_tiles("checkpoints/best.pth", "tiles/", "masks/")                  # z/x/y.<ext> folder
    predict_geotiff("checkpoints/best.pth", "scene.tif", "masks/", zoom=18)     # any CRS, warped per tile
    predict_mask_geotiff("checkpoints/best.pth", "scene.tif", "mask.tif")      # one mask on the scene's grid
    predict_tiles("model.onnx", "tiles/", "masks/")        # an exported model: the same, run by onnxruntime

Modules: `context` (tiles with neighbour/mirrored borders), `engine` (batched inference, TTA,
AMP/channels_last on CUDA), `onnx` (exported models run by onnxruntime), `writer` (mask/probability
tiles, background writing), `runner` (the shared loop: shards, resume, progress), `tiles`, `geotiff`,
`raster` (scene checks) and `mosaic`.
"""

from robosat_effnet.predict.engine import Predictor, resolve_model
from robosat_effnet.predict.geotiff import predict_geotiff
from robosat_effnet.predict.mosaic import predict_mask_geotiff
from robosat_effnet.predict.runner import PredictResult, parse_shard, take_share
from robosat_effnet.predict.tiles import predict_tiles
from robosat_effnet.predict.writer import dequantize, probability_dirs, quantize, read_probability

__all__ = [
    "PredictResult",
    "Predictor",
    "dequantize",
    "parse_shard",
    "predict_geotiff",
    "predict_mask_geotiff",
    "predict_tiles",
    "probability_dirs",
    "quantize",
    "read_probability",
    "resolve_model",
    "take_share",
]
