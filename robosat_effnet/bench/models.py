"""The networks compared: inference speed and memory of whole models and of encoders, and training steps.

Every function returns rows (dicts) that `rs-effnet bench` prints as Markdown tables (`timing.markdown_table`);
the networks carry BatchNorm statistics from real tiles (`calibration`), never a fresh network's.
"""

from __future__ import annotations

import multiprocessing
import resource
import statistics
import time
from collections.abc import Sequence

import torch
from tqdm import tqdm

from robosat_effnet.bench.calibration import calibrate_batchnorm
from robosat_effnet.bench.timing import interleaved_timings, multiply_adds, synchronize
from robosat_effnet.models import build_encoder, build_model, canonical_backbone


def parse_models(text: str) -> list[tuple[str, str]]:
    """'b0:unet,b4,resnet50:fpn' -> [(canonical backbone, decoder)]; a name without ':decoder' gets unet."""
    from robosat_effnet.errors import UnknownNameError
    from robosat_effnet.models import list_decoders

    pairs = []
    for item in (part.strip() for part in text.split(",") if part.strip()):
        backbone, _, decoder = item.partition(":")
        decoder = (decoder or "unet").strip().lower()
        if decoder not in list_decoders():
            raise UnknownNameError(f"unknown decoder {decoder!r} in {item!r}; valid: {', '.join(list_decoders())}")
        pairs.append((canonical_backbone(backbone), decoder))
    return pairs


def calibrated_model(backbone: str, decoder: str, batches: list[torch.Tensor], device: torch.device,
                     **kwargs) -> torch.nn.Module:
    """A fresh network with BatchNorm statistics from `batches` (see robosat_effnet.bench.calibration), in eval mode."""
    torch.manual_seed(0)
    model = build_model(backbone, decoder, in_channels=batches[0].shape[1], **kwargs).to(device)
    return calibrate_batchnorm(model, batches)


def model_rows(models: list[tuple[str, str]], batches: list[torch.Tensor], repeats: int = 7, device: str = "cpu",
               batch: int = 1, checkpoint: tuple[torch.nn.Module, object] | None = None) -> list[dict]:
    """Inference tiles/s of each (backbone, decoder), its encoder and decoder alone, interleaved in one run.

    Networks get BatchNorm statistics from `batches` (real tiles) before timing; `checkpoint` (model, spec)
    adds a trained network's row. Ratios are to the resnet50 U-Net when it is among `models`.
    """
    device = torch.device(device)
    networks = {f"{b} {d}": calibrated_model(b, d, batches, device) for b, d in tqdm(models, desc="calibrating")}
    if checkpoint is not None:
        model, spec = checkpoint
        networks[f"{spec.backbone} {spec.decoder} (checkpoint)"] = model.to(device).eval()
    x = batches[0][:batch].to(device)
    size = tuple(x.shape[-2:])
    with torch.inference_mode():
        taps = {name: m.encoder(x) for name, m in networks.items()}
    functions = {}
    for name, m in networks.items():
        functions[name] = lambda m=m: m(x)
        functions[name + "/encoder"] = lambda m=m: m.encoder(x)
        functions[name + "/decoder"] = lambda m=m, t=taps[name]: m.decoder(t, size)
    seconds = interleaved_timings(functions, repeats, device)
    rows = []
    for name, m in networks.items():
        enc, dec = seconds[name + "/encoder"], seconds[name + "/decoder"]
        rows.append({"model": name, "params_M": sum(p.numel() for p in m.parameters()) / 1e6,
                     "GMACs": multiply_adds(m, size[0], x.shape[1]) / 1e9,
                     "deep_tap_abs": float(taps[name][-1].abs().mean()), "tiles_per_s": batch / seconds[name],
                     "encoder_s": enc, "decoder_s": dec, "decoder_share": dec / (enc + dec)})
    base = next((r for r in rows if r["model"] == "resnet50 unet"), None)
    for row in rows:
        if base:
            row["speed_vs_resnet50_unet"] = row["tiles_per_s"] / base["tiles_per_s"]
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


def encoder_rows(variants: list[str], batches: list[torch.Tensor], repeats: int = 7, device: str = "cpu",
                 batch: int = 1) -> list[dict]:
    """Our encoder against torchvision's EfficientNet features with the same weights (throughput ratio).

    torchvision's network gets BatchNorm statistics from `batches` first; ours loads its state dict.
    """
    import torchvision

    from robosat_effnet.outputs import temp_folder

    device = torch.device(device)
    rows = []
    x = batches[0][:batch].to(device)
    for variant in variants:
        torch.manual_seed(0)
        tv = calibrate_batchnorm(getattr(torchvision.models, f"efficientnet_{variant}")(), batches)
        with temp_folder("encoder") as tmp:
            torch.save(tv.state_dict(), tmp / "torchvision.pth")
            ours = build_encoder(variant, weights=tmp / "torchvision.pth").to(device).eval()
        theirs = _TorchvisionFeatures(tv.features).to(device).eval()
        with torch.inference_mode():
            same = all(torch.allclose(a, b, atol=1e-4) for a, b in zip(ours(x), theirs(x), strict=True))
        functions = {"ours": lambda m=ours: m(x), "torchvision": lambda m=theirs: m(x)}
        seconds = interleaved_timings(functions, repeats, device)
        rows.append({"encoder": f"efficientnet-{variant}", "ours_tiles_per_s": batch / seconds["ours"],
                     "torchvision_tiles_per_s": batch / seconds["torchvision"],
                     "ours_vs_torchvision": seconds["torchvision"] / seconds["ours"], "same_outputs": same})
    return rows


def _train_step_worker(backbone: str, decoder: str, images: torch.Tensor, steps: int, device: str, threads: int,
                       queue, precision: str = "fp32") -> None:
    """Runs in its own process so that its peak memory is its own. The step is the trainer's: on CUDA mixed
    precision with a gradient scaler and channels_last; with precision "bf16" bfloat16 autocast, no scaler
    (model.toml's `precision = "bf16"`)."""
    torch.manual_seed(0)
    torch.set_num_threads(threads)
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    bf16 = precision == "bf16"
    layout = torch.channels_last if cuda else torch.preserve_format
    model = build_model(backbone, decoder, in_channels=images.shape[1]).to(dev, memory_format=layout).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler("cuda", enabled=cuda and not bf16)
    x = images.to(dev).contiguous(memory_format=layout)
    batch, size = x.shape[0], x.shape[-1]
    y = torch.randint(0, 2, (batch, size, size), device=dev)

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(dev.type, dtype=torch.bfloat16 if bf16 else torch.float16, enabled=cuda or bf16):
            loss = torch.nn.functional.cross_entropy(model(x).float(), y)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    step()  # warm-up: allocator, optimizer state
    synchronize(dev)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        synchronize(dev)
        times.append(time.perf_counter() - start)
    peak_gpu = torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else None
    queue.put({"model": f"{backbone} {decoder}", "precision": precision,
               "train_tiles_per_s": batch / statistics.median(times),
               "peak_rss_MiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "peak_gpu_MiB": peak_gpu})


def train_rows(models: list[tuple[str, str]], images: torch.Tensor, steps: int = 2, device: str = "cpu",
               precisions: Sequence[str] = ("fp32",)) -> list[dict]:
    """Training throughput and peak memory of a train step on `images` (one batch) per (backbone, decoder) and
    precision ("fp32": the device's default; "bf16": bfloat16 autocast), each in a fresh process with this
    process's thread count. Ratios are to the resnet50 U-Net at the first precision. In train mode BatchNorm
    normalises with batch statistics: no calibration is needed."""
    import queue as queues

    ctx = multiprocessing.get_context("spawn")
    rows = []
    runs = [(b, d, p) for b, d in models for p in precisions]
    for backbone, decoder, precision in tqdm(runs, desc="train steps"):
        queue = ctx.Queue()
        process = ctx.Process(target=_train_step_worker, args=(backbone, decoder, images, steps, device,
                                                                     torch.get_num_threads(), queue, precision))
        process.start()
        row = None
        while row is None:
            try:
                row = queue.get(timeout=5)
            except queues.Empty:
                if not process.is_alive():  # killed (e.g. out of memory) before it could report
                    row = {"model": f"{backbone} {decoder}", "precision": precision, "train_tiles_per_s": float("nan"),
                           "peak_rss_MiB": float("nan"), "peak_gpu_MiB": None,
                           "failed": f"exit code {process.exitcode}"}
        process.join()
        rows.append(row)
    base = next((r for r in rows if r["model"] == "resnet50 unet" and r["precision"] == precisions[0]), None)
    # Memory that matters: the GPU's where the step ran there, the process's otherwise.
    memory = "peak_gpu_MiB" if torch.device(device).type == "cuda" else "peak_rss_MiB"
    for row in rows:
        if base:
            row["speed_vs_resnet50_unet"] = row["train_tiles_per_s"] / base["train_tiles_per_s"]
            row["memory_vs_resnet50_unet"] = (row[memory] / base[memory]) if row[memory] and base[memory] else None
    return rows
