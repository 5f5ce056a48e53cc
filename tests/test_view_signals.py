"""`rs-effnet view` without --out serves a copy of the imagery from a temp folder: however it stops, the copy
goes. Ctrl-C, SIGTERM (kill, systemd, docker stop) and SIGHUP (the terminal closed) remove it on the way out;
kill -9 cannot be caught, so the next run removes what a killed run left (and nothing of a running one)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from robosat_effnet.io import write_image

Z, X, Y = 18, 152600, 129350


@pytest.fixture
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    write_image(folder / str(Z) / str(X) / f"{Y}.png", np.full((64, 64, 3), 90, np.uint8))
    return folder


def _start(images: Path, tmp: Path, *args: str) -> tuple[subprocess.Popen, str]:
    """A served `view` whose temp folder lies in `tmp` (TMPDIR), once it serves; and its URL."""
    process = subprocess.Popen([sys.executable, "-m", "robosat_effnet.cli.view", str(images), "--port", "0",
                                "--quiet", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "TMPDIR": str(tmp)})
    line = process.stdout.readline()
    assert " on http://" in line, line + process.stderr.read()
    return process, line.split(" on ", 1)[1].split()[0]


def _pages(tmp: Path) -> set[Path]:
    """The page folders in `tmp` (a page: a folder holding index.html)."""
    return {path.parent for path in tmp.glob("*/index.html")} | {path.parent for path in tmp.glob(".*/index.html")}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name)
def test_a_stopped_view_leaves_no_temp_folder(images, tmp_path, sig):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    process, _ = _start(images, tmp)
    try:
        assert len(_pages(tmp)) == 1  # the page it serves
    finally:
        process.send_signal(sig)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "stopped" in out and err == ""
    assert list(tmp.iterdir()) == []


def test_a_failed_view_leaves_no_temp_folder(images, tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    broken = tmp_path / "broken.geojson"
    broken.write_text("{not json")
    result = subprocess.run([sys.executable, "-m", "robosat_effnet.cli.view", str(images), "--outlines", str(broken),
                             "--port", "0", "--quiet"], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "TMPDIR": str(tmp)})
    assert result.returncode == 1 and str(broken) in result.stderr
    assert list(tmp.iterdir()) == []


def test_the_next_run_removes_what_a_killed_run_left_and_nothing_else(images, tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    (tmp / "someone-elses").mkdir()
    running, running_url = _start(images, tmp)
    killed, _ = _start(images, tmp)
    processes = [running]
    try:
        before = _pages(tmp)
        killed.send_signal(signal.SIGKILL)  # cannot be caught: its page stays behind
        killed.communicate(timeout=60)
        assert _pages(tmp) == before and len(before) == 2
        next_run, _ = _start(images, tmp)
        processes.append(next_run)
        after = _pages(tmp)
        assert len(after) == 2 and len(after & before) == 1  # the killed run's page is gone; the running one's kept
        assert (tmp / "someone-elses").is_dir()
        with urllib.request.urlopen(running_url, timeout=30) as response:  # the running one still serves its page
            assert response.status == 200
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=60)
    assert [p.name for p in tmp.iterdir()] == ["someone-elses"]
