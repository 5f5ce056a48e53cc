"""`rs-effnet bench` runs end to end on tiny settings (numbers belong in BENCHMARKS.md, not in tests)."""

from click.testing import CliRunner

from robosat_effnet.bench import markdown_table, train_rows
from robosat_effnet.cli import main


def test_bench_tiny(tmp_path):
    out = tmp_path / "bench.md"
    result = CliRunner().invoke(main, ["bench", "--backbones", "b0,resnet50", "--size", "64", "--repeats", "1",
                                       "--sections", "model,encoder", "--markdown", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "| efficientnet-b0 |" in text and "| resnet50 |" in text
    assert "speed_vs_resnet50" in text and "ours_vs_torchvision" in text
    assert "| True |" in text  # our encoder and torchvision's gave the same taps


def test_train_rows_measure_in_a_fresh_process():
    (row,) = train_rows(["b0"], size=64, batch=1, steps=1)
    assert row["backbone"] == "efficientnet-b0"
    assert row["train_tiles_per_s"] > 0 and row["peak_rss_MiB"] > 50


def test_bench_rejects_unknown_sections():
    result = CliRunner().invoke(main, ["bench", "--sections", "model,nope"])
    assert result.exit_code == 2 and "nope" in result.output


def test_markdown_table():
    assert markdown_table([{"a": 1.23456, "b": "x"}, {"a": 12345.6}]).splitlines() == [
        "| a | b |", "|---|---|", "| 1.23 | x |", "| 12346 |  |"]
