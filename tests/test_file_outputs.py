"""Single-file outputs (`score --json`, `eval --json`, `features OUT`, `bench --markdown`) never replace a file
they did not write: a rerun replaces its own (known by its mark), anything else is refused before any work."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from conftest import make_dataset
from robosat_effnet.cli import main
from robosat_effnet.errors import OutputError
from robosat_effnet.outputs import claim_file, mark

SQUARE = {"type": "Feature", "properties": {"class": "building"},
          "geometry": {"type": "Polygon", "coordinates": [[[32.58, 0.34], [32.5801, 0.34], [32.5801, 0.3401],
                                                           [32.58, 0.3401], [32.58, 0.34]]]}}


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def refused(result, *words, code=2):
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit), result.exception
    for word in words:
        assert word in result.output, result.output


@pytest.fixture
def outlines(tmp_path):
    path = tmp_path / "pred.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [SQUARE]}))
    return path


def test_claim_file_accepts_new_and_own_files_only(tmp_path):
    assert claim_file(tmp_path / "new.json", "score") == tmp_path / "new.json"
    own = tmp_path / "own.json"
    own.write_text(json.dumps({**mark("score"), "f1": 1.0}))
    claim_file(own, "score")
    with pytest.raises(OutputError, match="not written by rs-effnet eval"):
        claim_file(own, "eval")  # another command's file is not this one's to replace
    foreign = tmp_path / "notes.json"
    foreign.write_text('{"f1": 1.0}')
    with pytest.raises(OutputError, match="not written by rs-effnet score"):
        claim_file(foreign, "score")
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(OutputError, match="not a regular file"):
        claim_file(tmp_path / "pipe", "score")
    (tmp_path / "link.json").symlink_to(foreign)
    with pytest.raises(OutputError, match="symbolic link"):
        claim_file(tmp_path / "link.json", "score")


def test_score_json_reruns_over_its_own_file_and_never_over_another(tmp_path, outlines):
    out = tmp_path / "score.json"
    assert run("score", outlines, outlines, "--json", out).exit_code == 0
    assert json.loads(out.read_text())["written_by"] == "rs-effnet score"
    assert run("score", outlines, outlines, "--json", out).exit_code == 0  # a rerun replaces its own
    notes = tmp_path / "notes.json"
    notes.write_text("my notes")
    refused(run("score", outlines, outlines, "--json", notes), "not written by rs-effnet score")
    assert notes.read_text() == "my notes"
    os.mkfifo(tmp_path / "pipe")
    refused(run("score", outlines, outlines, "--json", tmp_path / "pipe"), "not a regular file")
    assert (tmp_path / "pipe").is_fifo()


def test_features_never_replaces_outlines_it_did_not_write(tmp_path, outlines):
    masks = make_dataset(tmp_path, n_train=1, n_val=1).root / "training" / "labels"
    before = outlines.read_bytes()
    result = run("features", masks, outlines, "-q")
    assert result.exit_code == 1 and "not written by rs-effnet features" in result.output, result.output
    assert outlines.read_bytes() == before
    out = tmp_path / "features.geojson"
    for _ in range(2):  # the second run replaces the first's file
        assert run("features", masks, out, "-q").exit_code == 0
    collection = json.loads(out.read_text())
    assert collection["type"] == "FeatureCollection" and collection["written_by"] == "rs-effnet features"


def test_features_geopackage_carries_its_mark(tmp_path):
    pytest.importorskip("geopandas")
    pytest.importorskip("pyogrio")
    masks = make_dataset(tmp_path, n_train=1, n_val=1).root / "training" / "labels"
    out = tmp_path / "b.gpkg"
    for _ in range(2):
        result = run("features", masks, out, "-q")
        assert result.exit_code == 0, result.output
    (tmp_path / "other.gpkg").write_bytes(out.read_bytes().replace(b"rs-effnet features", b"someone else's!!!"))
    result = run("features", masks, tmp_path / "other.gpkg", "-q")
    assert result.exit_code == 1 and "not written by rs-effnet features" in result.output, result.output


def test_bench_checks_every_argument_before_timing(tmp_path):
    quick = ["bench", "--repeats", "1", "--threads", "1", "--size", "64", "--no-int8", "--sections", "model",
             "--models", "b0:unet"]
    refused(run(*quick, "--device", "foo"), "unknown device 'foo'")
    refused(run(*quick, "--size", "33"), "multiple of 32")
    refused(run(*quick, "--sections", ""), "name one or more")
    refused(run(*quick, "--models", " "), "name one or more")
    notes = tmp_path / "notes.md"
    notes.write_text("# my notes\n")
    refused(run(*quick, "--markdown", notes), "not written by rs-effnet bench")
    assert notes.read_text() == "# my notes\n"


def test_eval_json_refuses_somebody_elses_file(tmp_path, random_checkpoint):
    data = make_dataset(tmp_path, n_train=1, n_val=1)
    notes = tmp_path / "notes.json"
    notes.write_text("{}")
    result = run("eval", "--checkpoint", random_checkpoint, data.root / "validation" / "images",
                 data.root / "validation" / "labels", "--json", notes, "-q")
    assert result.exit_code == 1 and "not written by rs-effnet eval" in result.output, result.output
    assert notes.read_text() == "{}"


def test_bench_markdown_on_a_full_disk_is_one_line(tmp_path, monkeypatch):
    import contextlib
    import errno

    @contextlib.contextmanager
    def full(path):
        raise OSError(errno.ENOSPC, "No space left on device")
        yield

    monkeypatch.setattr("robosat_effnet.io.atomic_path", full)
    result = run("bench", "--repeats", "1", "--threads", "1", "--size", "64", "--no-int8", "--sections", "model",
                 "--models", "b0:unet", "--markdown", tmp_path / "b.md")
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert result.output.strip().splitlines()[-1].startswith("Error: cannot write") and "the disk is full" in \
        result.output
    assert not (tmp_path / "b.md").exists() and not list(tmp_path.iterdir())
