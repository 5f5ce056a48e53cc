"""Sizes and counts have documented maxima: a huge value is a one-line usage error before any work, never a
numpy allocation failure, an overflow or an ImportError deep inside.

The option lists are read from the commands themselves, so a new int option is checked without a new test.
"""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from conftest import make_dataset
from robosat_effnet.cli import COMMANDS, main
from robosat_effnet.errors import ConfigError
from robosat_effnet.limits import MAX_SEED, MAX_ZOOM

HUGE = str(10**30)


def int_options() -> list[tuple[str, click.Option]]:
    ctx = click.Context(main)
    found = []
    for name in COMMANDS:
        for param in main.get_command(ctx, name).params:
            if isinstance(param, click.Option) and isinstance(param.type, click.types.IntParamType):
                found.append((name, param))
    return found


# Options left without a maximum, each with its reason; any other int option must have one.
UNBOUNDED = {
    ("sample", "--seed"): "numpy seeds its generator with any integer",
    ("sample", "--test-seed"): "numpy seeds its generator with any integer",
    ("tile", "--max-tiles"): "a refusal threshold: a larger one only permits more",
    ("predict", "--max-tiles"): "a refusal threshold: a larger one only permits more",
    ("cover", "--max-tiles"): "a refusal threshold: a larger one only permits more",
    ("train", "--epochs"): "time, not memory: a longer run, stopped by Ctrl-C and resumable",
    ("study", "--epochs"): "time, not memory: a longer run, stopped by Ctrl-C and resumable",
}
BOUNDED = [(name, param.opts[0]) for name, param in int_options() if (name, param.opts[0]) not in UNBOUNDED]


def test_every_int_option_has_a_maximum_or_a_reason_not_to():
    options = {(name, param.opts[0]): param for name, param in int_options()}
    assert len(options) > 30  # the walk found the commands' options
    assert {key for key, param in options.items() if getattr(param.type, "max", None) is None} == set(UNBOUNDED)


def test_every_zoom_option_takes_the_slippy_map_zooms_of_the_library():
    """--zoom of every command is limits.MAX_ZOOM's range, the one the library checks (tiles, cover, tile)."""
    zooms = {name: (param.type.min, param.type.max) for name, param in int_options() if param.name == "zoom"}
    assert {"tile", "cover", "rasterize", "features", "blocks", "predict"} <= set(zooms)
    assert set(zooms.values()) == {(0, MAX_ZOOM)}, zooms


def test_every_zoom_option_follows_max_zoom_itself():
    """No command spells the bound out: with limits.MAX_ZOOM changed before the commands load, every --zoom follows."""
    code = (
        "import importlib, robosat_effnet.limits as limits; limits.MAX_ZOOM = 29\n"
        "from robosat_effnet.cli import COMMANDS\n"
        "for module in COMMANDS.values():\n"
        "    command = importlib.import_module(f'robosat_effnet.cli.{module}').cli\n"
        "    for param in command.params:\n"
        "        if param.name == 'zoom':\n"
        "            print(module, param.type.max)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    maxima = dict(line.split() for line in out if line)
    assert len(maxima) >= 6 and set(maxima.values()) == {"29"}, maxima


@pytest.mark.parametrize("command, option", BOUNDED, ids=[f"{c} {o}" for c, o in BOUNDED])
def test_a_huge_int_is_a_usage_error_naming_the_option_and_its_range(command, option):
    # The option comes first on the command line, so click checks it before any missing argument.
    result = CliRunner().invoke(main, [command, option, HUGE])
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{option}'" in result.output and "is not in the range" in result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)


@pytest.mark.parametrize("args", [["tile", "--size", "100000"], ["rasterize", "--touching-px", "100000"],
                                  ["bench", "--threads", "100000"], ["predict", "--border", "100000"],
                                  ["eval", "--workers", "100000"], ["export", "--calibration-tiles", "100000"]])
def test_the_values_that_ended_in_tracebacks_are_refused_when_parsed(args):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and f"Invalid value for '{args[1]}'" in result.output, result.output


def test_oversized_seeds_are_blamed_on_the_option_not_on_model_toml(tmp_path):
    data = make_dataset(tmp_path, n_train=1, n_val=1)
    for seeds in (str(MAX_SEED + 1), f"0,{HUGE}"):
        result = CliRunner().invoke(main, ["study", "--dataset", str(data.dataset_toml), "--model",
                                           str(data.model_toml), "--out", str(tmp_path / "study"), "--seeds", seeds])
        assert result.exit_code == 2, result.output
        assert "Invalid value for '--seeds'" in result.output and f"0 to {MAX_SEED}" in result.output
        assert "model.toml" not in result.output and not (tmp_path / "study").exists()


def test_config_seed_bound_is_the_options_bound(tmp_path):
    from robosat_effnet.config import load_model_config

    good = make_dataset(tmp_path / "a", model={"seed": MAX_SEED})
    assert load_model_config(good.model_toml).seed == MAX_SEED
    bad = make_dataset(tmp_path / "b", model={"seed": MAX_SEED + 1})
    with pytest.raises(ConfigError, match=f"seed = {MAX_SEED + 1} must be an integer from 0 to {MAX_SEED}"):
        load_model_config(bad.model_toml)


@pytest.mark.parametrize("key, value, rule", [("batch_size", 100000, "from 1 to 1024"),
                                               ("workers", 100000, "from 0 to 64"),
                                               ("image_size", 65536, "a multiple of 32 up to 4096")])
def test_config_sizes_have_the_options_maxima(tmp_path, key, value, rule):
    from robosat_effnet.config import load_model_config

    data = make_dataset(tmp_path, n_train=1, n_val=1, model={key: value})
    with pytest.raises(ConfigError, match=f"{key} = {value} must be {rule}"):
        load_model_config(data.model_toml)


def test_library_functions_refuse_huge_sizes_too(tmp_path):
    from robosat_effnet.prepare.rasterize import rasterize_geojson
    from robosat_effnet.prepare.tile import tile_geotiff

    with pytest.raises(ConfigError, match="use a size of 1..4096 px"):
        tile_geotiff(tmp_path / "scene.tif", tmp_path / "out", 18, size=100000)
    with pytest.raises(ConfigError, match="touching px 100000 is out of range; use 0 .off. to 32"):
        rasterize_geojson(tmp_path / "x.geojson", {(1, 1, 1): (8, 8)}, tmp_path / "out", ["a", "b", "touching"],
                          ["red", "green", "blue"], touching_px=100000)
    assert not (tmp_path / "out").exists()
