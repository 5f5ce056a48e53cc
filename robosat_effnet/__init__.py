"""robosat_effnet: EfficientNet backbones for robosat-style aerial image segmentation.

>>> from robosat_effnet import build_model
>>> model = build_model("efficientnet-b0", decoder="unet", num_classes=2)

The names below load on first use (PEP 562), so importing the package, or running `rs-effnet --help`, does not
import torch.
"""

from __future__ import annotations

from robosat_effnet._version import __version__
from robosat_effnet.lazy import lazy_names

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


__getattr__, __dir__ = lazy_names(globals(), _LAZY)
