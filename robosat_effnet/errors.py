"""The package's exceptions.

Library code raises these; only the command line turns them into one-line click errors.
Every message says what is wrong, which file or value, and what to do about it.
"""


class RobosatEffnetError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(RobosatEffnetError):
    """A configuration file, option or argument is invalid."""


class UnknownNameError(ConfigError):
    """A registry lookup (backbone, decoder, loss, ...) got a name it does not know."""


class InputSizeError(RobosatEffnetError):
    """An input tensor's spatial size does not fit the network's total stride."""


class WeightsError(RobosatEffnetError):
    """Weights could not be found, downloaded, recognised or mapped onto the model."""


class CheckpointError(WeightsError):
    """A checkpoint file is missing, corrupt or not one this package can use."""


class DatasetError(RobosatEffnetError):
    """A dataset folder or file is missing, empty, inconsistent or unreadable."""


class RasterError(DatasetError):
    """A raster (GeoTIFF) cannot be used: no CRS, unreadable blocks, wrong bands."""


class TooManyTilesError(ConfigError):
    """A zoom level would make more tiles than the configured maximum."""


class MissingDependencyError(RobosatEffnetError):
    """An optional extra that a feature needs (e.g. onnxruntime for .onnx models) is not installed."""


class OutputError(RobosatEffnetError):
    """An output cannot be written: it overlaps an input, holds another run's files, or the disk refuses it."""


class DivergedError(RobosatEffnetError):
    """Training diverged: a loss, a validation score or a weight became nan or infinite."""
