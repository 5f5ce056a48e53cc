"""Which numbered checkpoints a training run keeps.

Every epoch writes `last.pth` (what --resume continues from) and, when the epoch is the best so far, `best.pth`.
Numbered `checkpoint-NNNNN.pth` files (each with the optimiser state: a Lite0 fine-tune of 60 epochs left 2.8 GB)
are extra: model.toml's `keep` says how many of the newest ones stay (default 0: none; -1: all), written every
`save_every` epochs and after the last, as Lightning's `save_top_k` / `save_last` do. Only files this run wrote are
ever removed: their names travel in each checkpoint (`epoch_files`), so a resumed run knows its own; a file a user
put in the folder, or one of an older version's run, is never touched.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from robosat_effnet.io import atomic_path


def epoch_file(epoch: int) -> str:
    """The numbered checkpoint's name for `epoch` (1-based), e.g. checkpoint-00012.pth."""
    return f"checkpoint-{epoch:05d}.pth"


def retained(written: list[str], epoch: int, *, save_every: int, epochs: int, keep: int) -> tuple[list[str],
                                                                                                    list[str]]:
    """(this run's numbered checkpoints once `epoch` is saved, those of `written` to remove now).

    `written`: the names this run wrote before, oldest first. `epoch` gets a file when it is a multiple of
    `save_every` or the last, unless `keep` is 0; then only the newest `keep` stay (all when `keep` < 0).
    """
    saved = keep != 0 and (epoch % save_every == 0 or epoch == epochs)
    names = [*written, epoch_file(epoch)] if saved else list(written)
    if keep < 0:
        return names, []
    cut = max(0, len(names) - keep)
    return names[cut:], names[:cut]


def remove_epoch_files(folder: str | os.PathLike, names: list[str]) -> None:
    """Remove numbered checkpoints this run wrote (names from `retained`) from `folder`."""
    for name in names:
        (Path(folder) / name).unlink(missing_ok=True)


def copy_checkpoint(source: Path, target: Path) -> None:
    """`target` as a copy of the checkpoint `source` (best.pth, an epoch file of last.pth), written atomically."""
    # A hard link costs nothing and stays valid: the next save replaces `source` by a new file (rename).
    with atomic_path(target) as tmp:
        try:
            tmp.unlink()
            os.link(source, tmp)
        except OSError:  # file systems without hard links
            shutil.copyfile(source, tmp)
