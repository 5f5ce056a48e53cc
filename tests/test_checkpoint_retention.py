"""Numbered checkpoints: only as many as model.toml's `keep` says (default none), the oldest of this run removed,
never a file the run did not write; resume still continues from last.pth."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from conftest import make_dataset
from robosat_effnet.config import load_model_config
from robosat_effnet.errors import ConfigError
from robosat_effnet.training import train
from robosat_effnet.training.retention import epoch_file, retained

pytestmark = pytest.mark.usefixtures("one_thread")
ALWAYS = {"last.pth", "best.pth", "history.csv", "history.png"}
USER = {"notes.txt": "mine", "my-best.pth": "mine", "checkpoint-final.pth": "mine"}


def expected(epochs: int, save_every: int, keep: int) -> set[str]:
    """The numbered files that stay, computed from the definition (not from the code under test)."""
    saved = [e for e in range(1, epochs + 1) if e % save_every == 0 or e == epochs] if keep else []
    return {epoch_file(e) for e in (saved if keep < 0 else saved[len(saved) - keep:] if keep < len(saved) else saved)}


@pytest.mark.parametrize("keep, save_every", [(0, 1), (1, 1), (3, 1), (-1, 1), (2, 2)])
def test_a_run_leaves_last_best_and_keep_epoch_files_and_the_users_files(tmp_path, keep, save_every):
    data = make_dataset(tmp_path, n_train=2, n_val=2, size=32,
                        model={"epochs": 4, "batch_size": 2, "keep": keep, "save_every": save_every})
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for name, text in USER.items():
        (folder / name).write_text(text)
    train(data.dataset_toml, data.model_toml, progress=False)
    names = {p.name for p in folder.iterdir()}
    assert names == ALWAYS | set(USER) | expected(4, save_every, keep)
    assert all((folder / name).read_text() == text for name, text in USER.items())
    for name in expected(4, save_every, keep):  # each is the checkpoint of its epoch, as --resume would read it
        assert torch.load(folder / name, weights_only=True)["epoch"] == int(name[11:16])


def test_a_resumed_run_removes_its_own_earlier_epoch_files_only(tmp_path):
    data = make_dataset(tmp_path, n_train=2, n_val=2, size=32, model={"epochs": 4, "batch_size": 2, "keep": 1})
    folder = tmp_path / "checkpoints"
    train(data.dataset_toml, data.model_toml, progress=False, stop_after=2)
    assert {p.name for p in folder.iterdir()} == ALWAYS | {"checkpoint-00002.pth"}
    (folder / "notes.txt").write_text("mine")
    result = train(data.dataset_toml, data.model_toml, progress=False, resume=folder / "last.pth")
    assert result["epochs_done"] == 4
    assert {p.name for p in folder.iterdir()} == ALWAYS | {"checkpoint-00004.pth", "notes.txt"}


@given(epochs=st.integers(1, 40), save_every=st.integers(1, 5), keep=st.integers(-1, 5))
def test_retained_over_a_whole_run_keeps_the_newest_and_removes_only_what_was_written(epochs, save_every, keep):
    written: list[str] = []
    for epoch in range(1, epochs + 1):
        kept, removed = retained(written, epoch, save_every=save_every, epochs=epochs, keep=keep)
        assert set(removed) <= set(written)  # never a name this run did not write
        assert removed + kept == written + [n for n in kept if n not in written]  # the oldest go, nothing lost
        written = kept
    assert set(written) == expected(epochs, save_every, keep)


def test_keep_is_checked_and_robosats_model_toml_needs_none(tmp_path):
    (tmp_path / "model.toml").write_text("[common]\nkeep = -2\n")
    with pytest.raises(ConfigError, match="keep = -2 must be 0"):
        load_model_config(tmp_path / "model.toml")
    (tmp_path / "model.toml").write_text("[common]\ncuda = false\nbatch_size = 2\n[opt]\nepochs = 3\n")
    assert load_model_config(tmp_path / "model.toml").keep == 0
