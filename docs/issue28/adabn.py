"""AdaBN (issue 28, item 2): a checkpoint's BatchNorm statistics re-estimated on the target area's own images
(no labels), weights untouched.   python adabn.py CHECKPOINT IMAGES OUT.pth"""
import sys

import torch

from robosat_effnet.bench.calibration import calibrate_batchnorm
from robosat_effnet.data.transforms import to_tensor
from robosat_effnet.io import read_image
from robosat_effnet.models.checkpoint import load_model, save_checkpoint
from robosat_effnet.tiles import tile_files

checkpoint, images, out = sys.argv[1:4]
model, spec = load_model(checkpoint)
tensors = []
for _, path in sorted(tile_files(images, {".png"}).items()):
    image = read_image(path)
    image = image[..., :3] if image.shape[-1] == 4 else image
    tensors.append(to_tensor(image, spec.mean, spec.std, spec.max_value))
batches = [torch.stack(tensors[i:i + 8]) for i in range(0, len(tensors), 8)]
calibrate_batchnorm(model, batches)
save_checkpoint(out, model, spec)
print(f"BatchNorm statistics from {len(tensors)} tiles of {images} -> {out}")
