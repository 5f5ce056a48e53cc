"""robosat-layout datasets: pairing, stacking, multi-band tifs, the checks before training, class weights."""

import math
import shutil
from pathlib import Path

import mercantile
import numpy as np
import pytest
import rasterio
import torch

from conftest import make_dataset
from robosat_effnet.config import load_dataset_config
from robosat_effnet.errors import DatasetError
from robosat_effnet.io import write_image, write_mask
from robosat_effnet.models.checkpoint import IMAGENET_MEAN, IMAGENET_STD
from robosat_effnet.training.datasets import SegmentationTiles, check_dataset, class_weights, find_samples

FIXTURES = Path(__file__).parents[1] / ".." / "shared" / "data" / "robosat-fixtures"


@pytest.fixture
def small(tmp_path):
    return make_dataset(tmp_path, n_train=4, n_val=2)


def first_file(folder: Path) -> Path:
    return sorted(p for p in folder.rglob("*") if p.is_file())[0]


def test_pairs_and_tensors(small):
    config = load_dataset_config(small.dataset_toml)
    found = check_dataset(config, progress=False)
    assert [len(found["training"]), len(found["validation"])] == [4, 2]
    sample = found["training"][0]
    assert sample.tile == mercantile.Tile(70760, 104110, 18)  # sorted by (z, x, y)
    assert sample.images[0] == small.root / "training" / "images" / "18" / "70760" / "104110.png"
    image, label = SegmentationTiles.from_config(config, found["training"])[0]
    assert image.shape == (3, 64, 64) and image.dtype == torch.float32
    assert label.shape == (64, 64) and label.dtype == torch.long and set(label.unique().tolist()) <= {0, 1}
    # the normalisation inverts to the uint8 pixels on disk
    from PIL import Image

    pixels = np.asarray(Image.open(sample.images[0]))
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    np.testing.assert_allclose(((image * std + mean) * 255).permute(1, 2, 0).numpy(), pixels, atol=1e-3)


def test_no_augmentation_unless_asked(small):
    config = load_dataset_config(small.dataset_toml)
    samples = find_samples(config, "validation")
    plain = SegmentationTiles.from_config(config, samples)
    first = plain[1][1]
    plain.set_epoch(5)
    assert torch.equal(plain[1][1], first)
    augmented = SegmentationTiles.from_config(config, samples, augment=True)
    labels = set()
    for epoch in range(12):
        augmented.set_epoch(epoch)
        labels.add(augmented[1][1].numpy().tobytes())
    assert len(labels) > 1


def test_images_are_resized_to_image_size(small):
    config = load_dataset_config(small.dataset_toml)
    image, label = SegmentationTiles.from_config(config, find_samples(config, "training"), size=128)[0]
    assert image.shape == (3, 128, 128) and label.shape == (128, 128)


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_stacked_folders_and_uint16_tifs(tmp_path):
    data = make_dataset(tmp_path, n_train=2, n_val=1, dataset={"images": ["images", "nir"], "in_channels": 4,
                                                               "mean": [0.5] * 4, "std": [0.25] * 4,
                                                               "max_value": 10000})
    for split in ("training", "validation"):
        for path in (data.root / split / "images").rglob("*.png"):
            nir = np.full((64, 64, 1), 5000, np.uint16)
            write_image(data.root / split / "nir" / path.relative_to(data.root / split / "images").with_suffix(".tif"),
                        nir)
    with rasterio.open(next((data.root / "training" / "nir").rglob("*.tif"))) as src:
        assert (src.count, src.dtypes[0]) == (1, "uint16")
    config = load_dataset_config(data.dataset_toml)
    found = check_dataset(config, progress=False)
    image, _ = SegmentationTiles.from_config(config, found["training"])[0]
    assert image.shape == (3 + 1, 64, 64)
    # uint8 RGB / 255 and uint16 NIR / max_value are each scaled to 0..1 before stacking
    assert image[3].allclose(torch.tensor((5000 / 10000 - 0.5) / 0.25))
    from PIL import Image

    rgb = np.asarray(Image.open(found["training"][0].images[0]), np.float64) / 255  # uint8 scaled by 255
    np.testing.assert_allclose(image[:3].permute(1, 2, 0).numpy(), (rgb - 0.5) / 0.25, atol=1e-5)
    # A NIR tile of another size than its RGB tile is a size problem, not an unreadable file.
    nir = first_file(data.root / "training" / "nir")
    write_image(nir, np.full((32, 32, 1), 5000, np.uint16))
    with pytest.raises(DatasetError, match=r"size different.*differ in size.*" + nir.name):
        check_dataset(config, progress=False)


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_multiband_tif_with_bands(tmp_path):
    data = make_dataset(tmp_path, n_train=2, n_val=1, ext="tif",
                        dataset={"bands": [3, 2, 1]})
    config = load_dataset_config(data.dataset_toml)
    found = check_dataset(config, progress=False)
    image, _ = SegmentationTiles.from_config(config, found["training"])[0]
    with rasterio.open(found["training"][0].images[0]) as src:
        red = src.read(1)
    assert np.allclose(image[2].numpy() * IMAGENET_STD[2] + IMAGENET_MEAN[2], red / 255, atol=1e-5)


def test_dim_uint16_images_get_a_max_value_hint(tmp_path, caplog):
    """12-bit data in uint16 tiles would be nearly black divided by 65535: a warning names max_value."""
    from PIL import Image

    data = make_dataset(tmp_path, n_train=2, n_val=1)
    for path in data.root.rglob("images/*/*/*.png"):
        twelve_bit = np.asarray(Image.open(path)).astype(np.uint16) * 16
        write_image(path.with_suffix(".tif"), twelve_bit)
        path.unlink()
    config = load_dataset_config(data.dataset_toml)
    with caplog.at_level("WARNING", logger="robosat_effnet"):
        check_dataset(config, progress=False)
    assert any("max_value" in r.getMessage() and "4080" in r.getMessage() for r in caplog.records), caplog.text
    caplog.clear()
    config.max_value = 4095.0
    with caplog.at_level("WARNING", logger="robosat_effnet"):
        check_dataset(config, progress=False)
    assert not caplog.records


def test_16_bit_png_labels_are_refused_not_wrapped(small):
    """A label value of 256 must not read as 0 (background) and pass the checks."""
    from PIL import Image

    path = first_file(small.root / "training" / "labels")
    Image.fromarray(np.full((64, 64), 256, np.uint16)).save(path)
    with pytest.raises(DatasetError, match="holds value 256"):
        check_dataset(load_dataset_config(small.dataset_toml), progress=False)


def break_missing_split(root: Path):
    shutil.rmtree(root / "validation" / "labels")


def break_empty(root: Path):
    shutil.rmtree(root / "training" / "images")
    (root / "training" / "images").mkdir()


def break_orphan_image(root: Path):
    first_file(root / "training" / "labels").unlink()


def break_orphan_label(root: Path):
    first_file(root / "training" / "images").unlink()


def break_corrupt(root: Path):
    first_file(root / "training" / "images").write_bytes(b"\x89PNG\r\n\x1a\n not really")


def break_size(root: Path):
    write_mask(first_file(root / "training" / "labels"), np.zeros((32, 32), np.uint8), ["denim", "orange"])


def break_values(root: Path):
    write_mask(first_file(root / "validation" / "labels"), np.full((64, 64), 2, np.uint8), ["denim"] * 3)


def break_bands(root: Path):
    path = first_file(root / "training" / "images")
    write_image(path, np.zeros((64, 64, 1), np.uint8))  # a greyscale tile among RGB ones


BREAKS = {
    "missing": (break_missing_split, ["validation/labels", "does not exist"]),
    "empty": (break_empty, ["training/images", "no z/x/y tiles"]),
    "orphan image": (break_orphan_image, ["1 image tiles", "no label", "18/70760/104110"]),
    "orphan label": (break_orphan_label, ["1 label tiles", "no image", "18/70760/104110"]),
    "corrupt": (break_corrupt, ["unreadable", "104110.png"]),
    "size": (break_size, ["size different", "64x64", "32x32"]),
    "values": (break_values, ["label values", "holds 2", "2 classes"]),
    "bands": (break_bands, ["channel count", "1 channels", "expects 3"]),
}


@pytest.mark.parametrize("case", list(BREAKS))
def test_each_bad_dataset_raises_one_clear_error(small, case):
    breaker, words = BREAKS[case]
    breaker(small.root)
    with pytest.raises(DatasetError) as error:
        check_dataset(load_dataset_config(small.dataset_toml), progress=False)
    message = str(error.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message


def test_missing_dataset_folder(tmp_path):
    data = make_dataset(tmp_path, n_train=1, n_val=1)
    shutil.rmtree(data.root)
    with pytest.raises(DatasetError, match="dataset folder .* does not exist"):
        check_dataset(load_dataset_config(data.dataset_toml), progress=False)


def test_class_weights_of_robosat_parking_labels(tmp_path):
    if not FIXTURES.is_dir():
        pytest.skip("../shared/data is absent")
    (tmp_path / "ds" / "training").mkdir(parents=True)
    (tmp_path / "ds" / "training" / "labels").symlink_to((FIXTURES / "parking" / "labels").resolve())
    (tmp_path / "d.toml").write_text("[common]\ndataset = 'ds'\nclasses = ['background', 'parking']\n")
    weights = class_weights(load_dataset_config(tmp_path / "d.toml"), progress=False)
    # the fixture README's foreground pixel counts over 4 tiles of 512 x 512
    frequency = (0 + 63185 + 56756 + 10654) / (4 * 512 * 512)
    expected = [1 / math.log(1.02 + 1 - frequency), 1 / math.log(1.02 + frequency)]
    assert weights == [round(w, 6) for w in expected]
