"""Prediction: slippy-map folders and GeoTIFF scenes in, slippy-map masks (or probabilities) out.

    from robosat_effnet.predict import predict_tiles, predict_geotiff, predict_mask_geotiff

    predict_tiles("checkpoints/best.pth", "tiles/", "masks/")                  # z/x/y.<ext> folder
    predict_geotiff("checkpoints/best.pth", "scene.tif", "masks/", zoom=18)     # any CRS, warped per tile
    predict_mask_geotiff("checkpoints/best.pth", "scene.tif", "mask.tif")      # one mask on the scene's grid
    predict_tiles("model.onnx", "tiles/", "masks/")        # an exported model: the same, run by onnxruntime

    options = PredictOptions(tta=True, threshold=0.4)   # every setting as one value, passed whole to the loop
    predict_tiles("best.pth", "tiles/", "masks/", options)

Modules: `options` (PredictOptions), `context` (tiles with neighbour/mirrored borders), `engine` (batched
inference, TTA, AMP/channels_last on CUDA), `writer` (mask/probability tiles, background writing), `runner`
(the shared loop: shards, resume, progress), `tiles`, `geotiff`, `mirror` and `mosaic`. A checkpoint is opened
once into a `LoadedModel` (`robosat_effnet.models.loaded.open_model`), exported models are run by onnxruntime
(`robosat_effnet.models.onnx`).
"""

from robosat_effnet.models.loaded import LoadedModel, open_model
from robosat_effnet.predict.engine import Predictor
from robosat_effnet.predict.geotiff import predict_geotiff
from robosat_effnet.predict.mosaic import predict_mask_geotiff
from robosat_effnet.predict.options import PredictOptions
from robosat_effnet.predict.runner import PredictResult, parse_shard, take_share
from robosat_effnet.predict.tiles import predict_tiles
from robosat_effnet.predict.writer import dequantize, probability_dirs, quantize, read_probability

__all__ = [
    "LoadedModel",
    "PredictOptions",
    "PredictResult",
    "Predictor",
    "dequantize",
    "parse_shard",
    "predict_geotiff",
    "predict_mask_geotiff",
    "predict_tiles",
    "probability_dirs",
    "quantize",
    "open_model",
    "read_probability",
    "take_share",
]
