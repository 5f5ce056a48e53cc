"""Training: from dataset.toml and model.toml to checkpoints (`rs-effnet train`).

    >>> from robosat_effnet.training import train
    >>> result = train("dataset.toml", "model.toml", device="cpu")

Modules: `loop` (`train`: optimiser, schedule, validation, checkpoints, resume), `engine` (one pass over the
data), `datasets` (training pairs and their checks), `losses`, `optim`, `history` (history.csv / history.png),
`distributed` (torchrun + DDP), `rng` (RNG states in checkpoints), `resume` and `retention`. The input scaling
shared with prediction is `robosat_effnet.data.transforms`; the scores shared with `rs-effnet eval` are
`robosat_effnet.scoring.pixels`.
"""

__all__ = ["train"]


def __getattr__(name: str):
    # `train` on first use: `import robosat_effnet.training` does not load the training loop.
    if name == "train":
        from robosat_effnet.training.loop import train

        return train
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
