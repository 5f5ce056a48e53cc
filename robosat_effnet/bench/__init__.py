"""Speed and memory, measured side by side in one run so that ratios survive a noisy machine (`rs-effnet bench`).

Modules: `options` (what a run measures: BenchOptions, its sections and checks), `run` (one run, as the command
makes it: run_bench returns the report), `timing` (the machine, multiply-adds, interleaved timings, Markdown
tables), `calibration` (BatchNorm statistics from real tiles, so that no fresh network's denormal activations
are timed), `models` (whole models, encoders against torchvision's, training steps), `engines` (PyTorch eager /
bf16 / onnxruntime fp32 / int8 on one checkpoint, or on every network in one run) and `predict`
(`rs-effnet predict` end to end, and the memory of a large GeoTIFF scene).

    from robosat_effnet.bench import model_rows, markdown_table, sample_batches
    from robosat_effnet.bench import BenchOptions, run_bench

The names below load on first use (PEP 562), so that `rs-effnet bench --help` reads `bench.options` without
importing torch.
"""

from __future__ import annotations

from robosat_effnet.lazy import lazy_names

# public name -> the module that defines it
_LAZY = {
    "BenchOptions": "robosat_effnet.bench.options",
    "BenchReport": "robosat_effnet.bench.run",
    "DEFAULT_MODELS": "robosat_effnet.bench.options",
    "calibrate_batchnorm": "robosat_effnet.bench.calibration",
    "calibrated_model": "robosat_effnet.bench.models",
    "encoder_rows": "robosat_effnet.bench.models",
    "interleaved_timings": "robosat_effnet.bench.timing",
    "machine": "robosat_effnet.bench.timing",
    "markdown_table": "robosat_effnet.bench.timing",
    "model_rows": "robosat_effnet.bench.models",
    "multiply_adds": "robosat_effnet.bench.timing",
    "parse_models": "robosat_effnet.bench.models",
    "run_bench": "robosat_effnet.bench.run",
    "sample_batches": "robosat_effnet.bench.calibration",
    "train_rows": "robosat_effnet.bench.models",
    "write_report": "robosat_effnet.bench.run",
}

__all__ = list(_LAZY)


__getattr__, __dir__ = lazy_names(globals(), _LAZY)
