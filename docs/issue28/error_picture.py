"""A picture of what error_kinds.py counts (issue 28): for the tiles of an exp_post.py run with the most missed
buildings, the imagery with the true outlines (yellow), the predicted ones (cyan, p > 0.5) and the true buildings
the predictions miss altogether (red: under 30% of them covered; per tile, in pixels).

    python error_picture.py OUT.png POST_DIR:IMAGES [POST_DIR:IMAGES ...] [--tiles 3]
"""
import argparse
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from robosat_effnet.data.probabilities import read_probability
from robosat_effnet.tiles import tile_files


def outline(mask: np.ndarray) -> np.ndarray:
    return mask & ~ndimage.binary_erosion(mask)


def render(image: Path, label: np.ndarray, prob: np.ndarray, scale: int = 2) -> tuple[Image.Image, int]:
    truth, pred = label == 1, prob > 0.5
    components, n = ndimage.label(truth)
    covered = ndimage.mean(pred, components, range(1, n + 1)) if n else np.zeros(0)
    missed = np.isin(components, 1 + np.flatnonzero(np.asarray(covered) < 0.3))
    rgb = np.array(Image.open(image).convert("RGB"))
    rgb[missed] = (0.5 * rgb[missed] + [127, 0, 0]).astype(np.uint8)
    edges = ((outline(truth), (255, 230, 0)), (outline(pred), (0, 230, 255)), (outline(missed), (255, 0, 0)))
    for mask, colour in edges:
        rgb[mask] = colour
    side = rgb.shape[0] * scale
    return Image.fromarray(rgb).resize((side, side), Image.NEAREST), int(np.count_nonzero(np.asarray(covered) < 0.3))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("runs", nargs="+", help="POST_DIR:IMAGES (exp_post.py's folder, the region's image tiles)")
    p.add_argument("--tiles", type=int, default=3)
    args = p.parse_args()
    rows = []
    for run in args.runs:
        post, images = run.split(":")
        labels = tile_files(Path(post) / "truth-rest", {".png"})
        probs, imgs = tile_files(Path(post) / "probs", {".png"}), tile_files(images)
        rendered = [render(imgs[t], np.array(Image.open(labels[t])), read_probability(probs[t])) for t in labels]
        rows.append([im for im, _ in sorted(rendered, key=lambda r: -r[1])[:args.tiles]])
    side = rows[0][0].size[0]
    canvas = Image.new("RGB", (side * args.tiles, side * len(rows)), "white")
    for r, row in enumerate(rows):
        for c, im in enumerate(row):
            canvas.paste(im, (c * side, r * side))
    canvas.save(args.out)


if __name__ == "__main__":
    main()
