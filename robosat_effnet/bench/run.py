"""One bench run, as `rs-effnet bench` makes it: check the options, take BatchNorm statistics from image tiles,
time each chosen section in the order of SECTIONS, and return the report (the text the command prints and
--markdown writes).

    from robosat_effnet.bench.options import BenchOptions
    from robosat_effnet.bench.run import run_bench, write_report

    report = run_bench(BenchOptions(models="b0:unet,resnet50:unet", size=256, sections=("model",)), echo=print)
    report.tables[0][1]                      # the rows (dicts) of the first table
    write_report(report, "bench.md")
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import torch

from robosat_effnet.bench.calibration import flush_denormal_enabled, sample_batches, tiles_source
from robosat_effnet.bench.models import calibrated_model, encoder_rows, model_rows, parse_models, train_rows
from robosat_effnet.bench.options import SECTIONS, BenchOptionError, BenchOptions, check_options
from robosat_effnet.bench.timing import machine, markdown_table
from robosat_effnet.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from robosat_effnet.errors import ConfigError
from robosat_effnet.models.checkpoint import ModelSpec, load_model
from robosat_effnet.models.device import resolve_device

Rows = list[dict]


@dataclass
class BenchReport:
    """What a run measured: the lines saying where and how, then (title, rows) per section in run order."""

    header: list[str]
    tables: list[tuple[str, Rows]] = field(default_factory=list)

    def markdown(self) -> str:
        """The whole report as Markdown: the header lines, then each table under its title."""
        return "\n".join([*self.header, *(section_text(title, rows) for title, rows in self.tables)])


def section_text(title: str, rows: Rows) -> str:
    """One section of the report: its title, its table, and an empty line after it."""
    return "\n".join([f"### {title}", "", markdown_table(rows), ""])


def checked_models(options: BenchOptions) -> list[tuple[str, str]]:
    """`check_options`, then the (canonical backbone, decoder) pairs of `options.models`; BenchOptionError naming
    the first wrong option."""
    check_options(options)
    try:
        return parse_models(options.models)
    except ConfigError as e:  # an unknown backbone or decoder: the message lists the valid ones
        raise BenchOptionError("models", str(e)) from None


def run_bench(options: BenchOptions, echo: Callable[[str], None] | None = None) -> BenchReport:
    """Run the chosen sections of `options`; `echo` (e.g. print) gets the header and then each section's text as
    soon as it is measured (a run takes minutes). torch's thread count and denormal flushing are set for the run
    and restored after it, so the caller (a notebook, a test) keeps its own."""
    pairs = checked_models(options)
    device = str(resolve_device(options.device))  # None: cuda when available
    saved = torch.get_num_threads(), flush_denormal_enabled()
    torch.set_num_threads(options.threads)
    torch.set_flush_denormal(options.flush_denormal)
    try:
        return _measure(_Run(options, pairs, device), echo or (lambda text: None))
    finally:
        torch.set_num_threads(saved[0])
        torch.set_flush_denormal(saved[1])


def write_report(report: BenchReport, path: str | os.PathLike) -> None:
    """Write the report's Markdown to `path` (marked as bench's, so a rerun may replace it; nothing half-written
    on a full disk); OutputError when `path` is somebody else's file."""
    from robosat_effnet.io import atomic_path
    from robosat_effnet.outputs import claim_output, mark_text, writing

    claim_output(path, "bench")
    with writing(path), atomic_path(path) as tmp:
        tmp.write_text(f"<!-- {mark_text('bench')} -->\n" + report.markdown() + "\n")


@dataclass
class _Run:
    """A run's settings and the inputs its sections share."""

    options: BenchOptions
    pairs: list[tuple[str, str]]
    device: str

    @cached_property
    def trained(self) -> tuple[torch.nn.Module, ModelSpec] | None:
        checkpoint = self.options.checkpoint
        return load_model(checkpoint, map_location=self.device) if checkpoint else None

    @cached_property
    def batches(self) -> list[torch.Tensor]:
        """Images normalised as the checkpoint's network expects (ImageNet's statistics without one)."""
        spec = self.trained[1] if self.trained else None
        mean, std = (spec.mean, spec.std) if spec else (IMAGENET_MEAN, IMAGENET_STD)
        return sample_batches(self.options.size, 4, 4, tiles_dir=self.options.tiles_dir, mean=mean, std=std)

    @cached_property
    def network(self) -> tuple[torch.nn.Module, ModelSpec]:
        """The network of the engines and predict sections: the checkpoint's, else a calibrated b0 U-Net."""
        if self.trained:
            return self.trained
        model = calibrated_model("efficientnet-b0", "unet", self.batches, torch.device(self.device))
        return model, ModelSpec(tile_size=self.options.size)


def _header(run: _Run) -> list[str]:
    o = run.options
    denormals = ("flushed to zero (--flush-denormal)" if flush_denormal_enabled() else
                 "computed as IEEE floats (flush-to-zero off)")
    return [f"Machine: {machine()}; device {run.device}; {datetime.date.today().isoformat()}",
            f"BatchNorm statistics: cumulative average over {sum(len(b) for b in run.batches)} {o.size} px images "
            f"from {tiles_source(o.tiles_dir)}" + (f"; trained checkpoint {o.checkpoint}" if o.checkpoint else ""),
            f"Denormals: {denormals}. Timings: median of {o.repeats} interleaved rounds, batch {o.batch_size}.", ""]


def _model(run: _Run) -> tuple[str, Rows]:
    o = run.options
    return (f"Inference, {o.size} px, batch {o.batch_size}: whole network, encoder and decoder alone",
            model_rows(run.pairs, run.batches, o.repeats, run.device, o.batch_size, run.trained))


def _encoder(run: _Run) -> tuple[str, Rows]:
    o = run.options
    return (f"Our encoder vs torchvision features (same weights), {o.size} px",
            encoder_rows(["b0", "b4"], run.batches, o.repeats, run.device, o.batch_size))


def _engines(run: _Run) -> tuple[str, Rows]:
    from robosat_effnet.bench.engines import engine_rows

    o, (model, spec) = run.options, run.network
    return (f"Engines and precisions, {spec.backbone} {spec.decoder}, {o.size} px, batch {o.batch_size}",
            engine_rows(model, spec, run.batches, o.repeats, run.device, o.batch_size, int8=o.int8))


def _precisions(run: _Run) -> tuple[str, Rows]:
    from robosat_effnet.bench.engines import precision_rows

    o = run.options
    networks = {f"{b} {d}": (calibrated_model(b, d, run.batches, torch.device(run.device)),
                             ModelSpec(backbone=b, decoder=d, tile_size=o.size)) for b, d in run.pairs}
    if run.trained:
        spec = run.trained[1]
        networks[f"{spec.backbone} {spec.decoder} (checkpoint)"] = run.trained
    return (f"Precisions, {o.size} px, batch {o.batch_size}: every network in fp32, bf16 and int8",
            precision_rows(networks, run.batches, o.repeats, run.device, o.batch_size, o.int8))


def _predict(run: _Run) -> tuple[str, Rows]:
    from robosat_effnet.bench.predict import throughput_rows

    return ("Predict: end to end vs model only",
            throughput_rows(run.network, device=run.device, size=run.options.size, tiles_dir=run.options.tiles_dir))


def _train(run: _Run) -> tuple[str, Rows]:
    o = run.options
    images = sample_batches(o.size, 1, o.train_batch_size, tiles_dir=o.tiles_dir)[0]
    return (f"Train step, {o.size} px, batch {o.train_batch_size}",
            train_rows(run.pairs, images, max(1, min(2, o.repeats - 1)), run.device, o.train_precisions))


def _memory(run: _Run) -> tuple[str, Rows]:
    from robosat_effnet.bench.predict import large_scene_rows

    size = run.options.scene_size
    return f"Predict: large GeoTIFF ({size} x {size} px) peak memory", large_scene_rows(size)


# Each section's measurement, run in the order of SECTIONS whatever order they were asked in.
_SECTIONS: dict[str, Callable[[_Run], tuple[str, Rows]]] = {
    "model": _model, "encoder": _encoder, "engines": _engines, "precisions": _precisions, "predict": _predict,
    "train": _train, "memory": _memory}
assert tuple(_SECTIONS) == SECTIONS


def _measure(run: _Run, echo: Callable[[str], None]) -> BenchReport:
    report = BenchReport(_header(run))
    echo("\n".join(report.header))
    for name in SECTIONS:
        if name in run.options.sections:
            title, rows = _SECTIONS[name](run)
            report.tables.append((title, rows))
            echo(section_text(title, rows))
    return report
