"""Predict at twice the scale (issue 28: neighbours apart): the gaps between roofs twice as wide in pixels.

    python exp_scale.py CHECKPOINT DATA OUT [--with PROBS]   # then: exp_post.py CHECKPOINT DATA OUT --split ...

Each z20 image tile of DATA/validation/images becomes its four z21 children, upsampled 2x (bicubic), and the
model predicts those through `predict_tiles` (neighbours as context, as always); the z21 probabilities are
averaged back onto the z20 grid into OUT/probs, which exp_post.py then scores as it scores any model's
(it does not predict again once OUT/probs.done exists). `--with PROBS`: the mean with the 1x probabilities of
that folder (z20 probability tiles of the same model), both scales at once.
"""
import argparse
from pathlib import Path

import mercantile
import numpy as np
from PIL import Image

from robosat_effnet.data.probabilities import quantize, read_probability, write_probability
from robosat_effnet.predict import predict_tiles
from robosat_effnet.tiles import tile_files, tile_path


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("checkpoint")
    p.add_argument("data")
    p.add_argument("out")
    p.add_argument("--with", dest="other", default=None)
    args = p.parse_args()
    out = Path(args.out)
    images = tile_files(Path(args.data) / "validation" / "images")
    up = out / "images-x2"
    for tile, path in images.items():
        with Image.open(path) as image:
            big = image.convert("RGB").resize((image.width * 2, image.height * 2), Image.BICUBIC)
        size = image.width
        for child in mercantile.children(tile):
            dx, dy = (child.x - 2 * tile.x) * size, (child.y - 2 * tile.y) * size
            dest = tile_path(up, child, "png")
            dest.parent.mkdir(parents=True, exist_ok=True)
            big.crop((dx, dy, dx + size, dy + size)).save(dest)
    probs21 = out / "probs-x2"
    predict_tiles(args.checkpoint, up, probs21, probs=True, progress=False)
    small = tile_files(probs21, {".png"})
    for tile in images:
        quarters = {child: read_probability(small[child]) for child in mercantile.children(tile)}
        size = next(iter(quarters.values())).shape[0]  # the z20 tile's side: each child covers a quarter at 2x
        mosaic = np.zeros((2 * size, 2 * size), np.float32)
        for child, prob in quarters.items():
            dx, dy = (child.x - 2 * tile.x) * size, (child.y - 2 * tile.y) * size
            mosaic[dy:dy + size, dx:dx + size] = prob
        prob = mosaic.reshape(size, 2, size, 2).mean(axis=(1, 3))
        if args.other:
            prob = (prob + read_probability(tile_path(Path(args.other), tile, "png"))) / 2
        write_probability(tile_path(out / "probs", tile, "png"), quantize(prob))
    (out / "probs.done").touch()


if __name__ == "__main__":
    main()
