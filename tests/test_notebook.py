"""notebooks/quickstart.ipynb runs top to bottom (with tiny settings) and is committed without outputs."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).parents[1] / "notebooks" / "quickstart.ipynb"
KERNEL = "rs-effnet-test"

# The first code cell's settings, shrunk: a 256 px scene cut into 64 px tiles at z21 (still 0.3 m/px).
TINY = {"SIZE": "256", "ZOOM": "21", "TILE": "64", "EPOCHS": "1", "BATCH_SIZE": "2", "WINDOW": "128",
        "DEVICE": '"cpu"'}


def tiny_settings(source: str, work: Path) -> str:
    """The settings cell with every heavy value replaced; fails if a setting is no longer there."""
    for name, value in {**TINY, "WORK": f"Path({str(work)!r})"}.items():
        source, found = re.subn(rf"^{name} = .*$", f"{name} = {value}", source, flags=re.MULTILINE)
        assert found == 1, f"the notebook's first code cell no longer sets {name}"
    return source


@pytest.fixture
def kernel(tmp_path, monkeypatch) -> str:
    """A kernelspec for this very Python (the venv's), found before any user-wide 'python3' kernel."""
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "rs-effnet test", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # Agg would swallow the figures; the kernel draws inline
    return KERNEL


def test_notebook_is_committed_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, "strip the notebook's outputs"


def test_notebook_runs(tmp_path, kernel):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    first = next(cell for cell in notebook.cells if cell.cell_type == "code")
    first.source = tiny_settings(first.source, tmp_path / "work")
    client = NotebookClient(notebook, kernel_name=kernel, timeout=120,
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError naming the failing cell
    outputs = "".join(out.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                      for out in cell.outputs)
    # The feature taps of EfficientNet-B0 at a 64 px input: strides 2..32 with torchvision's channel counts.
    for line in ["stride  2: (1, 16, 32, 32)", "stride  4: (1, 24, 16, 16)", "stride  8: (1, 40, 8, 8)",
                 "stride 16: (1, 112, 4, 4)", "stride 32: (1, 320, 2, 2)", "logits:    (1, 2, 64, 64)"]:
        assert line in outputs
    images = [out for cell in notebook.cells for out in cell.get("outputs", []) if "image/png" in out.get("data", {})]
    assert len(images) >= 3  # the scene, the training curve, the predicted masks
    assert (tmp_path / "work" / "mask.tif").is_file()
