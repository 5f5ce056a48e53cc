"""Checks before writing, and write failures as one line: overlapping inputs, unwritable or full disks."""

from __future__ import annotations

import contextlib
import errno
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from robosat_effnet.errors import OutputError
from robosat_effnet.outputs.temp import sweep_temp, temp_path
from robosat_effnet.text import is_url


def check_separate(outputs: Iterable[str | os.PathLike | None], inputs: Iterable[str | os.PathLike | None]) -> None:
    """Raise OutputError if an output is, contains or lies inside an input (symlinks resolved).

    Call it before anything is written; None entries (optional paths not given) and URLs (nothing local to
    destroy) are ignored.
    """
    ins = [(Path(p), Path(p).resolve()) for p in inputs if p is not None and not is_url(p)]
    for out in (Path(p) for p in outputs if p is not None):
        resolved = out.resolve()
        for given, source in ins:
            if resolved == source:
                relation = "is"
            elif resolved in source.parents:
                relation = "contains"
            elif source in resolved.parents:
                relation = "lies inside"
            else:
                continue
            raise OutputError(f"output {out} {relation} the input {given}; writing there could destroy the input: "
                              "choose an output outside it (a new folder or file)")


def check_writable(folder: str | os.PathLike, create: bool = True) -> Path:
    """Prove a file can be written in `folder` (a probe file, removed again); OutputError naming it if not.

    `create`: make the folder first. Without it a missing folder is probed in its nearest existing
    parent, so a check before other validation leaves nothing behind.
    """
    folder = Path(folder)
    where = folder if plain_folder(folder) else _nearest_folder(folder)
    probe = temp_path((folder if create else where) / "probe")
    with writing(folder):
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"rs-effnet")
            os.fsync(fd)
        finally:
            os.close(fd)
            probe.unlink(missing_ok=True)
    return folder


_REASONS = {
    errno.ENOSPC: ("the disk is full", "free some space or write to another disk"),
    errno.EDQUOT: ("the disk quota is used up", "free some space or write to another disk"),
    errno.EACCES: ("permission denied", "choose a folder you can write to, or fix its permissions"),
    errno.EPERM: ("operation not permitted", "choose a folder you can write to, or fix its permissions"),
    errno.EROFS: ("the file system is read-only", "write to a writable disk"),
    # mkdir through a file or a dangling link, where plain_folder did not look first: say so, not "check the disk"
    errno.ENOTDIR: ("a part of the path is a file, not a folder", "choose another output"),
    errno.EEXIST: ("a file or a dangling symbolic link stands where a folder goes", "choose another output"),
}


def write_error(path: str | os.PathLike, error: BaseException) -> OutputError:
    """The one-line OutputError for a failed write to `path` (the output the user named, not a temp file)."""
    code = getattr(error, "errno", None)
    text = str(error).strip()
    if code in _REASONS:
        reason, advice = _REASONS[code]
    elif "inline_container" in text or "PytorchStreamWriter" in text:  # torch.save's zip writer hides the OSError
        reason, advice = "the file could not be written (the disk is probably full)", \
            "free some space or write to another disk"
    else:
        detail = getattr(error, "strerror", None) or (text.splitlines()[0] if text else type(error).__name__)
        reason, advice = detail, "check the disk and the path"
    return OutputError(f"cannot write {path}: {reason}; {advice}, then run the command again "
                       "(finished files are kept, nothing half-written is left)")


@contextlib.contextmanager
def writing(path: str | os.PathLike, extra: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """Turn a failing write in the block (OSError, torch's inline_container RuntimeError, `extra` types)
    into a one-line OutputError naming `path`."""
    try:
        yield
    except OutputError:
        raise
    except OSError as e:
        raise write_error(path, e) from None
    except RuntimeError as e:
        if "inline_container" not in str(e) and "PytorchStreamWriter" not in str(e):
            raise
        raise write_error(path, e) from None
    except extra as e:
        raise write_error(path, e) from None


WRITTEN_BY = "written_by"  # the key of the mark our single-file outputs carry in their first bytes


def mark(command: str) -> dict[str, str]:
    """The mark that makes a JSON output recognisably `command`'s: put it first in the written object."""
    return {WRITTEN_BY: f"rs-effnet {command}"}


def mark_text(command: str) -> str:
    """The same mark for formats that are not JSON (a Markdown comment, a GeoPackage layer description)."""
    return f"{WRITTEN_BY}: rs-effnet {command}"


def claim_file(path: str | os.PathLike, command: str) -> Path:
    """Check that `command` may write the file `path`, before any work: OutputError naming it if not.

    A missing file may be written; so may a regular file that `command` wrote earlier (a rerun replaces its own
    output), known by its mark (`mark`; JSON/GeoJSON/Markdown in its first bytes, a GeoPackage in its layer
    description). Anything else is somebody's data and is refused: another file, a folder, a device, a pipe,
    or a symbolic link (the rename would replace the link, not write through it).
    """
    path = Path(path)
    if not plain_file(path):
        return path
    if not _marked(path, command):
        raise OutputError(f"output {path} exists and was not written by rs-effnet {command}; refusing to replace "
                          "it: name a new file, or remove it first")
    return path


def claim_output(path: str | os.PathLike, command: str) -> Path:
    """Before any work on a single-file output: `claim_file`, then its folder writable (not created), then the
    temp files a killed run of this output left beside it removed. OutputError naming what is wrong."""
    path = claim_file(path, command)
    sweep_temp(check_writable(path.parent, create=False), target=path)
    return path


def plain_file(path: str | os.PathLike) -> bool:
    """Whether the output `path` exists, after refusing (OutputError) anything but a missing or regular file: a
    symbolic link, even a dangling one (replacing it by a rename would lose the link, not write through it), a
    folder, a device or a pipe, or a file (or dangling link) where one of its folders goes."""
    path = Path(path)
    if path.is_symlink():
        raise OutputError(f"output {path} is a symbolic link; name the file itself (or a new file)")
    if not path.exists():
        _nearest_folder(path)
        return False
    if path.is_dir():
        raise OutputError(f"output {path} is a folder; name a file (a new one, or one this command wrote)")
    if not path.is_file():
        raise OutputError(f"output {path} exists and is not a regular file (a device or pipe); name a new file")
    return True


def plain_folder(path: str | os.PathLike, what: str = "output",
                 advice: str = "name a folder (a new one, or one this command wrote)") -> bool:
    """Whether the output folder `path` exists, after refusing (OutputError naming it) what cannot be one: a
    dangling symbolic link (mkdir would fail on it with a bare "File exists"), a file or a link to one, a device
    or a pipe, or a file (or dangling link) where one of its parent folders goes. A link to a folder is a folder.
    `what` names the folder in the message (e.g. "checkpoint folder"); `advice` ends it."""
    path = Path(path)
    if path.is_dir():
        return True
    if path.is_symlink():
        target = os.readlink(path)
        if not path.exists():
            raise OutputError(f"{what} {path} is a symbolic link to {target}, which does not exist; create that "
                              f"folder first, or {advice}")
        raise OutputError(f"{what} {path} is a symbolic link to {target}, which is a file, not a folder; {advice}")
    if path.exists():
        kind = "a file" if path.is_file() else "a device or pipe"
        raise OutputError(f"{what} {path} is {kind}, not a folder; {advice}")
    _nearest_folder(path, what, advice)
    return False


def _nearest_folder(path: Path, what: str = "output", advice: str = "choose another output") -> Path:
    """The nearest existing parent of the missing `path`; OutputError when it is a file or a dangling link (that
    would be created through), which no folder can be made in."""
    where = path.parent
    while not os.path.lexists(where) and where != where.parent:
        where = where.parent
    if where.is_dir():
        return where
    if where.is_symlink() and not where.exists():
        raise OutputError(f"cannot create the {what} {path}: {where} is a symbolic link to {os.readlink(where)}, "
                          f"which does not exist; create that folder first, or {advice}")
    raise OutputError(f"cannot create the {what} {path}: {where} is a file, not a folder; {advice}")


def _marked(path: Path, command: str) -> bool:
    if path.suffix.lower() == ".gpkg":
        import sqlite3

        try:
            with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
                rows = db.execute("SELECT description FROM gpkg_contents").fetchall()
        except sqlite3.Error:
            return False
        return any(row[0] == mark_text(command) for row in rows)
    with open(path, "rb") as f:
        head = f.read(512).decode("utf-8", "replace")
    return json.dumps(mark(command))[1:-1] in head or mark_text(command) in head


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write a small text file atomically (temp name + rename)."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
