"""Ways to run a network, timed side by side: PyTorch eager (NCHW and channels_last), bf16 autocast,
onnxruntime fp32 and int8 (static quantisation calibrated on the tiles), with their agreement.

    rows = engine_rows(model, spec, batches)       # one network (trained or calibrated), every engine
    rows = precision_rows(networks, batches)       # several networks x (fp32, bf16, onnxruntime fp32, int8)
"""

from __future__ import annotations

import copy
import importlib.util
from collections.abc import Callable
from pathlib import Path

import torch

from robosat_effnet.bench.timing import interleaved_timings
from robosat_effnet.models.checkpoint import ModelSpec
from robosat_effnet.outputs import temp_folder


def _onnx_engines(model: torch.nn.Module, spec: ModelSpec, batches: list[torch.Tensor], folder: Path,
                  int8: bool) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """onnxruntime runners of `model` (fp32, and int8 when asked), exported into `folder`."""
    from robosat_effnet.deploy.export import export_onnx, load_onnx
    from robosat_effnet.deploy.quantize import quantize_int8  # the implementation `rs-effnet export --int8` uses

    fp32 = export_onnx((model, spec), folder / "model.onnx")
    engines = {"onnxruntime fp32": load_onnx(fp32, "cpu")[0]}
    if int8:
        int8_file = quantize_int8(fp32, batches, folder / "int8.onnx")
        engines["onnxruntime int8 (static QDQ)"] = load_onnx(int8_file, "cpu")[0]
    return engines


def _engines(model: torch.nn.Module, spec: ModelSpec, batches: list[torch.Tensor], folder: Path,
             device: torch.device, onnx: bool, int8: bool, bf16: bool,
             channels_last_row: bool = True) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """{engine name: run} for one network; onnxruntime ones when it and the export module are available."""
    model = model.to(device).eval()
    channels_last = copy.deepcopy(model).to(memory_format=torch.channels_last)
    engines: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"pytorch eager fp32": model}
    if channels_last_row:
        engines["pytorch eager fp32 channels_last"] = \
            lambda t: channels_last(t.contiguous(memory_format=torch.channels_last))
    if bf16:
        def bf16_run(t: torch.Tensor) -> torch.Tensor:
            with torch.autocast(device.type, dtype=torch.bfloat16):
                return channels_last(t.contiguous(memory_format=torch.channels_last)).float()

        engines["pytorch bf16 autocast channels_last"] = bf16_run
    have_ort = importlib.util.find_spec("onnxruntime") is not None
    if onnx and have_ort and importlib.util.find_spec("robosat_effnet.deploy.export") is not None:
        engines |= _onnx_engines(model.cpu(), spec, [b.cpu() for b in batches], folder, int8)
        model.to(device)
    return engines


def engine_rows(model: torch.nn.Module, spec: ModelSpec, batches: list[torch.Tensor], repeats: int = 7,
                device: str = "cpu", batch: int = 1, onnx: bool = True, int8: bool = True,
                bf16: bool = True) -> list[dict]:
    """Tiles/s of each engine on the same model and tiles, interleaved, with its agreement with fp32 eager.

    Agreement is measured on every tile of `batches`: the largest |logit| difference and the share of pixels
    whose class (argmax) matches fp32 eager's. On an untrained (calibrated) network the classes are close
    calls everywhere, so agreement is a lower bound; a trained checkpoint gives the figure that matters.
    onnxruntime rows appear when robosat_effnet.deploy.export and onnxruntime are available (CPU provider).
    """
    device = torch.device(device)
    with temp_folder("engines") as tmp:  # our name: a killed bench's is swept by the next
        engines = _engines(model, spec, batches, tmp, device, onnx, int8, bf16)
        x = batches[0][:batch].to(device)
        seconds = interleaved_timings({name: (lambda f=f: f(x)) for name, f in engines.items()}, repeats, device)
        rows = []
        with torch.inference_mode():
            reference = [model(b.to(device)).float().cpu() for b in batches]
            for name, run in engines.items():
                logits = [run(b.to(device)).float().cpu() for b in batches]
                same = sum(int((a.argmax(1) == r.argmax(1)).sum()) for a, r in zip(logits, reference, strict=True))
                pixels = sum(r[:, 0].numel() for r in reference)
                rows.append({"engine": name, "tiles_per_s": batch / seconds[name],
                             "speed_vs_eager": seconds["pytorch eager fp32"] / seconds[name],
                             "max_abs_logit_diff": max(float((a - r).abs().max())
                                                       for a, r in zip(logits, reference, strict=True)),
                             "max_rel_logit_diff": max(float((a - r).abs().max() / r.abs().max().clamp_min(1e-12))
                                                       for a, r in zip(logits, reference, strict=True)),
                             "mask_agreement": same / pixels})
    return rows


def precision_rows(networks: dict[str, tuple[torch.nn.Module, ModelSpec]], batches: list[torch.Tensor],
                   repeats: int = 7, device: str = "cpu", batch: int = 1, int8: bool = True) -> list[dict]:
    """Tiles/s of every network in every precision (fp32 eager, bf16 autocast, onnxruntime fp32 and int8), all
    interleaved in one run, with the speed relative to the first network's fp32 eager and to its own."""
    device = torch.device(device)
    x = batches[0][:batch].to(device)
    with temp_folder("precisions") as tmp:
        runs = {}
        for name, (model, spec) in networks.items():
            folder = tmp / str(len(runs))
            folder.mkdir()
            for engine, run in _engines(model, spec, batches, folder, device, True, int8, True,
                                        channels_last_row=False).items():
                runs[(name, engine)] = run
        seconds = interleaved_timings({key: (lambda f=f: f(x)) for key, f in runs.items()}, repeats, device)
    first = next(iter(networks))
    return [{"model": name, "engine": engine, "tiles_per_s": batch / seconds[name, engine],
             "speed_vs_own_fp32": seconds[name, "pytorch eager fp32"] / seconds[name, engine],
             f"speed_vs_{first.replace(' ', '_')}_fp32": seconds[first, "pytorch eager fp32"] / seconds[name, engine]}
            for name, engine in seconds]
