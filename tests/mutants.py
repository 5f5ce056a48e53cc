"""Mutation testing by list: break one feature on purpose in a copy of the project, check the suite notices.

    .venv/bin/python tests/mutants.py            # every mutant (a few minutes)
    .venv/bin/python tests/mutants.py tta ddp    # only those whose name contains one of the words
    make mutants

Each mutant names a file, an exact snippet of it, its replacement, and the tests that must fail once it is
applied. The project (tracked and untracked, not ignored, files: no .venv) is copied to a temporary folder;
each mutant is applied there in turn, the named tests run with this interpreter and PYTHONPATH pointing at the
copy (so the editable install of the working tree is not what gets imported), and the file is restored.

Exit status 0 when every mutant is killed; 1 when one survives, when a snippet is no longer found exactly
once (the list must follow the code), or when the named tests fail without any mutant (a broken baseline
would "kill" everything).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 900  # s per mutant; a mutant that hangs the tests counts as killed (and is reported as such)


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str  # relative to the project root
    original: str  # must occur exactly once in the file
    replacement: str
    tests: tuple[str, ...]  # pytest node ids or files that must fail


MUTANTS = [
    Mutant("tta never applied", "robosat_effnet/predict/engine.py",
           "if not self.tta:", "if True:",
           ("tests/test_tta.py",)),
    Mutant("ddp wrap removed", "robosat_effnet/training/loop.py",
           "model = nn.parallel.DistributedDataParallel(model, device_ids=[self.device.index] if self.cuda else None)",
           "pass",
           ("tests/test_train.py::test_two_processes_with_gloo",)),
    Mutant("configured loss ignored", "robosat_effnet/training/loop.py",
           "self.criterion = build_loss(loss_name, dataset_cfg.weights, model_cfg.gamma, model_cfg.gap_weight,",
           'self.criterion = build_loss("CrossEntropy", dataset_cfg.weights, model_cfg.gamma, model_cfg.gap_weight,',
           ("tests/test_train_wiring.py::test_the_configured_loss_is_the_one_used",)),
    Mutant("class weights ignored", "robosat_effnet/training/losses.py",
           "weight = torch.tensor(list(weights), dtype=torch.float32) if weights is not None and key in WEIGHTED "
           "else None",
           "weight = None",
           ("tests/test_train_wiring.py::test_class_weights_reach_the_criterion",)),
    Mutant("augmentation never applied", "robosat_effnet/training/datasets.py",
           "        if self.augment:\n            image, label = augment(",
           "        if False:\n            image, label = augment(",
           ("tests/test_train_wiring.py::test_augmentation_is_one_dihedral_transform_of_image_and_label",)),
    Mutant("best.pth chosen on the wrong metric", "robosat_effnet/training/loop.py",
           'if validated and _better(metrics["miou"], best[0]):',
           'if validated and _better(-val_loss, best[0]):',
           ("tests/test_train_wiring.py::test_best_is_the_epoch_of_highest_validation_miou",)),
    Mutant("resume does not restore the RNG", "robosat_effnet/training/resume.py",
           '        set_rng_state(state["rng"])\n',
           "",
           ("tests/test_train_wiring.py::test_resume_restores_the_global_rng",)),
    Mutant("band selection ignored", "robosat_effnet/data/transforms.py",
           "    if not bands:\n        return image\n    if max(bands)",
           "    if True:\n        return image[..., :len(bands)] if bands else image\n    if max(bands)",
           ("tests/test_preprocessing.py",)),
    Mutant("max_value ignored", "robosat_effnet/data/transforms.py",
           "return float(max_value) if max_value else 65535.0",
           "return 65535.0",
           ("tests/test_preprocessing.py",)),
    Mutant("max_value not recorded in the checkpoint", "robosat_effnet/config/model.py",
           "spec.max_value = dataset_cfg.max_value",
           "spec.max_value = None",
           ("tests/test_preprocessing.py",)),
    Mutant("neighbour context disabled in predict", "robosat_effnet/predict/tiles.py",
           "context[offset] = self.context(self.files.get(neighbour), center.shape)",
           "context[offset] = None",
           ("tests/test_predict_tiles.py::test_no_seams_with_a_model_that_sees_less_than_the_border",)),
    Mutant("no-data not marked in masks", "robosat_effnet/predict/runner.py",
           "out[~valid] = NODATA_INDEX",
           "pass",
           ("tests/test_predict_tiles.py::test_alpha_marks_no_data_and_unreadable_tiles_are_reported",)),
    Mutant("no-data not zeroed in probability tiles", "robosat_effnet/predict/runner.py",
           "out *= valid[:, None].to(torch.uint8)",
           "pass",
           ("tests/test_preprocessing.py",)),
    Mutant("shards overlap", "robosat_effnet/predict/runner.py",
           "return ordered[index::count]",
           "return ordered[index::max(1, count - 1)]",
           ("tests/test_properties.py",)),
    Mutant("quantisation truncates", "robosat_effnet/data/probabilities.py",
           "return (probabilities.float() * LEVELS).round_().clamp_(0, LEVELS).to(torch.uint8)",
           "return (probabilities.float() * LEVELS).clamp_(0, LEVELS).to(torch.uint8)",
           ("tests/test_properties.py",)),
    Mutant("crop off by one", "robosat_effnet/predict/context.py",
           "return array[..., border:-border, border:-border]",
           "return array[..., border:-border - 1, border:-border - 1]",
           ("tests/test_properties.py",)),
    Mutant("mirror repeats the edge pixel", "robosat_effnet/predict/context.py",
           'row = np.pad(center, ((0, 0), (b, b), *pad_rest), mode="reflect")',
           'row = np.pad(center, ((0, 0), (b, b), *pad_rest), mode="symmetric")',
           ("tests/test_properties.py",)),
    Mutant("eval binarises multi-class predictions", "robosat_effnet/evaluation/evaluate.py",
           "confusion += confusion_matrix(mask, target, spec.num_classes, ignore_index=NODATA_INDEX)",
           "confusion += confusion_matrix(mask.clamp(max=1), target, spec.num_classes, ignore_index=NODATA_INDEX)",
           ("tests/test_eval_multiclass.py",)),
    Mutant("trainer never augments", "robosat_effnet/training/loop.py",
           "augment=model_cfg.augment,",
           "augment=False,",
           ("tests/test_train_wiring.py::test_augmentation_is_one_dihedral_transform_of_image_and_label",)),
    Mutant("rasterize label class offset", "robosat_effnet/prepare/rasterize.py",
           "pairs = ((shapes.geometries[i], int(shapes.classes[i])) for i in order)",
           "pairs = ((shapes.geometries[i], int(shapes.classes[i]) + 1) for i in order)",
           ("tests/test_rasterize.py::test_single_class_labels_match_point_in_polygon",
            "tests/test_rasterize.py::test_class_property_and_projected_crs")),
    Mutant("features not merged across tiles", "robosat_effnet/vectorize/features.py",
           "merged = shapely.get_parts(shapely.unary_union(edge)) if edge else np.array([], dtype=object)",
           "merged = np.array(edge, dtype=object)",
           ("tests/test_features.py::test_building_across_tile_corner_is_one_feature_with_true_area",)),
    Mutant("geotiff max_value ignored", "robosat_effnet/predict/geotiff.py",
           'self.max_value = getattr(spec, "max_value", None)',
           "self.max_value = None",
           ("tests/test_predict_geotiff_generated.py",)),
    Mutant("tile predictor max_value ignored", "robosat_effnet/predict/tiles.py",
           'self.max_value = getattr(spec, "max_value", None)',
           "self.max_value = None",
           ("tests/test_preprocessing.py",)),
    Mutant("geotiff band order ignored", "robosat_effnet/data/warp.py",
           "data = vrt.read(list(bands) + [alpha])",
           "data = vrt.read(sorted(bands) + [alpha])",
           ("tests/test_predict_geotiff_generated.py",)),
    Mutant("geotiff tile grid one pixel off", "robosat_effnet/data/warp.py",
           "return Affine(x_res, 0.0, left - border * x_res, 0.0, -y_res, top + border * y_res)",
           "return Affine(x_res, 0.0, left - (border - 1) * x_res, 0.0, -y_res, top + border * y_res)",
           ("tests/test_predict_geotiff_generated.py",)),
    # Features added after the first list: matching, scoring, safety, ONNX, footprints, the map page, bench.
    Mutant("matching ignores the IoU threshold", "robosat_effnet/scoring/objects.py",
           "if best is not None and best[0] >= match_iou - TIE:", "if best is not None:",
           ("tests/test_objects.py",)),
    Mutant("matching not one-to-one", "robosat_effnet/scoring/objects.py",
           "for value, j in candidates.get(i, []) if j not in taken", "for value, j in candidates.get(i, [])",
           ("tests/test_objects.py",)),
    Mutant("outputs may overlap inputs", "robosat_effnet/outputs/checks.py",
           "        for given, source in ins:\n", "        for given, source in []:\n",
           ("tests/test_cli_safety.py", "tests/test_outputs.py")),
    Mutant("train mixes two runs in one folder", "robosat_effnet/outputs/provenance.py",
           "    elif old and resume is None:\n", "    elif False:\n",
           ("tests/test_cli_safety.py", "tests/test_outputs.py")),
    Mutant("foreign onnx files accepted", "robosat_effnet/models/onnx.py",
           "if metadata.get(FORMAT_KEY) != FORMAT or SPEC_KEY not in metadata:", "if False:",
           ("tests/test_onnx.py",)),
    Mutant("regularize ignored", "robosat_effnet/vectorize/features.py",
           "    if regularize and report.features:\n", "    if False:\n",
           ("tests/test_footprints.py",)),
    Mutant("touching buildings not split", "robosat_effnet/vectorize/features.py",
           "            if touching is None:", "            if True:",
           ("tests/test_touching.py",)),
    Mutant("gap term adds nothing", "robosat_effnet/training/losses.py",
           "        return loss + self.weight * pixels[gaps].mean()\n", "        return loss\n",
           ("tests/test_gap_loss.py",)),
    Mutant("gap term never wired into training", "robosat_effnet/training/loop.py",
           "model_cfg.gamma, model_cfg.gap_weight,", "model_cfg.gamma, 0.0,",
           ("tests/test_gap_loss.py::test_training_uses_the_configured_gap_term",)),
    Mutant("bench times fresh networks", "robosat_effnet/bench/models.py",
           "    return calibrate_batchnorm(model, batches)\n", "    return model.eval()\n",
           ("tests/test_bench.py::test_bench_tiny",)),
    Mutant("view server follows symlinks out", "robosat_effnet/view/server.py",
           "if real != root and root not in real.parents:", "if False:",
           ("tests/test_view.py::test_server_serves_only_the_page",)),
    Mutant("view overlay hides the imagery", "robosat_effnet/view/page.py",
           "rgba[..., 3] = np.where((index == 0) | (index == NODATA_INDEX), 0, 255)", "rgba[..., 3] = 255",
           ("tests/test_view.py::test_page_holds_everything_it_needs",)),
    Mutant("view opens on the box around all tiles", "robosat_effnet/view/static/view.js",
           "  show(data.groups[0]);", "  map.fitBounds(data.bounds);",
           ("tests/test_view_groups.py::test_any_spread_and_zoom_opens_on_imagery_and_masks",)),
    Mutant("view groups only touching tiles", "robosat_effnet/view/groups.py",
           "reach = range(-gap - 1, gap + 2)", "reach = range(-1, 2)",
           ("tests/test_view_groups.py::test_a_gap_of_gap_tiles_joins_more_splits",)),
    Mutant("view server prints every client hang-up", "robosat_effnet/view/server.py",
           "if not isinstance(sys.exc_info()[1], ConnectionError):", "if True:",
           ("tests/test_view_server.py::test_clients_hanging_up_are_quiet_and_the_server_keeps_serving",)),
    Mutant("view leaves its temp page on SIGTERM", "robosat_effnet/cli/view.py",
           "with _signals_stop(signal.SIGTERM, signal.SIGHUP), _page_folder(out) as folder:",
           "with _page_folder(out) as folder:",
           ("tests/test_view_signals.py::test_a_stopped_view_leaves_no_temp_folder",)),
    Mutant("temp folders of killed runs never swept", "robosat_effnet/outputs/temp.py",
           "    sweep_temp_folders(parent, stem)\n    folder = temp_path", "    folder = temp_path",
           ("tests/test_view_signals.py::test_the_next_run_removes_what_a_killed_run_left_and_nothing_else",)),
    Mutant("bf16 training precision ignored", "robosat_effnet/training/loop.py",
           'self.dtype = torch.bfloat16 if model_cfg.precision == "bf16" else torch.float16 if self.amp else None',
           "self.dtype = torch.float16 if self.amp else None",
           ("tests/test_train_wiring.py::test_precision_bf16_runs_the_forward_pass_in_bfloat16",)),
    Mutant("study scores best.pth whatever it is told", "robosat_effnet/study/runs.py",
           'folder / f"{checkpoint}.pth"', 'folder / "best.pth"',
           ("tests/test_study.py::test_scores_the_last_checkpoint_unless_told_the_best",)),
    Mutant("eval ignores the touching band", "robosat_effnet/evaluation/buildings.py",
           "self.touching = touching_index(list(classes))", "self.touching = None",
           ("tests/test_eval_buildings.py::test_the_touching_band_splits_buildings_and_is_not_scored_itself",)),
    Mutant("predict --zoom fills past the scene edge flat", "robosat_effnet/predict/geotiff.py",
           "pixels, context = (pixels, valid) if valid.all() else self.mirror(tile, pixels, valid)",
           "pixels, context = pixels, valid",
           ("tests/test_predict_geotiff_mirror.py",)),
    Mutant("deepness graph without its softmax", "robosat_effnet/deploy/deepness.py",
           "return torch.softmax(self.network(x), dim=1)", "return self.network(x)",
           ("tests/test_deepness.py::test_the_graph_is_bands_normalisation_network_softmax",)),
    Mutant("deepness graph without the normalisation", "robosat_effnet/deploy/deepness.py",
           "x = (x - self.mean) / self.std", "pass",
           ("tests/test_deepness.py::test_the_graph_is_bands_normalisation_network_softmax",)),
    Mutant("lite padded as PyTorch pads", "robosat_effnet/models/efficientnet.py",
           "        if same_padding and stride > 1:\n", "        if False:\n",
           ("tests/test_efficientnet_lite.py::test_same_logits_and_parameters_as_timm",)),
    Mutant("lite keeps squeeze-excitation", "robosat_effnet/models/efficientnet.py",
           "block = partial(MBConv, se=not scaling.lite,", "block = partial(MBConv, se=True,",
           ("tests/test_efficientnet_lite.py",)),
    Mutant("pretrained normalisation ignored", "robosat_effnet/config/model.py",
           "normalisation(backbone, model_cfg.weights)", "normalisation(backbone, None)",
           ("tests/test_pretrained.py::test_pretrained_lite0_trains_predicts_evaluates_and_exports_with_no_extra_settings",
            "tests/test_study.py::test_weights_are_a_dimension_of_the_study")),
    Mutant("encoder_lr ignored", "robosat_effnet/training/loop.py",
           "param_groups(model, cfg.weight_decay, cfg.lr, cfg.encoder_lr)",
           "param_groups(model, cfg.weight_decay, cfg.lr)",
           ("tests/test_pretrained.py::test_the_encoder_learns_at_its_own_rate",)),
    Mutant("a checkpoint's decoder never loaded", "robosat_effnet/models/__init__.py",
           "        _weights.load_decoder(head, weights)", "        pass",
           ("tests/test_pretrained.py::test_a_checkpoint_as_weights_starts_the_whole_model_when_it_fits",)),
    Mutant("single tiles drawn as blocks", "robosat_effnet/prepare/blocks.py",
           "if len(members) > 1]", "if len(members) > 0]",
           ("tests/test_pretrained.py::test_blocks_are_whole_neighbourhoods_holding_the_fraction",)),
    Mutant("study ignores --weights", "robosat_effnet/study/runs.py",
           'weights=key.weights or "none",', 'weights="none",',
           ("tests/test_study.py::test_weights_are_a_dimension_of_the_study",)),
    # Hostile input (issue 22): each check that keeps a bad value from running or from passing silently.
    Mutant("hostile: nan passes a float option", "robosat_effnet/cli/options.py",
           "        if not math.isfinite(number):\n", "        if False:\n",
           ("tests/test_non_finite.py::test_every_float_option_refuses_nan_and_infinity",)),
    Mutant("hostile: nan passes a TOML value", "robosat_effnet/config/reading.py",
           "            elif not is_finite(value):", "            elif False:",
           ("tests/test_non_finite.py::test_every_float_config_value_refuses_nan_and_infinity",)),
    Mutant("hostile: ./dataset.toml wins over the masks' record", "robosat_effnet/cli/features.py",
           "    if recorded is not None:\n        return recorded, record\n",
           "    if recorded is not None and not Path(\"dataset.toml\").is_file():\n        return recorded, record\n",
           ("tests/test_features_provenance.py::test_rasterized_labels_keep_their_classes_and_touching_band_"
            "whatever_lies_in_the_folder",
            "tests/test_features_provenance.py::test_predicted_masks_keep_the_checkpoints_classes")),
    Mutant("hostile: tile size unbounded", "robosat_effnet/cli/tile.py",
           "type=click.IntRange(16, MAX_TILE_SIZE)", "type=click.IntRange(min=16)",
           ("tests/test_cli_limits.py",)),
    Mutant("hostile: GeoJSON coordinates unchecked", "robosat_effnet/data/geojson.py",
           "    problem = coordinate_problem(geometry)\n", "    problem = None\n",
           ("tests/test_geojson_input.py::test_hostile_geojson_is_one_short_line_in_every_reader",)),
    Mutant("hostile: onnx metadata trusted over the graph", "robosat_effnet/models/onnx.py",
           "    _check_graph(proto, spec, path)\n", "",
           ("tests/test_onnx.py::test_metadata_the_graph_contradicts_is_refused_when_opened",)),
    Mutant("hostile: export replaces a symbolic link", "robosat_effnet/deploy/export.py",
           "    if plain_file(output):", "    if output.exists():",
           ("tests/test_single_file_outputs.py::test_a_symbolic_link_where_the_file_goes_is_refused_and_kept",)),
    Mutant("hostile: error glued to a progress bar", "robosat_effnet/cli/options.py",
           "        bar.close()\n", "        pass\n",
           ("tests/test_cli_reporting.py::test_an_error_after_a_progress_bar_starts_its_own_line",)),
    Mutant("validate_every ignored", "robosat_effnet/training/loop.py",
           "validated = (epoch + 1) % cfg.validate_every == 0 or epoch + 1 == cfg.epochs", "validated = True",
           ("tests/test_train_wiring.py::test_validate_every_scores_only_those_epochs_and_the_last",)),
    Mutant("b8 pads symmetrically again", "robosat_effnet/models/scaling.py",
           '"b8": Scaling(2.2, 3.6, 672, 0.5, 1e-3, 0.01, same_padding=True),',
           '"b8": Scaling(2.2, 3.6, 672, 0.5, 1e-3, 0.01),',
           ("tests/test_efficientnet_lite.py::test_b8_and_l2_equal_timms_tensorflow_ports_at_even_and_odd_sizes[b8]",)),
    Mutant("retention keeps every epoch file", "robosat_effnet/training/retention.py",
           "cut = max(0, len(names) - keep)", "cut = 0",
           ("tests/test_checkpoint_retention.py",)),
    Mutant("eval ignores the labels' class record", "robosat_effnet/evaluation/evaluate.py",
           "    warn_other_classes(labels, spec.classes, name,", "    (lambda *_: None)(labels, spec.classes, name,",
           ("tests/test_record_classes.py",)),
    Mutant("quantiser temp files outside ours", "robosat_effnet/deploy/quantize.py",
           'with temp_folder("int8") as tmp, temp_inside(tmp):', 'with temp_folder("int8") as tmp:',
           ("tests/test_temp_names.py::test_a_run_killed_with_sigkill_leaves_temp_files_the_next_run_removes",)),
    Mutant("sweep takes any hidden .tmp", "robosat_effnet/outputs/temp.py",
           "if is_temp(name) and _stale(Path(root) / name):",
           'if name.startswith(".") and ".tmp" in name and (not is_temp(name) or _stale(Path(root) / name)):',
           ("tests/test_temp_names.py::test_every_sweep_keeps_plausible_user_files_and_removes_our_dead_ones",
            "tests/test_temp_names.py::test_features_keeps_the_users_look_alike_temp_files")),
    Mutant("output paths: a folder output not checked", "robosat_effnet/outputs/checks.py",
           "    path = Path(path)\n    if path.is_dir():\n        return True\n", "    return Path(path).is_dir()\n",
           ("tests/test_output_paths.py::test_a_folder_output_that_cannot_be_a_folder_is_one_line_naming_it",)),
    Mutant("-q: the shared quiet option without its short form", "robosat_effnet/cli/options.py",
           'return click.option("--quiet", "-q", is_flag=True, help=help)',
           'return click.option("--quiet", is_flag=True, help=help)',
           ("tests/test_cli_options.py",)),
    Mutant("tile names: isdigit and int() again", "robosat_effnet/text.py",
           "    if _DIGITS.fullmatch(text) is None:\n        return None\n",
           "    if not text.strip().isdigit():\n        return None\n",
           ("tests/test_tile_names.py",)),
    Mutant("byte-order mark: text read as plain utf-8", "robosat_effnet/text.py",
           'TEXT_ENCODING = "utf-8-sig"', 'TEXT_ENCODING = "utf-8"',
           ("tests/test_byte_order_mark.py",)),
    Mutant("view: a rewrite keeps the earlier page's other tiles", "robosat_effnet/view/page.py",
           '_remove_other_tiles(out / "tiles" / kind, {tile_path(out / "tiles" / kind, t, ext) for t in files})',
           "pass",
           ("tests/test_view_pages.py::test_a_rewritten_page_holds_exactly_what_the_new_run_shows",)),
    Mutant("view: symlinked tiles linked as links", "robosat_effnet/view/page.py",
           "    real = source.resolve()\n", "    real = source\n",
           ("tests/test_view_pages.py::test_tiles_that_are_symbolic_links_are_served",)),
    Mutant("view: IPv4 socket for every host", "robosat_effnet/view/server.py",
           "self.address_family = address_family(host)", "self.address_family = socket.AF_INET",
           ("tests/test_view_pages.py::test_the_page_is_served_on_ipv4_and_ipv6_hosts",)),
    Mutant("download: retry off", "robosat_effnet/prepare/fetch.py",
           "retry = PacedRetry(total=retries,", "retry = PacedRetry(total=0,",
           ("tests/test_download.py::test_a_500_is_retried_until_the_tile_comes",)),
    Mutant("download: Retry-After ignored", "robosat_effnet/prepare/fetch.py",
           "respect_retry_after_header=True", "respect_retry_after_header=False",
           ("tests/test_download.py::test_429_waits_at_least_retry_after",)),
    Mutant("download: non-image body accepted", "robosat_effnet/prepare/fetch.py",
           "    problem = check(body)\n", "    problem = None\n",
           ("tests/test_download.py::test_a_body_that_is_no_tile_is_a_failure_never_a_tile",)),
    Mutant("download: no imagery retried", "robosat_effnet/prepare/fetch.py",
           "RETRY_STATUS = (429, 500, 502, 503, 504)", "RETRY_STATUS = (404, 429, 500, 502, 503, 504)",
           ("tests/test_download.py::test_no_imagery_is_recorded_not_retried_nor_asked_again",)),
    Mutant("download: no imagery asked again", "robosat_effnet/prepare/download.py",
           "        elif tile not in known_missing:\n", "        else:\n",
           ("tests/test_download.py::test_no_imagery_is_recorded_not_retried_nor_asked_again",)),
    Mutant("cover: tiles only touched along an edge listed", "robosat_effnet/prepare/cover.py",
           "inside = shapely.intersects(area, squares) & ~shapely.touches(area, squares)",
           "inside = shapely.intersects(area, squares)",
           ("tests/test_cover.py::test_an_outline_along_tile_edges_leaves_out_the_tiles_it_only_touches",)),
    Mutant("cover: a GeoTIFF's tiles without data listed", "robosat_effnet/prepare/cover.py",
           "if read_tile(src, tile, COVER_SIZE, [], resampling)[1].any()}",
           "if read_tile(src, tile, COVER_SIZE, [], resampling)[1].any() or True}",
           ("tests/test_cover.py::test_a_geotiff_gives_exactly_the_tiles_tile_writes",)),
    Mutant("COG URL taken for a local path", "robosat_effnet/cli/options.py",
           "        if is_url(value):\n            return value\n", "",
           ("tests/test_cog_url.py::test_tile_by_url_equals_tile_of_the_file",
            "tests/test_cog_url.py::test_predict_by_url_equals_predict_of_the_file")),
    Mutant("issue31: odd weights structure trusted", "robosat_effnet/models/weights.py",
           """model = tensors(data.get("model"), f"{path} (a robosat_effnet checkpoint)", "its 'model' entry")""",
           """model = data["model"]""",
           ("tests/test_hostile_weights.py::test_the_named_instances",)),
    Mutant("issue31: divergence not caught", "robosat_effnet/training/engine.py",
           "        if value is not None and not math.isfinite(value):", "        if False:",
           ("tests/test_divergence.py::test_a_huge_learning_rate_stops_the_run_before_any_checkpoint",)),
    Mutant("issue31: numeric key domains unchecked", "robosat_effnet/config/model.py",
           """if domain.problem(value) or key == "image_size" and value % 32:""",
           """if key == "image_size" and value % 32:""",
           ("tests/test_config_domains.py::test_gamma_below_zero_is_refused_with_focal",)),
    Mutant("issue31: loss-breaking normalisation accepted", "robosat_effnet/config/dataset.py",
           "    problem = normalisation_problem(mean, std) if mean is not None else None\n", "    problem = None\n",
           ("tests/test_config_domains.py::test_values_that_make_the_loss_nan_are_refused_naming_the_key",)),
    Mutant("issue31: weights of another architecture unnamed", "robosat_effnet/models/fitting.py",
           "candidates = [name for name in identify(state, layout) if name != backbone] if state is not None else []",
           "candidates = []",
           ("tests/test_hostile_weights.py::test_weights_of_another_architecture_say_which_and_what_to_pass",)),
    Mutant("issue31: a folder said not to exist", "robosat_effnet/io.py",
           "    if path.is_dir():\n        return \"is a folder", "    if False:\n        return \"is a folder",
           ("tests/test_hostile_weights.py::test_the_library_says_folder_too",)),
    Mutant("issue31: study run folders collide", "robosat_effnet/study/recipe.py",
           "if weights_file(w) and plain.count(label) > 1 else None", "if False else None",
           ("tests/test_study_runs.py::test_the_named_collisions",)),
    Mutant("issue31: study weights checked only when their run trains", "robosat_effnet/study/__init__.py",
           "        check_fits(weights_, backbone, dataset_cfg.in_channels)", "        pass",
           ("tests/test_study_runs.py::test_every_runs_weights_are_checked_before_the_first_run_trains",)),
    Mutant("issue31: dataset.toml domains unchecked", "robosat_effnet/config/dataset.py",
           "                and domain.problem(value):", "                and False:",
           ("tests/test_config_domains.py::test_values_that_make_the_loss_nan_are_refused_naming_the_key",)),
    # issue 28: outlines a mapper can keep
    Mutant("issue28: masks are the plain argmax again", "robosat_effnet/threshold.py",
           "        classes[(classes > 0) & (best < threshold)] = 0\n", "        pass\n",
           ("tests/test_threshold.py::test_a_doubtful_building_pixel_is_background",
            "tests/test_threshold.py::test_predict_masks_are_the_probability_tiles_above_the_threshold")),
    Mutant("issue28: predict ignores --threshold", "robosat_effnet/predict/runner.py",
           "        out = to_classes(probs, threshold)", "        out = to_classes(probs)",
           ("tests/test_threshold.py::test_predict_masks_are_the_probability_tiles_above_the_threshold",)),
    Mutant("issue28: eval scores argmax masks", "robosat_effnet/evaluation/evaluate.py",
           "pred = to_classes(probs, threshold).long().cpu()", "pred = probs.argmax(dim=1).cpu()",
           ("tests/test_threshold.py::test_eval_scores_the_masks_predict_draws",)),
    Mutant("issue28: min-score keeps every outline", "robosat_effnet/vectorize/features.py",
           "kept = [f for f in report.features if f.score is None or f.score >= min_score]",
           "kept = list(report.features)",
           ("tests/test_footprints.py::test_min_score_drops_the_outlines_the_model_doubts",)),
    Mutant("issue28: blocks drawn at random despite --probs", "robosat_effnet/prepare/blocks.py",
           "        order = sorted(order, key=lambda i: -mean[i])", "        order = list(order)",
           ("tests/test_blocks_uncertainty.py",)),
    Mutant("config: reading a dataset.toml imports torch", "robosat_effnet/config/model.py",
           "if TYPE_CHECKING:  # a checkpoint's spec needs torch; reading a dataset.toml does not\n",
           "if True:\n",
           ("tests/test_cli_help.py::test_the_stages_without_a_network_import_no_torch",)),
    Mutant("tile limit refuses exactly the maximum", "robosat_effnet/tiles.py",
           "    if count > max_tiles:\n        raise TooManyTilesError",
           "    if count >= max_tiles:\n        raise TooManyTilesError",
           ("tests/test_geo_tile.py::test_the_tile_limit_is_inclusive_and_says_how_many",)),
    Mutant("an out-of-range zoom reported as too many tiles", "robosat_effnet/data/raster.py",
           '        raise ConfigError(f"zoom {zoom} is out of range',
           '        raise TooManyTilesError(f"zoom {zoom} is out of range',
           ("tests/test_geo_tile.py::test_a_zoom_out_of_range_is_a_setting_error_not_too_many_tiles",)),
    Mutant("loaded models initialised at random first", "robosat_effnet/models/materialise.py",
           "    model = meta_build(build)\n", "    model = build()\n",
           ("tests/test_materialise.py",)),
    Mutant("a loaded model shares the caller's tensors", "robosat_effnet/models/materialise.py",
           "v.to(dtype=own[k].dtype, copy=True)", "v",
           ("tests/test_materialise.py",)),
    Mutant("meta builds fill random values", "robosat_effnet/models/materialise.py",
           '    with torch.device("meta"), _NoRandomFill():', '    with torch.device("meta"):',
           ("tests/test_materialise.py::test_loading_a_checkpoint_imports_no_compiler",)),
    Mutant("a checked state dict checked again", "robosat_effnet/models/fitting.py",
           "state if checked else tensors(state, source)", "tensors(state, source)",
           ("tests/test_materialise.py::test_each_file_is_checked_for_nan_once",)),
    Mutant("issue28: unlabelled tiles left out of training", "robosat_effnet/training/loop.py",
           'samples["training"] = samples["training"] + list(extra_training)', "pass",
           ("tests/test_adapt.py::test_train_with_unlabelled_tiles_trains_on_them_too",)),
    Mutant("conflate: overlap threshold inverted", "robosat_effnet/vectorize/conflate.py",
           "new = predicted[ratios <= overlap]", "new = predicted[ratios > overlap]",
           ("tests/test_conflate.py::test_a_building_is_mapped_when_more_than_overlap_of_it_is_covered",
            "tests/test_conflate.py::test_conflate_returns_exactly_the_buildings_the_map_lacks")),
    Mutant("deepness: resolution unbounded (divides by zero)", "robosat_effnet/deploy/deepness.py",
           "    if not MIN_RESOLUTION_CM <= cm <= MAX_RESOLUTION_CM:  # nan fails too\n",
           "    if not cm > 0:\n",
           ("tests/test_deepness_options.py::test_any_settings_give_finite_metadata_or_one_config_error",)),
    Mutant("deepness: min_area unbounded (overflows)", "robosat_effnet/deploy/deepness.py",
           "    if not 0 <= settings.min_area <= MAX_AREA_M2:  # nan fails too\n",
           "    if settings.min_area < 0:\n",
           ("tests/test_deepness_options.py::test_any_settings_give_finite_metadata_or_one_config_error",)),
    Mutant("deepness: resolution written to two decimals", "robosat_effnet/deploy/deepness.py",
           "        resolution = written_resolution(settings.resolution)\n",
           "        resolution = round(written_resolution(settings.resolution), 2)\n",
           ("tests/test_deepness_options.py::test_the_resolution_written_is_the_one_reported_and_never_zero",)),
    Mutant("onnx: graph kind taken from the metadata unchecked", "robosat_effnet/models/onnx.py",
           "        check_kind(proto, spec, path, kind)  # the graph computes what the metadata says it does\n",
           "        pass\n",
           ("tests/test_onnx_kind.py::test_every_edit_of_the_metadata_is_refused_in_one_line_or_changes_nothing",
            "tests/test_onnx_kind.py::test_the_reported_files_are_one_line_in_predict")),
    Mutant("deepness: default resolution in ground units, not an XYZ layer's", "robosat_effnet/deploy/deepness.py",
           "    return mercator, note\n", "    return ground, note\n",
           ("tests/test_deepness.py::test_metadata_parses_as_deepness_parses_it",)),
    Mutant("deepness: --tile-size ignored", "robosat_effnet/deploy/deepness.py",
           "    size = settings.tile_size if settings.tile_size is not None else spec.tile_size\n",
           "    size = spec.tile_size\n",
           ("tests/test_deepness_options.py::test_any_settings_give_finite_metadata_or_one_config_error",)),
    # merge fix: a model description's per-band counts are checked before normalisation_problem's generic line
    Mutant("merge: per-band counts checked after the normalisation", "robosat_effnet/models/checkpoint.py",
           "        # The counts first: they say which list is short; normalisation_problem only knows the lengths "
           "differ.\n",
           "        problem = normalisation_problem(spec.mean, spec.std)\n        if problem:\n"
           "            raise ValueError(f\"its model description's mean and std {problem}\")\n",
           ("tests/test_outputs.py::test_a_per_band_count_that_differs_from_the_bands_is_named_by_its_counts",
            "tests/test_outputs.py::test_damaged_checkpoint_contents_are_one_clear_error")),
    # merge fix: every command carries -h itself, so README's reference does not depend on which test ran first
    Mutant("merge: a command takes -h only through the group", "robosat_effnet/cli/weights.py",
           '@click.command("weights", context_settings=COMMAND_SETTINGS)', '@click.command("weights")',
           ("tests/test_cli_options.py::test_h_is_help_for_every_command_however_it_is_reached",)),
    # merge fix: a study's eval.json from before mask_threshold was recorded is the argmax's (threshold 0)
    Mutant("merge: an old eval.json taken as threshold 0.5", "robosat_effnet/study/runs.py",
           'recorded.get("mask_threshold", 0) == threshold', 'recorded.get("mask_threshold", 0.5) == threshold',
           ("tests/test_study_runs.py::test_an_eval_json_from_before_the_threshold_counts_as_the_argmax",)),
    # issue 30: `rs-effnet --help` and every command's --help without torch or rasterio
    Mutant("help: a command module imports torch at its top", "robosat_effnet/cli/weights.py",
           "import click\n", "import click\nimport torch  # noqa: F401\n",
           ("tests/test_cli_help.py::test_command_help_imports_neither_torch_nor_rasterio[weights]",
            "tests/test_cli_help.py::test_the_group_help_imports_neither_torch_nor_rasterio")),
    Mutant("help: sample imports the synthetic scenes (rasterio) at its top", "robosat_effnet/cli/sample.py",
           "from robosat_effnet.cli.options import COMMAND_SETTINGS, reports_errors\n",
           "from robosat_effnet.cli.options import COMMAND_SETTINGS, reports_errors\n"
           "from robosat_effnet.data.synthetic import write_sample  # noqa: F401\n",
           ("tests/test_cli_help.py::test_command_help_imports_neither_torch_nor_rasterio[sample]",
            "tests/test_cli_help.py::test_the_group_help_imports_neither_torch_nor_rasterio")),
    # issue 30: each constant defined once (the zoom bound, the precisions, ImageNet's statistics)
    Mutant("once: a command's --zoom apart from limits.MAX_ZOOM", "robosat_effnet/cli/tile.py",
           "click.IntRange(0, MAX_ZOOM)", "click.IntRange(0, 31)",
           ("tests/test_cli_limits.py::test_every_zoom_option_takes_the_slippy_map_zooms_of_the_library",)),
    Mutant("once: the CLI spells the precisions out again", "robosat_effnet/cli/options.py",
           "from robosat_effnet.precision import PRECISIONS\n", 'PRECISIONS = ("fp32", "bf16")\n',
           ("tests/test_cli_train.py::test_unknown_precision_is_a_usage_error",)),
    Mutant("once: the weights spell ImageNet's statistics out again", "robosat_effnet/models/weights.py",
           "IMAGENET_NORMALISATION = (IMAGENET_MEAN, IMAGENET_STD)\n",
           "IMAGENET_NORMALISATION = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])\n",
           ("tests/test_transforms.py::test_imagenet_statistics_are_defined_once",)),
    # issue 30: bench's orchestration is a library call (bench.run.run_bench), the CLI only parses and reports
    Mutant("bench run: the caller's thread count not restored", "robosat_effnet/bench/run.py",
           "        torch.set_num_threads(saved[0])\n", "        pass\n",
           ("tests/test_bench.py::test_run_bench_from_python_returns_the_report_it_echoes",)),
    Mutant("bench run: sections in the order they were asked", "robosat_effnet/bench/run.py",
           "    for name in SECTIONS:\n        if name in run.options.sections:\n",
           "    for name in run.options.sections:\n        if name in SECTIONS:\n",
           ("tests/test_bench.py::test_run_bench_from_python_returns_the_report_it_echoes",)),
    Mutant("bench options: a size off the networks' stride accepted", "robosat_effnet/bench/options.py",
           "    if options.size % STRIDE:\n", "    if False:\n",
           ("tests/test_bench.py::test_run_bench_refuses_bad_options_before_any_work",
            "tests/test_bench.py::test_bench_rejects_unknown_sections_and_models")),
    # Issue 30: one scene-to-tile warp (data.warp) for `tile` and `predict scene.tif`: the same pixels in both.
    Mutant("one warp: predict resamples otherwise than tile", "robosat_effnet/predict/geotiff.py",
           "dataset = WarpedTiles(scene, todo, tile_size, border, chosen, spec, method)",
           'dataset = WarpedTiles(scene, todo, tile_size, border, chosen, spec, '
           'resampling_method("nearest" if resampling != "nearest" else "bilinear"))',
           ("tests/test_one_warp.py",)),
    Mutant("one warp: predict's default resampling is not tile's", "robosat_effnet/predict/options.py",
           "    resampling: str = DEFAULT_RESAMPLING",
           '    resampling: str = "nearest"',
           ("tests/test_one_warp.py",)),
    Mutant("one warp: tile's default resampling is not predict's", "robosat_effnet/prepare/tile.py",
           "    resampling: str = DEFAULT_RESAMPLING,", '    resampling: str = "cubic",',
           ("tests/test_one_warp.py",)),
    Mutant("one warp: tile --resampling default is not predict's", "robosat_effnet/cli/tile.py",
           'default=DEFAULT_RESAMPLING, show_default=True, help="How pixels are resampled into the tile grid.")',
           'default="nearest", show_default=True, help="How pixels are resampled into the tile grid.")',
           ("tests/test_one_warp.py::test_tile_and_predict_share_one_resampling_default_and_choice",)),
    Mutant("one warp: kernel scale estimated per window", "robosat_effnet/data/warp.py",
           "                       resampling_scale(src, tile.z, size))", "                       {})",
           ("tests/test_one_warp.py",)),
    Mutant("one warp: approximate transformer", "robosat_effnet/data/warp.py",
           "add_alpha=not has_alpha, tolerance=WARP_TOLERANCE, **scale)", "add_alpha=not has_alpha, **scale)",
           ("tests/test_one_warp.py",)),

    # issue 30: predict's options travel as one object; the checkpoint is read once; one resolve_device
    Mutant("predict options: the CLI drops a field on the way", "robosat_effnet/cli/predict.py",
           "batch_size=batch_size, workers=default_workers() if workers is None else workers,",
           "workers=default_workers() if workers is None else workers,",
           ("tests/test_predict_options.py::test_every_option_set_on_the_command_line_reaches_the_loop_unchanged",)),
    Mutant("predict options: the runner rebuilds them without one field", "robosat_effnet/predict/runner.py",
           "_loop(loader, tiles, predictor, spec, output, options, classes, result, desc)",
           "_loop(loader, tiles, predictor, spec, output, type(options)(**{**vars(options), 'tta': False}), classes, "
           "result, desc)",
           ("tests/test_predict_options.py::test_every_option_set_on_the_command_line_reaches_the_loop_unchanged",)),
    Mutant("predict options: the keyword front ignores the options object", "robosat_effnet/predict/options.py",
           "options = options if options is not None else PredictOptions()",
           "options = PredictOptions()",
           ("tests/test_predict_options.py::test_keywords_are_a_front_for_the_options",)),
    Mutant("checkpoint read twice: the record's digest read from the file again", "robosat_effnet/predict/tiles.py",
           'claim = make_record("predict", input_dir, settings, loaded.path, loaded.sha256)',
           'claim = make_record("predict", input_dir, settings, loaded.path)',
           ("tests/test_predict_options.py::test_one_predict_reads_the_checkpoint_file_once",)),
    Mutant("checkpoint read twice: the scene's record digest read from the file again",
           "robosat_effnet/predict/geotiff.py",
           'make_record("predict", scene, settings, loaded.path, loaded.sha256)',
           'make_record("predict", scene, settings, loaded.path)',
           ("tests/test_predict_options.py::test_one_predict_reads_the_checkpoint_file_once",)),
    Mutant("checkpoint read twice: the CLI opens it per product", "robosat_effnet/cli/predict.py",
           "model = open_model(checkpoint, resolve_device(device)) if needed else checkpoint",
           "model = checkpoint",
           ("tests/test_predict_options.py::test_one_predict_reads_the_checkpoint_file_once",)),
    Mutant("checkpoint read twice: torch.load given the path", "robosat_effnet/models/checkpoint.py",
           "data = _safe_load(io.BytesIO(raw), path, map_location)",
           "data = _safe_load(path, path, map_location)",
           ("tests/test_predict_options.py::test_one_predict_reads_the_checkpoint_file_once",)),
    Mutant("checkpoint read twice: onnxruntime given the .onnx path", "robosat_effnet/models/onnx.py",
           'source = any_size(path) if graph == "deepness" else str(path) if _external(proto) else raw',
           'source = any_size(path) if graph == "deepness" else str(path)',
           ("tests/test_predict_options.py::test_an_exported_model_is_read_once_too",)),
    Mutant("device: model.toml's cuda = false ignored", "robosat_effnet/models/device.py",
           "if cuda is not False and torch.cuda.is_available():", "if torch.cuda.is_available():",
           ("tests/test_device.py::test_the_default_is_this_process_gpu_unless_model_toml_says_no",)),
    Mutant("device: the torchrun rank's GPU ignored", "robosat_effnet/models/device.py",
           'torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)) % torch.cuda.device_count())',
           'torch.device("cuda", 0)',
           ("tests/test_device.py::test_the_default_is_this_process_gpu_unless_model_toml_says_no",)),
    Mutant("device: cuda asked for without a GPU accepted", "robosat_effnet/models/device.py",
           'if device.type == "cuda" and not torch.cuda.is_available():', "if False:",
           ("tests/test_device.py::test_cuda_without_a_gpu_is_one_config_error",
            "tests/test_device.py::test_prediction_refuses_cuda_without_a_gpu",
            "tests/test_device.py::test_training_refuses_cuda_without_a_gpu_before_writing")),
    Mutant("once: predict spells the zoom bound out (30, equal to MAX_ZOOM today)", "robosat_effnet/cli/predict.py",
           "type=click.IntRange(0, MAX_ZOOM)", "type=click.IntRange(0, 30)",
           ("tests/test_cli_limits.py::test_every_zoom_option_follows_max_zoom_itself",)),
    Mutant("lazy root: the package imports its models (torch) when imported", "robosat_effnet/__init__.py",
           "__getattr__, __dir__ = lazy_names(globals(), _LAZY)",
           "__getattr__, __dir__ = lazy_names(globals(), _LAZY)\nfrom robosat_effnet.models import build_model",
           ("tests/test_cli_help.py::test_the_package_root_loads_its_names_on_first_use",)),
    Mutant("colour: the training tiles' hue, saturation and grey never applied", "robosat_effnet/training/datasets.py",
           "            if any(self.colour):", "            if False:",
           ("tests/test_train_wiring.py::test_hue_saturation_and_grayscale_reach_the_training_tiles_only",)),
    Mutant("colour: model.toml's hue, saturation and grayscale not passed to the training tiles",
           "robosat_effnet/training/loop.py", "jitter=model_cfg.jitter, colour=colour, **options)",
           "jitter=model_cfg.jitter, **options)",
           ("tests/test_train_wiring.py::test_hue_saturation_and_grayscale_reach_the_training_tiles_only",)),
    Mutant("colour: a dataset that is not RGB let through to the colour shift", "robosat_effnet/training/loop.py",
           "if any(colour) and model_cfg.augment and dataset_cfg.in_channels != 3:", "if False:",
           ("tests/test_cli_train.py::test_colour_augmentation_of_a_dataset_that_is_not_rgb_fails_cleanly",
            "tests/test_train_wiring.py::test_colour_of_a_dataset_that_is_not_rgb_is_refused")),
    Mutant("colour: the hue turned the wrong way round", "robosat_effnet/data/transforms.py",
           "+ math.sin(a) / math.sqrt(3) * _GREY_AXIS", "- math.sin(a) / math.sqrt(3) * _GREY_AXIS",
           ("tests/test_transforms.py::test_hue_turn_is_the_rotation_about_the_grey_axis",)),
]


def project_files(root: Path) -> list[str]:
    """Tracked and untracked-but-not-ignored files (what a clone plus the work in progress holds)."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=root,
                         check=True, capture_output=True).stdout.decode()
    return [name for name in out.split("\0") if name and (root / name).is_file()]


def copy_project(root: Path, target: Path) -> None:
    for name in project_files(root):
        dest = target / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, dest)


def environment(copy: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "COV_"))}
    env.update(PYTHONPATH=str(copy), PYTHONDONTWRITEBYTECODE="1", OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"))
    return env


def check_import(copy: Path) -> None:
    """The copy, not the editable install, is what the tests import."""
    out = subprocess.run([sys.executable, "-c", "import robosat_effnet; print(robosat_effnet.__file__)"], cwd=copy,
                         env=environment(copy), check=True, capture_output=True, text=True).stdout.strip()
    if not Path(out).resolve().is_relative_to(copy.resolve()):
        sys.exit(f"robosat_effnet imports from {out}, not from the copy {copy}: mutants would not be tested")


def run_tests(copy: Path, tests: tuple[str, ...]) -> tuple[str, float, str]:
    """('passed' | 'failed' | 'timeout', seconds, last lines of output)."""
    began = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
                              cwd=copy, env=environment(copy), capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return "timeout", time.perf_counter() - began, ""
    tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])
    return ("passed" if proc.returncode == 0 else "failed"), time.perf_counter() - began, tail


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("only", nargs="*", help="run only mutants whose name contains one of these words")
    parser.add_argument("--no-baseline", action="store_true", help="skip running the tests without mutants")
    args = parser.parse_args(argv)
    mutants = [m for m in MUTANTS if not args.only or any(word in m.name for word in args.only)]
    problems = 0
    for m in mutants:  # the list follows the code: every snippet must be there exactly once
        count = (ROOT / m.file).read_text().count(m.original)
        if count != 1:
            print(f"STALE     {m.name}: the snippet occurs {count} times in {m.file}; update tests/mutants.py")
            problems += 1
    if problems:
        return 1
    with tempfile.TemporaryDirectory(prefix="mutants-") as tmp:
        copy = Path(tmp) / ROOT.name
        copy_project(ROOT, copy)
        check_import(copy)
        if not args.no_baseline:
            tests = tuple(dict.fromkeys(t for m in mutants for t in m.tests))
            status, seconds, tail = run_tests(copy, tests)
            print(f"baseline  {status} in {seconds:.0f} s ({len(tests)} test targets)", flush=True)
            if status != "passed":
                print(tail)
                return 1
        survivors = []
        for m in mutants:
            path = copy / m.file
            source = path.read_text()
            path.write_text(source.replace(m.original, m.replacement))
            try:
                status, seconds, tail = run_tests(copy, m.tests)
            finally:
                path.write_text(source)
            verdict = {"failed": "killed", "timeout": "killed (timeout)", "passed": "SURVIVED"}[status]
            print(f"{verdict:<9} {m.name} ({m.file}, {seconds:.0f} s)", flush=True)
            if status == "passed":
                survivors.append(m.name)
    print(f"{len(mutants) - len(survivors)} of {len(mutants)} mutants killed"
          + (f"; survivors: {', '.join(survivors)}" if survivors else ""))
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
