"""The training phases' machinery: view sampling from the feature cache and one resumable phase.

``run_phase`` trains a model with validation-F1 checkpointing, early stopping, a time budget and
Keras ``BackupAndRestore``, and is skipped when its ``<name>.done.json`` exists, so an
interrupted ``python -m training.train`` resumes where it stopped.
"""

from __future__ import annotations

import json
import logging
import shutil
import time

import keras
import numpy as np

from training.callbacks import TimeBudget, TqdmProgress, ValidationF1
from training.features import FeatureCache

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
    name, model, train_data, x_val, y_val, phase_cfg, run_dir, n_classes, fit_kwargs,
    after=None, start_best=None,
):  # fmt: skip
    """One training phase with resumable backups; returns the best val score. Skips if done.

    ``after``: a previous phase on the same model; its best checkpoint and score are this
    phase's starting best, so a continuation phase can only replace it by doing better on val.
    ``start_best``: the val result of the model's current weights (e.g. phase 1's head on the
    ImageNet block5): they are this phase's starting best, so fine-tuning that makes val worse
    is thrown away instead of exported (it happened to covid-vs-pneumonia: 0.893 -> 0.848).
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
    elif start_best is not None and not state_path.is_file():
        model.save_weights(best_path)
        best = [round(start_best["val_macro_f1"], 4), -start_best["val_loss"]]
        state_path.write_text(json.dumps({"best": best, "epoch": 0}))
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


def views_by_record(cache: FeatureCache, train_rows, config, recipes) -> dict[int, np.ndarray]:
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
