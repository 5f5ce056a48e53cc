"""Our temporary files and folders: recognisable names, and sweeping what killed runs left behind.

`io.atomic_path` writes to `.rs-effnet-<stem>.<host>-<pid>-<token>.tmp<suffix>` beside the target, so a
rerun can tell its own leftovers from anything else (the host and pid say whether the writer still runs).
`temp_folder` names the scratch folders of a run (e.g. the page `view` serves, an export's intermediate model)
the same way, and `temp_inside` sends the temp files of libraries we call (onnxruntime's quantiser) into one.

Only such names are ever swept, and only once their writer has ended: a user's `.notes.20241204.tmp` or
`.buildings.backup_1.tmp` beside an output is not ours, whatever it looks like.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

TEMP_PREFIX = ".rs-effnet-"
STALE_SECONDS = 3600  # another machine's temp files (shared disks) count as stale after this long
_HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:6]
_OURS = re.compile(r"^\.rs-effnet-.*\.([0-9a-f]{6})-([0-9]+)-[0-9a-f]+\.tmp(\.[^.]+)?$")


def temp_path(path: str | os.PathLike) -> Path:
    """A fresh, recognisable temp name beside `path` (see the module docstring)."""
    path = Path(path)
    return path.with_name(f"{TEMP_PREFIX}{path.stem}.{_HOST}-{os.getpid()}-{secrets.token_hex(4)}.tmp{path.suffix}")


def is_temp(name: str) -> bool:
    """Whether a file name is one of our temp files: our prefix, a host, a pid and a token (`temp_path`).

    Earlier versions' names (`.stem.abcd1234.tmp`, `.name.123.tmp`) are not recognised: a user's file can look
    the same, and one such leftover costs less than one user file lost."""
    return bool(_OURS.match(name))


def sweep_temp(folder: str | os.PathLike, recursive: bool = False, target: str | os.PathLike | None = None) -> int:
    """Remove the temp files that crashed or killed runs left in `folder` (and below, if `recursive`).

    `target`: only those of this one output file (for a file written into a folder that is not ours).
    Temp files of a process still running on this machine are kept (e.g. another shard writing here);
    another machine's are removed once older than STALE_SECONDS. Returns how many were removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    stem = Path(target).stem if target is not None else None
    removed = 0
    walk = os.walk(folder) if recursive else [(str(folder), [], os.listdir(folder))]
    for root, _, names in walk:
        for name in names:
            if stem is not None and not name.startswith(f"{TEMP_PREFIX}{stem}."):
                continue
            if is_temp(name) and _stale(Path(root) / name):
                with contextlib.suppress(FileNotFoundError, IsADirectoryError, PermissionError):
                    (Path(root) / name).unlink()
                    removed += 1
    return removed


@contextlib.contextmanager
def temp_folder(stem: str, parent: str | os.PathLike | None = None) -> Iterator[Path]:
    """A new private folder with a temp name (`.rs-effnet-<stem>.<host>-<pid>-<token>.tmp`) in `parent`
    (default: the system's temp folder), removed on leaving the block, by an exception or Ctrl-C too.

    A run killed with kill -9 cannot remove its folder: each call first removes the `stem` folders of
    processes that have ended (`sweep_temp_folders`).
    """
    parent = Path(tempfile.gettempdir() if parent is None else parent)
    sweep_temp_folders(parent, stem)
    folder = temp_path(parent / stem)
    folder.mkdir(mode=0o700)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def temp_inside(folder: str | os.PathLike) -> Iterator[None]:
    """Within the block, the `tempfile` module's folder is `folder` (one of ours, e.g. a `temp_folder`): the
    temp files of a library that takes no folder (onnxruntime's quantiser: `ort.quant.*`) go there, and a
    killed run's are swept with it. Not thread-safe: `tempfile.tempdir` is one global."""
    previous = tempfile.tempdir
    tempfile.tempdir = str(folder)
    try:
        yield
    finally:
        tempfile.tempdir = previous


def sweep_temp_folders(parent: str | os.PathLike, stem: str) -> int:
    """Remove the `temp_folder(stem)` folders in `parent` of processes on this machine that have ended; returns
    how many. Those of running processes, of another machine (a shared disk) and of another user are kept."""
    removed = 0
    with contextlib.suppress(OSError), os.scandir(parent) as entries:
        for entry in entries:
            match = _OURS.match(entry.name)
            if (match is None or not entry.name.startswith(f"{TEMP_PREFIX}{stem}.") or match.group(1) != _HOST
                    or not entry.is_dir(follow_symlinks=False)
                    or entry.stat(follow_symlinks=False).st_uid != os.getuid() or _running(int(match.group(2)))):
                continue
            shutil.rmtree(entry.path, ignore_errors=True)
            removed += not os.path.lexists(entry.path)
    return removed


def _stale(path: Path) -> bool:
    match = _OURS.match(path.name)
    if match is None:  # not ours: never swept
        return False
    host, pid = match.group(1), int(match.group(2))
    if host != _HOST:
        with contextlib.suppress(OSError):
            return time.time() - path.stat().st_mtime > STALE_SECONDS
        return False
    return not _running(pid)


def _running(pid: int) -> bool:
    """Whether a process of this machine has this id (another user's included)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # none, or an id no process can have
        return False
    except PermissionError:  # alive, another user's
        return True
    return True
