"""`rs-effnet bench`: the numbers behind BENCHMARKS.md, measured side by side in one run."""

from __future__ import annotations

import click

from robosat_effnet.bench.options import (
    DEFAULT_MODELS,
    DEFAULT_SECTIONS,
    SECTIONS,
    BenchOptionError,
    BenchOptions,
    names,
    parse_precisions,
)
from robosat_effnet.cli.options import COMMAND_SETTINGS, device_option, reports_errors
from robosat_effnet.limits import MAX_BATCH_SIZE, MAX_REPEATS, MAX_SCENE_SIZE, MAX_THREADS, MAX_TILE_SIZE

# BenchOptions field -> the option that sets it, for a usage error that names the option
FLAGS = {"size": "--size", "sections": "--sections", "models": "--models", "train_precisions": "--train-precision"}


def _precisions(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    try:
        return parse_precisions(value)
    except BenchOptionError as e:
        raise click.BadParameter(str(e)) from None


@click.command("bench", context_settings=COMMAND_SETTINGS)
@click.option("--models", default=None,
              help="Comma-separated backbone:decoder networks compared in the model, precisions and train sections "
                   f"[default: {DEFAULT_MODELS}].")
@click.option("--checkpoint", type=click.Path(dir_okay=False, exists=True), default=None,
              help="A trained checkpoint: timed next to the others, and the network of the engines and predict "
                   "sections (default: a b0 U-Net with BatchNorm statistics from the tiles).")
@click.option("--tiles", "tiles_dir", type=click.Path(file_okay=False, exists=True), default=None,
              help="Slippy-map folder of imagery for BatchNorm statistics and timing [default: "
                   "../shared/data/buildings-oam when present, else a generated scene].")
@click.option("--size", type=click.IntRange(32, MAX_TILE_SIZE), default=512, show_default=True,
              help="Tile size in px.")
@click.option("--batch-size", type=click.IntRange(1, MAX_BATCH_SIZE), default=1, show_default=True,
              help="Inference batch.")
@click.option("--train-batch-size", type=click.IntRange(1, MAX_BATCH_SIZE), default=4, show_default=True)
@click.option("--train-precision", default="fp32", show_default=True, callback=_precisions,
              help="Comma-separated precisions of the train section: fp32, bf16 (model.toml's precision).")
@click.option("--repeats", type=click.IntRange(1, MAX_REPEATS), default=7, show_default=True,
              help="Timed interleaved rounds (median reported).")
@click.option("--threads", type=click.IntRange(1, MAX_THREADS), default=2, show_default=True,
              help="torch (and onnxruntime) intra-op threads.")
@click.option("--sections", default=",".join(DEFAULT_SECTIONS), show_default=True,
              help=f"Which sections to run: {', '.join(SECTIONS)} (precisions: every --models network in fp32, "
                   "bf16, onnxruntime fp32 and int8; memory: a large generated scene; both minutes).")
@click.option("--int8/--no-int8", default=True, show_default=True,
              help="Include onnxruntime static int8 quantisation in the engines and precisions sections.")
@click.option("--flush-denormal", is_flag=True,
              help="Flush denormal floats to zero (torch.set_flush_denormal); off by default so that nothing "
                   "hides a network whose activations underflow.")
@click.option("--scene-size", type=click.IntRange(1024, MAX_SCENE_SIZE), default=20480, show_default=True,
              help="Side in px of the generated scene for the large-scene memory check (memory section).")
@click.option("--markdown", "markdown_path", type=click.Path(dir_okay=False), default=None,
              help="Also write the tables to this Markdown file.")
@device_option
@reports_errors
def cli(models, checkpoint, tiles_dir, size, batch_size, train_batch_size, train_precision, repeats, threads, sections,
        int8, flush_denormal, scene_size, markdown_path, device):
    """Inference speed (whole network, encoder, decoder), training speed and memory, engines and precisions.

    Every comparison runs in this one invocation (ratios to the resnet50 U-Net, to torchvision, to PyTorch
    eager), timed round-robin, on networks with realistic activations: BatchNorm statistics from image tiles
    or a trained --checkpoint. Writes nothing unless --markdown is given.
    """
    from robosat_effnet.bench.run import checked_models, run_bench, write_report
    from robosat_effnet.errors import OutputError
    from robosat_effnet.outputs import claim_output

    options = BenchOptions(models=DEFAULT_MODELS if models is None else models, checkpoint=checkpoint,
                           tiles_dir=tiles_dir, size=size, batch_size=batch_size, train_batch_size=train_batch_size,
                           train_precisions=train_precision, repeats=repeats, threads=threads,
                           sections=names(sections), int8=int8, flush_denormal=flush_denormal,
                           scene_size=scene_size, device=device)
    # Every argument is checked before the first timing: a bad one is a usage error, not minutes lost.
    try:
        checked_models(options)
    except BenchOptionError as e:
        raise click.BadParameter(str(e), param_hint=FLAGS.get(e.option)) from None
    if markdown_path:
        try:
            claim_output(markdown_path, "bench")
        except OutputError as e:
            raise click.BadParameter(str(e), param_hint="--markdown") from None
    report = run_bench(options, echo=click.echo)
    if markdown_path:
        write_report(report, markdown_path)
        click.echo(f"wrote {markdown_path}")
