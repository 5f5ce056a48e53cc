"""EfficientNet's scaling: the paper's Table 1 (the B0 stages), the published (width, depth, resolution, dropout)
rows of every named variant, EfficientNet-Lite's rules (fixed stem and head, first and last stage not repeated
more), compound scaling for any phi, and the rounding of channels and repeats. Plain numbers, no modules."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from robosat_effnet.errors import ConfigError


@dataclass(frozen=True)
class Stage:
    """One row of the paper's Table 1 (the B0 baseline): MBConv<expand>, k x k, repeated `repeats` times."""

    expand: int
    kernel: int
    stride: int
    in_channels: int
    out_channels: int
    repeats: int


# Table 1 of the paper: the EfficientNet-B0 baseline network (after the 3x3 stem of 32 channels).
B0_STAGES = (
    Stage(1, 3, 1, 32, 16, 1),
    Stage(6, 3, 2, 16, 24, 2),
    Stage(6, 5, 2, 24, 40, 2),
    Stage(6, 3, 2, 40, 80, 3),
    Stage(6, 5, 1, 80, 112, 3),
    Stage(6, 5, 2, 112, 192, 4),
    Stage(6, 3, 1, 192, 320, 1),
)


@dataclass(frozen=True)
class Scaling:
    """Compound-scaling multipliers of one variant, plus its classifier dropout, BatchNorm settings, for
    EfficientNet-Lite `lite` (no squeeze-excitation, ReLU6, fixed stem and head, first and last stage not
    repeated more), and for the variants published as TensorFlow weights only (Lite, B8, L2) `same_padding`
    (TensorFlow's asymmetric padding at stride 2)."""

    width: float
    depth: float
    resolution: int
    dropout: float
    bn_eps: float = 1e-5
    bn_momentum: float = 0.1
    lite: bool = False
    same_padding: bool = False


def _lite(width: float, depth: float, resolution: int, dropout: float) -> Scaling:
    # TensorFlow's BatchNorm eps (1e-3) is part of what the published weights compute. Its momentum (0.99, PyTorch's
    # 0.01) is a training setting only; PyTorch's 0.1 lets the running statistics follow a short fine-tune.
    return Scaling(width, depth, resolution, dropout, 1e-3, 0.1, lite=True, same_padding=True)


# Published multipliers. B5-B7 were ported from TensorFlow, whose BatchNorm uses eps=1e-3 and
# momentum 0.99 (PyTorch's 0.01): the published weights only reproduce with those settings. B8 and L2 are the
# last rows of the reference implementation's table (efficientnet_builder.py; L2 is Noisy Student's network),
# whose only ImageNet weights are TensorFlow's (timm's tf_efficientnet_b8 / tf_efficientnet_l2): TensorFlow's
# BatchNorm eps and its "same" padding, or a weights file gives other features.
VARIANTS = {
    "b0": Scaling(1.0, 1.0, 224, 0.2),
    "b1": Scaling(1.0, 1.1, 240, 0.2),
    "b2": Scaling(1.1, 1.2, 260, 0.3),
    "b3": Scaling(1.2, 1.4, 300, 0.3),
    "b4": Scaling(1.4, 1.8, 380, 0.4),
    "b5": Scaling(1.6, 2.2, 456, 0.4, 1e-3, 0.01),
    "b6": Scaling(1.8, 2.6, 528, 0.5, 1e-3, 0.01),
    "b7": Scaling(2.0, 3.1, 600, 0.5, 1e-3, 0.01),
    "b8": Scaling(2.2, 3.6, 672, 0.5, 1e-3, 0.01, same_padding=True),
    "l2": Scaling(4.3, 5.3, 800, 0.5, 1e-3, 0.01, same_padding=True),
    # efficientnet_lite_builder.py: (width, depth, resolution, dropout)
    "lite0": _lite(1.0, 1.0, 224, 0.2),
    "lite1": _lite(1.0, 1.1, 240, 0.2),
    "lite2": _lite(1.1, 1.2, 260, 0.3),
    "lite3": _lite(1.2, 1.4, 280, 0.3),
    "lite4": _lite(1.4, 1.8, 300, 0.3),
}
LITE_STEM, LITE_HEAD = 32, 1280

# The paper's grid-searched compound coefficients: depth alpha, width beta, resolution gamma.
ALPHA, BETA, GAMMA = 1.2, 1.1, 1.15
STOCHASTIC_DEPTH = 0.2


def compound_scaling(phi: float) -> Scaling:
    """Multipliers for any compound coefficient phi (depth alpha^phi, width beta^phi, resolution gamma^phi)."""
    if not 0 <= phi <= 12:
        raise ConfigError(f"compound coefficient phi={phi} is outside 0..12")
    resolution = int(round(224 * GAMMA**phi / 8) * 8)
    dropout = round(min(0.5, 0.2 + 0.3 * phi / 6), 3)  # 0.2 at B0 growing to 0.5, as the variants do
    return Scaling(BETA**phi, ALPHA**phi, resolution, dropout)


def scaling_for(variant: str) -> Scaling:
    """The Scaling of 'b0'..'b8', 'l2' or 'lite0'..'lite4' (also 'efficientnet-b0'..)."""
    key = variant.lower().removeprefix("efficientnet-").removeprefix("efficientnet_")
    if key not in VARIANTS:
        raise ConfigError(f"unknown EfficientNet variant {variant!r}; valid: {', '.join(VARIANTS)}")
    return VARIANTS[key]


def round_channels(channels: float, width: float, divisor: int = 8) -> int:
    """Scale a channel count by `width` and round to the nearest multiple of `divisor`, never losing >10%."""
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * scaled else rounded


def round_repeats(repeats: int, depth: float) -> int:
    """Scale a stage's number of blocks by `depth`, rounding up."""
    return int(math.ceil(repeats * depth))


def scaled_stages(scaling: Scaling) -> list[Stage]:
    """Table 1's B0 stages with `scaling`'s width and depth applied (Lite: the stem width and the first and last
    stage's repeats stay as in B0)."""
    last = len(B0_STAGES) - 1
    stages = [replace(s, in_channels=round_channels(s.in_channels, scaling.width),
                      out_channels=round_channels(s.out_channels, scaling.width),
                      repeats=s.repeats if scaling.lite and i in (0, last) else round_repeats(s.repeats, scaling.depth))
              for i, s in enumerate(B0_STAGES)]
    if scaling.lite:
        stages[0] = replace(stages[0], in_channels=LITE_STEM)
    return stages


def head_channels(scaling: Scaling) -> int:
    """Width of the classifier's 1x1 head conv: 4x the last stage's (B0's 1280 scaled), fixed at 1280 in Lite."""
    return LITE_HEAD if scaling.lite else 4 * round_channels(B0_STAGES[-1].out_channels, scaling.width)
