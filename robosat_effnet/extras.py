"""Optional dependencies: which extra to install for what, and the one import that names it when it is missing."""

from __future__ import annotations

from robosat_effnet.errors import MissingDependencyError

FOOTPRINTS_EXTRA = "pip install robosat_effnet[footprints]"


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
