"""Train a CXR classifier end to end: features -> phase 1 (head) -> phase 2 (block5) -> export.

    python -m training.train --config training/configs/default.yaml [--data DIR] [--fresh]

Reads top to bottom. Everything that costs time is cached in ``runs/<name>/`` (log, config,
per-phase checkpoints, in-phase backups) and ``runs/cache/`` (frozen-trunk features), so an
interrupted run resumes where it stopped when started again with the same command.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from pathlib import Path

import keras
import numpy as np
import yaml

from training.calibration import fit_temperature
from training.callbacks import TimeBudget, TqdmProgress, ValidationF1
from training.config import data_dir as resolve_data_dir
from training.config import load_config, resolve
from training.data import class_weights, read_manifest, sample_weights, select, summarize
from training.export import export_model, git_commit
from training.features import build_cache
from training.model import build_model, chain_from, split_for_training, trunk_layers
from training.probe import linear_probe

log = logging.getLogger("training")


class ViewSampler(keras.utils.PyDataset):
    """Phase 2 batches: each epoch, one random cached view (clean or augmented) per image."""

    def __init__(self, features, rows_per_image, labels, weights, n_classes, batch_size, seed):
        super().__init__()
        self.features, self.rows_per_image, self.n_classes = features, rows_per_image, n_classes
        self.labels, self.weights, self.batch_size = labels, weights, batch_size
        self.rng = np.random.default_rng(seed)
        self.on_epoch_end()

    def on_epoch_end(self) -> None:
        order = self.rng.permutation(len(self.rows_per_image))
        self.rows = np.array([self.rng.choice(self.rows_per_image[i]) for i in order])
        self.y, self.w = self.labels[order], self.weights[order]

    def __len__(self) -> int:
        return int(np.ceil(len(self.rows) / self.batch_size))

    def __getitem__(self, index: int):
        part = slice(index * self.batch_size, (index + 1) * self.batch_size)
        x = self.features[self.rows[part]].astype(np.float32)
        return x, keras.utils.to_categorical(self.y[part], self.n_classes), self.w[part]


def run_phase(
    name, model, train_data, x_val, y_val, phase_cfg, run_dir, n_classes, fit_kwargs, after=None
):
    """One training phase with resumable backups; returns the best val score. Skips if done.

    ``after``: a previous phase on the same model; its best checkpoint and score are this
    phase's starting best, so a continuation phase can only replace it by doing better on val.
    """
    best_path, done_path = run_dir / f"{name}.best.weights.h5", run_dir / f"{name}.done.json"
    if done_path.is_file():
        model.load_weights(best_path)
        log.info("%s already done (%s); loaded its best checkpoint", name, done_path.read_text())
        return json.loads(done_path.read_text())
    state_path = run_dir / f"{name}.state.json"
    if after is not None and not state_path.is_file():
        shutil.copy(run_dir / f"{after}.best.weights.h5", best_path)
        shutil.copy(run_dir / f"{after}.state.json", state_path)
    # label_smoothing (optional, per phase): softer targets, a regulariser for small data
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=phase_cfg.get("label_smoothing", 0))
    model.compile(optimizer=keras.optimizers.Adam(phase_cfg["lr"]), loss=loss)
    callbacks = [
        ValidationF1(x_val, y_val, best_path, state_path, n_classes),
        keras.callbacks.EarlyStopping("val_macro_f1", mode="max", patience=phase_cfg["patience"]),
        keras.callbacks.ReduceLROnPlateau("val_loss", factor=0.3, patience=2, min_lr=1e-6),
        keras.callbacks.CSVLogger(run_dir / f"{name}.history.csv", append=True),
        keras.callbacks.BackupAndRestore(run_dir / f"{name}.backup"),
        TimeBudget(phase_cfg.get("max_minutes")),
        TqdmProgress(name),
    ]
    started = time.time()
    model.fit(train_data, epochs=phase_cfg["epochs"], callbacks=callbacks, verbose=0, **fit_kwargs)
    model.load_weights(best_path)
    state = json.loads(state_path.read_text())
    result = {
        "best_epoch": state["epoch"],
        "val_macro_f1": state["best"][0],
        "val_loss": -state["best"][1],
        "seconds": round(time.time() - started, 1),
    }
    done_path.write_text(json.dumps(result))
    log.info("%s done: %s", name, result)
    return result


def views_by_record(cache, train_rows, config, recipes) -> dict[int, np.ndarray]:
    """Cache rows per training image: the clean view plus the views made by ``recipes``
    (all augmented views when ``recipes`` is None)."""
    names = config["cache"]["recipes"]
    allowed = np.ones(len(cache.view), dtype=bool)
    if recipes is not None and names:
        view_recipe = np.array(["clean", *names])[cache.view]
        allowed = (cache.view == 0) | np.isin(view_recipe, recipes)
    return {
        int(i): np.flatnonzero((cache.record_index == i) & allowed)
        for i in np.unique(cache.record_index[train_rows])
    }


def setup_logging(run_dir: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    for handler in (logging.FileHandler(run_dir / "train.log"), logging.StreamHandler(sys.stdout)):
        handler.setFormatter(formatter)
        log.addHandler(handler)
    log.setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description="Train a CXR classifier.")
    parser.add_argument("--config", default="training/configs/default.yaml")
    parser.add_argument(
        "--data", default=None, help="cxr data folder (default: config / CXR_DATA_DIR)"
    )
    parser.add_argument("--fresh", action="store_true", help="discard this run's checkpoints")
    parser.add_argument(
        "--no-evaluate", action="store_true", help="export only (no metrics, no card)"
    )
    parser.add_argument("--no-fast-export", action="store_true", help="skip the OpenVINO trunks")
    parser.add_argument("--no-gate", action="store_true", help="skip fitting the input gate")
    args = parser.parse_args(argv)

    # --- config, run folder, log ------------------------------------------------------------
    config = load_config(args.config)
    config["fast_export"] = config["fast_export"] and not args.no_fast_export
    config["fit_gate"] = config["fit_gate"] and not args.no_gate
    data_dir = resolve_data_dir(config, args.data)
    runs_dir = resolve(config["runs_dir"])
    run_dir = runs_dir / config["name"]
    if args.fresh and run_dir.exists():
        shutil.rmtree(run_dir)
    setup_logging(run_dir)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    log.info("config %s, data %s, run folder %s", args.config, data_dir, run_dir)
    keras.utils.set_random_seed(config["seed"])
    timings: dict[str, float] = {}
    started = time.time()

    # --- data: every class goes into the shared feature cache; this config picks its classes ---
    records = read_manifest(data_dir)
    all_classes = sorted({r.label for r in records})
    cached_records = select(records, all_classes, config["limit_per_split_class"])
    classes = config["classes"]
    used = select(cached_records, classes)
    log.info("data summary: %s", json.dumps(summarize(used)))

    # --- model (refuses random weights unless the config allows them) and feature cache -------
    model = build_model(config)
    t = time.time()
    cache = build_cache(config, data_dir, cached_records, runs_dir)
    timings["feature_cache_s"] = round(time.time() - t, 1)

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
    train_rows = np.flatnonzero((row_split == "train") & (row_label >= 0))  # all views
    weights = class_weights(y["train"], len(classes))
    source_of = np.array([r.source_repo for r in cache.records])
    train_sources = source_of[cache.record_index[rows["train"]]]
    image_weights = sample_weights(y["train"], train_sources, len(classes), config["weighting"])
    log.info("class weights %s; weighting %s", weights, config["weighting"])

    # --- baseline: linear probe on frozen ImageNet features ---------------------------------
    pooled = {s: cache.pooled[cache.record_index[r]] for s, r in rows.items()}  # clean views
    probe = linear_probe(pooled, y, classes)
    log.info("linear probe baseline: %s", probe)

    # --- phase 1: head only, on frozen block5_pool features of the clean views --------------
    head = chain_from(model, "block5_pool", "head")
    t = time.time()
    phase1 = run_phase(
        "phase1",
        head,
        pooled["train"].astype(np.float32),
        pooled["val"].astype(np.float32),
        y["val"],
        config["phase1"],
        run_dir,
        len(classes),
        {
            "y": keras.utils.to_categorical(y["train"], len(classes)),
            "sample_weight": image_weights,
            "batch_size": config["phase1"]["batch_size"],
            "shuffle": True,
        },
    )
    timings["phase1_s"] = round(time.time() - t, 1)

    # --- phase 2: unfreeze the blocks after the cache point (block5) and fine-tune gently -----
    _, top = split_for_training(model, config["feature_layer"])
    for layer in trunk_layers(model, config["feature_layer"]):
        layer.trainable = True
    views_of = views_by_record(cache, train_rows, config, config["phase2"]["recipes"])
    sampler = ViewSampler(
        cache.features,
        [views_of[i] for i in sorted(views_of)],
        label_of[sorted(views_of)],
        image_weights,  # same order: record index ascending
        len(classes),
        config["phase2"]["batch_size"],
        config["seed"],
    )
    t = time.time()
    phase2 = run_phase(
        "phase2",
        top,
        sampler,
        cache.features[rows["val"]].astype(np.float32),
        y["val"],
        config["phase2"],
        run_dir,
        len(classes),
        {},
    )
    timings["phase2_s"] = round(time.time() - t, 1)
    phases = {"phase1": phase1, "phase2": phase2}

    # --- optional phase 3: continue fine-tuning at a lower rate; kept only if val improves ----
    if config.get("phase3"):
        t = time.time()
        phases["phase3"] = run_phase(
            "phase3",
            top,
            sampler,
            cache.features[rows["val"]].astype(np.float32),
            y["val"],
            config["phase3"],
            run_dir,
            len(classes),
            {},
            after="phase2",
        )
        timings["phase3_s"] = round(time.time() - t, 1)

    # --- calibration: one temperature for the logits, fitted on the val split ---------------
    calibration = None
    if config["calibrate"]:
        val_probs = top.predict(cache.features[rows["val"]].astype(np.float32), verbose=0)
        calibration = fit_temperature(val_probs, y["val"])
        log.info("calibration: %s", calibration)

    # --- export the full model (ImageNet blocks 1-4 + trained block5 + head) ------------------
    timings["total_train_s"] = round(time.time() - started, 1)
    model_dir = resolve(config["export_dir"]) / config["name"]
    training_info = {
        "config": config,
        "config_file": str(args.config),
        "git_commit": git_commit(),
        "data": {"dir": str(data_dir), "summary": summarize(used), "class_weights": weights},
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

    if not args.no_evaluate:
        finish_model_folder(config, model_dir, data_dir)
    return model_dir


def finish_model_folder(config: dict, model_dir: Path, data_dir: Path) -> None:
    """Evaluation (metrics, audit, card), fast trunks + parity report, input gate."""
    from training.evaluate import evaluate

    evaluate(model_dir, data_dir)
    if config["fast_export"] and config["backbone"] == "vgg16":
        from training.fast_export import run as export_fast

        export_fast(model_dir, data_dir, calibration=300, limit=None)
    if config["fit_gate"]:
        from training.gate import fit_gate

        fit_gate(model_dir, data_dir, limit_per_split_class=config["limit_per_split_class"])


if __name__ == "__main__":
    main()
