"""On-disk cache of frozen-trunk features, so the CPU runs the expensive VGG16 blocks 1-4 once.

For every image: the clean view; for training images also ``cache.views`` augmented views.
Stored as float16 ``.npy`` memmaps under ``runs/cache/<key>/`` (gitignored). The key hashes
everything the features depend on (manifest, backbone, cut layer, augmentation, seed), and the
cache holds ALL classes, so the 3-class and binary configs share one cache. Filling is resumable:
``progress.json`` records how many images are done.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
from tqdm import tqdm

from service.inference.preprocess import to_model_batch
from training.augment import augment
from training.config import view_augment
from training.data import Record, load_gray
from training.model import build_backbone, chain_from

log = logging.getLogger("training")


@dataclass
class FeatureCache:
    records: list[Record]
    record_index: np.ndarray  # (n_views,) which record each row belongs to
    view: np.ndarray  # (n_views,) 0 = clean, 1..K = augmented
    features: np.ndarray  # (n_views, ...) float16 at feature_layer
    pooled: np.ndarray  # (n_records, 7, 7, C) float16: clean view at block5_pool, ImageNet block5


def cache_key(config: dict[str, Any], data_dir: Path, records: list[Record]) -> str:
    relevant: dict[str, Any] = {
        "manifest": hashlib.sha256((data_dir / "manifest.csv").read_bytes()).hexdigest(),
        "records": [r.sha256 for r in records],
        "backbone": config["backbone"],
        "feature_layer": config["feature_layer"],
        "image_size": config["image_size"],
        "views": config["cache"]["views"],
        "augment": config["augment"],
        "seed": config["seed"],
        "augment_version": 2,  # v2: annotation stamps (training.stamps) and view recipes
    }
    if config["cache"]["recipes"]:  # recipe-less configs keep their v1 key
        relevant["recipes"] = [
            view_augment(config, k) for k in range(1, config["cache"]["views"] + 1)
        ]
    else:
        del relevant["augment_version"]
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


def layout(records: list[Record], views: int) -> tuple[np.ndarray, np.ndarray]:
    per_record = [1 + views if r.split == "train" else 1 for r in records]
    record_index = np.repeat(np.arange(len(records)), per_record)
    view = np.concatenate([np.arange(n) for n in per_record])
    return record_index, view


def image_views(
    gray: np.ndarray, n_aug: int, index: int, config: dict[str, Any]
) -> list[np.ndarray]:
    """The clean view and ``n_aug`` augmented views (each with its recipe's settings)."""
    # One generator per image: view k of image i is the same whatever order images are cached in.
    rng = np.random.default_rng([config["seed"], index])
    return [gray] + [augment(gray, rng, view_augment(config, k)) for k in range(1, n_aug + 1)]


def build_cache(
    config: dict[str, Any], data_dir: Path, records: list[Record], runs_dir: Path
) -> FeatureCache:
    folder = runs_dir / "cache" / cache_key(config, data_dir, records)
    folder.mkdir(parents=True, exist_ok=True)
    record_index, view = layout(records, config["cache"]["views"])
    size = (config["image_size"], config["image_size"])
    base = build_backbone(config)
    bottom = keras.Model(base.input, base.get_layer(config["feature_layer"]).output)
    shape = (len(view), *bottom.output.shape[1:])
    features_path, progress_path = folder / "features.npy", folder / "progress.json"
    done = json.loads(progress_path.read_text())["done"] if progress_path.is_file() else 0
    mode = "r+" if features_path.is_file() and done > 0 else "w+"
    features = np.lib.format.open_memmap(features_path, mode=mode, dtype=np.float16, shape=shape)
    log.info(
        "feature cache %s: %d images, %d views, %d already done",
        folder,
        len(records),
        len(view),
        done,
    )
    starts = np.searchsorted(record_index, np.arange(len(records)))
    chunk = max(1, config["cache"]["batch_size"] // (1 + config["cache"]["views"]))
    with tqdm(total=len(records), initial=done, desc="caching features", unit="img") as bar:
        for first in range(done, len(records), chunk):
            batch_records = range(first, min(first + chunk, len(records)))
            grays = []
            for i in batch_records:
                gray = load_gray(data_dir, records[i])
                n_aug = config["cache"]["views"] if records[i].split == "train" else 0
                grays += image_views(gray, n_aug, i, config)
            out = bottom.predict_on_batch(to_model_batch(grays, size))
            row = starts[first]
            features[row : row + len(grays)] = np.asarray(out, dtype=np.float16)
            features.flush()
            progress_path.write_text(json.dumps({"done": batch_records.stop}))
            bar.update(len(batch_records))
    pooled = frozen_pooled(config, base, features[view == 0], folder)
    return FeatureCache(records, record_index, view, np.asarray(features), pooled)


def frozen_pooled(
    config: dict[str, Any], base: keras.Model, features: np.ndarray, folder: Path
) -> np.ndarray:
    """block5_pool of each image's clean view with the untrained (ImageNet) block5: for phase 1
    and the linear probe. ``base`` is a fresh backbone, so this never sees fine-tuned weights.
    Clean views only: the frozen block5 pass over every augmented view would cost more CPU
    than it buys (phase 1 only warms up the head; phase 2 trains on the augmented views)."""
    path = folder / "block5_pool_clean.npy"
    if path.is_file():
        return np.load(path)
    block5 = chain_from(base, config["feature_layer"], "frozen_block5")
    parts = []
    for start in tqdm(range(0, len(features), 64), desc="frozen block5", unit="batch"):
        out = block5.predict_on_batch(np.asarray(features[start : start + 64], dtype=np.float32))
        parts.append(np.asarray(out, dtype=np.float16))
    pooled = np.concatenate(parts)
    np.save(folder / "block5_pool_clean.tmp.npy", pooled)
    (folder / "block5_pool_clean.tmp.npy").replace(path)
    return pooled
