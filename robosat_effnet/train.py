"""The documented old path of `train` (`from robosat_effnet.train import train`); it is robosat_effnet.training."""

from robosat_effnet.training import train  # noqa: F401
