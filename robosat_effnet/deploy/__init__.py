"""Deployment: a checkpoint as a self-describing ONNX file (`rs-effnet export`), optionally int8.

    from robosat_effnet.deploy import export_onnx, load_onnx

Modules: `export` (checkpoint -> ONNX, and `load_onnx` to run one), `quantize` (static int8 quantisation
with onnxruntime, calibrated on tiles) and `deepness` (the file QGIS's Deepness plugin runs: `export --deepness`).
"""

from robosat_effnet.deploy.export import export_onnx, load_onnx

__all__ = ["export_onnx", "load_onnx"]
