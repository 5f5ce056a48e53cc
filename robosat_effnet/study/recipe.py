"""What makes two runs comparable: the recipe of a study, recorded in `<out>/study.json`, and its runs' names.

A study folder holds runs made with one recipe only: the dataset config and the model config (all settings but
the backbone and the seed, which are what a study varies). `study.json` records both, with a hash of each, so a
rerun with another recipe is refused instead of mixing two kinds of runs in one table.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robosat_effnet.config import DatasetConfig, ModelConfig
from robosat_effnet.errors import ConfigError
from robosat_effnet.io import atomic_path

FORMAT = "rs-effnet-study"
STUDY_FILE, LOCK_FILE = "study.json", ".study.lock"
# What a study varies, and settings that change how fast a run goes, not what it learns.
VARIED = ("backbone", "seed", "weights")
NOT_RECIPE = ("checkpoint", "source", "workers", "cuda", "validate_every")


@dataclass(frozen=True)
class RunKey:
    """One run of a study: a backbone (canonical name), a seed and the encoder's initial weights (None: from
    scratch, "imagenet" or a file); its folder is `<backbone>-s<seed>`, `<backbone>-imagenet-s<seed>` or
    `<backbone>-<label>-s<seed>`, where the label is the file's name, with a short hash of its path when another
    of the study's weights has the same name (`plan`)."""

    backbone: str
    seed: int
    weights: str | None = None
    label: str | None = None  # the weights' part of the name; None: weights_label(weights)

    @property
    def name(self) -> str:
        return f"{self.backbone}-{self.weights_label}-s{self.seed}" if self.weights else f"{self.backbone}-s{self.seed}"

    @property
    def model(self) -> str:
        """The backbone and its initial weights, as the study's table names them: 'efficientnet-lite0 imagenet'."""
        return f"{self.backbone} {self.weights_label}" if self.weights else self.backbone

    @property
    def weights_label(self) -> str:
        return self.label or weights_label(self.weights)


def weights_label(weights: str | os.PathLike | None) -> str:
    """'none', 'imagenet', or a weights file's name without its extension."""
    if weights is None:
        return "none"
    return "imagenet" if str(weights).lower() == "imagenet" else Path(weights).stem


def weights_file(weights: str | os.PathLike | None) -> str | None:
    """The absolute path of a weights file (symbolic links resolved), None for none and imagenet."""
    if weights is None or str(weights).lower() in ("imagenet", "none", ""):
        return None
    return str(Path(weights).expanduser().resolve())


def plan(backbones: Sequence[str], seeds: Sequence[int], weights: Sequence[str | None] = (None,)) -> list[RunKey]:
    """Every backbone x weights x seed, backbones in the given order; unknown backbone names raise
    UnknownNameError.

    Two different settings never share a run folder: weights files are taken by their resolved path (the same file
    named twice is one setting), and a file whose name another of the weights also has (x1/w.pth and x2/w.pth,
    imagenet and imagenet.safetensors) gets a short hash of its path in its label.
    """
    from robosat_effnet.models import canonical_backbone

    names = list(dict.fromkeys(canonical_backbone(b) for b in backbones))
    if not names:
        raise ConfigError("no backbones given; name at least one, e.g. --backbones b0,resnet50")
    if not seeds:
        raise ConfigError("no seeds given; name at least one, e.g. --seeds 0")
    settings = list(dict.fromkeys(weights_file(w) or w for w in weights))
    plain = [weights_label(w) for w in settings]
    labels = {w: f"{label}-{hashlib.sha256(str(w).encode()).hexdigest()[:8]}"
              if weights_file(w) and plain.count(label) > 1 else None for w, label in zip(settings, plain, strict=True)}
    keys = [RunKey(b, int(s), w, labels[w]) for b in names for w in settings for s in dict.fromkeys(seeds)]
    folders: dict[str, RunKey] = {}
    for key in keys:  # the guarantee itself, whatever the names look like
        other = folders.setdefault(key.name, key)
        if other != key:
            raise ConfigError(f"two runs of the study would share the folder {key.name} ({other.weights} and "
                              f"{key.weights}); rename one of the weights files")
    return keys


def recipe(dataset_cfg: DatasetConfig, model_cfg: ModelConfig) -> dict[str, Any]:
    """The settings every run of a study shares, as plain JSON values, with a SHA-256 of each config's part."""
    dataset = {k: _plain(v) for k, v in dataclasses.asdict(dataset_cfg).items() if k != "source"}
    model = {k: _plain(v) for k, v in dataclasses.asdict(model_cfg).items() if k not in NOT_RECIPE + VARIED}
    return {"dataset": dataset, "model": model, "dataset_sha256": _sha256(dataset), "model_sha256": _sha256(model)}


def check_or_create(out: Path, dataset_cfg: DatasetConfig, model_cfg: ModelConfig) -> dict[str, Any]:
    """Create `out/study.json`, or check that the one there has this recipe; returns the recorded study.

    Raises ConfigError, before anything is written, for a folder holding another recipe, a folder that is
    not a study (other files in it) or an unreadable study.json; the message names a fresh --out.
    """
    wanted = recipe(dataset_cfg, model_cfg)
    path = out / STUDY_FILE
    if path.is_file():
        try:
            recorded = json.loads(path.read_text())
            if recorded.get("format") != FORMAT:
                raise ValueError("not a study file")
        except (OSError, ValueError, AttributeError, RecursionError) as e:
            raise ConfigError(f"{path} is not a readable study record ({str(e)[:200]}); use a new --out, "
                              f"e.g. --out {fresh_name(out)}") from None
        differences = _differences(recorded.get("recipe", {}), wanted)
        if differences:
            raise ConfigError(f"{out} holds a study made with another recipe ({'; '.join(differences[:4])}); "
                              f"use a new --out, e.g. --out {fresh_name(out)}")
        return recorded
    if out.exists() and (not out.is_dir() or any(p.name != LOCK_FILE for p in out.iterdir())):
        raise ConfigError(f"{out} exists and is not a study folder (no {STUDY_FILE}); use a new --out, "
                          f"e.g. --out {fresh_name(out)}")
    study = {"format": FORMAT, "version": 1, "recipe": wanted,
             "configs": {"dataset": _plain(dataset_cfg.source), "model": _plain(model_cfg.source)}}
    try:
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(study, indent=2) + "\n")
    except OSError as e:
        raise ConfigError(f"cannot write {path} ({e.strerror or e}); give --out a writable folder") from None
    return study


@contextlib.contextmanager
def study_lock(out: Path) -> Iterator[None]:
    """Hold `out/.study.lock` while a study runs, so that two processes never train the same run at once.

    A lock left by a process that is gone (killed, machine restarted) is taken over.
    """
    path = out / LOCK_FILE
    out.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = read_json(path) or {}
            if holder.get("host") == socket.gethostname() and not _alive(holder.get("pid")):
                path.unlink(missing_ok=True)  # stale: its process has ended
                continue
            raise ConfigError(f"another rs-effnet study (pid {holder.get('pid')} on {holder.get('host')}) is running "
                              f"in {out}; wait for it to end, or remove {path} if it has stopped") from None
        with os.fdopen(fd, "w") as f:
            json.dump({"pid": os.getpid(), "host": socket.gethostname()}, f)
        break
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def _alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except (TypeError, ValueError, ProcessLookupError):
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def fresh_name(out: Path) -> Path:
    """A sibling of `out` that does not exist yet: study-2, study-3, ..."""
    stem = out.name.rstrip("/") or "study"
    for i in range(2, 10_000):
        candidate = out.with_name(f"{stem}-{i}")
        if not candidate.exists():
            return candidate
    return out.with_name(f"{stem}-new")


def read_json(path: Path) -> dict[str, Any] | None:
    """A run's small JSON record, or None when it is absent or unreadable (then the step is redone)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):  # nested hundreds deep: not one of ours either
        return None


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write a record atomically: a run counts as finished only once its record is complete on disk."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=_plain) + "\n")


def _differences(recorded: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """The settings that differ, as 'model lr 0.001 then, 0.0005 now'. A setting one side lacks (a config field
    added or removed by another version of the package) counts as its default, so an upgrade alone is no new recipe.
    """
    result = []
    for part, kind in (("dataset", DatasetConfig), ("model", ModelConfig)):
        if recorded.get(f"{part}_sha256") == wanted[f"{part}_sha256"]:
            continue
        defaults = _defaults(kind)
        old, new = recorded.get(part, {}), wanted[part]
        for key in sorted(set(old) | set(new)):
            then, now = old.get(key, defaults.get(key)), new.get(key, defaults.get(key))
            if then != now:
                result.append(f"{part} {key} {then!r} then, {now!r} now")
    return result


def _defaults(kind: type) -> dict[str, Any]:
    result = {}
    for f in dataclasses.fields(kind):
        if f.default is not dataclasses.MISSING:
            result[f.name] = _plain(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            result[f.name] = _plain(f.default_factory())
    return result


def _sha256(values: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, os.PathLike):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
