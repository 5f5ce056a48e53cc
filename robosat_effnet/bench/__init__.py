"""Speed and memory, measured side by side in one run so that ratios survive a noisy machine (`rs-effnet bench`).

Modules: `timing` (the machine, multiply-adds, interleaved timings, Markdown tables), `calibration` (BatchNorm
statistics from real tiles, so that no fresh network's denormal activations are timed), `models` (whole models,
encoders against torchvision's, training steps), `engines` (PyTorch eager / bf16 / onnxruntime fp32 / int8 on
one checkpoint, or on every network in one run) and `predict` (`rs-effnet predict` end to end, and the memory of a large GeoTIFF scene).

    from robosat_effnet.bench import model_rows, markdown_table, sample_batches
"""

from robosat_effnet.bench.calibration import calibrate_batchnorm, sample_batches
from robosat_effnet.bench.models import (
    DEFAULT_MODELS,
    calibrated_model,
    encoder_rows,
    model_rows,
    parse_models,
    train_rows,
)
from robosat_effnet.bench.timing import interleaved_timings, machine, markdown_table, multiply_adds

__all__ = [
    "DEFAULT_MODELS",
    "calibrate_batchnorm",
    "calibrated_model",
    "encoder_rows",
    "interleaved_timings",
    "machine",
    "markdown_table",
    "model_rows",
    "multiply_adds",
    "parse_models",
    "sample_batches",
    "train_rows",
]
