"""Keras callbacks: validation macro-F1 with best-checkpointing, and a tqdm progress bar."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import keras
import numpy as np
from sklearn.metrics import f1_score, log_loss
from tqdm import tqdm

log = logging.getLogger("training")


class ValidationF1(keras.callbacks.Callback):
    """Adds ``val_loss``/``val_macro_f1``/``val_acc`` to the logs; saves the best weights.

    Selection is on the validation split only (never on test). Must come before callbacks that
    read those logs (EarlyStopping, ReduceLROnPlateau, CSVLogger). ``state_path`` keeps the best
    score across a resumed run.
    """

    def __init__(self, x_val, y_val, best_path: Path, state_path: Path, n_classes: int) -> None:
        super().__init__()
        self.x_val, self.y_val = x_val, y_val
        self.best_path, self.state_path = best_path, state_path
        self.labels = list(range(n_classes))
        state = json.loads(state_path.read_text()) if state_path.is_file() else {}
        self.best = state.get("best", (-1.0, -np.inf))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs if logs is not None else {}
        probs = np.concatenate(
            [
                self.model.predict_on_batch(self.x_val[i : i + 64])
                for i in range(0, len(self.x_val), 64)
            ]
        )
        predicted = probs.argmax(axis=1)
        logs["val_loss"] = float(log_loss(self.y_val, np.clip(probs, 1e-7, 1), labels=self.labels))
        logs["val_macro_f1"] = float(f1_score(self.y_val, predicted, average="macro"))
        logs["val_acc"] = float((predicted == self.y_val).mean())
        # Best = highest macro-F1, ties broken by lower loss (macro-F1 on ~240 images is coarse).
        score = (round(logs["val_macro_f1"], 4), -logs["val_loss"])
        if tuple(score) > tuple(self.best):
            self.best = score
            self.model.save_weights(self.best_path)
            self.state_path.write_text(json.dumps({"best": list(score), "epoch": epoch + 1}))
        log.info(
            "epoch %d: loss %.4f val_loss %.4f val_macro_f1 %.4f val_acc %.4f lr %.2e",
            epoch + 1,
            logs.get("loss", float("nan")),
            logs["val_loss"],
            logs["val_macro_f1"],
            logs["val_acc"],
            float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)),
        )


class TqdmProgress(keras.callbacks.Callback):
    def __init__(self, desc: str) -> None:
        super().__init__()
        self.desc = desc
        self.bar: tqdm | None = None

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.bar = tqdm(
            total=self.params.get("steps"), desc=f"{self.desc} epoch {epoch + 1}", leave=False
        )

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{(logs or {}).get('loss', float('nan')):.4f}")

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.bar is not None:
            self.bar.close()


class TimeBudget(keras.callbacks.Callback):
    """Stops a phase before an epoch that would end past ``max_minutes`` (keeps `make train`
    under its wall-clock budget on a shared 2-core CPU; the best checkpoint is kept anyway)."""

    def __init__(self, max_minutes: float | None) -> None:
        super().__init__()
        self.max_seconds = None if max_minutes is None else 60.0 * max_minutes
        self.started = self.last = time.time()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        now = time.time()
        epoch_seconds, self.last = now - self.last, now
        if self.max_seconds is not None and now - self.started + epoch_seconds > self.max_seconds:
            log.info("time budget of %.0f min reached: stopping this phase", self.max_seconds / 60)
            self.model.stop_training = True
