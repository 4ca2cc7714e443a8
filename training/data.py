"""The CXR manifest: rows, sha256 verification and decoding through the service's decoder.

Every image is read as bytes and decoded by ``service.io.decode.decode_image`` so training sees
exactly the grayscale pixels serving will see. Splits come from the manifest (patient-level,
see ../shared/data/cxr/README.md) and are never re-mixed.
"""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from service.io.decode import decode_image

MAX_PIXELS = 50_000_000
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Record:
    path: str  # relative to the data folder
    label: str
    split: str
    source_repo: str
    license: str
    sha256: str


def read_manifest(data_dir: Path) -> list[Record]:
    manifest = data_dir / "manifest.csv"
    if not manifest.is_file():
        raise FileNotFoundError(
            f"{manifest} not found: pass --data or set CXR_DATA_DIR to the cxr data folder"
        )
    with manifest.open(newline="") as handle:
        return [
            Record(r["path"], r["label"], r["split"], r["source_repo"], r["license"], r["sha256"])
            for r in csv.DictReader(handle)
        ]


def select(
    records: list[Record], classes: list[str], limit_per_split_class: int | None = None
) -> list[Record]:
    """Keep the config's classes; optionally only the first N per split x class (tiny runs)."""
    kept: list[Record] = []
    seen: Counter[tuple[str, str]] = Counter()
    for record in records:
        key = (record.split, record.label)
        if record.label not in classes:
            continue
        if limit_per_split_class is not None and seen[key] >= limit_per_split_class:
            continue
        seen[key] += 1
        kept.append(record)
    return kept


def load_gray(data_dir: Path, record: Record, verify: bool = True) -> np.ndarray:
    data = (data_dir / record.path).read_bytes()
    if verify and hashlib.sha256(data).hexdigest() != record.sha256:
        raise ValueError(f"{record.path}: sha256 mismatch with manifest.csv (corrupt data?)")
    return decode_image(data, max_pixels=MAX_PIXELS).gray


def summarize(records: list[Record]) -> dict[str, dict[str, int]]:
    """Counts per split, split x class and split x source (stored in metadata.json)."""
    summary: dict[str, dict[str, int]] = {}
    for split in SPLITS:
        rows = [r for r in records if r.split == split]
        summary[split] = {"total": len(rows)}
        summary[split].update(
            {f"class:{k}": v for k, v in sorted(Counter(r.label for r in rows).items())}
        )
        summary[split].update(
            {f"source:{k}": v for k, v in sorted(Counter(r.source_repo for r in rows).items())}
        )
    return summary


def class_weights(labels: np.ndarray, n_classes: int) -> dict[int, float]:
    """'Balanced' weights n / (k * count): each class contributes equally to the loss."""
    counts = np.bincount(labels, minlength=n_classes).astype(float)
    return {i: float(len(labels) / (n_classes * max(c, 1.0))) for i, c in enumerate(counts)}


def sample_weights(
    labels: np.ndarray, sources: np.ndarray, n_classes: int, mode: str
) -> np.ndarray:
    """Per-image loss weights; every class gets the same total weight ("balanced").

    ``class_source`` also evens out sources within a class (weight ~ 1/sqrt(#images of that
    class from that source)): the 52 adult ieee8023 pneumonias then count for more against 372
    pediatric Kermany ones, so "pneumonia" is less easily learnt as "a child's X-ray".
    """
    weights = np.ones(len(labels), dtype=np.float64)
    if mode == "class_source":
        strata = Counter(zip(labels.tolist(), sources.tolist(), strict=True))
        weights = np.array([strata[(c, s)] ** -0.5 for c, s in zip(labels, sources, strict=True)])
    elif mode != "class":
        raise ValueError(f"unknown weighting {mode!r}: use 'class' or 'class_source'")
    target = len(labels) / n_classes  # each class sums to n / k
    for c in range(n_classes):
        mask = labels == c
        if mask.any():
            weights[mask] *= target / weights[mask].sum()
    return weights.astype(np.float32)
