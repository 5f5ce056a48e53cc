"""What one `rs-effnet bench` run measures (BenchOptions), its sections and defaults, and the checks every option
passes before the first timing.

Imports nothing heavy, so that `rs-effnet bench --help` shows the sections and defaults without torch; the run
itself is `robosat_effnet.bench.run.run_bench`.
"""

from __future__ import annotations

from dataclasses import dataclass

from robosat_effnet.errors import ConfigError
from robosat_effnet.precision import PRECISIONS

SECTIONS = ("model", "encoder", "engines", "precisions", "predict", "train", "memory")
DEFAULT_SECTIONS = ("model", "encoder", "engines", "predict", "train")
# The compared networks: backbone:decoder, comma-separated.
DEFAULT_MODELS = "b0:unet,b2:unet,b4:unet,resnet50:unet,b0:fpn,b0:unet-lite"
STRIDE = 32  # every network's total stride: a tile size must be a multiple of it


class BenchOptionError(ConfigError):
    """One option of a bench run is invalid; `option` names its BenchOptions field."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(message)
        self.option = option


@dataclass
class BenchOptions:
    """One bench run: which networks, on which tiles, timed how, and which sections (see SECTIONS)."""

    models: str = DEFAULT_MODELS  # backbone:decoder networks of the model, precisions and train sections
    checkpoint: str | None = None  # a trained .pth: timed beside them, and the network of engines and predict
    tiles_dir: str | None = None  # imagery for BatchNorm statistics and timing; None: shared tiles, else generated
    size: int = 512  # tile size in px, a multiple of STRIDE
    batch_size: int = 1  # inference batch
    train_batch_size: int = 4
    train_precisions: tuple[str, ...] = ("fp32",)  # of the train section, each one of PRECISIONS
    repeats: int = 7  # interleaved timing rounds; the median is reported
    threads: int = 2  # torch (and onnxruntime) intra-op threads during the run
    sections: tuple[str, ...] = DEFAULT_SECTIONS
    int8: bool = True  # onnxruntime static int8 in the engines and precisions sections
    flush_denormal: bool = False  # torch.set_flush_denormal during the run
    scene_size: int = 20480  # side in px of the memory section's generated scene
    device: str | None = None  # None: cuda when available, else cpu


def names(text: str) -> tuple[str, ...]:
    """'model, encoder,' -> ('model', 'encoder'): the comma-separated names of an option, in order."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def parse_precisions(text: str) -> tuple[str, ...]:
    """'fp32,bf16' -> ('fp32', 'bf16') (each once, in order); BenchOptionError unless each is one of PRECISIONS."""
    chosen = names(text)
    check_precisions(chosen)
    return tuple(dict.fromkeys(chosen))


def check_precisions(chosen: tuple[str, ...]) -> None:
    if not chosen or set(chosen) - set(PRECISIONS):
        raise BenchOptionError("train_precisions", f"give one or more of {', '.join(PRECISIONS)}, e.g. fp32,bf16")


def check_options(options: BenchOptions) -> None:
    """Every option that click's types do not already bound, checked before any work: BenchOptionError naming the
    first wrong one (the networks of `models` are checked by `bench.models.parse_models`)."""
    if options.size % STRIDE:
        raise BenchOptionError("size", f"{options.size} is not a multiple of {STRIDE} (the networks' stride), e.g. 512")
    unknown = sorted(set(options.sections) - set(SECTIONS))
    if unknown or not options.sections:
        raise BenchOptionError("sections", f"unknown section(s) {', '.join(unknown)}; valid: {', '.join(SECTIONS)}"
                               if unknown else f"name one or more of {', '.join(SECTIONS)}")
    if not options.models.strip():
        raise BenchOptionError("models", "name one or more backbone:decoder networks, e.g. b0:unet,resnet50:unet")
    check_precisions(tuple(options.train_precisions))
