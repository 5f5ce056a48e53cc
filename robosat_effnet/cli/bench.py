"""`rs-effnet bench`: the numbers behind BENCHMARKS.md, measured side by side in one run."""

from __future__ import annotations

import click

from robosat_effnet.cli.options import COMMAND_SETTINGS, PRECISIONS, device_option, reports_errors
from robosat_effnet.limits import MAX_BATCH_SIZE, MAX_REPEATS, MAX_SCENE_SIZE, MAX_THREADS, MAX_TILE_SIZE

SECTIONS = ("model", "encoder", "engines", "precisions", "predict", "train", "memory")
DEFAULT_SECTIONS = ("model", "encoder", "engines", "predict", "train")


def _precisions(ctx: click.Context, param: click.Parameter, value: str) -> list[str]:
    names = [part.strip() for part in value.split(",") if part.strip()]
    unknown = sorted(set(names) - set(PRECISIONS))
    if not names or unknown:
        raise click.BadParameter(f"give one or more of {', '.join(PRECISIONS)}, e.g. fp32,bf16")
    return list(dict.fromkeys(names))


@click.command("bench", context_settings=COMMAND_SETTINGS)
@click.option("--models", default=None,
              help="Comma-separated backbone:decoder networks compared in the model, precisions and train sections "
                   "[default: b0:unet,b2:unet,b4:unet,resnet50:unet,b0:fpn,b0:unet-lite].")
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
    import torch

    from robosat_effnet import bench
    from robosat_effnet.bench.calibration import flush_denormal_enabled
    from robosat_effnet.errors import ConfigError, OutputError
    from robosat_effnet.models.device import resolve_device
    from robosat_effnet.outputs import claim_output

    # Every argument is checked before the first timing: a bad one is a usage error, not minutes lost.
    device = str(resolve_device(device))  # checked when parsed (device_option); None: cuda when available
    if size % 32:
        raise click.BadParameter(f"{size} is not a multiple of 32 (the networks' stride), e.g. 512",
                                 param_hint="--size")
    chosen = [s.strip() for s in sections.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown or not chosen:
        raise click.BadParameter(f"unknown section(s) {', '.join(unknown)}; valid: {', '.join(SECTIONS)}" if unknown
                                 else f"name one or more of {', '.join(SECTIONS)}", param_hint="--sections")
    try:
        if models is not None and not models.strip():
            raise ConfigError("name one or more backbone:decoder networks, e.g. b0:unet,resnet50:unet")
        pairs = bench.parse_models(models or bench.DEFAULT_MODELS)
    except ConfigError as e:
        raise click.BadParameter(str(e), param_hint="--models") from None
    if markdown_path:
        try:
            claim_output(markdown_path, "bench")
        except OutputError as e:
            raise click.BadParameter(str(e), param_hint="--markdown") from None
    saved = torch.get_num_threads(), flush_denormal_enabled()
    torch.set_num_threads(threads)
    torch.set_flush_denormal(flush_denormal)
    try:
        _run(bench, pairs, checkpoint, tiles_dir, size, batch_size, train_batch_size, train_precision, repeats,
             chosen, int8, scene_size, markdown_path, device)
    finally:  # the process (a notebook, a test) keeps its own settings
        torch.set_num_threads(saved[0])
        torch.set_flush_denormal(saved[1])


def _run(bench, pairs, checkpoint, tiles_dir, size, batch_size, train_batch_size, train_precision, repeats, chosen,
         int8, scene_size, markdown_path, device) -> None:
    import datetime

    import torch

    from robosat_effnet.bench.calibration import flush_denormal_enabled, sample_batches, tiles_source

    trained = None
    if checkpoint:
        from robosat_effnet.models.checkpoint import load_model

        trained = load_model(checkpoint, map_location=device)
    spec = trained[1] if trained else None
    mean, std = (spec.mean, spec.std) if spec else ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    batches = sample_batches(size, 4, 4, tiles_dir=tiles_dir, mean=mean, std=std)
    denormals = ("flushed to zero (--flush-denormal)" if flush_denormal_enabled() else
                 "computed as IEEE floats (flush-to-zero off)")
    out = [f"Machine: {bench.machine()}; device {device}; {datetime.date.today().isoformat()}",
           f"BatchNorm statistics: cumulative average over {sum(len(b) for b in batches)} {size} px images from "
           f"{tiles_source(tiles_dir)}" + (f"; trained checkpoint {checkpoint}" if checkpoint else ""),
           f"Denormals: {denormals}. Timings: median of {repeats} interleaved rounds, batch {batch_size}.", ""]

    def emit(title: str, rows: list[dict]) -> None:
        out.extend([f"### {title}", "", bench.markdown_table(rows), ""])
        click.echo("\n".join(out[-4:]))

    click.echo("\n".join(out))
    if "model" in chosen:
        emit(f"Inference, {size} px, batch {batch_size}: whole network, encoder and decoder alone",
             bench.model_rows(pairs, batches, repeats, device, batch_size, trained))
    if "encoder" in chosen:
        emit(f"Our encoder vs torchvision features (same weights), {size} px",
             bench.encoder_rows(["b0", "b4"], batches, repeats, device, batch_size))
    network = trained or (bench.calibrated_model("efficientnet-b0", "unet", batches, torch.device(device)), None)
    if "engines" in chosen:
        from robosat_effnet.bench.engines import engine_rows
        from robosat_effnet.models.checkpoint import ModelSpec

        model, model_spec = network[0], network[1] or ModelSpec(tile_size=size)
        emit(f"Engines and precisions, {model_spec.backbone} {model_spec.decoder}, {size} px, batch {batch_size}",
             engine_rows(model, model_spec, batches, repeats, device, batch_size, int8=int8))
    if "precisions" in chosen:
        from robosat_effnet.bench.engines import precision_rows
        from robosat_effnet.models.checkpoint import ModelSpec

        networks = {f"{b} {d}": (bench.calibrated_model(b, d, batches, torch.device(device)),
                                 ModelSpec(backbone=b, decoder=d, tile_size=size)) for b, d in pairs}
        if trained:
            networks[f"{spec.backbone} {spec.decoder} (checkpoint)"] = trained
        emit(f"Precisions, {size} px, batch {batch_size}: every network in fp32, bf16 and int8",
             precision_rows(networks, batches, repeats, device, batch_size, int8))
    if "predict" in chosen:
        from robosat_effnet.bench import predict as bench_predict
        from robosat_effnet.models.checkpoint import ModelSpec

        emit("Predict: end to end vs model only", bench_predict.throughput_rows(
            (network[0], network[1] or ModelSpec(tile_size=size)), device=device, size=size, tiles_dir=tiles_dir))
    if "train" in chosen:
        images = sample_batches(size, 1, train_batch_size, tiles_dir=tiles_dir)[0]
        emit(f"Train step, {size} px, batch {train_batch_size}",
             bench.train_rows(pairs, images, max(1, min(2, repeats - 1)), device, train_precision))
    if "memory" in chosen:
        from robosat_effnet.bench import predict as bench_predict

        emit(f"Predict: large GeoTIFF ({scene_size} x {scene_size} px) peak memory",
             bench_predict.large_scene_rows(scene_size))
    if markdown_path:
        from robosat_effnet.io import atomic_path
        from robosat_effnet.outputs import mark_text, writing

        with writing(markdown_path), atomic_path(markdown_path) as tmp:  # a full disk: one line, nothing half-written
            tmp.write_text(f"<!-- {mark_text('bench')} -->\n" + "\n".join(out) + "\n")
        click.echo(f"wrote {markdown_path}")
