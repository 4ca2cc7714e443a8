"""Ablation of the shortcut counter-measures, measured on the validation split.

    python -m training.ablation training/configs/ablations/*.yaml [--models models/cxr-vgg16-3class]

Trains each config (they share the default feature cache: only phases 2-3 differ, by the view
recipes they train on or by the weighting), then scores every model on val: macro-F1, NIH
adult-pneumonia recall, and the stamp test (annotations from the audit's generator, which no
training view used). ``--models`` adds folders that are already trained (e.g. the default).
Results are appended to ``runs/ablations.jsonl`` and printed as the table in training/README.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import f1_score

from service.inference.runtime import ClassifierRuntime
from training import train
from training.audit import predict_batched, stamp_test
from training.card_sections import NIH
from training.config import DEFAULTS, resolve
from training.config import data_dir as resolve_data_dir
from training.data import load_gray, read_manifest, select


def score_on_val(model_dir: Path, data_dir: Path, seed: int) -> dict[str, Any]:
    runtime = ClassifierRuntime.load(model_dir)
    classes = runtime.metadata.classes
    val = [r for r in select(read_manifest(data_dir), classes) if r.split == "val"]
    y = np.array([classes.index(r.label) for r in val])
    grays = [load_gray(data_dir, r) for r in val]
    probs, _ = predict_batched(runtime, grays, "val", explain=False)
    predicted = probs.argmax(axis=1)
    nih_pneumonia = np.array([r.source_repo == NIH and r.label == "pneumonia" for r in val])
    stamp = stamp_test(runtime, grays, probs, classes, seed)
    return {
        "model": runtime.metadata.name,
        "weighting": runtime.metadata.training.get("config", {}).get("weighting"),
        "phase2_recipes": runtime.metadata.training.get("config", {})
        .get("phase2", {})
        .get("recipes"),
        "val_macro_f1": round(float(f1_score(y, predicted, average="macro")), 4),
        "val_nih_pneumonia_recall": round(
            float((predicted[nih_pneumonia] == classes.index("pneumonia")).mean()), 4
        )
        if nih_pneumonia.any() and "pneumonia" in classes
        else None,
        "val_stamp_label_changed": stamp["top_label_changed"],
        "val_stamp_delta_p_covid": stamp.get("mean_delta_p_covid"),
        "val_cam_mass_on_stamps": stamp["cam_mass_on_stamps"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="*", type=Path)
    parser.add_argument("--models", nargs="*", type=Path, default=[])
    parser.add_argument("--data", default=None)
    args = parser.parse_args()
    data_dir = resolve_data_dir(DEFAULTS, args.data)
    seed = DEFAULTS["evaluate"]["stamp_seed"] + 1  # val: yet another seed than the test audit
    folders = list(args.models)
    for config in args.configs:
        folders.append(train.main(["--config", str(config), "--no-evaluate"]))
    out = resolve(DEFAULTS["runs_dir"]) / "ablations.jsonl"
    for folder in folders:
        row = score_on_val(folder, data_dir, seed)
        with out.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
        print(json.dumps(row))


if __name__ == "__main__":
    main()
