"""Reading and writing image tiles, label tiles and masks (every write is atomic); why a .pth file failed to load."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from robosat_effnet.colors import NODATA_INDEX, make_palette
from robosat_effnet.errors import DatasetError
from robosat_effnet.outputs.temp import temp_path

PIL_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp"}
TIFF_EXTENSIONS = {".tif", ".tiff"}
IMAGE_EXTENSIONS = PIL_EXTENSIONS | TIFF_EXTENSIONS


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it to `path` only if the block succeeds.

    Readers never see a half-written file and an interrupted run leaves no partial output. The temp
    name is recognisably ours (`outputs.temp_path`), so a rerun can sweep what a killed run left. It is
    created with mode 0o666 and the kernel applies the umask (mkstemp's 0600 would survive the rename).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = temp_path(path)
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            break
        except FileExistsError:  # a random name taken: draw another
            continue
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image tile as an H x W x C array (uint8, or uint16 for 16-bit GeoTIFFs).

    JPEG/PNG/WebP go through Pillow (alpha is dropped: it is not a band); TIFFs go through
    rasterio and keep every band and their data type.
    """
    path = Path(path)
    try:
        if path.suffix.lower() in TIFF_EXTENSIONS:
            import warnings

            import rasterio
            from rasterio.errors import NotGeoreferencedWarning

            # Tiles are placed by their z/x/y path; a tif tile without georeferencing is normal.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                with rasterio.open(path) as src:
                    return np.moveaxis(src.read(), 0, -1)
        with Image.open(path) as image:
            if image.mode in ("RGBA", "P", "CMYK", "YCbCr", "LAB", "HSV", "1"):
                image = image.convert("L" if image.mode == "1" else "RGB")
            elif image.mode == "LA":
                image = image.convert("L")
            array = np.asarray(image)
    except (OSError, UnidentifiedImageError, ValueError) as e:
        raise DatasetError(f"cannot read image {path}: {e}; re-create or remove the file") from None
    if array.dtype.kind in "iu" and array.dtype != np.uint8:  # 16-bit PNGs: keep their values, as uint16
        if array.size and (array.min() < 0 or array.max() > 65535):
            raise DatasetError(f"image {path} holds values outside 0..65535; store it as uint8 or uint16")
        array = array.astype(np.uint16)
    return array[..., None] if array.ndim == 2 else array


def read_alpha(path: str | os.PathLike) -> np.ndarray | None:
    """The alpha band of a PNG/WebP tile as an H x W bool array of valid pixels, or None if it has none."""
    try:
        with Image.open(path) as image:
            if image.mode not in ("RGBA", "LA") and "transparency" not in image.info:
                return None
            return np.asarray(image.convert("RGBA"))[..., 3] > 0
    except (OSError, UnidentifiedImageError) as e:
        raise DatasetError(f"cannot read image {path}: {e}; re-create or remove the file") from None


def read_label(path: str | os.PathLike) -> np.ndarray:
    """Read a label tile (palette or greyscale PNG of class indices) as an H x W uint8 array."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            if image.mode in ("RGB", "RGBA"):
                raise DatasetError(
                    f"label {path} is an RGB image; labels must be palette or greyscale PNGs of class indices"
                )
            if image.mode == "1":
                image = image.convert("L").point(lambda v: 1 if v else 0)
            array = np.asarray(image)
    except (OSError, UnidentifiedImageError, ValueError) as e:
        raise DatasetError(f"cannot read label {path}: {e}; re-create or remove the file") from None
    if array.ndim != 2:
        raise DatasetError(f"label {path} has {array.shape[-1]} channels; labels must be single-band PNGs of "
                           "class indices")
    if array.dtype != np.uint8 and array.size and (array.min() < 0 or array.max() > 255):
        raise DatasetError(f"label {path} holds value {int(array.max())}; class indices must be 0..255 "
                           "(re-create the label as an 8-bit palette or greyscale PNG)")
    return array.astype(np.uint8, copy=False)


def write_image(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write an H x W x C image tile atomically: Pillow for png/webp/jpg, rasterio for tif."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix.lower() in TIFF_EXTENSIONS:
            import rasterio

            height, width, count = array.shape
            profile = dict(driver="GTiff", height=height, width=width, count=count, dtype=array.dtype.name,
                           compress="deflate")
            with rasterio.open(tmp, "w", **profile) as dst:
                dst.write(np.moveaxis(array, -1, 0))
        else:
            image = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
            image.save(tmp, format=_pil_format(path), **({"lossless": True} if path.suffix == ".webp" else {}))


def write_mask(path: str | os.PathLike, mask: np.ndarray, colors: list) -> None:
    """Write an H x W array of class indices as a palette PNG; index 255 (no data) is transparent."""
    image = Image.fromarray(mask.astype(np.uint8), mode="P")
    image.putpalette(make_palette(colors))
    transparency = bytes(255 if i != NODATA_INDEX else 0 for i in range(256))
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG", optimize=True, transparency=transparency)


def _pil_format(path: Path) -> str:
    return {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP"}[path.suffix.lower()]


def file_problem(path: str | os.PathLike) -> str | None:
    """Why `path` cannot be read as a file, in words that follow its name ("does not exist", "is a folder, not a
    file"), or None when it is a file."""
    path = Path(path)
    if path.is_file():
        return None
    if path.is_dir():
        return "is a folder, not a file; give the path of the file inside it"
    return "does not exist" if not path.exists() else "is not a regular file"


def load_failure(path: str | os.PathLike, error: BaseException) -> str:
    """Why `torch.load(path, weights_only=True)` failed, in a few words that never advise loading unsafely."""
    text = str(error)
    if Path(path).is_file() and Path(path).stat().st_size == 0:
        return "the file is empty"
    if "GLOBAL" in text or "Unsupported global" in text:  # a pickle naming code to run: refused, never run
        found = re.search(r"GLOBAL ([\w.]+)|Unsupported global: GLOBAL ([\w.]+)", text)
        name = next((g for g in found.groups() if g), None) if found else None
        return (f"it holds Python objects{f' ({name})' if name else ''} that would run code when loaded; "
                "it was refused without running anything")
    if isinstance(error, EOFError) or "central directory" in text or "zip archive" in text:
        return "it is truncated or damaged (an incomplete copy or download?)"
    return "it is not a PyTorch file of tensors (or it is damaged)"
