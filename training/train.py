"""Train a CXR classifier end to end: features -> phase 1 (head) -> phase 2 (block5) -> export.

    python -m training.train --config training/configs/default.yaml [--data DIR] [--fresh]

``main`` reads top to bottom, one named step per stage. Everything that costs time is cached in
``runs/<name>/`` (log, config, per-phase checkpoints, in-phase backups) and ``runs/cache/``
(frozen-trunk features), so an interrupted run resumes where it stopped when started again with
the same command. After the export, ``finish_model_folder`` evaluates the model (metrics, shortcut
audit, card), exports the fast OpenVINO trunks with their parity report and fits the input gate.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import yaml

from training.calibration import fit_temperature
from training.config import data_dir as resolve_data_dir
from training.config import load_config, resolve
from training.data import Record, class_weights, read_manifest, sample_weights, select, summarize
from training.export import export_model, git_commit
from training.features import FeatureCache, build_cache
from training.model import build_model, chain_from, split_for_training, trunk_layers
from training.phases import ViewSampler, run_phase, views_by_record
from training.probe import linear_probe

log = logging.getLogger("training")
# oneDNN's "may compute fp32 convolutions in bf16" switch (`make train` sets it): on CPUs with
# AVX512_BF16 or AMX it makes the feature cache and fine-tuning ~1.4-1.7x faster. Evaluation,
# the parity report and the gate then run in a fresh process without it: they measure the model
# as the service runs it, against a true fp32 reference.
BF16_MATH = "TF_SET_ONEDNN_FPMATH_MODE"


@dataclass
class Splits:
    """Which cache rows each split uses and the labels and loss weights that go with them."""

    label_of: np.ndarray  # per cached record: class index, -1 if not one of this config's
    rows: dict[str, np.ndarray]  # per split: the clean view's row of each image
    y: dict[str, np.ndarray]  # per split: labels of those rows
    train_rows: np.ndarray  # every view of every training image
    class_weights: dict[int, float]
    image_weights: np.ndarray  # per training image (record order)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train a CXR classifier.")
    parser.add_argument("--config", default="training/configs/default.yaml")
    parser.add_argument("--data", default=None, help="cxr data folder (default: config / env)")
    parser.add_argument("--fresh", action="store_true", help="discard this run's checkpoints")
    parser.add_argument("--no-evaluate", action="store_true", help="export only (no metrics)")
    parser.add_argument("--no-fast-export", action="store_true", help="skip the OpenVINO trunks")
    parser.add_argument("--no-gate", action="store_true", help="skip fitting the input gate")
    parser.add_argument(
        "--finish-only", action="store_true", help="only evaluate/export/gate the exported model"
    )
    return parser.parse_args(argv)


def start_run(args: argparse.Namespace) -> tuple[dict[str, Any], Path, Path]:
    """The validated config, the data folder and the run folder (with its log)."""
    config = load_config(args.config)
    config["fast_export"] = config["fast_export"] and not args.no_fast_export
    config["fit_gate"] = config["fit_gate"] and not args.no_gate
    data_dir = resolve_data_dir(config, args.data)
    run_dir = resolve(config["runs_dir"]) / config["name"]
    if args.fresh and run_dir.exists():
        shutil.rmtree(run_dir)
    setup_logging(run_dir)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    log.info("config %s, data %s, run folder %s", args.config, data_dir, run_dir)
    keras.utils.set_random_seed(config["seed"])
    return config, data_dir, run_dir


def read_data(config: dict[str, Any], data_dir: Path) -> tuple[list[Record], list[Record]]:
    """(every class, for the shared feature cache; this config's classes)."""
    records = read_manifest(data_dir)
    all_classes = sorted({r.label for r in records})
    cached = select(records, all_classes, config["limit_per_split_class"])
    used = select(cached, config["classes"])
    log.info("data summary: %s", json.dumps(summarize(used)))
    return cached, used


def split_rows(cache: FeatureCache, config: dict[str, Any]) -> Splits:
    classes = config["classes"]
    label_of = np.array(
        [classes.index(r.label) if r.label in classes else -1 for r in cache.records]
    )
    split_of = np.array([r.split for r in cache.records])
    row_label, row_split = label_of[cache.record_index], split_of[cache.record_index]
    clean = cache.view == 0
    rows = {
        s: np.flatnonzero(clean & (row_split == s) & (row_label >= 0))
        for s in ("train", "val", "test")
    }
    y = {s: row_label[r] for s, r in rows.items()}
    sources = np.array([r.source_repo for r in cache.records])[cache.record_index[rows["train"]]]
    weights = sample_weights(y["train"], sources, len(classes), config["weighting"])
    balanced = class_weights(y["train"], len(classes))
    log.info("class weights %s; weighting %s", balanced, config["weighting"])
    train_rows = np.flatnonzero((row_split == "train") & (row_label >= 0))
    return Splits(label_of, rows, y, train_rows, balanced, weights)


def train_head(model, cache: FeatureCache, splits: Splits, config, run_dir: Path) -> dict:
    """Phase 1: the head alone, on frozen (ImageNet) block5_pool features of the clean views."""
    pooled = {
        s: cache.pooled[cache.record_index[r]].astype(np.float32) for s, r in splits.rows.items()
    }
    n_classes = len(config["classes"])
    fit_kwargs = {
        "y": keras.utils.to_categorical(splits.y["train"], n_classes),
        "sample_weight": splits.image_weights,
        "batch_size": config["phase1"]["batch_size"],
        "shuffle": True,
    }
    head = chain_from(model, "block5_pool", "head")
    return run_phase(
        "phase1", head, pooled["train"], pooled["val"], splits.y["val"],
        config["phase1"], run_dir, n_classes, fit_kwargs,
    )  # fmt: skip


def fine_tune(model, cache: FeatureCache, splits: Splits, config, run_dir: Path, head_result):
    """Phase 2 and the optional phase 3: the layers after the cache point (block5) and the head,
    on the cached views of each phase's recipes. Each is kept only if val improves on what came
    before it (phase 2 on phase 1's head, ``head_result``; phase 3 on phase 2)."""
    _, top = split_for_training(model, config["feature_layer"])
    for layer in trunk_layers(model, config["feature_layer"]):
        layer.trainable = True
    x_val = cache.features[splits.rows["val"]].astype(np.float32)
    results = {}
    for name, after in (("phase2", None), ("phase3", "phase2")):
        phase = config[name]
        if phase is None:
            continue
        views_of = views_by_record(cache, splits.train_rows, config, phase["recipes"])
        images = sorted(views_of)  # record order, as the image weights
        sampler = ViewSampler(
            cache.features, [views_of[i] for i in images], splits.label_of[images],
            splits.image_weights, len(config["classes"]), phase["batch_size"], config["seed"],
        )  # fmt: skip
        results[name] = run_phase(
            name, top, sampler, x_val, splits.y["val"], phase, run_dir,
            len(config["classes"]), {}, after=after,
            start_best=head_result if after is None else None,
        )  # fmt: skip
    return top, results


def calibrate(top, cache: FeatureCache, splits: Splits, config) -> dict | None:
    """Temperature scaling of the logits, fitted on the val split (metadata.json)."""
    if not config["calibrate"]:
        return None
    val_probs = top.predict(cache.features[splits.rows["val"]].astype(np.float32), verbose=0)
    calibration = fit_temperature(val_probs, splits.y["val"])
    log.info("calibration: %s", calibration)
    return calibration


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    if args.finish_only:
        config = load_config(args.config)
        config["fast_export"] = config["fast_export"] and not args.no_fast_export
        config["fit_gate"] = config["fit_gate"] and not args.no_gate
        model_dir = resolve(config["export_dir"]) / config["name"]
        finish_model_folder(config, model_dir, resolve_data_dir(config, args.data))
        return model_dir
    config, data_dir, run_dir = start_run(args)
    timings: dict[str, float] = {}
    started = time.time()

    def timed(step: str, since: float) -> None:
        timings[f"{step}_s"] = round(time.time() - since, 1)

    cached_records, used = read_data(config, data_dir)
    model = build_model(config)  # refuses random weights unless the config allows them
    t = time.time()
    cache = build_cache(config, data_dir, cached_records, resolve(config["runs_dir"]))
    timed("feature_cache", t)
    splits = split_rows(cache, config)

    pooled = {s: cache.pooled[cache.record_index[r]] for s, r in splits.rows.items()}
    probe = linear_probe(pooled, splits.y, config["classes"])  # the baseline to beat
    log.info("linear probe baseline: %s", probe)

    t = time.time()
    phases = {"phase1": train_head(model, cache, splits, config, run_dir)}
    timed("phase1", t)
    t = time.time()
    top, fine_tuned = fine_tune(model, cache, splits, config, run_dir, phases["phase1"])
    phases.update(fine_tuned)
    timed("fine_tune", t)
    calibration = calibrate(top, cache, splits, config)
    timed("total_train", started)

    model_dir = resolve(config["export_dir"]) / config["name"]
    training_info = {
        "config": config,
        "config_file": str(args.config),
        "git_commit": git_commit(),
        "data": {
            "dir": str(data_dir),
            "summary": summarize(used),
            "class_weights": splits.class_weights,
        },
        "seeds": {
            "global": config["seed"],
            "augmentation": "numpy default_rng([seed, image_index])",
        },
        "phases": phases,
        "linear_probe": probe,
        "timings": timings,
        "run_dir": str(run_dir),
    }
    export_model(model, config, model_dir, training_info, calibration)
    for name in phases:  # training curves travel with the model
        history = run_dir / f"{name}.history.csv"
        if history.is_file():
            shutil.copy(history, model_dir / f"{name}.history.csv")
    log.info("exported %s in %.0f s", model_dir, time.time() - started)

    if args.no_evaluate:
        return model_dir
    if os.environ.get(BF16_MATH):
        t = time.time()
        finish_in_fp32(args, data_dir)
        log.info("evaluation, fast trunks and gate (fp32 process) in %.0f s", time.time() - t)
    else:
        finish_model_folder(config, model_dir, data_dir)
    return model_dir


def finish_in_fp32(args: argparse.Namespace, data_dir: Path) -> None:
    """``finish_model_folder`` in a child process without the bf16 math switch."""
    command = [sys.executable, "-m", "training.train", "--config", str(args.config)]
    command += ["--finish-only", "--data", str(data_dir)]
    command += ["--no-fast-export"] * args.no_fast_export + ["--no-gate"] * args.no_gate
    env = {k: v for k, v in os.environ.items() if k != BF16_MATH}
    subprocess.run(command, env=env, check=True)


def finish_model_folder(config: dict, model_dir: Path, data_dir: Path) -> None:
    """Evaluation (metrics, audit, card), fast trunks + parity report, input gate."""
    from training.evaluate import evaluate

    evaluate(model_dir, data_dir)
    if config["fast_export"] and config["backbone"] == "vgg16":
        from training.fast_export import run as export_fast

        export_fast(
            model_dir,
            data_dir,
            calibration=300,
            limit=None,
            int8=config["fast_export_int8"],
            fp16_weights=config["trunk_weights_fp16"],
        )
    if config["fit_gate"]:
        from training.gate import fit_gate

        fit_gate(model_dir, data_dir, limit_per_split_class=config["limit_per_split_class"])


def setup_logging(run_dir: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    for old in list(log.handlers):  # a second run in one process (ablations) logs to its own file
        log.removeHandler(old)
        old.close()
    for handler in (logging.FileHandler(run_dir / "train.log"), logging.StreamHandler(sys.stdout)):
        handler.setFormatter(formatter)
        log.addHandler(handler)
    log.setLevel(logging.INFO)


if __name__ == "__main__":
    main()
