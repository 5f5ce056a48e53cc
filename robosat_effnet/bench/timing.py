"""The measuring primitives of the benchmarks: where, how much work, how long, and the table they go in.

Timings are interleaved across the compared callables (round-robin) so that a slow moment of a noisy machine hits
all of them alike and their ratios survive.
"""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode


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


def synchronize(device: torch.device) -> None:
    """Wait for the device (CUDA runs asynchronously), so that a timer reads finished work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved_timings(functions: dict[str, Callable[[], object]], repeats: int, device: torch.device,
                        warmup: int = 1) -> dict[str, float]:
    """Median seconds per call of each function, calling them round-robin `repeats` times."""
    with torch.inference_mode():
        for fn in functions.values():
            for _ in range(warmup):
                fn()
        synchronize(device)
        times: dict[str, list[float]] = {name: [] for name in functions}
        for _ in range(repeats):
            for name, fn in functions.items():
                start = time.perf_counter()
                fn()
                synchronize(device)
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


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
