"""`rs-effnet view`: look at imagery, masks and outlines on a map, offline."""

from __future__ import annotations

import tempfile

import click

from robosat_effnet.cli.options import FiniteFloatRange, reports_errors


@click.command("view")
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
              help="Address to serve on; anything but loopback exposes your data to the network.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port to serve on (0: any free port).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@reports_errors
def cli(images, masks, outlines, truth, dataset, match_iou, opacity, out, serve, host, port, quiet):
    """Write a map page of IMAGES (a slippy-map folder) with mask tiles and outlines over it, and serve it.

    The page works offline (Leaflet ships with the package) and reads tiles from its own folder.
    Click a building for its properties; the legend says what each colour means.
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

        classes = load_dataset_config(dataset).classes
    with tempfile.TemporaryDirectory(prefix="rs-effnet-view-") as scratch:
        folder = out or scratch
        server = PageServer(folder, host, port) if serve else None  # a port in use fails before the work
        try:
            page = write_page(folder, images, masks=masks, outlines=outlines, truth=truth, classes=classes,
                              match_iou=match_iou, opacity=opacity, progress=not quiet)
            shown = [f"{page.image_tiles} image tiles"] + ([f"{page.mask_tiles} mask tiles"] if masks else []) + \
                ([f"{page.outlines} outlines"] if outlines else []) + ([f"{page.truth} true outlines"] if truth else [])
            if out:
                click.echo(f"wrote the map page of {', '.join(shown)} to {out} (open {out}/index.html)")
            if server is None:
                return
            click.echo(f"serving {', '.join(shown)} on {server.url} (Ctrl-C stops)")
            try:
                server.serve_forever()
            except KeyboardInterrupt:
                click.echo("stopped")
        finally:
            if server is not None:
                server.server_close()


if __name__ == "__main__":  # `python -m robosat_effnet.cli.view`, as the tests run it
    cli()
