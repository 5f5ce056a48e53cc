"""Options and helpers shared by several commands."""

from __future__ import annotations

import functools
import logging
import math
import sys
from collections.abc import Callable

import click

from robosat_effnet.errors import RobosatEffnetError
from robosat_effnet.limits import MAX_BATCH_SIZE, MAX_WORKERS
from robosat_effnet.precision import PRECISIONS
from robosat_effnet.text import ascii_int
from robosat_effnet.threshold import MASK_THRESHOLD

# Every command's own context settings, as well as the group's: click caches a command's help option the first
# time a context is made for it, so a command first reached on its own (`python -m robosat_effnet.cli.view`,
# a test invoking it directly) would otherwise keep only --help for the rest of the process.
COMMAND_SETTINGS = {"help_option_names": ["-h", "--help"]}


def reports_errors(func: Callable | None = None, *, oom_hint: str = "a smaller --batch-size, tile or window size"
                   ) -> Callable:
    """Turn the library's own exceptions, and running out of memory, into one-line click errors (exit 1, no
    traceback), each on a line of its own even when a progress bar was drawing on stderr.

    `oom_hint` names the command's settings that cost memory (`@reports_errors(oom_hint=...)`): what to ask less
    of when memory runs out."""
    if func is None:
        return functools.partial(reports_errors, oom_hint=oom_hint)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except RobosatEffnetError as e:
            end_progress_bars()
            raise click.ClickException(str(e)) from None
        except click.ClickException:
            end_progress_bars()
            raise
        except (MemoryError, RuntimeError) as e:
            if not out_of_memory(e):
                raise
            end_progress_bars()
            detail = (str(e).strip().splitlines() or [type(e).__name__])[-1][:200]
            raise click.ClickException(f"out of memory ({detail}); ask for less at once ({oom_hint}) or free "
                                       "some memory, then run it again") from None

    return wrapper


def out_of_memory(error: BaseException) -> bool:
    """Whether an exception says an allocation failed: numpy's MemoryError, torch's CPU or CUDA allocator."""
    text = str(error)
    return isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError" or \
        "can't allocate memory" in text or "CUDA out of memory" in text


def end_progress_bars() -> None:
    """Close the progress bars an error left open, so that the message after them starts a line of its own
    (a bar ends its line with a carriage return only: `grep ^Error` must find the message in a log)."""
    std = sys.modules.get("tqdm.std")  # no bar can be open if tqdm was never imported
    if std is None:
        return
    for bar in list(getattr(std.tqdm, "_instances", ())):
        bar.leave = True  # its last state stays on screen, followed by a newline
        bar.close()


checkpoint_option = click.option(
    "--checkpoint",
    type=click.Path(dir_okay=False),
    default=None,
    help="Checkpoint (.pth) written by `rs-effnet train`, or a model exported by `rs-effnet export` (.onnx, run "
         "by onnxruntime). Default: best.pth from model.toml's checkpoint folder.",
)


def checked_by(check: Callable[[str], object]) -> Callable:
    """A click callback: a value that `check` refuses (with our error) is a usage error (exit 2), before any work.
    `check` imports what it needs when called, so that --help stays free of torch."""
    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        if value is not None:
            try:
                check(value)
            except RobosatEffnetError as e:
                raise click.BadParameter(str(e)) from None
        return value

    return callback


def _device(value: str) -> object:
    from robosat_effnet.models.device import resolve_device

    return resolve_device(value)  # unknown names, and CUDA where there is none


def _backbone(value: str) -> str:
    from robosat_effnet.models import canonical_backbone

    return canonical_backbone(value)  # unknown names list the valid ones


backbone_name = checked_by(_backbone)
device_option = click.option(
    "--device", default=None, callback=checked_by(_device),
    help="torch device, e.g. cpu, cuda, cuda:1. Default: cuda when available, else cpu.",
)
workers_option = click.option(
    "--workers", type=click.IntRange(0, MAX_WORKERS), default=None, help="DataLoader worker processes."
)
batch_size_option = click.option("--batch-size", type=click.IntRange(1, MAX_BATCH_SIZE), default=None,
                                 help="Tiles per batch.")
precision_option = click.option(
    "--precision", type=click.Choice(PRECISIONS), default=None,
    help="fp32, or bf16: bfloat16 autocast (weights stay fp32), about 2x on CPUs with AVX512-BF16/AMX, a few "
         "pixels may change. Default: float16 autocast on CUDA, fp32 on CPU. An .onnx model runs its own precision.",
)


def quiet_option(help: str = "No progress bars.") -> Callable:
    """--quiet/-q: every command that draws progress bars takes both spellings (a test walks every command)."""
    return click.option("--quiet", "-q", is_flag=True, help=help)


class FiniteFloatRange(click.FloatRange):
    """click.FloatRange that also refuses nan and infinity (which pass any comparison with a bound, or mean
    nothing as a size): every float option of every command uses it, so that a typo is a usage error."""

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> float:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number; give a number such as 0.5", param, ctx)
        return number


mask_threshold_option = click.option(
    "--threshold", type=FiniteFloatRange(0, 1, max_open=True), default=MASK_THRESHOLD, show_default=True,
    metavar="P", help="Masks: a building (any class but background) only where its probability reaches P; 0: the "
    "plain argmax. 0.7 keeps neighbours apart (BENCHMARKS.md).",
)

building_min_area_option = click.option(
    "--min-area", type=FiniteFloatRange(min=0), default=0.0, show_default=True,
    help="Per building: leave out outlines smaller than this, in m2 (as `features --min-area`).",
)


def comma_integers(value: str, minimum: int, kind: str, rule: str, maximum: int | None = None) -> list[int]:
    """'3,2,1' -> [3, 2, 1]; click.BadParameter naming `kind` (what the list holds) or `rule` (the bounds) when
    a part is not an integer, when there is none, or when one is below `minimum` or above `maximum`."""
    numbers = [ascii_int(part.strip()) for part in value.split(",") if part.strip()]  # int() takes '١', not '²'
    if None in numbers:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of {kind}")
    if not numbers or min(numbers) < minimum or (maximum is not None and max(numbers) > maximum):
        raise click.BadParameter(f"{value!r}: {rule}")
    return numbers


def parse_bands(ctx: click.Context, param: click.Parameter, value: str | None) -> list[int] | None:
    """Click callback: '3,2,1' -> [3, 2, 1] (1-based raster bands)."""
    if value is None:
        return None
    return comma_integers(value, 1, "band numbers, e.g. 1,2,3", "bands are numbered from 1, e.g. 1,2,3")


class SceneSource(click.Path):
    """A local file (or, with `folders`, folder) that exists, or an http(s) URL of a GeoTIFF, kept as given
    (GDAL reads a cloud-optimised GeoTIFF by URL over range requests)."""

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> object:
        from robosat_effnet.text import is_url

        if is_url(value):
            return value
        return super().convert(value, param, ctx)


def scene_argument_type(folders: bool = False) -> SceneSource:
    """The type of an argument naming a GeoTIFF by path or URL (`folders`: a slippy-map folder as well)."""
    return SceneSource(exists=True, dir_okay=folders)


class _Echo(logging.Handler):
    """Show the library's warnings (unknown config keys, no GPU, ...) as one line on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        click.echo(f"warning: {record.getMessage()}", err=True)


def show_warnings() -> None:
    """Route the package logger's warnings to the terminal (once per process)."""
    logger = logging.getLogger("robosat_effnet")
    if not any(isinstance(h, _Echo) for h in logger.handlers):
        logger.addHandler(_Echo(logging.WARNING))
