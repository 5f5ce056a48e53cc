"""`export --deepness`'s numbers: every value the options accept is either refused in one line or written as a
finite, non-zero setting that says what the report says (issue 31: ZeroDivisionError at --resolution 1e-300,
OverflowError at --min-area 1e308, --resolution 0.004 written as 0.0)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import click
import mercantile
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from hypothesis import example, given, settings
from hypothesis import strategies as st

from conftest import X0, Y0, ZOOM, synthetic_tile
from robosat_effnet.cli import main
from robosat_effnet.cli.export import cli as export_cli
from robosat_effnet.data.transforms import to_tensor
from robosat_effnet.deploy.deepness import DeepnessSettings, deepness_metadata
from robosat_effnet.errors import ConfigError
from robosat_effnet.io import write_image
from robosat_effnet.models import build_model
from robosat_effnet.models.checkpoint import ModelSpec, save_checkpoint
from robosat_effnet.outputs.temp import is_temp
from robosat_effnet.tiles import tile_path

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from test_onnx import calibrate  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

NUMERIC = {f"--{p.name.replace('_', '-')}": p.type for p in export_cli.params
           if isinstance(p.type, (click.IntRange, click.FloatRange))}
NEEDS = {"--calibration-tiles": ("--int8", "--calibration", "{calibration}")}  # options that apply only with others


def bounds(option: str) -> tuple[float, float]:
    kind = NUMERIC[option]
    huge = 2**63 if isinstance(kind, click.IntRange) else 1e308
    return (kind.min if kind.min is not None else -huge), (kind.max if kind.max is not None else huge)


def extreme_values(option: str) -> list:
    """The values an option's own range makes extreme: its bounds, just beyond them, and just inside."""
    low, high = bounds(option)
    if isinstance(NUMERIC[option], click.IntRange):
        return [low, high, low - 1, high + 1]
    return [low, math.nextafter(low, math.inf), high, math.nextafter(low, -math.inf), math.nextafter(high, math.inf)]


CASES = [(option, value) for option in NUMERIC for value in extreme_values(option)]
# the defects as reported, and the two arithmetic options at their extremes together
PAIRS = [("1e-300", "1"), ("10", "1e308"), ("0.0001", "510000000000000"), ("100000000", "510000000000000"),
         ("0.0001", "0.000001"), ("100000000", "1e-300")]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("extremes")
    rng = np.random.default_rng(0)
    tiles = [synthetic_tile(rng, 64, 2)[0] for _ in range(4)]
    for i, image in enumerate(tiles):
        write_image(tile_path(folder / "calibration", mercantile.Tile(X0 + i, Y0, ZOOM), "png"), image)
    spec = ModelSpec(tile_size=64)
    torch.manual_seed(0)  # BatchNorm statistics of the data: activations with a range, as a trained model's
    network = calibrate(build_model("efficientnet-b0", num_classes=2),
                        torch.stack([to_tensor(image, spec.mean, spec.std) for image in tiles]))
    pth = save_checkpoint(folder / "rgb.pth", network, spec)
    return {"pth": pth, "folder": folder, "calibration": folder / "calibration",
            "untrained": save_checkpoint(folder / "untrained.pth", build_model("efficientnet-b0", num_classes=2), spec)}


def export(model: dict, name: str, *options, checkpoint: str = "pth") -> tuple[object, Path]:
    out = model["folder"] / f"{name}.onnx"
    args = [str(a).format(**model) for a in options]
    if "--resolution" not in args:
        args += ["--resolution", "30"]  # the checkpoint names no training tiles
    result = CliRunner().invoke(main, ["export", str(model[checkpoint]), str(out), "--deepness", *args])
    return result, out


def check_outcome(result, out: Path) -> dict | None:
    """Refused in one line (exit 1, or 2 for a usage error) with nothing written, or a file whose Deepness settings
    are finite JSON numbers, the resolution positive and exactly the one reported; its metadata then."""
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    if result.exit_code:
        assert result.exit_code in (1, 2) and not out.exists(), result.output
        if result.exit_code == 1:
            assert result.output.strip().count("\n") == 0, result.output
        return None
    meta = {p.key: p.value for p in onnx.load(str(out), load_external_data=False).metadata_props}
    numbers = {key: json.loads(meta[key]) for key in ("resolution", "tile_size", "tiles_overlap", "seg_thresh",
                                                       "seg_small_segment")}
    assert all(math.isfinite(v) for v in numbers.values()), numbers
    assert numbers["resolution"] > 0 and 0 <= numbers["tiles_overlap"] < 100
    assert 0 <= numbers["seg_small_segment"] <= numbers["tile_size"]
    said = re.search(r"resolution ([0-9.e+-]+) cm/px", result.output).group(1)
    assert float(said) == numbers["resolution"], (said, numbers["resolution"])
    return meta


@pytest.mark.parametrize("option,value", CASES, ids=[f"{o}={v}" for o, v in CASES])
def test_extreme_values_of_every_export_option(model, option, value):
    result, out = export(model, f"extreme{option[1:]}-{value}", option, value, *NEEDS.get(option, ()))
    check_outcome(result, out)
    low, high = bounds(option)
    assert (result.exit_code == 2) == (not low <= value <= high)  # the option's range is what refuses it


@pytest.mark.parametrize("resolution,min_area", PAIRS)
def test_resolution_and_min_area_at_their_extremes_together(model, resolution, min_area):
    result, out = export(model, f"pair-{resolution}-{min_area}", "--resolution", resolution, "--min-area", min_area)
    meta = check_outcome(result, out)
    if (resolution, min_area) == ("100000000", "510000000000000"):  # 510 px of 1 km: a median filter of 33 px
        assert meta is not None and json.loads(meta["seg_small_segment"]) == 33
    if (resolution, min_area) == ("0.0001", "510000000000000"):  # the Earth in 1 um pixels: no filter that wide
        assert result.exit_code == 1 and "wider than a 64 px tile; give a smaller --min-area" in result.output


@pytest.mark.parametrize("given,written", [("0.004", 0.004), ("0.0001", 0.0001), ("12.3456789", 12.3457),
                                           ("30", 30.0), ("0.015", 0.015), ("99999999", 1e8)])
def test_the_resolution_written_is_the_one_reported_and_never_zero(model, given, written):
    result, out = export(model, f"written-{given}", "--resolution", given)
    meta = check_outcome(result, out)
    assert json.loads(meta["resolution"]) == written and f"resolution {written:g} cm/px as given" in result.output


def anything(integers: bool = False):
    """Any number a caller of the library may pass (it is not bound by the options' ranges): the extremes first."""
    if integers:
        return st.one_of(st.sampled_from([0, 1, 32, 4096, 4097, -1, 2**63]), st.integers(-2**64, 2**64))
    return st.one_of(st.sampled_from([0.0, 5e-324, 1e-300, 1e-4, 1.0, 1e8, 5.1e14, 1e308, math.inf, -1.0]),
                     st.floats())


@settings(max_examples=400, deadline=None)
@given(resolution=anything(), min_area=anything(), threshold=anything(), border=anything(True),
       tile_size=anything(True))
@example(resolution=1e-300, min_area=1.0, threshold=0.5, border=16, tile_size=64)  # issue 31: ZeroDivisionError
@example(resolution=10.0, min_area=1e308, threshold=0.5, border=16, tile_size=64)  # issue 31: OverflowError
@example(resolution=1e-4, min_area=5.1e14, threshold=0.5, border=16, tile_size=64)  # both at the options' bounds
def test_any_settings_give_finite_metadata_or_one_config_error(resolution, min_area, threshold, border, tile_size):
    spec = ModelSpec(tile_size=64)
    try:
        entries = deepness_metadata(spec, DeepnessSettings(resolution, border, threshold, min_area, tile_size))
    except ConfigError as e:
        assert "\n" not in str(e)
        return
    values = {key: json.loads(value) for key, value in entries.items() if not key.startswith("robosat")}
    assert values["resolution"] > 0 and math.isfinite(values["resolution"])
    assert values["tile_size"] == tile_size and 0 <= values["seg_small_segment"] <= tile_size
    assert 0 <= values["tiles_overlap"] <= 100 and 0 <= values["seg_thresh"] <= 1
    note = json.loads(entries["robosat_effnet.deepness"])["resolution_source"]
    assert note == f"{values['resolution']:g} cm/px as given"


def test_a_model_whose_activations_have_no_range_cannot_be_calibrated_in_one_line(model):
    result, out = export(model, "untrained-int8", "--int8", "--calibration", "{calibration}", checkpoint="untrained")
    assert result.exit_code == 1 and "cannot measure int8 ranges on the calibration tiles" in result.output
    assert check_outcome(result, out) is None


def test_no_temp_file_is_left(model):
    assert not [p for p in model["folder"].iterdir() if is_temp(p.name)]
