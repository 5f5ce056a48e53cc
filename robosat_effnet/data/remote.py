"""Rasters by URL: a cloud-optimised GeoTIFF read over HTTP range requests (GDAL's /vsicurl/), and its failures
as one line.

`tile` and `predict` take `https://.../scene.tif` wherever they take a local GeoTIFF: GDAL fetches the header and
then only the blocks (and overviews) a tile needs. A server that answers 404 or 500, a body that is no TIFF, or
a host that refuses the connection is one RasterError naming the URL and what to do.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from robosat_effnet.errors import RasterError
from robosat_effnet.text import is_url

# GDAL's defaults wait minutes on a dead host and list the server's "folder" before opening a file; these make a
# failing server a prompt error and opening a COG one request. Set only where the user has not set them.
GDAL_HTTP_DEFAULTS = {
    "GDAL_HTTP_TIMEOUT": "30",
    "GDAL_HTTP_CONNECTTIMEOUT": "10",
    "GDAL_HTTP_MAX_RETRY": "3",
    "GDAL_HTTP_RETRY_DELAY": "1",
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": "",
}
_HTTP_CODE = re.compile(r"HTTP (?:response )?code:? *(\d{3})", re.IGNORECASE)


def source_name(source: str | os.PathLike) -> str:
    """The stem of a local file or of a URL's last path segment (`.../scene.tif?sig=..` -> `scene`)."""
    if is_url(source):
        return PurePosixPath(urlsplit(str(source)).path).stem or urlsplit(str(source)).hostname or "scene"
    return Path(source).stem


def use_http_defaults() -> None:
    """Put GDAL_HTTP_DEFAULTS into the environment, where GDAL reads them in every thread, keeping the user's."""
    for key, value in GDAL_HTTP_DEFAULTS.items():
        if key != "CPL_VSIL_CURL_ALLOWED_EXTENSIONS" or value:
            os.environ.setdefault(key, value)


def open_url(url: str):
    """Open a GeoTIFF by URL for reading (a rasterio dataset); RasterError, one line, when it cannot be read."""
    import rasterio
    from rasterio._err import CPLE_BaseError
    from rasterio.errors import RasterioError

    use_http_defaults()
    try:
        return rasterio.open(url)
    except (RasterioError, CPLE_BaseError) as e:
        raise RasterError(f"cannot read {url}: {url_problem(str(e))}") from None


def url_problem(message: str) -> str:
    """What GDAL's error about a URL means, and what to do, in a few words."""
    text = " ".join(message.split())
    code = _HTTP_CODE.search(text)
    if code:
        status = int(code.group(1))
        if status in (401, 403):
            return f"the server refused access (HTTP {status}); check the URL's signature or your access"
        if status == 404:
            return "the server has no such file (HTTP 404); check the URL"
        if status >= 500:
            return f"the server failed (HTTP {status}); try again later"
        return f"the server answered HTTP {status}; check the URL"
    lowered = text.lower()
    if "not recognized as" in lowered or "not a tiff" in lowered or "not a supported file format" in lowered:
        return "the server's answer is not a GeoTIFF; pass the URL of a (cloud-optimised) GeoTIFF"
    if any(word in lowered for word in ("couldn't connect", "could not connect", "connection refused",
                                        "failed to connect", "resolve host", "timed out", "timeout")):
        return f"no answer from the server ({text[:120]}); check the URL and the network, then retry"
    if "range" in lowered:
        return "the server does not answer range requests, which reading a GeoTIFF by URL needs; download it first"
    return f"{text[:200]}; check that the URL serves a GeoTIFF"
