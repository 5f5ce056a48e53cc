"""Download the image tiles of a tiles.csv from a tile service into a slippy-map folder (robosat's `download`).

Resumable and honest: each tile is written to a temp name and renamed when complete, so a killed run leaves no
half-written tile and a rerun fetches only the tiles not on disk yet. Every tile ends as one of four things,
counted at the end: fetched, already there, no imagery (the service said 404/204; listed in `missing.csv` and not
asked again), or failed (after the retries; listed in `failed.csv`, robosat's tiles.csv format, to retry).
"""

from __future__ import annotations

import os
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import mercantile

from robosat_effnet.errors import ConfigError, DatasetError
from robosat_effnet.io import atomic_path
from robosat_effnet.limits import MAX_TILE_SIZE, MAX_WORKERS
from robosat_effnet.outputs import check_separate, claim_folder, make_record, writing
from robosat_effnet.prepare.fetch import Pace, check_template, fetch, image_problem, make_session, tile_url
from robosat_effnet.tiles import read_tiles_csv, tile_path, write_tiles_csv

MISSING_CSV = "missing.csv"
FAILED_CSV = "failed.csv"
EXTENSIONS = ("png", "jpg", "webp", "tif")
MAX_RETRIES = 20
MAX_TIMEOUT = 600.0  # s per request


@dataclass
class DownloadReport:
    """What `download_tiles` did with each tile."""

    fetched: int = 0
    present: int = 0  # on disk already (an earlier run)
    missing: list[mercantile.Tile] = field(default_factory=list)  # no imagery, this run or an earlier one
    failed: dict[mercantile.Tile, str] = field(default_factory=dict)  # tile -> why
    missing_csv: Path | None = None
    failed_csv: Path | None = None

    def summary(self) -> str:
        """One line: the four counts, and the commonest reasons for failures."""
        line = (f"fetched {self.fetched}, already there {self.present}, no imagery {len(self.missing)}, "
                f"failed {len(self.failed)}")
        if self.failed:
            reasons = Counter(self.failed.values()).most_common(2)
            line += (f" ({'; '.join(f'{n}x {why}' for why, n in reasons)}; listed in {self.failed_csv}, "
                     "run the same command again to retry them)")
        return line


def url_extension(template: str) -> str:
    """The tile extension a URL template's path ends in (png if it names none we keep)."""
    from urllib.parse import urlsplit

    suffix = Path(urlsplit(template.replace("{", "").replace("}", "")).path).suffix.lower().lstrip(".")
    suffix = {"jpeg": "jpg", "tiff": "tif"}.get(suffix, suffix)
    return suffix if suffix in EXTENSIONS else "png"


def download_tiles(url: str, tiles_csv: str | os.PathLike, out: str | os.PathLike, *, ext: str | None = None,
                   size: int = 256, workers: int = 4, rate: float | None = None, timeout: float = 30.0,
                   retries: int = 5, progress: bool = True, overwrite: bool = False) -> DownloadReport:
    """Fetch every tile of `tiles_csv` from the template `url` into `out/z/x/y.<ext>`.

    `workers` threads share at most `rate` requests per second (retries included); each request waits up to
    `timeout` s and temporary failures are retried `retries` times with backoff (honouring Retry-After). A body
    must decode (Pillow) to a `size` x `size` px image to become a tile. `out` is only continued when the same
    URL and settings wrote it (`outputs.claim_folder`; `overwrite` replaces another run's tiles). Raises
    ConfigError for a bad template or setting, DatasetError for an unreadable or empty tiles.csv, OutputError
    before fetching for an unusable `out`; failed tiles are in the report (and `failed.csv`), not raised.
    """
    check_template(url)
    ext = (ext or url_extension(url)).lower().lstrip(".")
    if ext not in EXTENSIONS:
        raise ConfigError(f"unknown tile extension {ext!r}; use one of {', '.join(EXTENSIONS)}")
    if not (0 < size <= MAX_TILE_SIZE and 1 <= workers <= MAX_WORKERS and 0 <= retries <= MAX_RETRIES
            and 0 < timeout <= MAX_TIMEOUT and (rate is None or rate > 0)):
        raise ConfigError(f"size {size}, workers {workers}, retries {retries}, timeout {timeout} or rate {rate} is "
                          f"out of range (1..{MAX_TILE_SIZE} px, 1..{MAX_WORKERS}, 0..{MAX_RETRIES}, a positive "
                          f"timeout up to {MAX_TIMEOUT:g} s, a positive rate)")
    out = Path(out)
    check_separate([out], [tiles_csv])
    wanted = sorted(set(read_tiles_csv(tiles_csv)), key=lambda t: (t.z, t.x, t.y))
    if not wanted:
        raise DatasetError(f"{tiles_csv} lists no tiles; make one with `rs-effnet cover`")
    claim_folder(out, make_record("download", url, {"ext": ext, "size": size}), overwrite=overwrite,
                 clear=_clear)
    report = DownloadReport(missing_csv=out / MISSING_CSV, failed_csv=out / FAILED_CSV)
    known_missing = set(read_tiles_csv(out / MISSING_CSV)) if (out / MISSING_CSV).is_file() else set()
    todo = []
    for tile in wanted:
        if tile_path(out, tile, ext).is_file():
            report.present += 1
        elif tile not in known_missing:
            todo.append(tile)
    pace = Pace(rate)
    session = make_session(retries, pace, workers)
    check = image_problem(size)

    def one(tile: mercantile.Tile):
        pace.wait()
        answer = fetch(session, tile_url(url, tile), timeout, retries, check)
        if answer.outcome == "tile":
            with writing(out), atomic_path(tile_path(out, tile, ext)) as tmp:
                tmp.write_bytes(answer.body)
        return answer

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc="download", unit="tile")
    missing = set(known_missing)
    pending: deque = deque()
    try:
        with ThreadPoolExecutor(workers) as pool:
            try:
                for tile in todo:
                    pending.append((tile, pool.submit(one, tile)))
                    if len(pending) >= 4 * workers:  # bounded: only a few tiles in flight
                        _settle(pending.popleft(), report, missing, bar)
                while pending:
                    _settle(pending.popleft(), report, missing, bar)
            finally:  # on an error or Ctrl-C, tiles not started yet are dropped
                for _, future in pending:
                    future.cancel()
    finally:
        session.close()
        if bar is not None:
            bar.close()
    report.missing = sorted(missing & set(wanted), key=lambda t: (t.z, t.x, t.y))
    with writing(out):
        if missing:  # every tile ever found without imagery here, so that a rerun does not ask again
            write_tiles_csv(report.missing_csv, sorted(missing, key=lambda t: (t.z, t.x, t.y)))
        if report.failed:
            write_tiles_csv(report.failed_csv, sorted(report.failed, key=lambda t: (t.z, t.x, t.y)))
        else:  # ours (the folder is claimed): a list of failures that no longer fail would mislead
            report.failed_csv.unlink(missing_ok=True)
    return report


def _settle(item, report: DownloadReport, missing: set, bar) -> None:
    tile, future = item
    answer = future.result()
    if answer.outcome == "tile":
        report.fetched += 1
    elif answer.outcome == "missing":
        missing.add(tile)
    else:
        report.failed[tile] = answer.reason
    if bar is not None:
        bar.update()


def _clear(folder: Path) -> None:
    """--overwrite of another run's download: its tiles and lists go, so two services never mix."""
    from robosat_effnet.outputs import remove_tiles

    remove_tiles(folder)
    for name in (MISSING_CSV, FAILED_CSV):
        (folder / name).unlink(missing_ok=True)
