"""Fetching one image tile over HTTP: the URL template, a session that retries politely, and what counts as a tile.

A tile service answers in four ways that matter: an image (a tile), 404 or 204 (no imagery there: recorded, not
retried), a temporary failure (429, 5xx, a dropped connection, a timeout: retried with exponential backoff by
urllib3's `Retry`, which waits as long as a 429's or 503's Retry-After asks), or something that is not the tile
(an HTML error page sent with status 200, a truncated PNG, a tile of the wrong size): a failure, never a tile.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO

import mercantile

from robosat_effnet._version import __version__
from robosat_effnet.errors import ConfigError

PLACEHOLDERS = ("{z}", "{x}", "{y}", "{-y}", "{quadkey}")
NO_IMAGERY = (204, 404)  # the service has nothing there: recorded in missing.csv, never retried
RETRY_STATUS = (429, 500, 502, 503, 504)
USER_AGENT = f"rs-effnet/{__version__} (robosat_effnet download)"
BACKOFF = 0.5  # s: urllib3 waits 0, 1, 2, 4, ... s between tries (capped at BACKOFF_MAX)
BACKOFF_MAX = 60.0


def check_template(url: str) -> str:
    """A tile URL template as given, or ConfigError: http(s), with {z}, {x} and {y} or {-y}, or {quadkey}."""
    if not re.match(r"^https?://[^/{}]+", url, re.IGNORECASE):
        raise ConfigError(f"{url!r} is not an http(s) URL template; give e.g. "
                          "https://tiles.openaerialmap.org/<id>/{z}/{x}/{y}.png")
    unknown = [p for p in re.findall(r"\{[^{}]*\}", url) if p not in PLACEHOLDERS]
    if unknown:
        raise ConfigError(f"URL template {url!r} holds {', '.join(unknown)}, which this command does not fill; "
                          f"use {', '.join(PLACEHOLDERS)}")
    has_xyz = "{z}" in url and "{x}" in url and ("{y}" in url or "{-y}" in url)
    if not has_xyz and "{quadkey}" not in url:
        raise ConfigError(f"URL template {url!r} does not say where a tile goes; it needs {{z}}, {{x}} and {{y}} "
                          "(or {-y} for TMS), or {quadkey}")
    return url


def tile_url(template: str, tile: mercantile.Tile) -> str:
    """The template filled for one tile ({-y}: TMS rows, counted from the south)."""
    values = {"{z}": tile.z, "{x}": tile.x, "{y}": tile.y, "{-y}": 2**tile.z - 1 - tile.y,
              "{quadkey}": mercantile.quadkey(tile)}
    return re.sub(r"\{(?:z|x|y|-y|quadkey)\}", lambda m: str(values[m.group(0)]), template)


class Pace:
    """At most `rate` requests per second across every thread (None: no limit); retries count too."""

    def __init__(self, rate: float | None):
        self.interval = 1.0 / rate if rate else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Block until this thread may send its next request."""
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        time.sleep(max(0.0, slot - now))


def make_session(retries: int, pace: Pace, connections: int):
    """A requests session that retries temporary failures `retries` times (see the module docstring), pacing
    each retry by `pace` as well, and names the tool in its User-Agent."""
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    class PacedRetry(Retry):
        def sleep(self, response=None) -> None:  # the backoff or Retry-After wait, then the rate limit's
            super().sleep(response)
            pace.wait()

    retry = PacedRetry(total=retries, connect=retries, read=retries, status=retries, other=0,
                       backoff_factor=BACKOFF, backoff_max=BACKOFF_MAX, status_forcelist=RETRY_STATUS,
                       allowed_methods=frozenset({"GET"}), respect_retry_after_header=True, raise_on_status=False)
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry, pool_connections=1, pool_maxsize=max(1, connections))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


@dataclass
class Answer:
    """What one tile's request came to: "tile" (with its bytes), "missing" or "failed" (with the reason)."""

    outcome: str
    body: bytes = b""
    reason: str = ""


def fetch(session, url: str, timeout: float, retries: int, check: Callable[[bytes], str | None]) -> Answer:
    """GET one tile (retried by the session) and judge the answer; `check` says what is wrong with a body."""
    import requests

    tries = f"after {retries + 1} tries" if retries else "(no retries)"
    try:
        response = session.get(url, timeout=timeout)
    except requests.exceptions.Timeout:
        return Answer("failed", reason=f"no answer within --timeout {timeout:g} s {tries}")
    except requests.exceptions.RetryError as e:  # urllib3 gave up on a retried status
        return Answer("failed", reason=f"{_last_status(e)} {tries}")
    except requests.exceptions.ConnectionError as e:
        if _timed_out(e):  # urllib3 gave up after read timeouts: requests calls that a ConnectionError
            return Answer("failed", reason=f"no answer within --timeout {timeout:g} s {tries}")
        return Answer("failed", reason=f"connection failed {tries} ({_short(e)})")
    except requests.exceptions.RequestException as e:
        return Answer("failed", reason=f"request failed: {_short(e)}")
    with response:
        if response.status_code in NO_IMAGERY:
            return Answer("missing")
        if response.status_code != 200:
            extra = f" {tries}" if response.status_code in RETRY_STATUS else ""
            return Answer("failed", reason=f"HTTP {response.status_code} {response.reason or ''}".rstrip() + extra)
        body = response.content
    problem = check(body)
    if problem is not None:
        kind = response.headers.get("Content-Type", "no Content-Type")
        return Answer("failed", reason=f"HTTP 200 ({kind}) but {problem}")
    return Answer("tile", body)


def image_problem(size: int) -> Callable[[bytes], str | None]:
    """A check of a body: None for a complete image of `size` x `size` px that Pillow decodes, else why not."""
    from PIL import Image, UnidentifiedImageError

    def check(body: bytes) -> str | None:
        if not body:
            return "an empty body"
        try:
            with Image.open(BytesIO(body)) as image:
                image.load()  # decodes every pixel: a truncated file fails here, not when it is read later
                if image.size != (size, size):
                    return f"a {image.width}x{image.height} px image, not {size}x{size} (--size)"
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
            head = body[:40].decode("ascii", "replace").split("\n")[0]
            return f"not a complete image ({_short(e)}; starts {head!r})"
        return None

    return check


def _timed_out(error: BaseException) -> bool:
    from urllib3.exceptions import TimeoutError as Urllib3Timeout

    reason = getattr(error.args[0] if error.args else None, "reason", None)
    return isinstance(reason, Urllib3Timeout)


def _last_status(error: BaseException) -> str:
    match = re.search(r"too many (\d{3}) error", str(error))
    return f"HTTP {match.group(1)}" if match else "still failing"


def _short(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return (text[:160] + "...") if len(text) > 160 else text or type(error).__name__
