"""The documented old path of the ONNX export (`robosat_effnet.export.load_onnx`); it lives in robosat_effnet.deploy."""

from robosat_effnet.deploy.export import export_onnx, load_onnx  # noqa: F401
