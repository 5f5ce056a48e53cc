"""Every command's output path, whatever stands there: a dangling symbolic link, a file where a folder goes, a
folder where a file goes, a link to the wrong kind, a file in the way of the path. Each is one line naming the
path and what it is (exit 1 or 2, no traceback), and what stands there is left as it was.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import command_inputs
from robosat_effnet.cli import main


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, random_checkpoint) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("outputs")
    return command_inputs(root, random_checkpoint, n_val=4)  # 4 tiles: 2 blocks


# command -> its arguments writing to OUT; every command with a folder output
FOLDERS = {
    "sample": lambda i, out: ["sample", out, "--size", "64"],
    "tile": lambda i, out: ["tile", i["scene"], out, "--zoom", "18", "-q"],
    "rasterize": lambda i, out: ["rasterize", i["geojson"], out, "--tiles", i["images"], "--dataset", i["dataset"],
                                 "-q"],
    "train --checkpoint-dir": lambda i, out: ["train", "--dataset", i["dataset"], "--model", i["model"],
                                              "--checkpoint-dir", out, "--device", "cpu", "-q"],
    "predict": lambda i, out: ["predict", i["images"], out, "--checkpoint", i["checkpoint"], "--device", "cpu",
                               "--quiet"],
    "study --out": lambda i, out: ["study", "--dataset", i["dataset"], "--model", i["model"], "--backbones", "b0",
                                   "--out", out, "--device", "cpu", "-q"],
    "blocks": lambda i, out: ["blocks", i["images"], out],
    "view --out": lambda i, out: ["view", i["images"], "--out", out, "--no-serve", "--quiet"],
}
# command -> (its arguments writing to OUT, the output's suffix)
FILES = {
    "export": (lambda i, out: ["export", i["checkpoint"], out], ".onnx"),
    "predict --geotiff": (lambda i, out: ["predict", i["scene"], "--geotiff", out, "--checkpoint", i["checkpoint"],
                                          "--device", "cpu", "--quiet"], ".tif"),
    "features": (lambda i, out: ["features", i["labels"], out, "-q"], ".geojson"),
    "eval --json": (lambda i, out: ["eval", "--checkpoint", i["checkpoint"], i["images"], i["labels"], "--json", out,
                                    "--device", "cpu", "-q"], ".json"),
    "score --json": (lambda i, out: ["score", i["geojson"], i["geojson"], "--json", out], ".json"),
    "bench --markdown": (lambda i, out: ["bench", "--markdown", out, "--tiles", i["empty"], "--sections", "model",
                                         "--models", "b0:unet", "--device", "cpu"], ".md"),
}


def make_in_the_way(tmp_path: Path, case: str, name: str) -> tuple[Path, object]:
    """Put `case` where the output `name` goes; returns the output path and a snapshot of what stands there."""
    out, target = tmp_path / name, tmp_path / "elsewhere"
    if case == "dangling link":
        out.symlink_to(target)
    elif case == "file":
        out.write_text("somebody's file")
    elif case == "link to a file":
        target.write_text("somebody's file")
        out.symlink_to(target)
    elif case == "folder":
        out.mkdir()
        (out / "kept.txt").write_text("somebody's file")
    elif case == "link to a folder":
        target.mkdir()
        (target / "kept.txt").write_text("somebody's file")
        out.symlink_to(target)
    elif case == "under a file":
        (tmp_path / "a-file").write_text("somebody's file")
        out = tmp_path / "a-file" / name
    return out, snapshot(tmp_path)


def snapshot(folder: Path) -> dict[str, str]:
    """Every entry under `folder` (links not followed) with its link target or file content."""
    found = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        found[key] = (f"-> {os.readlink(path)}" if path.is_symlink() else path.read_text() if path.is_file()
                      else "folder")
    return found


# what the line says the path is (click's own check of a path's kind, exit 2, says "is a file"/"is a directory")
WORDS = {"dangling link": ("symbolic link",), "file": ("is a file",),
         "link to a file": ("symbolic link", "is a file"), "folder": ("is a folder", "is a directory"),
         "link to a folder": ("symbolic link", "is a directory", "is a folder"), "under a file": ("is a file",)}


def check_refused(result, out: Path, case: str, before: dict, tmp_path: Path) -> None:
    assert result.exit_code in (1, 2), result.output
    assert "Traceback" not in result.output and result.output.count("Error") == 1, result.output
    message = " ".join(result.output.split())
    assert str(out) in message or str(out.parent) in message, message
    assert any(word in message for word in WORDS[case]), message
    assert "check the disk" not in message, message
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("case", ["dangling link", "file", "link to a file", "under a file"])
@pytest.mark.parametrize("command", list(FOLDERS))
def test_a_folder_output_that_cannot_be_a_folder_is_one_line_naming_it(tmp_path, inputs, command, case, one_thread):
    out, before = make_in_the_way(tmp_path, case, "out")
    result = CliRunner().invoke(main, [str(a) for a in FOLDERS[command](inputs, out)])
    check_refused(result, out, case, before, tmp_path)
    if case == "dangling link":  # where the link leads, which is what to create
        assert f"symbolic link to {tmp_path / 'elsewhere'}, which does not exist" in " ".join(result.output.split())


@pytest.mark.parametrize("case", ["dangling link", "folder", "link to a folder", "under a file"])
@pytest.mark.parametrize("command", list(FILES))
def test_a_file_output_that_cannot_be_a_file_is_one_line_naming_it(tmp_path, inputs, command, case, one_thread):
    args, suffix = FILES[command]
    out, before = make_in_the_way(tmp_path, case, f"out{suffix}")
    result = CliRunner().invoke(main, [str(a) for a in args(inputs, out)])
    check_refused(result, out, case, before, tmp_path)
