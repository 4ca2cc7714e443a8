"""Evaluation figures (PNG, modest size): curves, confusion matrix, ROC, reliability, Grad-CAM."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import matplotlib

matplotlib.use("Agg")  # headless
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import roc_curve

DPI = 90


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def training_curves(model_dir: Path) -> bool:
    """phaseN history CSVs (copied from the run folder) -> one figure, epochs continued."""
    epochs: list[int] = []
    series: dict[str, list[float]] = {}
    offset, boundaries = 0, []
    for phase in ("phase1", "phase2", "phase3"):
        path = model_dir / f"{phase}.history.csv"
        if not path.is_file():
            continue
        rows = list(csv.DictReader(path.open()))
        for i, row in enumerate(rows):
            epochs.append(offset + i + 1)
            for key in ("loss", "val_loss", "val_macro_f1"):
                series.setdefault(key, []).append(float(row.get(key) or "nan"))
        offset += len(rows)
        boundaries.append(offset)
    if not epochs:
        return False
    fig, (ax_loss, ax_f1) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax_loss.plot(epochs, series["loss"], label="train loss (augmented, class-weighted)")
    ax_loss.plot(epochs, series["val_loss"], label="val loss")
    ax_f1.plot(epochs, series["val_macro_f1"], color="tab:green", label="val macro-F1")
    for ax in (ax_loss, ax_f1):
        for boundary in boundaries[:-1]:
            ax.axvline(boundary + 0.5, color="gray", linestyle="--", linewidth=0.8)
        ax.set_xlabel("epoch (dashed lines: next phase)")
        ax.legend(fontsize=8)
    _save(fig, model_dir / "training_curves.png")
    return True


def confusion(matrix: list[list[int]], classes: list[str], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(4, 3.6))
    ax.imshow(np.array(matrix), cmap="Blues")
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            ax.text(j, i, str(count), ha="center", va="center")
    ax.set_xticks(range(len(classes)), classes)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("test confusion matrix")
    _save(fig, path)


def roc(y: np.ndarray, probs: np.ndarray, classes: list[str], aucs: dict, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(4, 4))
    for i, name in enumerate(classes):
        if aucs.get(name) is not None:
            fpr, tpr, _ = roc_curve(y == i, probs[:, i])
            ax.plot(fpr, tpr, label=f"{name} vs rest (AUC {aucs[name]:.3f})")
    ax.plot([0, 1], [0, 1], color="gray", linestyle=":")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(fontsize=8, loc="lower right")
    _save(fig, path)


def reliability(calibration: dict, path: Path, label: str = "") -> None:
    fig, ax = plt.subplots(figsize=(4, 4))
    bins = calibration["bins"]
    centers = [(b["low"] + b["high"]) / 2 for b in bins]
    width = 0.9 / calibration.get("n_bins", 10)
    ax.bar(centers, [b["accuracy"] for b in bins], width=width, alpha=0.7, label="accuracy")
    ax.plot(
        [b["confidence"] for b in bins],
        [b["accuracy"] for b in bins],
        "o",
        color="tab:red",
        label="bin mean confidence",
    )
    ax.plot([0, 1], [0, 1], color="gray", linestyle=":")
    ax.set_xlabel("top-class confidence")
    ax.set_ylabel("accuracy")
    title = f"reliability, {label}" if label else "reliability"
    n_bins = calibration.get("n_bins", 10)
    ax.set_title(f"{title}\n(ECE {calibration['ece']:.3f}, {n_bins} bins)", fontsize=9)
    ax.legend(fontsize=8)
    _save(fig, path)


def overlay(gray224: np.ndarray, cam: np.ndarray) -> np.ndarray:
    """RGB image: the grayscale input with the Grad-CAM heat map blended on top."""
    cam = cam / cam.max() if cam.max() > 0 else cam
    heat = cv2.resize(cam.astype(np.float32), gray224.shape[::-1], interpolation=cv2.INTER_CUBIC)
    heat_u8 = np.clip(heat * 255, 0, 255).astype(np.uint8)
    colored = cv2.applyColorMap(heat_u8, cv2.COLORMAP_JET)[:, :, ::-1]
    base = np.repeat(gray224[:, :, None], 3, axis=2)
    return (0.6 * base + 0.4 * colored).astype(np.uint8)


def gradcam_gallery(items: list[dict | None], path: Path, columns: int = 4) -> None:
    """items: {image (224x224x3 uint8), title, correct} or None (an empty cell), row by row."""
    if not any(items):
        return
    rows = int(np.ceil(len(items) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(2.4 * columns, 2.6 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, item in zip(axes.ravel(), items, strict=False):
        if item is None:
            continue
        ax.imshow(item["image"])
        ax.set_title(item["title"], fontsize=7, color="black" if item["correct"] else "tab:red")
    fig.suptitle(
        "Grad-CAM (block5_conv3) on test images, per source: the most confident correct (left)"
        " and wrong (right, red titles)",
        fontsize=9,
    )
    _save(fig, path)
