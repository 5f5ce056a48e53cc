"""Provenance of resumable outputs: `.rs-effnet.json` says which run wrote a folder, so a rerun only
continues its own kind of output, and never mixes two runs in one folder."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from robosat_effnet._version import __version__
from robosat_effnet.errors import OutputError
from robosat_effnet.outputs.checks import check_writable, plain_folder, write_text, writing
from robosat_effnet.outputs.temp import is_temp, sweep_temp
from robosat_effnet.text import is_url

RECORD = ".rs-effnet.json"
log = logging.getLogger("robosat_effnet")


def file_digest(path: str | os.PathLike) -> str:
    """sha256 of a file (identifies a checkpoint wherever it is copied)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def make_record(command: str, source: str | os.PathLike, settings: dict[str, Any],
                checkpoint: str | os.PathLike | None = None, digest: str | None = None) -> dict[str, Any]:
    """What wrote an output folder: the command, its source, its checkpoint (path and sha256) and the
    settings that change the result. `digest` is the checkpoint's sha256 when the caller already has it (from
    the bytes it loaded: `models.loaded`); else the file is read for it."""
    where = str(source) if is_url(source) else str(Path(source).resolve())  # a URL names itself wherever we run
    record: dict[str, Any] = {"command": command, "source": where, "settings": settings}
    if checkpoint is not None and Path(checkpoint).is_file():
        record["checkpoint"] = str(Path(checkpoint).resolve())
        record["checkpoint_sha256"] = digest or file_digest(checkpoint)
    return json.loads(json.dumps(record, default=str))  # lists, not tuples: compares equal to a read record


def read_record(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The provenance record in `folder`, or None if there is none (an unreadable one counts as foreign)."""
    path = Path(folder) / RECORD
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):  # nested hundreds deep: not one of ours either
        return {"command": "unreadable record"}
    return record if isinstance(record, dict) else {"command": "unreadable record"}


def recorded_classes(folder: str | os.PathLike) -> list[str] | None:
    """The class names a folder's record says its tiles hold (`predict` and `rasterize` record them), or None."""
    record = read_record(folder)
    settings = record.get("settings") if record else None
    classes = settings.get("classes") if isinstance(settings, dict) else None
    if isinstance(classes, list) and len(classes) >= 2 and all(isinstance(c, str) for c in classes):
        return classes
    return None


def warn_other_classes(folder: str | os.PathLike, classes: list[str] | None, using: str, what: str,
                       advice: str) -> bool:
    """Warn (the package logger) when `folder`'s record names other classes than `classes`, the ones a command
    uses (read from `using`, e.g. "checkpoint model.pth"); `what` names the tiles ("labels"), `advice` what to do.
    Class indices are all the tiles hold: another list means the indices mean other things. Returns whether it
    warned."""
    recorded = recorded_classes(folder)
    if recorded is None or classes is None or list(recorded) == list(classes):
        return False
    log.warning("%s names the classes %s but %s says the %s hold %s; %s", using, ", ".join(classes),
                Path(folder) / RECORD, what, ", ".join(recorded), advice)
    return True


def has_files(folder: str | os.PathLike) -> bool:
    """Whether `folder` holds any file other than our record and temp files (empty folders do not count)."""
    for _, _, names in os.walk(folder):
        if any(name != RECORD and not is_temp(name) for name in names):
            return True
    return False


def claim_folder(folder: str | os.PathLike, record: dict[str, Any], *, overwrite: bool = False,
                 clear: Callable[[Path], None] | None = None) -> bool:
    """Make `folder` this run's output, or raise OutputError. Returns True when it continues an earlier run.

    An empty (or missing) folder is claimed; one whose record matches `record` (same command, source,
    checkpoint and settings) is continued; anything else (another run's record, or files without a
    record) is refused unless `overwrite`, when `clear` (if given) first removes another run's outputs.
    Also removes stale temp files, and checks the folder is writable.
    """
    folder = Path(folder)
    plain_folder(folder)  # a dangling link, a file, a file above it: one line naming it
    previous = read_record(folder) if folder.is_dir() else None
    occupied = folder.is_dir() and has_files(folder)
    same = previous is not None and _comparable(previous) == _comparable(record)
    if occupied and not same and not overwrite:
        what = (f"the output of another run ({_describe(previous, record)})" if previous is not None
                else "files this command did not write")
        raise OutputError(f"{folder} holds {what}; pass --overwrite to replace it, or choose a new folder")
    check_writable(folder)
    with writing(folder):
        sweep_temp(folder, recursive=True)
        if occupied and overwrite and previous is not None and not same and clear is not None:
            clear(folder)
        if not same:
            write_text(folder / RECORD, json.dumps({**record, "version": __version__}, indent=2) + "\n")
    return occupied and same


def _comparable(record: dict[str, Any]) -> dict[str, Any]:
    # The checkpoint is known by its content; where it lies and which version wrote the record do not matter.
    return {k: v for k, v in record.items() if k not in ("version", "checkpoint")}


def _describe(previous: dict[str, Any], record: dict[str, Any]) -> str:
    """`predict` of SOURCE with CHECKPOINT; what differs from this run."""
    named = (("source", "of"), ("checkpoint", "with"))
    head = " ".join([f"`{previous.get('command')}`"] + [f"{w} {previous[k]}" for k, w in named if previous.get(k)])
    old, new = previous.get("settings") or {}, record.get("settings") or {}
    differ = [f"{k} {old.get(k)} there, {new.get(k)} now" for k in sorted({*old, *new}, key=str)
              if old.get(k) != new.get(k)]
    for key, word in (("command", "command"), ("source", "source"), ("checkpoint_sha256", "checkpoint")):
        if previous.get(key) != record.get(key):
            differ.insert(0, f"another {word}")
    return f"{head}; {', '.join(differ)}" if differ else head


def remove_tiles(folder: str | os.PathLike) -> int:
    """Remove the slippy-map tiles (`z/x/y.ext`, also under one class folder) and partial.csv that an
    earlier run of ours wrote into `folder`, then the folders left empty. Returns the files removed."""
    folder = Path(folder)
    removed = 0
    pattern = re.compile(r"^(?:[^/]+/)?[0-9]+/[0-9]+/[0-9]+\.(png|webp|jpg|jpeg|tif|tiff)$")  # \d: any script
    for path in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        relative = path.relative_to(folder).as_posix()
        if path.is_file() and (pattern.match(relative) or relative == "partial.csv"):
            path.unlink()
            removed += 1
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    return removed


RUN_FILES = ("last.pth", "best.pth", "history.csv", "history.png")
_CHECKPOINT = re.compile(r"^checkpoint-[0-9]+\.pth$")


def run_files(folder: str | os.PathLike) -> list[Path]:
    """The files a training run writes that are in `folder`: last/best.pth, checkpoint-NNNNN.pth, history.*."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and (p.name in RUN_FILES or _CHECKPOINT.match(p.name)))


def claim_run_folder(folder: str | os.PathLike, *, resume: str | os.PathLike | None = None, overwrite: bool = False,
                     keep: tuple[str | os.PathLike | None, ...] = ()) -> list[Path]:
    """Check that `folder` may take a training run's checkpoints, writing nothing; OutputError if not.

    A folder holding another run's files is refused unless `resume` is given (the run continues) or
    `overwrite`: then those files are returned, for `start_run_folder` to remove once the run's inputs
    are checked (files in `keep` or `resume`, e.g. the --weights file, are never removed: naming one is
    an error). The folder (or, while it does not exist, its nearest parent) must be writable.
    """
    folder = Path(folder)
    plain_folder(folder, "checkpoint folder", "set checkpoint in model.toml or --checkpoint-dir to another folder")
    old = run_files(folder)
    if old and overwrite:
        kept = {Path(p).resolve() for p in (*keep, resume) if p is not None}
        clash = [p for p in old if p.resolve() in kept]
        if clash:
            raise OutputError(f"--overwrite would remove {clash[0]}, which this run reads; copy it elsewhere first, "
                              "or choose a new checkpoint folder")
    elif old and resume is None:
        names = ", ".join(p.name for p in old[:4]) + (", ..." if len(old) > 4 else "")
        raise OutputError(f"checkpoint folder {folder} holds another training run ({names}); pass --resume "
                          f"{folder / 'last.pth'} to continue it, --overwrite to replace it, or choose a new folder "
                          "(--checkpoint-dir)")
    check_writable(folder, create=folder.exists())  # writing nothing new: a missing folder probes its parent
    return old if overwrite else []


def start_run_folder(folder: str | os.PathLike, remove: Iterable[Path] = ()) -> Path:
    """Just before the first epoch: sweep killed runs' temp files and remove the replaced run's files."""
    folder = Path(folder)
    with writing(folder):
        sweep_temp(folder)
        for path in remove:
            path.unlink(missing_ok=True)
    return folder
