"""Optional dependencies: which extra to install for what, and the one import that names it when it is missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from robosat_effnet.errors import MissingDependencyError

FOOTPRINTS_EXTRA = "pip install robosat_effnet[footprints]"
ONNX_EXTRA = "pip install 'robosat_effnet[onnx]'"


def require_onnx(module: str, purpose: str = "running .onnx models") -> ModuleType:
    """Import `module` (onnx or onnxruntime), or say in one line which extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(f"{purpose} needs the {module} package, which is not installed: "
                                     f"{ONNX_EXTRA}") from None


def require_footprints(what: str):
    """Import geopandas and buildingregulariser, or raise a MissingDependencyError naming the extra."""
    try:
        import buildingregulariser
        import geopandas
    except ImportError as e:
        raise MissingDependencyError(f"{what} needs {e.name or 'geopandas'} (the footprints extra): "
                                     f"{FOOTPRINTS_EXTRA}") from None
    return geopandas, buildingregulariser


def require_ndimage(what: str):
    """scipy.ndimage, or a MissingDependencyError saying that `what` needs it and which extra brings it."""
    try:
        from scipy import ndimage
    except ImportError:
        raise MissingDependencyError(f"{what} need scipy and scikit-image: {FOOTPRINTS_EXTRA}") from None
    return ndimage
