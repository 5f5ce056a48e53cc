"""Training: from dataset.toml and model.toml to checkpoints (`rs-effnet train`).

    >>> from robosat_effnet.training import train
    >>> result = train("dataset.toml", "model.toml", device="cpu")

Modules: `loop` (`train`: optimiser, schedule, validation, checkpoints, resume), `engine` (one pass over the
data), `datasets` (training pairs and their checks), `transforms` (input scaling, shared with prediction, and
the augmentations), `losses`, `metrics` (scores from one confusion matrix, shared with `rs-effnet eval`),
`history` (history.csv / history.png), `distributed` (torchrun + DDP) and `rng` (RNG states in checkpoints).
"""

__all__ = ["train"]


def __getattr__(name: str):
    # `train` on first use: prediction imports training.transforms without loading the training loop.
    if name == "train":
        from robosat_effnet.training.loop import train

        return train
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
