"""`rs-effnet train`: train on a robosat dataset with robosat's dataset.toml and model.toml."""

from __future__ import annotations

import click

from robosat_effnet.cli.options import (
    COMMAND_SETTINGS,
    FiniteFloatRange,
    backbone_name,
    batch_size_option,
    device_option,
    quiet_option,
    reports_errors,
    show_warnings,
    workers_option,
)
from robosat_effnet.precision import PRECISIONS


@click.command("train", context_settings=COMMAND_SETTINGS)
@click.option("--dataset", "dataset_path", type=click.Path(dir_okay=False), default="dataset.toml",
              show_default=True, help="robosat dataset config (TOML).")
@click.option("--model", "model_path", type=click.Path(dir_okay=False), default="model.toml", show_default=True,
              help="robosat model config (TOML).")
@click.option("--backbone", default=None, callback=backbone_name,
              help="Encoder, e.g. b0..b7, efficientnet-b4, resnet50 [model.toml: backbone].")
@click.option("--decoder", type=click.Choice(["unet", "unet-lite", "fpn"]), default=None,
              help="Decoder [model.toml: decoder]; unet-lite is the faster one.")
@click.option("--weights", default=None,
              help="Initialisation: none, imagenet, a weights file (torchvision, timm or efficientnet_pytorch "
                   "layout), or a checkpoint of ours, which starts the whole model when the decoder and classes "
                   "match (fine-tuning) [model.toml: weights].")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Total epochs [model.toml: epochs].")
@batch_size_option
@click.option("--lr", type=FiniteFloatRange(min=0, min_open=True), default=None, help="Peak learning rate.")
@click.option("--precision", type=click.Choice(PRECISIONS), default=None,
              help="bf16: bfloat16 autocast, weights stay fp32; faster on CPUs with AVX-512 BF16 or AMX "
                   "[model.toml: precision].")
@device_option
@workers_option
@click.option("--resume", type=click.Path(dir_okay=False), default=None,
              help="Continue from a checkpoint written by `rs-effnet train` (e.g. last.pth).")
@click.option("--checkpoint-dir", type=click.Path(file_okay=False), default=None,
              help="Where to write checkpoints and history [model.toml: checkpoint].")
@click.option("--overwrite", is_flag=True,
              help="Replace another run found in the checkpoint folder (its checkpoints and history are removed).")
@click.option("--unlabelled", type=click.Path(exists=True, file_okay=False), default=None,
              help="A slippy-map folder of the area's unlabelled images (the tiles to map): the --weights model's "
                   "masks of them are added as labels (self-training; BENCHMARKS.md).")
@quiet_option("No progress bars or per-epoch lines.")
@reports_errors(oom_hint="a smaller --batch-size or image_size, or a smaller model: backbone, decoder_channels")
def cli(dataset_path, model_path, backbone, decoder, weights, epochs, batch_size, lr, precision, device, workers,
        resume, checkpoint_dir, overwrite, unlabelled, quiet):
    """Train an EfficientNet segmentation model on a robosat slippy-map dataset.

    robosat's dataset.toml and model.toml work unchanged; options override the files. Writes last.pth,
    best.pth, history.csv and history.png into the checkpoint folder (numbered checkpoint-NNNNN.pth
    too with model.toml's keep = N: the newest N, every save_every epochs); a folder holding another run
    is refused unless --resume (continue it) or --overwrite (replace it).
    Under `torchrun --nproc_per_node N` the same command trains on N processes (DistributedDataParallel).
    """
    show_warnings()
    from robosat_effnet.config import apply_overrides, load_dataset_config, load_model_config
    from robosat_effnet.training.loop import train

    dataset_cfg = load_dataset_config(dataset_path)
    model_cfg = apply_overrides(load_model_config(model_path), backbone=backbone, decoder=decoder, weights=weights,
                                epochs=epochs, batch_size=batch_size, lr=lr, precision=precision, workers=workers)

    if unlabelled:
        from robosat_effnet.adapt import self_train

        result = self_train(dataset_cfg, model_cfg, unlabelled, device=device, resume=resume,
                            checkpoint_dir=checkpoint_dir, progress=not quiet, overwrite=overwrite)
    else:
        result = train(dataset_cfg, model_cfg, device=device, resume=resume, checkpoint_dir=checkpoint_dir,
                       progress=not quiet, overwrite=overwrite)
    if not quiet and result["history"]:
        click.echo(f"best validation mIoU {result['best_miou']:.4f} (epoch {result['best_epoch']}); "
                   f"checkpoints and history in {result['checkpoint_dir']}")
