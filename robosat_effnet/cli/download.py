"""`rs-effnet download`: fetch the image tiles of a tiles.csv from a tile service (TMS/XYZ, OpenAerialMap)."""

from __future__ import annotations

import click

from robosat_effnet.cli.options import COMMAND_SETTINGS, FiniteFloatRange, checked_by, quiet_option, reports_errors
from robosat_effnet.limits import MAX_TILE_SIZE, MAX_WORKERS
from robosat_effnet.prepare.download import EXTENSIONS, MAX_RETRIES, MAX_TIMEOUT


def _template(value: str) -> str:
    from robosat_effnet.prepare.fetch import check_template

    return check_template(value)


@click.command("download", context_settings=COMMAND_SETTINGS)
@click.argument("url", callback=checked_by(_template))
@click.argument("tiles", type=click.Path(exists=True, dir_okay=False))
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--ext", type=click.Choice(EXTENSIONS), default=None,
              help="Extension of the tiles written. Default: the URL's (png if it names none).")
@click.option("--size", type=click.IntRange(1, MAX_TILE_SIZE), default=256, show_default=True,
              help="px per side every tile must have; any other size is a failure.")
@click.option("--workers", type=click.IntRange(1, MAX_WORKERS), default=4, show_default=True,
              help="Requests in parallel.")
@click.option("--rate", type=FiniteFloatRange(min=0, min_open=True), default=None,
              help="At most this many requests per second, across workers and retries. Default: no limit.")
@click.option("--timeout", type=FiniteFloatRange(min=0, max=MAX_TIMEOUT, min_open=True), default=30.0,
              show_default=True, help="Seconds to wait for a server's answer before a try counts as failed.")
@click.option("--retries", type=click.IntRange(0, MAX_RETRIES), default=5, show_default=True,
              help="Tries after the first for 429, 5xx, timeouts and dropped connections (with backoff, "
                   "honouring Retry-After).")
@click.option("--overwrite", is_flag=True, help="Replace the tiles another run (other URL or settings) left in OUT.")
@quiet_option("No progress bar.")
@reports_errors
def cli(url, tiles, out, ext, size, workers, rate, timeout, retries, overwrite, quiet):
    """Fetch the tiles listed in TILES (robosat's tiles.csv, e.g. from `rs-effnet cover`) from URL into
    OUT/z/x/y.<ext>.

    URL is a template with {z}, {x} and {y} (or {-y} for TMS rows, or {quadkey}), e.g.
    https://tiles.openaerialmap.org/<id>/{z}/{x}/{y}.png. A tile is kept only when it decodes to an image of
    --size px (an HTML error page or a truncated file is a failure). 404/204 mean no imagery: listed in
    OUT/missing.csv and not asked again. Failures after the retries are listed in OUT/failed.csv and make the
    exit status 1; run the same command again to fetch what is still missing.
    """
    import logging

    from robosat_effnet.prepare.download import download_tiles

    # urllib3 logs each retry as a warning; the summary line counts the tiles that still failed, with why.
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    report = download_tiles(url, tiles, out, ext=ext, size=size, workers=workers, rate=rate, timeout=timeout,
                            retries=retries, progress=not quiet, overwrite=overwrite)
    if report.failed:
        raise click.ClickException(report.summary())
    click.echo(report.summary())
