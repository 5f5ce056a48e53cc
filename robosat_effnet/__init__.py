"""robosat_effnet: EfficientNet backbones for robosat-style aerial image segmentation.

>>> from robosat_effnet import build_model
>>> model = build_model("efficientnet-b0", decoder="unet", num_classes=2)
"""

__version__ = "0.1.0"

from robosat_effnet.errors import RobosatEffnetError  # noqa: E402
from robosat_effnet.models import (  # noqa: E402
    build_encoder,
    build_model,
    efficientnet,
    list_backbones,
    list_decoders,
)

__all__ = [
    "__version__",
    "RobosatEffnetError",
    "build_encoder",
    "build_model",
    "efficientnet",
    "list_backbones",
    "list_decoders",
]
