"""nan and infinity are refused wherever a number comes in: every float option of every command (a usage error,
exit 2) and every float value of dataset.toml and model.toml (TOML spells them nan and inf).

nan passes every comparison with a bound (`nan < 0` is False), so a plain range check lets it through: `eval
--min-area nan` kept every outline while `score --min-area nan` dropped every one. The option and key lists
are read from the commands and the config schemas, so a new float option or key is checked without a new test.
"""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from robosat_effnet.cli import COMMANDS, main
from robosat_effnet.config import DATASET_KEYS, MODEL_KEYS, load_dataset_config, load_model_config
from robosat_effnet.errors import ConfigError


def float_options() -> list[tuple[str, str]]:
    ctx = click.Context(main)
    return [(name, param.opts[0]) for name in COMMANDS for param in main.get_command(ctx, name).params
            if isinstance(param, click.Option) and isinstance(param.type, click.types.FloatParamType)]


OPTIONS = float_options()
NOT_FINITE = ["nan", "NaN", "inf", "-inf", "infinity", "1e999"]


def test_the_walk_finds_the_float_options():
    assert {("eval", "--min-area"), ("score", "--min-area"), ("train", "--lr"), ("view", "--opacity"),
            ("features", "--tolerance")} <= set(OPTIONS)


@pytest.mark.parametrize("value", NOT_FINITE)
@pytest.mark.parametrize("command, option", OPTIONS, ids=[f"{c} {o}" for c, o in OPTIONS])
def test_every_float_option_refuses_nan_and_infinity(command, option, value):
    # The option comes first on the command line, so click checks it before any missing argument.
    result = CliRunner().invoke(main, [command, option, value])
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{option}'" in result.output, result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command, option", OPTIONS, ids=[f"{c} {o}" for c, o in OPTIONS])
def test_finite_values_still_pass_the_option(command, option):
    ctx = click.Context(main)
    param = next(p for p in main.get_command(ctx, command).params if p.opts[0] == option)
    value = param.type.min if param.type.min is not None and not param.type.min_open else 0.5
    assert param.type.convert(str(value), param, ctx) == value
    with pytest.raises(click.BadParameter, match="is not a finite number"):
        param.type.convert("nan", param, ctx)


def float_keys(schema: dict) -> list[tuple[str, str]]:
    return [(table, key) for table, keys in schema.items() for key, kind in keys.items()
            if float in (kind if isinstance(kind, tuple) else (kind,))]


NUMBER_LISTS = [("dataset", "common", "mean"), ("dataset", "common", "std"), ("dataset", "weights", "values")]
KEYS = [("dataset", t, k) for t, k in float_keys(DATASET_KEYS)] + \
    [("model", t, k) for t, k in float_keys(MODEL_KEYS)] + NUMBER_LISTS


def config_text(kind: str, table: str, key: str, value: str) -> str:
    tables = {"common": ["dataset = 'd'", "classes = ['background', 'building']"]} if kind == "dataset" else {}
    tables.setdefault(table, []).append(f"{key} = {value}")
    partner = {"mean": "std = [0.2, 0.2, 0.2]", "std": "mean = [0.4, 0.4, 0.4]"}.get(key)  # given together
    if kind == "dataset" and partner:
        tables[table].append(partner)
    return "".join(f"[{name}]\n" + "".join(f"{line}\n" for line in lines) for name, lines in tables.items())


def test_the_walk_finds_the_float_keys():
    assert {("model", "opt", "lr"), ("model", "opt", "gap_weight"), ("dataset", "common", "max_value")} <= \
        {k for k in KEYS}


@pytest.mark.parametrize("value", ["nan", "+inf", "-inf"])
@pytest.mark.parametrize("kind, table, key", KEYS, ids=[f"{k} {t} {key}" for k, t, key in KEYS])
def test_every_float_config_value_refuses_nan_and_infinity(tmp_path, kind, table, key, value):
    load = load_dataset_config if kind == "dataset" else load_model_config
    listed = (kind, table, key) in NUMBER_LISTS
    number = f"[0.5, {value}]" if key == "values" else f"[0.4, {value}, 0.4]" if listed else value
    path = tmp_path / f"{kind}.toml"
    path.write_text(config_text(kind, table, key, number))
    with pytest.raises(ConfigError, match=rf"{path}: \[{table}\] {key} = .* not finite"):
        load(path)
    path.write_text(config_text(kind, table, key, number.replace(value, "0.25")))
    load(path)  # the same file with a finite number is fine


def test_a_train_run_with_nan_in_model_toml_is_one_line_before_any_work(tmp_path):
    from conftest import make_dataset

    data = make_dataset(tmp_path, n_train=1, n_val=1)
    data.model_toml.write_text(data.model_toml.read_text().replace("lr = 0.003", "lr = inf"))
    result = CliRunner().invoke(main, ["train", "--dataset", str(data.dataset_toml), "--model", str(data.model_toml)])
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    assert "[opt] lr = inf holds a number that is not finite" in result.output
    assert not (tmp_path / "checkpoints").exists()


def test_a_config_nested_too_deeply_is_one_error(tmp_path):
    path = tmp_path / "model.toml"
    path.write_text("[common]\nbatch_size = " + "[" * 100000 + "]" * 100000 + "\n")
    with pytest.raises(ConfigError, match="nests arrays or tables too deeply"):
        load_model_config(Path(path))
