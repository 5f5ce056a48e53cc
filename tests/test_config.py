"""robosat's TOML configs read unchanged, our optional keys, relative paths, warnings and errors."""

import logging
from pathlib import Path

import pytest

from robosat_effnet.config import apply_overrides, load_dataset_config, load_model_config, spec_from_configs
from robosat_effnet.errors import ConfigError, UnknownNameError
from robosat_effnet.models.checkpoint import IMAGENET_MEAN, ModelSpec

ROOT = Path(__file__).parents[1]
FIXTURES = ROOT / ".." / "shared" / "data" / "robosat-fixtures"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_robosat_configs_unchanged():
    if not FIXTURES.is_dir():
        pytest.skip("../shared/data is absent")
    data = load_dataset_config(FIXTURES / "dataset-parking.toml")
    model = load_model_config(FIXTURES / "model-unet.toml")
    assert data.dataset == Path("/tmp/slippy-map-dir")
    assert data.classes == ["background", "parking"] and data.colors == ["denim", "orange"]
    assert data.weights == [1.6248, 5.762827]
    assert data.in_channels == 3 and data.mean is None and data.std is None  # the weights decide
    assert (model.cuda, model.batch_size, model.image_size) == (True, 2, 512)
    assert model.checkpoint == Path("/tmp/pth")
    assert (model.epochs, model.lr, model.loss) == (10, 0.0001, "Lovasz")
    assert model.backbone == "efficientnet-b0" and model.decoder == "unet"
    spec = spec_from_configs(data, model)
    assert isinstance(spec, ModelSpec)
    assert (spec.num_classes, spec.tile_size, spec.in_channels) == (2, 512, 3)
    assert spec.mean == IMAGENET_MEAN  # from scratch: ImageNet's statistics, as before


def test_example_configs_in_repo_load(caplog):
    with caplog.at_level(logging.WARNING, "robosat_effnet"):
        for path in sorted((ROOT / "configs").glob("dataset*.toml")):
            load_dataset_config(path)
        for path in sorted((ROOT / "configs").glob("model*.toml")):
            load_model_config(path)
    assert not caplog.records  # the examples use only known keys
    four = load_dataset_config(ROOT / "configs" / "dataset-4band.toml")
    assert four.in_channels == 4 and four.images == ["rgb", "nir"] and four.max_value == 10000
    assert four.dataset == (ROOT / "configs" / "data").resolve()


def test_relative_paths_are_relative_to_the_toml(tmp_path):
    (tmp_path / "sub").mkdir()
    d = load_dataset_config(write(tmp_path / "sub" / "d.toml", "[common]\ndataset = 'tiles'\nclasses = ['a', 'b']\n"))
    m = load_model_config(write(tmp_path / "sub" / "m.toml", "[common]\ncheckpoint = '../out'\n"))
    assert d.dataset == tmp_path / "sub" / "tiles"
    assert m.checkpoint == tmp_path / "out"
    assert d.colors == ["denim", "orange"]  # robosat colours by default


def test_relative_paths_fall_back_to_the_current_folder_as_robosat_read_them(tmp_path, monkeypatch):
    (tmp_path / "configs").mkdir()
    (tmp_path / "tiles").mkdir()
    monkeypatch.chdir(tmp_path)
    d = load_dataset_config(write(tmp_path / "configs" / "d.toml",
                                  "[common]\ndataset = 'tiles'\nclasses = ['a', 'b']\n"))
    assert d.dataset == tmp_path / "tiles"  # not beside the TOML, but where robosat looked: the current folder
    (tmp_path / "configs" / "tiles").mkdir()
    d = load_dataset_config(tmp_path / "configs" / "d.toml")
    assert d.dataset == tmp_path / "configs" / "tiles"  # beside the TOML wins when both exist


def test_command_line_overrides(tmp_path):
    m = load_model_config(write(tmp_path / "m.toml", "[common]\nweights = 'ImageNet'\nbatch_size = 2\n"))
    assert m.weights == "imagenet"
    m2 = apply_overrides(m, backbone="b2", decoder="FPN", weights="none", epochs=3, batch_size=None,
                         checkpoint=str(tmp_path / "ck"))
    assert (m2.backbone, m2.decoder, m2.weights, m2.epochs, m2.batch_size) == ("efficientnet-b2", "fpn", None, 3, 2)
    assert m2.checkpoint == tmp_path / "ck" and m.backbone == "efficientnet-b0"  # the original is unchanged
    with pytest.raises(ConfigError, match="lr"):
        apply_overrides(m, lr=-1.0)


def test_our_keys_and_aliases(tmp_path):
    m = load_model_config(write(tmp_path / "m.toml", """
[common]
backbone = 'b4'
decoder = 'FPN'
weights = 'none'
seed = 7
[opt]
lr = 1
decay = 0.01
loss = 'Dice'
"""))
    assert m.backbone == "efficientnet-b4" and m.decoder == "fpn" and m.weights is None and m.seed == 7
    assert m.lr == 1.0 and isinstance(m.lr, float)
    assert m.weight_decay == 0.01  # robosat's early `decay` key


def test_unknown_keys_warn_with_their_names(tmp_path, caplog):
    path = write(tmp_path / "m.toml", "[common]\nbatch_size = 2\nbatchsize = 4\n[extra]\na = 1\n")
    with caplog.at_level(logging.WARNING, "robosat_effnet"):
        m = load_model_config(path)
    assert m.batch_size == 2
    message = caplog.records[0].getMessage()
    assert "[common] batchsize" in message and "[extra]" in message and str(path) in message


@pytest.mark.parametrize("text, words", [
    ("[common]\nbatch_size = 'two'\n", ["batch_size", "integer"]),
    ("[common]\nimage_size = 500\n", ["image_size", "multiple of 32"]),
    ("[common]\nbackbone = 'vgg16'\n", ["vgg16", "efficientnet-b0"]),
    ("[common]\ndecoder = 'deeplab'\n", ["deeplab", "unet"]),
    ("[opt]\nepochs = 0\n", ["epochs"]),
    ("[opt]\nloss = 'Hinge'\n", ["unknown loss 'Hinge'", "Lovasz", "m.toml"]),
    ("[common]\nseed = 4611686018427387904\n", ["seed", "0 to 4294967295"]),
    ("[common]\nseed = -1\n", ["seed", "0 to 4294967295"]),
    ("[common\n", ["not valid TOML"]),
])
def test_bad_model_configs(tmp_path, text, words):
    with pytest.raises(ConfigError) as error:
        load_model_config(write(tmp_path / "m.toml", text))
    assert all(w in str(error.value) for w in words)


@pytest.mark.parametrize("text, words", [
    ("[common]\nclasses = ['a', 'b']\n", ["dataset"]),
    ("[common]\ndataset = 'x'\nclasses = ['a', 'b']\ncolors = ['red']\n", ["2 classes", "1 colors"]),
    ("[common]\ndataset = 'x'\nclasses = ['a', 'b']\n[weights]\nvalues = [1.0]\n", ["[weights]"]),
    ("[common]\ndataset = 'x'\nclasses = ['a', 'b']\nin_channels = 4\n", ["mean and std", "4 values"]),
    ("[common]\ndataset = 'x'\nclasses = ['a', 'b']\nbands = [1, 2]\nin_channels = 3\n", ["bands"]),
    ("[common]\ndataset = 'x'\nclasses = ['a', 'b']\nimages = []\n", ["images", "at least one"]),
    ("[common]\ndataset = 'x'\nclasses = ['a', 'b']\nin_channels = 0\n", ["in_channels = 0"]),
    ("[common]\ndataset = 'x'\nclasses = ['a', 'b']\ncolors = ['denim', 'nocolour']\n", ["colors", "nocolour"]),
])
def test_bad_dataset_configs(tmp_path, text, words):
    with pytest.raises(ConfigError) as error:
        load_dataset_config(write(tmp_path / "d.toml", text))
    assert all(w in str(error.value) for w in words)


def test_missing_file_names_the_option(tmp_path):
    with pytest.raises(ConfigError, match="--model"):
        load_model_config(tmp_path / "nope.toml")


def test_unknown_backbone_is_an_unknown_name(tmp_path):
    with pytest.raises(UnknownNameError):
        load_model_config(write(tmp_path / "m.toml", "[common]\nbackbone = 'b9'\n"))


def test_bands_set_channels_and_go_into_the_spec(tmp_path):
    d = load_dataset_config(write(tmp_path / "d.toml", """
[common]
dataset = 'x'
classes = ['a', 'b', 'c']
bands = [4, 3, 2]
max_value = 10000
"""))
    spec = spec_from_configs(d, load_model_config(write(tmp_path / "m.toml", "[common]\nimage_size = 256\n")))
    assert (spec.in_channels, spec.bands, spec.tile_size, spec.num_classes) == (3, [4, 3, 2], 256, 3)
    assert spec.colors == ["denim", "orange", "green"]
