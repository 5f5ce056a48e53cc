"""What an exported file says of itself is checked against its graph when it is opened (issue 31): a Deepness file
without its "robosat_effnet.graph" entry, or a plain export that claims to be a Deepness graph, is one line, never
an onnxruntime traceback or masks that change without a word.

Generated: every metadata entry of both kinds of export removed, and each entry describing the graph changed; each
edited file is refused in one line or computes exactly what the unedited one computes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from conftest import synthetic_tile
from robosat_effnet.cli import main
from robosat_effnet.data.transforms import to_tensor
from robosat_effnet.deploy.deepness import DeepnessSettings
from robosat_effnet.deploy.export import export_onnx
from robosat_effnet.errors import CheckpointError
from robosat_effnet.models import build_model
from robosat_effnet.models.checkpoint import ModelSpec, save_checkpoint
from robosat_effnet.models.onnx import GRAPH_KEY, GRAPHS, SPEC_KEY, load_onnx
from robosat_effnet.models.onnx_kind import graph_traits
from robosat_effnet.tiles import tile_files

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from test_onnx import calibrate  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")
KINDS = ["network", "deepness"]
SPEC = ModelSpec(tile_size=64, bands=[3, 2, 1], mean=[0.4, 0.5, 0.45], std=[0.2, 0.25, 0.22])


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict:
    """Both kinds of export of one calibrated network (opset 17) and a Deepness one at opset 11 (its Softmax between
    two Transposes), with a batch and each file's logits of it."""
    folder = tmp_path_factory.mktemp("kinds")
    rng = np.random.default_rng(1)
    images = [synthetic_tile(rng, 64, 2)[0] for _ in range(2)]
    batch = torch.stack([to_tensor(image[..., [2, 1, 0]], SPEC.mean, SPEC.std) for image in images])
    torch.manual_seed(0)
    network = calibrate(build_model("efficientnet-b0", num_classes=2), batch)
    files = {"network": export_onnx((network, SPEC), folder / "network.onnx"),
             "deepness": export_onnx((network, SPEC), folder / "deepness.onnx",
                                     deepness=DeepnessSettings(resolution=30)),
             "deepness-opset11": export_onnx((network, SPEC), folder / "deepness-11.onnx", opset=11,
                                             deepness=DeepnessSettings(resolution=30))}
    logits = {name: load_onnx(path)[0](batch) for name, path in files.items()}
    pth = save_checkpoint(folder / "model.pth", network, SPEC)
    return {"folder": folder, "files": files, "batch": batch, "logits": logits, "pth": pth}


def metadata(path: Path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


def edited(source: Path, target: Path, key: str, value: str | None) -> Path:
    """A copy of `source` with metadata entry `key` removed (None) or set to `value`."""
    proto = onnx.load(str(source))
    entries = {p.key: p.value for p in proto.metadata_props}
    entries.pop(key, None) if value is None else entries.__setitem__(key, value)
    del proto.metadata_props[:]
    for k, v in entries.items():
        proto.metadata_props.add(key=k, value=v)
    onnx.save(proto, str(target))
    return target


def edits(name: str, meta: dict[str, str]) -> list[tuple[str, str | None]]:
    """Every entry removed; the graph entry set to every kind (and one unknown); the spec's normalisation changed
    (a Deepness graph holds it, so the graph can tell)."""
    spec = json.loads(meta[SPEC_KEY])
    changed = [(GRAPH_KEY, kind) for kind in (*GRAPHS, "segmentor")]
    if name.startswith("deepness"):
        changed += [(SPEC_KEY, json.dumps(spec | {"mean": [0.5, 0.5, 0.5]})),
                    (SPEC_KEY, json.dumps(spec | {"std": [1.0, 1.0, 1.0]}))]
    return [(key, None) for key in meta] + changed


@pytest.mark.parametrize("name", ["network", "deepness", "deepness-opset11"])
def test_every_edit_of_the_metadata_is_refused_in_one_line_or_changes_nothing(exported, name):
    source = exported["files"][name]
    meta = metadata(source)
    refused, same = [], []
    for n, (key, value) in enumerate(edits(name, meta)):
        target = edited(source, exported["folder"] / f"{name}-edit{n}.onnx", key, value)
        try:
            model, _ = load_onnx(target)
            logits = model(exported["batch"])
        except CheckpointError as e:
            assert "\n" not in str(e) and str(target) in str(e), str(e)
            refused.append((key, value))
            continue
        assert torch.equal(logits, exported["logits"][name]), (key, value)  # the masks would be the same
        same.append((key, value))
    other = "network" if name.startswith("deepness") else "deepness"
    assert (GRAPH_KEY, other) in refused and (GRAPH_KEY, "segmentor") in refused
    assert ("format", None) in refused and (SPEC_KEY, None) in refused
    if name.startswith("deepness"):  # without its graph entry a Deepness file reads as a plain one: refused
        assert (GRAPH_KEY, None) in refused and len([k for k, _ in refused if k == SPEC_KEY]) == 3
    else:
        assert GRAPH_KEY not in meta and (GRAPH_KEY, "network") in same  # absent means "network"
    assert ("resolution", None) in same or name == "network"  # Deepness's own settings: predict needs none


def test_the_reported_files_are_one_line_in_predict(exported, tmp_path):
    """The two files of the issue: a Deepness export whose graph entry was removed (it used to be onnxruntime's
    InvalidArgument traceback) and a plain export that claims to be a Deepness graph (it used to give other masks)."""
    folder = tmp_path / "tiles" / "18" / "70760"
    folder.mkdir(parents=True)
    from robosat_effnet.io import write_image

    write_image(folder / "104110.png", synthetic_tile(np.random.default_rng(0), 64, 2)[0])
    cases = {
        "lost": (edited(exported["files"]["deepness"], tmp_path / "lost.onnx", GRAPH_KEY, None),
                 "says it holds a 'network' graph (normalised images of any size in, logits out) but the graph ends "
                 "in a softmax"),
        "claimed": (edited(exported["files"]["network"], tmp_path / "claimed.onnx", GRAPH_KEY, "deepness"),
                    "says it holds a 'deepness' graph (0..1 RGB tiles of a fixed size in, probabilities out) but "
                    "the graph does not end in a softmax"),
    }
    for name, (model, message) in cases.items():
        result = CliRunner().invoke(main, ["predict", str(tmp_path / "tiles"), str(tmp_path / name), "--checkpoint",
                                           str(model), "--quiet"])
        assert result.exit_code == 1 and message in result.output, result.output
        assert "Traceback" not in result.output and result.output.strip().count("\n") == 0
        assert not tile_files(tmp_path / name) if (tmp_path / name).exists() else True


def test_the_traits_read_from_each_graph(exported):
    plain, deepness, old = (graph_traits(onnx.load(str(exported["files"][n])))
                            for n in ("network", "deepness", "deepness-opset11"))
    assert plain.fixed_size is None and plain.scaling is None and not plain.softmax
    for traits in (deepness, old):
        assert traits.fixed_size == (64, 64) and traits.softmax
        np.testing.assert_allclose(traits.scaling[0], SPEC.mean, atol=1e-6)
        np.testing.assert_allclose(traits.scaling[1], SPEC.std, atol=1e-6)
