"""Writing the map page of `rs-effnet view`: imagery, mask overlay and outlines in one offline folder.

    page = write_page("page/", "tiles/", masks="masks/", outlines="buildings.geojson", truth="osm.geojson")

The folder holds everything the browser needs (Leaflet and its licence, the page, the tiles, the outlines),
so it opens from disk or from `rs-effnet view --serve` without internet or a tile server:

    index.html, view.js, view.css, leaflet.js, leaflet.css, LICENSE-leaflet.txt, images/   the page
    data.js                       extent, zooms, groups of neighbouring tiles (the page opens on the largest),
                                  class colours, outlines (GeoJSON, lon/lat)
    tiles/images/z/x/y.<ext>      the image tiles (hard links where possible; GeoTIFF tiles become PNG)
    tiles/masks/z/x/y.png         the mask tiles as RGBA overlays: background and no data transparent
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import mercantile
import numpy as np
from PIL import Image
from tqdm import tqdm

from robosat_effnet.colors import NODATA_INDEX
from robosat_effnet.errors import ConfigError, DatasetError
from robosat_effnet.io import atomic_path, read_image, write_image
from robosat_effnet.outputs.checks import check_separate, check_writable, plain_folder, writing
from robosat_effnet.tiles import tile_files, tile_path
from robosat_effnet.view.groups import Group, group_tiles
from robosat_effnet.view.outlines import LEGEND, OUTLINE_COLORS, load_outlines, match_outlines

MARKER = ".rs-effnet-view"  # says a folder is a page written by this command (and so may be rewritten)
# index.html last: a page that opens has everything it loads.
STATIC = ("view.js", "view.css", "leaflet.js", "leaflet.css", "LICENSE-leaflet.txt", "images/layers.png",
          "images/layers-2x.png", "index.html")
BROWSER_EXTENSIONS = {".png", ".jpg", ".jpeg", ".webp"}
_PAGE_TILE = re.compile(r"[0-9]+/[0-9]+/[0-9]+\.(png|jpg|jpeg|webp)")  # the names view gives the page's tiles


@dataclass
class Page:
    """What `write_page` wrote: the folder, the tiles it shows, the extent (west, south, east, north) and the
    groups of neighbouring image tiles, largest first (the page opens on the first)."""

    folder: Path
    image_tiles: int
    mask_tiles: int
    outlines: int
    truth: int
    bounds: tuple[float, float, float, float]
    groups: list[Group]


def write_page(out: str | os.PathLike, images: str | os.PathLike, masks: str | os.PathLike | None = None,
               outlines: str | os.PathLike | None = None, truth: str | os.PathLike | None = None,
               classes: list[str] | None = None, match_iou: float = 0.5, opacity: float = 0.5,
               progress: bool = True) -> Page:
    """Write the map page for a folder of image tiles, optional mask tiles and optional outlines.

    `classes` names the mask's class indices (default "class 0", "class 1", ...). With both `outlines`
    and `truth`, each outline is coloured by the SpaceNet matching of `rs-effnet score` (IoU >= `match_iou`):
    true positives, false positives and missed buildings. `out` must be new, empty, or a page written
    before; it may not lie inside an input folder.
    """
    out = Path(out)
    inputs = [Path(p) for p in (images, masks, outlines, truth) if p is not None]
    _check_out(out, inputs)
    image_files = _tiles(images, "image")
    mask_files = _tiles(masks, "mask") if masks is not None else {}
    pred = load_outlines(outlines) if outlines is not None else None
    true = load_outlines(truth) if truth is not None else None
    if pred is not None and true is not None:
        match_outlines(pred, true, match_iou)

    bounds, groups = _bounds(image_files), group_tiles(image_files)
    check_writable(out)
    with writing(out):
        _write(out, image_files, mask_files, pred, true, bounds, groups, classes, opacity, progress)
    return Page(out, len(image_files), len(mask_files), len(pred["features"]) if pred else 0,
                len(true["features"]) if true else 0, bounds, groups)


def _write(out: Path, image_files: dict, mask_files: dict, pred: dict | None, true: dict | None,
           bounds: tuple[float, float, float, float], groups: list[Group], classes: list[str] | None,
           opacity: float, progress: bool) -> None:
    (out / MARKER).touch()
    (out / "index.html").unlink(missing_ok=True)  # an earlier page does not open over half of this one
    image_ext = _copy_images(image_files, out / "tiles" / "images", progress)
    legend_classes = _write_overlays(mask_files, out / "tiles" / "masks", classes, progress) if mask_files else None
    # A rewrite shows exactly this run's tiles: an earlier run's others (more masks, another format) go.
    for kind, files, ext in (("images", image_files, image_ext), ("masks", mask_files, "png")):
        _remove_other_tiles(out / "tiles" / kind, {tile_path(out / "tiles" / kind, t, ext) for t in files})
    data = {
        "bounds": [[bounds[1], bounds[0]], [bounds[3], bounds[2]]],
        "images": {"url": f"tiles/images/{{z}}/{{x}}/{{y}}{image_ext}", **_zooms(image_files)},
        "masks": None if not mask_files else {"url": "tiles/masks/{z}/{x}/{y}.png", "classes": legend_classes,
                                             **_zooms(mask_files)},
        "groups": [{"tiles": g.tiles, "bounds": [[g.bounds[1], g.bounds[0]], [g.bounds[3], g.bounds[2]]],
                    "center": [g.center[1], g.center[0]]} for g in groups],  # Leaflet's [lat, lon]
        "outlines": pred, "truth": true, "scored": pred is not None and true is not None, "opacity": opacity,
        "colors": OUTLINE_COLORS,
        "legend": [entry for entry in LEGEND if _shown(entry["key"], pred, true)],
    }
    with atomic_path(out / "data.js") as tmp:
        tmp.write_text("window.RS_VIEW = " + json.dumps(data, separators=(",", ":")) + ";\n")
    static = resources.files("robosat_effnet.view") / "static"
    for name in STATIC:
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp:
            tmp.write_bytes((static / name).read_bytes())


def _check_out(out: Path, inputs: list[Path]) -> None:
    check_separate([out], inputs)
    plain_folder(out)  # a dangling link, a file, a file above it: one line naming it
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).exists():
        raise ConfigError(f"{out} holds files that `rs-effnet view` did not write; pick a new or empty folder")


def _tiles(folder: str | os.PathLike, kind: str) -> dict[mercantile.Tile, Path]:
    files = tile_files(folder)  # a file whose z/x/y is no tile is one line there
    if not files:
        raise DatasetError(f"no {kind} tiles (z/x/y.png, .jpg, .webp or .tif) in {folder}; "
                           "pass a slippy-map folder as written by `rs-effnet tile` or `predict`")
    return files


def _zooms(files: dict[mercantile.Tile, Path]) -> dict[str, int]:
    zooms = [tile.z for tile in files]
    return {"minZoom": min(zooms), "maxZoom": max(zooms)}


def _bounds(files: dict[mercantile.Tile, Path]) -> tuple[float, float, float, float]:
    boxes = np.array([mercantile.bounds(tile) for tile in files])
    return (float(boxes[:, 0].min()), float(boxes[:, 1].min()), float(boxes[:, 2].max()), float(boxes[:, 3].max()))


def _shown(key: str, pred: dict | None, true: dict | None) -> bool:
    scored = pred is not None and true is not None
    return {"outlines": pred is not None and not scored, "truth": true is not None and not scored,
            "tp": scored, "fp": scored, "fn": scored}[key]


def _copy_images(files: dict[mercantile.Tile, Path], root: Path, progress: bool) -> str:
    """Link (or copy) browser-readable tiles into the page; other tiles (GeoTIFF, mixed formats) become PNG."""
    suffixes = {path.suffix.lower() for path in files.values()}
    keep = len(suffixes) == 1 and suffixes <= BROWSER_EXTENSIONS
    ext = suffixes.pop() if keep else ".png"
    stretch = None if keep else _stretch(list(files.values()))
    for tile, path in tqdm(files.items(), desc="page: imagery", unit="tile", disable=not progress):
        target = tile_path(root, tile, ext)
        target.parent.mkdir(parents=True, exist_ok=True)
        if keep:
            _link(path, target)
        else:
            write_image(target, _preview(read_image(path), stretch))
    return ext


def _link(source: Path, target: Path) -> None:
    """Hard-link (or copy) the file a tile is into the page. A tile that is a symbolic link (a tile cache, `cp -rs`)
    is followed: os.link would link the link itself, which the server rightly refuses to follow out of the page.
    Followed only to an image file: a link named like a tile but leading elsewhere is refused, never served."""
    real = source.resolve()
    if real != source.absolute() and not _browser_image(real):
        raise DatasetError(f"{source} links to {real}, which is no PNG, JPEG or WebP image; remove the link or "
                           "point it at the tile")
    with atomic_path(target) as tmp:
        tmp.unlink()
        try:
            os.link(real, tmp)
        except OSError:  # another filesystem, or links not allowed: copy
            shutil.copyfile(real, tmp)


def _browser_image(path: Path) -> bool:
    """Whether `path` is a regular file that Pillow reads as PNG, JPEG or WebP (from its header only)."""
    try:
        with Image.open(path) as image:
            return path.is_file() and image.format in ("PNG", "JPEG", "WEBP")
    except (OSError, Image.DecompressionBombError):
        return False


def _remove_other_tiles(root: Path, kept: set[Path]) -> None:
    """Remove the tiles (z/x/y.<image ext>) under `root` that are not in `kept`, then the folders left empty:
    what an earlier run of view wrote into its page and this one does not show. Other files stay."""
    if not root.is_dir():
        return
    for path in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        relative = path.relative_to(root).as_posix()
        if path.is_file() and not path.is_symlink() and _PAGE_TILE.fullmatch(relative) and path not in kept:
            path.unlink()
        elif path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
            path.rmdir()
    if not any(root.iterdir()):
        root.rmdir()


def _stretch(paths: list[Path], sample: int = 64) -> tuple[float, float]:
    """The 2nd and 98th percentiles of a sample of tiles: how >8-bit imagery is shown (as QGIS does)."""
    step = max(1, len(paths) // sample)
    values = np.concatenate([read_image(p)[..., :3].ravel() for p in paths[::step]])
    low, high = np.percentile(values, [2, 98])
    return float(low), float(max(high, low + 1))


def _preview(image: np.ndarray, stretch: tuple[float, float]) -> np.ndarray:
    rgb = image[..., :3] if image.shape[-1] >= 3 else np.repeat(image[..., :1], 3, axis=-1)
    if image.dtype == np.uint8:
        return np.ascontiguousarray(rgb)
    low, high = stretch
    return (np.clip((rgb.astype(np.float32) - low) / (high - low), 0, 1) * 255).astype(np.uint8)


def _write_overlays(files: dict[mercantile.Tile, Path], root: Path, classes: list[str] | None,
                    progress: bool) -> list[dict]:
    """Mask tiles -> RGBA overlays in their own palette's colours, class 0 and no data transparent."""
    seen: dict[int, str] = {}
    for tile, path in tqdm(files.items(), desc="page: masks", unit="tile", disable=not progress):
        try:
            with Image.open(path) as image:
                if image.mode != "P":
                    raise DatasetError(f"mask {path} is not a palette PNG; give the masks written by "
                                       "`rs-effnet predict` or the labels of `rs-effnet rasterize`")
                index = np.asarray(image)
                palette = np.array(image.getpalette()[:768] + [0] * (768 - len(image.getpalette()[:768])),
                                   dtype=np.uint8).reshape(256, 3)
        except (OSError, Image.DecompressionBombError) as e:
            raise DatasetError(f"cannot read mask {path}: {e}; re-create or remove the file") from None
        rgba = np.zeros(index.shape + (4,), dtype=np.uint8)
        rgba[..., :3] = palette[index]
        rgba[..., 3] = np.where((index == 0) | (index == NODATA_INDEX), 0, 255)
        for value in np.unique(index):
            if 0 < value < NODATA_INDEX and value not in seen:
                seen[int(value)] = "#" + "".join(f"{int(c):02x}" for c in palette[value])
        target = tile_path(root, tile, "png")
        target.parent.mkdir(parents=True, exist_ok=True)
        write_image(target, rgba)
    names = classes or []
    return [{"name": names[i] if i < len(names) else f"class {i}", "color": color}
            for i, color in sorted(seen.items())]
