"""`rs-effnet view`: look at imagery, masks and outlines on a map, offline."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

import click

from robosat_effnet.cli.options import COMMAND_SETTINGS, FiniteFloatRange, quiet_option, reports_errors


@click.command("view", context_settings=COMMAND_SETTINGS)
@click.argument("images", type=click.Path(exists=True, file_okay=False))
@click.option("--masks", type=click.Path(exists=True, file_okay=False),
              help="Mask tiles (from `predict`) or label tiles (from `rasterize`) to overlay.")
@click.option("--outlines", type=click.Path(exists=True, dir_okay=False),
              help="Predicted outlines (GeoJSON from `features`).")
@click.option("--truth", type=click.Path(exists=True, dir_okay=False),
              help="True outlines (GeoJSON); with --outlines, outlines are coloured by their match.")
@click.option("--dataset", type=click.Path(exists=True, dir_okay=False),
              help="dataset.toml whose class names label the mask colours in the legend.")
@click.option("--match-iou", type=FiniteFloatRange(0, 1, min_open=True), default=0.5, show_default=True,
              help="IoU at which a predicted outline matches a true one (as `rs-effnet score`).")
@click.option("--opacity", type=FiniteFloatRange(0, 1), default=0.5, show_default=True,
              help="Starting opacity of the mask overlay (a slider on the page changes it).")
@click.option("--out", type=click.Path(file_okay=False),
              help="Write the page into this folder (open its index.html). Default: a temporary folder, served.")
@click.option("--serve/--no-serve", default=None,
              help="Serve the page over HTTP. Default: serve when there is no --out.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to serve on, IPv4 or IPv6 (e.g. ::1); anything but loopback exposes your data to the "
                   "network.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port to serve on (0: any free port).")
@quiet_option()
@reports_errors
def cli(images, masks, outlines, truth, dataset, match_iou, opacity, out, serve, host, port, quiet):
    """Write a map page of IMAGES (a slippy-map folder) with mask tiles and outlines over it, and serve it.

    The page works offline (Leaflet ships with the package) and reads tiles from its own folder. It
    opens on the largest group of neighbouring tiles; zoomed out, a marker shows each group. Click a
    building for its properties; the legend says what each colour means. Ctrl-C or SIGTERM stops the
    server and removes the temporary page.
    """
    from robosat_effnet.view import PageServer, write_page
    from robosat_effnet.view.server import is_loopback

    serve = out is None if serve is None else serve
    if out is None and not serve:
        raise click.UsageError("--no-serve needs --out FOLDER to write the page into")
    if serve and not is_loopback(host):
        click.echo(f"warning: serving on {host}: anyone who can reach this machine can see the page and its tiles",
                   err=True)
    classes = None
    if dataset:
        from robosat_effnet.config import load_dataset_config
        from robosat_effnet.outputs import warn_other_classes

        classes = load_dataset_config(dataset).classes
        if masks:
            warn_other_classes(masks, classes, dataset, "masks", f"the page names them as {dataset} does")
    with _signals_stop(signal.SIGTERM, signal.SIGHUP), _page_folder(out) as folder:
        server = PageServer(folder, host, port) if serve else None  # a port in use fails before the work
        try:
            page = write_page(folder, images, masks=masks, outlines=outlines, truth=truth, classes=classes,
                              match_iou=match_iou, opacity=opacity, progress=not quiet)
            shown = [f"{page.image_tiles} image tiles"] + ([f"{page.mask_tiles} mask tiles"] if masks else []) + \
                ([f"{page.outlines} outlines"] if outlines else []) + ([f"{page.truth} true outlines"] if truth else [])
            if len(page.groups) > 1:
                shown[0] += f" in {len(page.groups)} places (the page opens on the largest)"
            if out:
                click.echo(f"wrote the map page of {', '.join(shown)} to {out} (open {out}/index.html)")
            if server is None:
                return
            try:  # a stop from here on (the line below may be read and answered at once) is a clean one
                click.echo(f"serving {', '.join(shown)} on {server.url} (Ctrl-C stops)")
                server.serve_forever()
            except KeyboardInterrupt:
                click.echo("stopped")
        finally:
            if server is not None:
                server.server_close()


@contextlib.contextmanager
def _page_folder(out: str | None) -> Iterator[str]:
    """`out`, or a temp folder removed on the way out (one that a run killed with kill -9 left: by the next)."""
    if out is not None:
        yield out
        return
    from robosat_effnet.outputs import temp_folder

    with temp_folder("view") as scratch:
        yield str(scratch)


@contextlib.contextmanager
def _signals_stop(*signals: signal.Signals) -> Iterator[None]:
    """Within the block, these signals stop the command as Ctrl-C does (KeyboardInterrupt), so that it cleans
    up on the way out; a second one ends the process at once."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread may handle signals
        yield
        return

    def stop(signum: int, frame: object) -> None:
        for each in signals:
            signal.signal(each, signal.SIG_DFL)
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {each: signal.signal(each, stop) for each in signals}
    try:
        yield
    finally:
        for each, handler in previous.items():
            signal.signal(each, handler)


if __name__ == "__main__":  # `python -m robosat_effnet.cli.view`, as the tests run it
    cli()
