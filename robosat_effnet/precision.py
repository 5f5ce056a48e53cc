"""The precisions a network may be asked to compute in: model.toml's `precision`, and `--precision` of train,
predict, eval and bench (`--train-precision`).

In a module that imports nothing, so that the command line lists them in --help without importing torch, and
config, the predictor and the CLI all read this one tuple.
"""

# fp32: float32 throughout; bf16: bfloat16 autocast (weights stay float32). None (no precision given) keeps the
# device's default: float16 autocast on CUDA, fp32 on CPU.
PRECISIONS = ("fp32", "bf16")
