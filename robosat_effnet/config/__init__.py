"""robosat's `dataset.toml` and `model.toml`, read into typed dataclasses, plus our optional keys.

robosat's files work unchanged; every key robosat did not know is optional (see configs/ for a
commented example of each). Relative paths in a file are taken relative to that file's folder, so
a project folder can be moved; robosat's absolute paths work as they are, and so do its relative ones
(robosat read them from the current folder: used when only that path exists).

dataset.toml::

    [common]
    dataset = "data/"             # holds training/{images,labels} and validation/{images,labels}
    classes = ["background", "parking"]
    colors  = ["denim", "orange"]
    images  = ["images"]          # ours: image folders per split, stacked channel-wise (e.g. ["rgb", "nir"])
    labels  = "labels"            # ours: label folder per split
    bands   = [1, 2, 3]           # ours: 1-based channels of the stacked image used as input (default: all)
    in_channels = 3               # ours: input channels (default: len(bands), len(mean), else 3)
    mean    = [0.485, 0.456, 0.406]  # ours: per channel, of images scaled to 0..1 (default: ImageNet)
    std     = [0.229, 0.224, 0.225]
    max_value = 10000             # ours: uint16 value that means 1.0 (default 65535; see transforms.to_tensor)
    [weights]
    values = [1.6248, 5.762827]   # class weights (`rs-effnet weights`), used by CrossEntropy, mIoU, Focal

model.toml: robosat's `[common] cuda, batch_size, image_size, checkpoint` and `[opt] epochs, lr, loss`,
plus ours in `[common]`: backbone, decoder, decoder_channels, weights, amp, seed, workers, save_every, keep;
in `[opt]`: weight_decay, warmup, grad_clip, augment, jitter, hue, saturation, grayscale, gamma, gap_weight,
gap_px. Keys nobody knows are reported with a warning and ignored.
"""

from robosat_effnet.config.dataset import DATASET_KEYS, DEFAULT_COLORS, DatasetConfig, load_dataset_config
from robosat_effnet.config.model import (
    MODEL_KEYS,
    PRECISIONS,
    ModelConfig,
    apply_overrides,
    load_model_config,
    spec_from_configs,
    validate_model_config,
)

__all__ = ["DATASET_KEYS", "DEFAULT_COLORS", "MODEL_KEYS", "PRECISIONS", "DatasetConfig", "ModelConfig",
           "apply_overrides", "load_dataset_config", "load_model_config", "spec_from_configs",
           "validate_model_config"]
