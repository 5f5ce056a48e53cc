"""`rs-effnet eval`: metrics of a model on a labelled slippy map."""

from __future__ import annotations

import json

import click

from robosat_effnet.cli.options import (
    COMMAND_SETTINGS,
    FiniteFloatRange,
    batch_size_option,
    building_min_area_option,
    device_option,
    mask_threshold_option,
    precision_option,
    quiet_option,
    reports_errors,
    workers_option,
)


@click.command("eval", context_settings=COMMAND_SETTINGS)
@click.option("--checkpoint", type=click.Path(dir_okay=False), required=True,
              help="Checkpoint (.pth) written by `rs-effnet train`, or a model exported by `rs-effnet export` "
                   "(.onnx, run by onnxruntime).")
@click.argument("images", type=click.Path(exists=True, file_okay=False))
@click.argument("labels", type=click.Path(exists=True, file_okay=False))
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Also write the metrics (and the confusion matrix) to this JSON file.")
@batch_size_option
@device_option
@precision_option
@workers_option
@click.option("--match-iou", type=FiniteFloatRange(0, 1, min_open=True), default=0.5, show_default=True,
              help="Per building: the IoU at which a predicted outline matches a true one (SpaceNet: 0.5).")
@building_min_area_option
@mask_threshold_option
@quiet_option("No progress bar.")
@reports_errors
def cli(checkpoint, images, labels, json_path, batch_size, device, precision, workers, match_iou, min_area, threshold,
        quiet):
    """Score CHECKPOINT on IMAGES against LABELS (slippy maps of the same tiles).

    Prints per-class IoU, precision, recall, F1 and MCC (one class against the rest), then mIoU,
    the multi-class MCC and pixel accuracy. Pixels labelled 255 or without imagery are not counted.
    Then per building: outlines of the predicted and the label masks, made as `rs-effnet features` makes
    them, matched one to one (SpaceNet protocol): TP, FP, FN, precision, recall, F1, mean IoU of matches.
    """
    from robosat_effnet.evaluation.evaluate import evaluate, format_table, to_json
    from robosat_effnet.io import atomic_path
    from robosat_effnet.outputs import check_separate, claim_output, mark, writing

    if json_path:  # before the long work: never over an input, never onto a read-only or full disk
        check_separate([json_path], [images, labels, checkpoint])
        claim_output(json_path, "eval")  # new, or an earlier eval's: never somebody's file
    result = evaluate(checkpoint, images, labels, batch_size=batch_size or 8, device=device, workers=workers or 0,
                      progress=not quiet, match_iou=match_iou, min_area=min_area, precision=precision,
                      threshold=threshold)
    click.echo(format_table(result))
    if result["unlabelled"]:
        click.echo(f"{result['unlabelled']} image tiles without a label were not scored")
    if json_path:
        with writing(json_path), atomic_path(json_path) as tmp:
            tmp.write_text(json.dumps(to_json({**mark("eval"), "checkpoint": str(checkpoint), **result}), indent=2))
        click.echo(f"wrote {json_path}")
