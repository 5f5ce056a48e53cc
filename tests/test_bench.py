"""`rs-effnet bench` runs end to end on tiny settings (numbers belong in BENCHMARKS.md, not in tests), and the
networks it times have realistic activations."""

import importlib.util

import pytest
import torch
from click.testing import CliRunner

from robosat_effnet.bench import calibration, markdown_table, train_rows
from robosat_effnet.bench.calibration import (
    calibrate_batchnorm,
    deepest_tap_magnitude,
    flush_denormal_enabled,
    sample_batches,
)
from robosat_effnet.cli import main
from robosat_effnet.models import build_model

pytestmark = pytest.mark.usefixtures("one_thread")  # shared cores: OpenMP threads spinning cost far more


@pytest.fixture(scope="module")
def batches():
    return sample_batches(size=64, count=2, batch=4)


def test_calibration_lifts_activations_out_of_denormal_range(batches):
    torch.manual_seed(0)
    model = build_model("b0", "unet").eval()
    fresh = deepest_tap_magnitude(model, batches[0])
    assert fresh < 1e-6  # BatchNorm's initial statistics shrink B0's activations to ~1e-13
    calibrate_batchnorm(model, batches)
    assert not model.training
    assert deepest_tap_magnitude(model, batches[0]) > 1e-2


def test_calibrated_statistics_are_the_data_statistics(batches):
    """The stem's BatchNorm holds the mean over all batches of its input, and the mean of the batches'
    unbiased variances (the cumulative average of what train mode records per batch)."""
    torch.manual_seed(0)
    model = build_model("b0", "unet")
    calibrate_batchnorm(model, batches)
    conv, norm = model.encoder.stem.conv, model.encoder.stem.bn
    assert norm.momentum == 0.1  # restored
    with torch.no_grad():
        inputs = [conv(x) for x in batches]
    mean = torch.stack([t.mean(dim=(0, 2, 3)) for t in inputs]).mean(0)
    var = torch.stack([t.var(dim=(0, 2, 3), unbiased=True) for t in inputs]).mean(0)
    assert torch.allclose(norm.running_mean, mean, atol=1e-5, rtol=1e-4)
    assert torch.allclose(norm.running_var, var, atol=1e-5, rtol=1e-4)
    assert int(norm.num_batches_tracked) == len(batches)


def test_sample_batches_without_real_tiles_use_a_generated_scene(monkeypatch):
    monkeypatch.setattr(calibration, "default_tiles_dir", lambda: None)
    (batch,) = sample_batches(size=64, count=1, batch=2)
    assert batch.shape == (2, 3, 64, 64) and batch.std() > 0.1
    assert "generated" in calibration.tiles_source()


def test_flush_denormal_is_detected():
    before = flush_denormal_enabled()
    try:
        torch.set_flush_denormal(True)
        assert flush_denormal_enabled()
        torch.set_flush_denormal(False)
        assert not flush_denormal_enabled()
    finally:
        torch.set_flush_denormal(before)


def test_bench_tiny(tmp_path):
    out = tmp_path / "bench.md"
    result = CliRunner().invoke(main, ["bench", "--models", "b0:unet,resnet50:unet,b0:unet-lite", "--size", "64",
                                       "--repeats", "1", "--threads", "1", "--sections", "model,encoder",
                                       "--markdown", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    for row in ("efficientnet-b0 unet", "resnet50 unet", "efficientnet-b0 unet-lite"):
        assert f"| {row} |" in text
    assert "speed_vs_resnet50_unet" in text and "decoder_share" in text and "ours_vs_torchvision" in text
    assert "| True |" in text  # our encoder and torchvision's gave the same taps
    assert "Denormals: computed as IEEE floats (flush-to-zero off)" in text and "BatchNorm statistics" in text
    table = [line for line in text.splitlines() if line.startswith("| efficientnet-b0 unet |")][0]
    header = [line for line in text.splitlines() if line.startswith("| model |")][0]
    deep = float(table.split("|")[header.split("|").index(" deep_tap_abs ")])
    assert deep > 1e-2  # the timed network's activations are realistic


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="onnxruntime not installed")
def test_engine_rows_agree_with_eager(batches):
    from robosat_effnet.bench.engines import engine_rows
    from robosat_effnet.models.checkpoint import ModelSpec

    torch.manual_seed(0)
    model = calibrate_batchnorm(build_model("b0", "unet"), batches)
    rows = {r["engine"]: r for r in engine_rows(model, ModelSpec(tile_size=64), batches, repeats=1, int8=False)}
    assert rows["pytorch eager fp32"]["mask_agreement"] == 1.0
    for name in ("pytorch eager fp32 channels_last", "onnxruntime fp32"):
        assert rows[name]["max_rel_logit_diff"] < 1e-3 and rows[name]["mask_agreement"] > 0.99
    assert 0.5 < rows["pytorch bf16 autocast channels_last"]["mask_agreement"] <= 1.0
    assert all(r["tiles_per_s"] > 0 for r in rows.values())


def test_train_rows_measure_in_a_fresh_process():
    images = torch.randn(1, 3, 64, 64)
    rows = train_rows([("efficientnet-b0", "unet-lite")], images, steps=1, precisions=("fp32", "bf16"))
    assert [(r["model"], r["precision"]) for r in rows] == [("efficientnet-b0 unet-lite", "fp32"),
                                                            ("efficientnet-b0 unet-lite", "bf16")]
    assert all(r["train_tiles_per_s"] > 0 and r["peak_rss_MiB"] > 50 for r in rows)


def test_bench_rejects_unknown_sections_and_models():
    result = CliRunner().invoke(main, ["bench", "--sections", "model,nope"])
    assert result.exit_code == 2 and "nope" in result.output
    result = CliRunner().invoke(main, ["bench", "--models", "b0:segnet"])
    assert result.exit_code == 2 and "segnet" in result.output and "unet-lite" in result.output
    result = CliRunner().invoke(main, ["bench", "--train-precision", "fp32,fp16"])
    assert result.exit_code == 2 and "--train-precision" in result.output and "fp32, bf16" in result.output
    result = CliRunner().invoke(main, ["bench", "--size", "80"])
    assert result.exit_code == 2 and "Invalid value for --size: 80 is not a multiple of 32" in result.output


def test_markdown_table():
    assert markdown_table([{"a": 1.23456, "b": "x"}, {"a": 12345.6}]).splitlines() == [
        "| a | b |", "|---|---|", "| 1.23 | x |", "| 12346 |  |"]


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="onnxruntime not installed")
def test_precisions_time_every_network_in_every_precision(batches, monkeypatch):
    from robosat_effnet.bench import engines
    from robosat_effnet.bench.engines import precision_rows
    from robosat_effnet.models.checkpoint import ModelSpec

    torch.manual_seed(0)
    networks = {f"{b} unet": (calibrate_batchnorm(build_model(b, "unet"), batches), ModelSpec(backbone=b, tile_size=64))
                for b in ("efficientnet-lite0", "efficientnet-b0")}
    timed = {}
    real = engines.interleaved_timings

    def recording(runs, *args):  # every (network, engine) pair is in the one interleaved run
        timed.update(dict.fromkeys(runs))
        return real(runs, *args)

    monkeypatch.setattr(engines, "interleaved_timings", recording)
    rows = precision_rows(networks, batches, repeats=1, int8=True)
    kinds = ["pytorch eager fp32", "pytorch bf16 autocast channels_last", "onnxruntime fp32",
             "onnxruntime int8 (static QDQ)"]
    assert list(timed) == [(n, k) for n in networks for k in kinds]
    assert [(r["model"], r["engine"]) for r in rows] == list(timed)
    own = {(r["model"], r["engine"]): r for r in rows}
    for name in networks:
        assert own[name, "pytorch eager fp32"]["speed_vs_own_fp32"] == 1.0
    first = own["efficientnet-lite0 unet", "pytorch eager fp32"]
    assert first["speed_vs_efficientnet-lite0_unet_fp32"] == 1.0
    b0 = own["efficientnet-b0 unet", "onnxruntime int8 (static QDQ)"]
    assert b0["speed_vs_efficientnet-lite0_unet_fp32"] == pytest.approx(b0["tiles_per_s"] / first["tiles_per_s"])


def test_run_bench_from_python_returns_the_report_it_echoes(tmp_path):
    """The command's run as one library call: the sections in SECTIONS' order whatever order they were asked in,
    each echoed as measured, the caller's thread count kept, and the Markdown the command writes."""
    from robosat_effnet.bench import BenchOptions, run_bench, write_report

    echoed = []
    threads = torch.get_num_threads()
    options = BenchOptions(models="b0:unet-lite", size=64, repeats=1, threads=threads + 1,
                           sections=("encoder", "model"))
    report = run_bench(options, echo=echoed.append)
    assert torch.get_num_threads() == threads
    assert [title for title, _ in report.tables] == [
        "Inference, 64 px, batch 1: whole network, encoder and decoder alone",
        "Our encoder vs torchvision features (same weights), 64 px"]
    assert [row["model"] for row in report.tables[0][1]] == ["efficientnet-b0 unet-lite"]
    assert [row["encoder"] for row in report.tables[1][1]] == ["efficientnet-b0", "efficientnet-b4"]
    assert report.header[0].startswith("Machine: ") and report.header[-1] == ""
    assert "over 16 64 px images" in report.header[1]
    assert "\n".join(echoed) == report.markdown() and len(echoed) == 3  # header, then one text per section
    assert echoed[2].startswith("### Our encoder vs torchvision") and "| efficientnet-b4 |" in echoed[2]
    write_report(report, tmp_path / "bench.md")
    assert (tmp_path / "bench.md").read_text() == "<!-- written_by: rs-effnet bench -->\n" + report.markdown() + "\n"


@pytest.mark.parametrize("changes, option, words", [
    ({"size": 80}, "size", "80 is not a multiple of 32"),
    ({"sections": ("model", "nope")}, "sections", "unknown section(s) nope; valid: model, encoder"),
    ({"sections": ()}, "sections", "name one or more of model, encoder"),
    ({"models": " "}, "models", "name one or more backbone:decoder networks"),
    ({"models": "b0:segnet"}, "models", "unknown decoder 'segnet'"),
    ({"train_precisions": ("fp16",)}, "train_precisions", "give one or more of fp32, bf16"),
])
def test_run_bench_refuses_bad_options_before_any_work(changes, option, words, monkeypatch):
    from robosat_effnet.bench import BenchOptions, run_bench
    from robosat_effnet.bench.options import BenchOptionError

    monkeypatch.setattr(calibration, "sample_images", lambda *a, **k: pytest.fail("work began"))
    with pytest.raises(BenchOptionError) as raised:
        run_bench(BenchOptions(**changes))
    assert raised.value.option == option and words in str(raised.value)
