"""Every numeric key of dataset.toml and model.toml has a documented domain (config/domains.py), checked when the
file is read: the keys are walked from the schemas and out-of-domain values generated from each domain, so a new
key without a domain fails here. Values that would make the loss nan (all-zero class weights, a std so small or a
mean so large that normalised pixels overflow) are refused naming the key, not blamed on the learning rate later.
"""

from __future__ import annotations

import re

import pytest

from robosat_effnet.config import DATASET_KEYS, MODEL_KEYS, load_dataset_config, load_model_config
from robosat_effnet.config.domains import DATASET_DOMAINS, MODEL_DOMAINS, Domain
from robosat_effnet.errors import ConfigError

# Keys that are no number (nor a list of numbers): names, paths, switches.
NOT_NUMERIC = {("common", k) for k in ("dataset", "classes", "colors", "images", "labels", "cuda", "checkpoint",
                                       "backbone", "decoder", "weights", "amp", "precision")} | {
    ("opt", "loss"), ("opt", "augment")}
LISTS = {("common", "bands"), ("common", "mean"), ("common", "std"), ("weights", "values"),
         ("common", "decoder_channels")}
# Values of the other keys that make a file valid around the one tried.
VALID = {"dataset": {("common", "dataset"): "'d'", ("common", "classes"): "['background', 'building']"},
         "model": {}}
PARTNERS = {"mean": ("std", "[0.2, 0.2, 0.2]"), "std": ("mean", "[0.4, 0.4, 0.4]")}


def test_every_numeric_key_has_a_domain():
    for schema, domains in ((DATASET_KEYS, DATASET_DOMAINS), (MODEL_KEYS, MODEL_DOMAINS)):
        keys = {(table, key) for table, names in schema.items() for key in names}
        assert keys - NOT_NUMERIC == set(domains), "give the new key a Domain in config/domains.py"
        assert all(str(d) for d in domains.values())  # each says its domain in words


def outside(domain: Domain, integer: bool) -> list[float]:
    """Values just outside each bound of a domain (at an open bound: the bound itself)."""
    step = 1 if integer else 0.5
    values = []
    if domain.low is not None:
        values += [domain.low - step] + ([domain.low] if domain.low_open else [])
    if domain.high is not None:
        values += [domain.high + step] + ([domain.high] if domain.high_open else [])
    return [int(v) if integer else float(v) for v in values]


# Inside values where the lowest one would break the rest of the file (three bands need three means).
INSIDE = {("common", "mean"): 0.4, ("common", "in_channels"): 3}


def inside(domain: Domain, integer: bool) -> float:
    """The lowest value of a domain (one above an open low bound)."""
    value = (domain.low or 0) + (1 if domain.low_open else 0)
    return int(value) if integer else float(value)


def cases() -> list[tuple[str, str, str, float, bool]]:
    result = []
    for kind, schema, domains in (("dataset", DATASET_KEYS, DATASET_DOMAINS), ("model", MODEL_KEYS, MODEL_DOMAINS)):
        for (table, key), domain in domains.items():
            integer = schema[table][key] is int or (table, key) in {("common", "bands"),
                                                                      ("common", "decoder_channels")}
            result += [(kind, table, key, value, integer) for value in outside(domain, integer)]
    return result


CASES = cases()


def write(tmp_path, kind: str, table: str, key: str, value: float, listed: bool):
    lines = dict(VALID[kind])
    if listed:
        count = {"values": 2, "decoder_channels": 5}.get(key, 3)
        filler = {"mean": 0.4, "std": 0.2, "values": 1.0, "bands": 1, "decoder_channels": 16}[key]
        lines[(table, key)] = "[" + ", ".join([repr(value)] + [repr(filler)] * (count - 1)) + "]"
        if key in PARTNERS:
            lines[(table, PARTNERS[key][0])] = PARTNERS[key][1]
    else:
        lines[(table, key)] = repr(value)
    tables: dict[str, list[str]] = {}
    for (t, k), v in lines.items():
        tables.setdefault(t, []).append(f"{k} = {v}")
    path = tmp_path / f"{kind}.toml"
    path.write_text("".join(f"[{t}]\n" + "".join(f"{line}\n" for line in body) for t, body in tables.items()))
    return path


@pytest.mark.parametrize("kind, table, key, value, integer", CASES,
                         ids=[f"{k} [{t}] {key} = {v}" for k, t, key, v, _ in CASES])
def test_every_out_of_domain_value_is_refused_when_read(tmp_path, kind, table, key, value, integer):
    load = load_dataset_config if kind == "dataset" else load_model_config
    domains = DATASET_DOMAINS if kind == "dataset" else MODEL_DOMAINS
    listed = (table, key) in LISTS
    path = write(tmp_path, kind, table, key, value, listed)
    name = "weight_decay" if key == "decay" else key  # robosat's old name is read as ours
    with pytest.raises(ConfigError, match=rf"{name} = .* must be {re.escape(str(domains[table, key]))}"):
        load(path)
    good = INSIDE.get((table, key), inside(domains[table, key], integer))
    load(write(tmp_path, kind, table, key, good, listed))  # the same file with a value inside is fine


@pytest.mark.parametrize("text, words", [
    ("[weights]\nvalues = [-1, 1]\n", ["[weights] values = [-1, 1]", "must be positive class weights"]),
    ("[weights]\nvalues = [0, 0]\n", ["[weights] values = [0, 0] must be positive", "loss nan"]),
    ("[weights]\nvalues = [0.0, -0.0]\n", ["[weights] values = [0.0, -0.0] must be positive"]),
    ("[weights]\nvalues = [0, 2.5]\n", ["[weights] values = [0, 2.5] must be positive"]),
    ("[common]\nmean = [0.4, 0.4, 0.4]\nstd = [1e-300, 0.2, 0.2]\n", ["[common] mean and std", "std 1e-300"]),
    ("[common]\nmean = [0.4, 0.4, 0.4]\nstd = [1e-5, 0.2, 0.2]\n", ["[common] mean and std", "6e+04"]),
    ("[common]\nmean = [1e39, 0.4, 0.4]\nstd = [0.2, 0.2, 0.2]\n", ["[common] mean = [1e+39"]),
    ("[common]\nmean = [-9000.0, 0.4, 0.4]\nstd = [0.5, 0.2, 0.2]\n", ["[common] mean and std", "mean -9000"]),
])
def test_values_that_make_the_loss_nan_are_refused_naming_the_key(tmp_path, text, words):
    path = tmp_path / "dataset.toml"
    path.write_text("[common]\ndataset = 'd'\nclasses = ['a', 'b']\n" + text.replace("[common]\n", ""))
    with pytest.raises(ConfigError) as error:
        load_dataset_config(path)
    assert all(w in str(error.value) for w in words) and str(path) in str(error.value), str(error.value)
    assert "lr" not in str(error.value)


def test_small_weights_and_a_small_but_sane_std_are_fine(tmp_path):
    path = tmp_path / "dataset.toml"
    path.write_text("[common]\ndataset = 'd'\nclasses = ['a', 'b']\nmean = [0.01, 0.01, 0.01]\n"
                    "std = [0.005, 0.005, 0.005]\n[weights]\nvalues = [1e-6, 2.5]\n")
    config = load_dataset_config(path)
    assert config.weights == [1e-6, 2.5] and config.std == [0.005] * 3


def test_gamma_below_zero_is_refused_with_focal(tmp_path):
    path = tmp_path / "model.toml"
    path.write_text("[opt]\nloss = 'Focal'\ngamma = -2.0\n")
    with pytest.raises(ConfigError, match=r"gamma = -2.0 must be 0 \(plain cross-entropy\) or more"):
        load_model_config(path)


@pytest.mark.parametrize("widths", ["[1e11, 128, 64, 32, 16]", "[100000000000, 128, 64, 32, 16]",
                                    "[8193, 128, 64, 32, 16]"])
def test_decoder_channels_have_a_maximum(tmp_path, widths):
    from robosat_effnet.limits import MAX_DECODER_CHANNELS

    path = tmp_path / "model.toml"
    path.write_text(f"[common]\ndecoder_channels = {widths}\n")
    with pytest.raises(ConfigError, match=f"decoder_channels = .* must be a list of widths from 1 to "
                                          f"{MAX_DECODER_CHANNELS}"):
        load_model_config(path)
