"""`rs-effnet bench`: the numbers behind BENCHMARKS.md, measured side by side in one run."""

from __future__ import annotations

import click

from robosat_effnet.cli.options import device_option, reports_errors

SECTIONS = ("model", "encoder", "train", "predict")


@click.command("bench")
@click.option("--backbones", default="b0,b1,b2,b3,b4,resnet50", show_default=True,
              help="Comma-separated backbones compared in the model and train sections.")
@click.option("--size", type=click.IntRange(min=32), default=512, show_default=True, help="Tile size in px.")
@click.option("--batch-size", type=click.IntRange(min=1), default=1, show_default=True, help="Inference batch.")
@click.option("--train-batch-size", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True,
              help="Timed rounds (median reported).")
@click.option("--sections", default=",".join(SECTIONS), show_default=True,
              help=f"Which sections to run: {', '.join(SECTIONS)}.")
@click.option("--scene-size", type=click.IntRange(min=1024), default=20480, show_default=True,
              help="Side in px of the generated scene for the large-scene memory check (predict section).")
@click.option("--markdown", "markdown_path", type=click.Path(dir_okay=False), default=None,
              help="Also write the tables to this Markdown file.")
@device_option
@reports_errors
def cli(backbones, size, batch_size, train_batch_size, repeats, sections, scene_size, markdown_path, device):
    """Parameters, multiply-adds, inference and training throughput and peak memory per backbone.

    Every comparison runs in this one invocation (ratios to resnet50 and to torchvision), so the
    numbers can be compared on a noisy machine. Writes nothing unless --markdown is given.
    """
    import torch

    from robosat_effnet import bench

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    chosen = [s.strip() for s in sections.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown:
        raise click.BadParameter(f"unknown section(s) {', '.join(unknown)}; valid: {', '.join(SECTIONS)}",
                                 param_hint="--sections")
    names = [b.strip() for b in backbones.split(",") if b.strip()]
    out = [f"Machine: {bench.machine()}; device {device}", ""]

    def emit(title: str, rows: list[dict]) -> None:
        out.extend([f"### {title}", "", bench.markdown_table(rows), ""])
        click.echo("\n".join(out[-4:]))

    click.echo(out[0] + "\n")
    if "model" in chosen:
        emit(f"U-Net inference, {size} px, batch {batch_size}",
             bench.model_rows(names, size, batch_size, repeats, device))
    if "encoder" in chosen:
        variants = [n.removeprefix("efficientnet-") for n in names if n in ("b0", "b4", "efficientnet-b0",
                                                                             "efficientnet-b4")] or ["b0"]
        emit(f"Our encoder vs torchvision features (same weights), {size} px",
             bench.encoder_rows(variants, size, batch_size, repeats, device))
    if "train" in chosen:
        emit(f"U-Net train step, {size} px, batch {train_batch_size}",
             bench.train_rows(names, size, train_batch_size, max(1, repeats - 1), device))
    if "predict" in chosen:
        from robosat_effnet import bench_predict

        emit("Predict: end to end vs model only", bench_predict.throughput_rows(device=device))
        emit(f"Predict: large GeoTIFF ({scene_size} x {scene_size} px) peak memory",
             bench_predict.large_scene_rows(scene_size))
    if markdown_path:
        from robosat_effnet.io import atomic_path

        with atomic_path(markdown_path) as tmp:
            tmp.write_text("\n".join(out) + "\n")
        click.echo(f"wrote {markdown_path}")
