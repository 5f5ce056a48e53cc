"""robosat_effnet: EfficientNet backbones for robosat-style aerial image segmentation.

>>> from robosat_effnet import build_model
>>> model = build_model("efficientnet-b0", decoder="unet", num_classes=2)

The names below load on first use (PEP 562), so importing the package, or running `rs-effnet --help`, does not
import torch.
"""

from __future__ import annotations

import importlib

from robosat_effnet._version import __version__

# public name -> the module that defines it
_LAZY = {
    "RobosatEffnetError": "robosat_effnet.errors",
    "build_encoder": "robosat_effnet.models",
    "build_model": "robosat_effnet.models",
    "efficientnet": "robosat_effnet.models",
    "list_backbones": "robosat_effnet.models",
    "list_decoders": "robosat_effnet.models",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # the next lookup is an ordinary attribute
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
