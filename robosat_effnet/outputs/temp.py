"""Our temporary files: recognisable names, and sweeping what killed runs left behind.

`io.atomic_path` writes to `.rs-effnet-<stem>.<host>-<pid>-<token>.tmp<suffix>` beside the target, so a
rerun can tell its own leftovers from anything else (the host and pid say whether the writer still runs).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import socket
import time
from pathlib import Path

TEMP_PREFIX = ".rs-effnet-"
STALE_SECONDS = 3600  # another machine's temp files (shared disks) count as stale after this long
_HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:6]
_OURS = re.compile(r"^\.rs-effnet-.*\.([0-9a-f]{6})-(\d+)-[0-9a-f]+\.tmp(\.[^.]+)?$")
# Names the earlier atomic_path (mkstemp) and sample writer gave: `.stem.abcd1234.tmp.png`, `.name.123.tmp`.
_LEGACY = re.compile(r"^\..+\.([a-z0-9_]{8}\.tmp(\.[A-Za-z0-9]+)?|\d+\.tmp)$")


def temp_path(path: str | os.PathLike) -> Path:
    """A fresh, recognisable temp name beside `path` (see the module docstring)."""
    path = Path(path)
    return path.with_name(f"{TEMP_PREFIX}{path.stem}.{_HOST}-{os.getpid()}-{secrets.token_hex(4)}.tmp{path.suffix}")


def is_temp(name: str) -> bool:
    """Whether a file name is one of our temp files (current or earlier naming)."""
    return bool(_OURS.match(name) or _LEGACY.match(name))


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
            if stem is not None and not name.startswith((f"{TEMP_PREFIX}{stem}.", f".{stem}.")):
                continue
            if name.startswith(".") and is_temp(name) and _stale(Path(root) / name):
                with contextlib.suppress(FileNotFoundError, IsADirectoryError, PermissionError):
                    (Path(root) / name).unlink()
                    removed += 1
    return removed


def _stale(path: Path) -> bool:
    match = _OURS.match(path.name)
    if match is None:  # the earlier naming: no running version writes it any more
        return True
    host, pid = match.group(1), int(match.group(2))
    if host != _HOST:
        with contextlib.suppress(OSError):
            return time.time() - path.stat().st_mtime > STALE_SECONDS
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False
