"""robosat_effnet.outputs and checkpoint loading: overlap checks, provenance, temp files, modes, write errors."""

from __future__ import annotations

import contextlib
import errno
import os
import pickle
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from robosat_effnet.errors import CheckpointError, OutputError
from robosat_effnet.io import atomic_path, write_image, write_mask
from robosat_effnet.models.checkpoint import ModelSpec, load_checkpoint, save_checkpoint
from robosat_effnet.outputs import (
    RECORD,
    check_separate,
    check_writable,
    claim_folder,
    claim_run_folder,
    is_temp,
    make_record,
    read_record,
    start_run_folder,
    sweep_temp,
    sweep_temp_folders,
    temp_folder,
    temp_path,
    write_error,
    writing,
)


def dead_pid() -> int:
    """A pid that no process has now (a child that has exited and been reaped)."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


@contextlib.contextmanager
def read_only_folder(path: Path):
    """A folder nobody may write to: a read-only tmpfs as root (chmod does not stop root), else chmod 0500."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", str(path)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"running as root and cannot mount a read-only tmpfs: {done.stderr.decode().strip()}")
        try:
            yield path
        finally:
            subprocess.run(["umount", str(path)], check=True)
    else:
        path.chmod(0o500)
        try:
            yield path
        finally:
            path.chmod(0o700)


@contextlib.contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def test_an_output_that_is_holds_or_lies_in_an_input_is_refused_symlinks_resolved(tmp_path):
    src = tmp_path / "src"
    (src / "18").mkdir(parents=True)
    (tmp_path / "link").symlink_to(src)
    for out, word in ((src, "is"), (tmp_path, "contains"), (src / "18" / "masks", "lies inside"),
                      (tmp_path / "link", "is"), (tmp_path / "link" / "x", "lies inside")):
        with pytest.raises(OutputError, match=f"output {out} {word} the input {src}"):
            check_separate([out], [src])
    check_separate([tmp_path / "src-masks", None], [src, None])  # a sibling whose name starts alike is fine
    with pytest.raises(OutputError, match="is the input"):
        check_separate([tmp_path / "a.json"], [tmp_path / "b", tmp_path / "a.json"])


def test_temp_names_are_ours_and_sweeping_removes_only_dead_runs_leftovers(tmp_path):
    target = tmp_path / "z" / "0.png"
    target.parent.mkdir()
    name = temp_path(target).name
    assert name.startswith(".rs-effnet-0.") and name.endswith(".tmp.png") and is_temp(name)
    host = name.split(".")[2].split("-")[0]
    dead = target.parent / f".rs-effnet-0.{host}-{dead_pid()}-deadbeef.tmp.png"
    legacy = target.parent / ".last.k2j4_9ab.tmp.pth"  # mkstemp's names before: a user's file can look the same
    alive = temp_path(target)  # this process: still writing
    keep = [target.parent / "notes.txt", target.parent / ".hidden.png", target, legacy]
    for path in (dead, alive, *keep):
        path.write_bytes(b"x")
    assert not is_temp("notes.txt") and not is_temp(".hidden.png") and not is_temp(legacy.name)
    assert sweep_temp(tmp_path) == 0  # not recursive: nothing at the top
    assert sweep_temp(tmp_path, recursive=True) == 1
    assert not dead.exists() and alive.exists() and all(p.exists() for p in keep)


def test_temp_folders_go_when_done_and_a_dead_runs_are_swept_by_the_next(tmp_path):
    with temp_folder("view", tmp_path) as folder:
        (folder / "page.html").write_text("x")
        assert folder.parent == tmp_path and folder.name.startswith(".rs-effnet-view.")
        assert folder.stat().st_mode & 0o777 == 0o700
    assert not folder.exists()
    with pytest.raises(KeyboardInterrupt), temp_folder("view", tmp_path) as folder:
        raise KeyboardInterrupt
    assert not folder.exists()
    host = temp_path(tmp_path / "view").name.split(".")[2].split("-")[0]
    dead = tmp_path / f".rs-effnet-view.{host}-{dead_pid()}-deadbeef.tmp"
    absurd = tmp_path / f".rs-effnet-view.{host}-{10**30}-deadbeef.tmp"  # no process can have this id
    alive = tmp_path / f".rs-effnet-view.{host}-{os.getpid()}-deadbeef.tmp"
    keep = [alive, tmp_path / f".rs-effnet-view.{'f' if host[0] != 'f' else 'e'}{host[1:]}-{dead_pid()}-ab.tmp",
            tmp_path / f".rs-effnet-other.{host}-{dead_pid()}-deadbeef.tmp", tmp_path / "rs-effnet-view-old",
            tmp_path / "notes"]
    for folder in (dead, absurd, *keep):
        (folder / "sub").mkdir(parents=True)
        (folder / "sub" / "tile.png").write_bytes(b"x")
    link = tmp_path / f".rs-effnet-view.{host}-{dead_pid()}-11111111.tmp"  # a link to a folder is not ours
    link.symlink_to(tmp_path / "notes")
    file = tmp_path / f".rs-effnet-view.{host}-{dead_pid()}-22222222.tmp"  # nor a file
    file.write_bytes(b"x")
    assert sweep_temp_folders(tmp_path, "view") == 2
    assert not dead.exists() and not absurd.exists() and all(folder.is_dir() for folder in keep)
    assert link.is_symlink() and (tmp_path / "notes" / "sub" / "tile.png").exists() and file.exists()
    with temp_folder("view", tmp_path):  # each new one sweeps first
        pass
    assert sweep_temp_folders(tmp_path / "missing", "view") == 0


def test_sweeping_files_survives_an_absurd_pid_in_a_name(tmp_path):
    host = temp_path(tmp_path / "a.png").name.split(".")[2].split("-")[0]
    absurd = tmp_path / f".rs-effnet-a.{host}-{10**30}-deadbeef.tmp.png"
    absurd.write_bytes(b"x")
    assert sweep_temp(tmp_path) == 1 and not absurd.exists()


def test_atomic_writes_follow_the_umask_and_leave_nothing_on_failure(tmp_path):
    with umask(0o022):
        write_image(tmp_path / "a.png", np.zeros((8, 8, 3), np.uint8))
        write_mask(tmp_path / "m.png", np.zeros((8, 8), np.uint8), ["denim", "orange"])
        save_checkpoint(tmp_path / "c.pth", torch.nn.Linear(2, 2), ModelSpec())
    for name in ("a.png", "m.png", "c.pth"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644, name
    with umask(0o077):
        write_image(tmp_path / "b.png", np.zeros((8, 8, 3), np.uint8))
    assert (tmp_path / "b.png").stat().st_mode & 0o777 == 0o600
    with pytest.raises(OSError), atomic_path(tmp_path / "half.png") as tmp:
        tmp.write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png", "c.pth", "m.png"]


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "the disk is full"), (errno.EACCES, "permission denied"),
                                         (errno.EROFS, "read-only"), (errno.EDQUOT, "quota")])
def test_write_errors_are_one_line_naming_the_output(tmp_path, code, words):
    with pytest.raises(OutputError) as error, writing(tmp_path / "out"):
        raise OSError(code, os.strerror(code), str(tmp_path / "out" / ".rs-effnet-x.tmp"))
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"cannot write {tmp_path / 'out'}: ") and words in message
    assert ".tmp" not in message  # the user's path, not our temp name
    torch_full = RuntimeError("[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing file")
    assert "disk is probably full" in str(write_error("last.pth", torch_full))
    with pytest.raises(RuntimeError, match="CUDA"), writing(tmp_path):  # other RuntimeErrors pass through
        raise RuntimeError("CUDA out of memory")


def test_read_only_and_full_disks_are_found_before_any_work(tmp_path):
    with read_only_folder(tmp_path / "ro") as folder:
        with pytest.raises(OutputError, match=r"cannot write .*ro.*(read-only|permission denied)"):
            check_writable(folder / "out")
    check_writable(tmp_path / "new" / "deep")
    assert (tmp_path / "new" / "deep").is_dir() and not list((tmp_path / "new" / "deep").iterdir())


def test_provenance_continues_the_same_run_and_refuses_others(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    out = tmp_path / "out"
    first = make_record("predict", src, {"border": 32, "bands": (1, 2, 3)})
    assert claim_folder(out, first) is False  # new: claimed
    assert read_record(out)["settings"] == {"border": 32, "bands": [1, 2, 3]}
    assert claim_folder(out, first) is False  # only the record: still counts as empty
    (out / "18" / "1").mkdir(parents=True)
    (out / "18" / "1" / "2.png").write_bytes(b"tile")
    assert claim_folder(out, make_record("predict", src, {"border": 32, "bands": [1, 2, 3]})) is True
    other = make_record("predict", src, {"border": 0, "bands": [1, 2, 3]})
    with pytest.raises(OutputError, match=r"holds the output of another run .*--overwrite.*new folder"):
        claim_folder(out, other)
    (out / "keep.txt").write_text("mine")
    removed = []
    claim_folder(out, other, overwrite=True, clear=lambda folder: removed.append(folder))
    assert removed == [out] and read_record(out)["settings"]["border"] == 0
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "photo.jpg").write_bytes(b"jpg")
    with pytest.raises(OutputError, match="files this command did not write; pass --overwrite"):
        claim_folder(foreign, first)
    assert not (foreign / RECORD).exists()


@pytest.mark.parametrize("text", ["[" * 100000 + "]" * 100000, "[]", "42", "{"])
def test_a_hostile_or_damaged_record_reads_as_another_run(tmp_path, text):
    out = tmp_path / "out"
    (out / "18" / "1").mkdir(parents=True)
    (out / "18" / "1" / "2.png").write_bytes(b"tile")
    (out / RECORD).write_text(text)  # nested into a recursion bomb, or JSON that is not a record
    assert read_record(out) == {"command": "unreadable record"}
    with pytest.raises(OutputError, match="holds the output of another run .`unreadable record`"):
        claim_folder(out, make_record("predict", tmp_path, {"border": 32}))


def test_a_training_folder_holding_another_run_needs_resume_or_overwrite(tmp_path):
    folder = tmp_path / "ckpt"
    assert claim_run_folder(folder) == [] and not folder.exists()  # checks only: nothing made yet
    folder.mkdir()
    for name in ("last.pth", "best.pth", "checkpoint-00003.pth", "history.csv", "notes.txt"):
        (folder / name).write_bytes(b"old")
    with pytest.raises(OutputError, match=r"holds another training run \(best.pth, checkpoint-00003.pth, .*--resume"):
        claim_run_folder(folder)
    claim_run_folder(folder, resume=folder / "last.pth")
    assert (folder / "checkpoint-00003.pth").exists()
    with pytest.raises(OutputError, match="would remove .*best.pth, which this run reads"):
        claim_run_folder(folder, overwrite=True, keep=(folder / "best.pth",))
    replaced = claim_run_folder(folder, overwrite=True)
    assert len(list(folder.iterdir())) == 5  # nothing removed until the run starts
    killed = folder / f".rs-effnet-last.{temp_path(folder).name.split('.')[2][:6]}-{dead_pid()}-00ff.tmp.pth"
    killed.write_bytes(b"half")
    start_run_folder(folder, replaced)
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]  # only the old run's files (and temps) went


def bad_checkpoints(folder: Path) -> dict[str, Path]:
    marker = folder / "PWNED"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    good = folder / "good.pth"
    save_checkpoint(good, torch.nn.Linear(2, 2), ModelSpec())
    files = {"random": os.urandom(2048), "empty": b"", "truncated": good.read_bytes()[:300],
             "evil-zip": None, "evil-pickle": pickle.dumps(Evil())}
    paths = {}
    for name, data in files.items():
        paths[name] = folder / f"{name}.pth"
        if data is None:
            torch.save({"model": Evil()}, paths[name])
        else:
            paths[name].write_bytes(data)
    return paths


def test_bad_pth_files_are_refused_without_running_code_or_unsafe_advice(tmp_path):
    words = {"random": "it is not a PyTorch file", "empty": "the file is empty",
             "truncated": "it is truncated or damaged", "evil-pickle": "it is not a PyTorch",
             "evil-zip": "it holds Python objects (posix.system) that would run code"}
    for name, path in bad_checkpoints(tmp_path).items():
        with pytest.raises(CheckpointError) as error:
            load_checkpoint(path)
        message = str(error.value)
        assert f"{path} is not a robosat_effnet checkpoint: {words[name]}" in message, message
        assert "weights_only" not in message and "EOFError" not in message and "\n" not in message
        assert "rs-effnet train" in message  # what is expected instead
    assert not (tmp_path / "PWNED").exists()
    torch.save({"features.0.0.weight": torch.zeros(2)}, tmp_path / "tv.pth")
    with pytest.raises(CheckpointError, match="is a bare state dict .*torchvision.*--weights"):
        load_checkpoint(tmp_path / "tv.pth")


@pytest.mark.parametrize("field, value, words", [
    ("spec", "efficientnet-b0", "the model description is a str"),
    ("spec", {"classes": 5}, "damaged classes (5)"),
    ("spec", {"mean": ["a", "b", "c"]}, "damaged mean"),
    ("spec", {"in_channels": True}, "damaged in_channels"),
    ("spec", {"std": [0.2, 0.0, 0.2]}, "damaged std ([0.2, 0.0, 0.2]: positive finite numbers"),  # all background
    ("spec", {"mean": [0.4, float("nan"), 0.4]}, "damaged mean ([0.4, nan, 0.4]: finite numbers"),
    ("spec", {"mean": [0.4, 0.4]}, "gives 2 mean, 3 std for 3 input bands"),
    ("spec", {"tile_size": 10**9}, "damaged tile_size (1000000000: 1 to 4096 px)"),
    ("model", "weights", "its weights are missing"),
])
def test_damaged_checkpoint_contents_are_one_clear_error(tmp_path, field, value, words):
    from click.testing import CliRunner

    from robosat_effnet.cli import main
    from robosat_effnet.models.checkpoint import load_model

    good = tmp_path / "good.pth"
    save_checkpoint(good, torch.nn.Linear(2, 2), ModelSpec())
    data = torch.load(good, weights_only=True)
    data[field] = {**ModelSpec().to_dict(), **value} if isinstance(value, dict) else value
    torch.save(data, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match="is a damaged robosat_effnet checkpoint") as error:
        load_model(tmp_path / "bad.pth")
    assert words in str(error.value)
    result = CliRunner().invoke(main, ["export", str(tmp_path / "bad.pth"), str(tmp_path / "m.onnx")])
    assert result.exit_code == 1 and "Traceback" not in result.output and words in result.output, result.output


# Every per-band list of a model description one too short or too long, and every band count against lists of 3.
PER_BAND_CASES = [{name: values[:2] if short else values + values[:1]}
                  for name, values in (("mean", [0.4, 0.45, 0.5]), ("std", [0.2, 0.25, 0.3]), ("bands", [1, 2, 3]))
                  for short in (True, False)] + [{"in_channels": n} for n in (1, 2, 4, 5)]


@pytest.mark.parametrize("change", PER_BAND_CASES, ids=str)
def test_a_per_band_count_that_differs_from_the_bands_is_named_by_its_counts(change):
    """Which list is off, by the counts (not only "one per input band"), whatever else is checked first."""
    data = {**ModelSpec().to_dict(), "bands": [1, 2, 3], **change}
    counts = f"{len(data['mean'])} mean, {len(data['std'])} std, {len(data['bands'])} bands"
    with pytest.raises(ValueError) as error:
        ModelSpec.from_dict(data)
    assert str(error.value) == f"its model description gives {counts} for {data['in_channels']} input bands"
