"""Speed and memory, measured side by side in one run so that ratios survive a noisy machine.

Every function returns rows (dicts) that `rs-effnet bench` prints as Markdown tables; timings are
interleaved across the compared models (round-robin) so that a slow moment hits all of them.
"""

from __future__ import annotations

import multiprocessing
import platform
import resource
import statistics
import time
from typing import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from robosat_effnet.models import build_encoder, build_model, canonical_backbone

DEFAULT_BACKBONES = ["efficientnet-b0", "efficientnet-b1", "efficientnet-b2", "efficientnet-b3",
                     "efficientnet-b4", "resnet50"]


def machine() -> str:
    """One line describing where the numbers were taken."""
    import os

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    line = f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"
    if torch.cuda.is_available():
        line += f", GPU {torch.cuda.get_device_name()}"
    return line


def multiply_adds(model: torch.nn.Module, size: int, in_channels: int = 3) -> float:
    """Multiply-adds of one forward pass on one size x size tile, counted on the meta device."""
    import copy

    meta = copy.deepcopy(model).to("meta").eval()
    with FlopCounterMode(display=False) as counter:
        meta(torch.empty(1, in_channels, size, size, device="meta"))
    return counter.get_total_flops() / 2


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved_timings(functions: dict[str, Callable[[], object]], repeats: int, device: torch.device,
                        warmup: int = 1) -> dict[str, float]:
    """Median seconds per call of each function, calling them round-robin `repeats` times."""
    with torch.inference_mode():
        for fn in functions.values():
            for _ in range(warmup):
                fn()
        _sync(device)
        times: dict[str, list[float]] = {name: [] for name in functions}
        for _ in range(repeats):
            for name, fn in functions.items():
                start = time.perf_counter()
                fn()
                _sync(device)
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def model_rows(backbones: list[str], size: int = 512, batch: int = 1, repeats: int = 3,
               device: str = "cpu", decoder: str = "unet") -> list[dict]:
    """Parameters, multiply-adds and inference tiles/s of each backbone's U-Net, with ratios to resnet50."""
    device = torch.device(device)
    names = [canonical_backbone(b) for b in backbones]
    models = {name: build_model(name, decoder).to(device).eval() for name in names}
    x = torch.randn(batch, 3, size, size, device=device)
    seconds = interleaved_timings({n: (lambda m=m: m(x)) for n, m in models.items()}, repeats, device)
    rows = [{"backbone": n, "params_M": sum(p.numel() for p in m.parameters()) / 1e6,
             "GMACs": multiply_adds(m, size) / 1e9, "tiles_per_s": batch / seconds[n]} for n, m in models.items()]
    base = next((r for r in rows if r["backbone"] == "resnet50"), None)
    for row in rows:
        if base:
            row["speed_vs_resnet50"] = row["tiles_per_s"] / base["tiles_per_s"]
            row["params_vs_resnet50"] = row["params_M"] / base["params_M"]
    return rows


class _TorchvisionFeatures(torch.nn.Module):
    """torchvision's EfficientNet `features`, returning the same five taps as our encoder."""

    def __init__(self, features: torch.nn.Module):
        super().__init__()
        self.features = features

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        taps = []
        for i, layer in enumerate(self.features[:8]):  # features[8] is the head conv: not part of the encoder
            x = layer(x)
            if i in (1, 2, 3, 5, 7):
                taps.append(x)
        return taps


def encoder_rows(variants: list[str] = ("b0", "b4"), size: int = 512, batch: int = 1, repeats: int = 3,
                 device: str = "cpu") -> list[dict]:
    """Our encoder against torchvision's EfficientNet features with the same weights (throughput ratio)."""
    import tempfile

    import torchvision

    device = torch.device(device)
    rows = []
    x = torch.randn(batch, 3, size, size, device=device)
    for variant in variants:
        tv = getattr(torchvision.models, f"efficientnet_{variant}")().eval()
        with tempfile.NamedTemporaryFile(suffix=".pth") as f:
            torch.save(tv.state_dict(), f.name)
            ours = build_encoder(variant, weights=f.name).to(device).eval()
        theirs = _TorchvisionFeatures(tv.features).to(device).eval()
        with torch.inference_mode():
            same = all(torch.allclose(a, b, atol=1e-4) for a, b in zip(ours(x), theirs(x)))
        seconds = interleaved_timings({"ours": lambda: ours(x), "torchvision": lambda: theirs(x)}, repeats, device)
        rows.append({"encoder": f"efficientnet-{variant}", "ours_tiles_per_s": batch / seconds["ours"],
                     "torchvision_tiles_per_s": batch / seconds["torchvision"],
                     "ours_vs_torchvision": seconds["torchvision"] / seconds["ours"], "same_outputs": same})
    return rows


def _train_step_worker(backbone: str, size: int, batch: int, steps: int, device: str, queue) -> None:
    """Runs in its own process so that its peak memory is its own. On CUDA the step is the trainer's:
    mixed precision with a gradient scaler, channels_last."""
    torch.manual_seed(0)
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    layout = torch.channels_last if cuda else torch.preserve_format
    model = build_model(backbone, "unet").to(dev, memory_format=layout).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler("cuda", enabled=cuda)
    x = torch.randn(batch, 3, size, size, device=dev).contiguous(memory_format=layout)
    y = torch.randint(0, 2, (batch, size, size), device=dev)

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(dev.type, dtype=torch.float16, enabled=cuda):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    step()  # warm-up: allocator, optimizer state
    _sync(dev)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        _sync(dev)
        times.append(time.perf_counter() - start)
    peak_gpu = torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else None
    queue.put({"backbone": backbone, "train_tiles_per_s": batch / statistics.median(times),
               "peak_rss_MiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "peak_gpu_MiB": peak_gpu})


def train_rows(backbones: list[str], size: int = 512, batch: int = 4, steps: int = 2, device: str = "cpu") -> list[dict]:
    """Training throughput and peak memory of one U-Net train step per backbone, each in a fresh process."""
    import queue as queues

    ctx = multiprocessing.get_context("spawn")
    rows = []
    for backbone in (canonical_backbone(b) for b in backbones):
        queue = ctx.Queue()
        process = ctx.Process(target=_train_step_worker, args=(backbone, size, batch, steps, device, queue))
        process.start()
        row = None
        while row is None:
            try:
                row = queue.get(timeout=5)
            except queues.Empty:
                if not process.is_alive():  # killed (e.g. out of memory) before it could report
                    row = {"backbone": backbone, "train_tiles_per_s": float("nan"), "peak_rss_MiB": float("nan"),
                           "peak_gpu_MiB": None, "failed": f"exit code {process.exitcode}"}
        process.join()
        rows.append(row)
    base = next((r for r in rows if r["backbone"] == "resnet50"), None)
    # Memory that matters: the GPU's where the step ran there, the process's otherwise.
    memory = "peak_gpu_MiB" if torch.device(device).type == "cuda" else "peak_rss_MiB"
    for row in rows:
        if base:
            row["speed_vs_resnet50"] = row["train_tiles_per_s"] / base["train_tiles_per_s"]
            row["memory_vs_resnet50"] = (row[memory] / base[memory]) if row[memory] and base[memory] else None
    return rows


def markdown_table(rows: list[dict]) -> str:
    """Rows of dicts as a Markdown table (floats to 3 significant figures)."""
    if not rows:
        return ""
    columns = list(dict.fromkeys(k for row in rows for k in row))

    def fmt(v):
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)
