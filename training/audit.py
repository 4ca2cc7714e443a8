"""Shortcut audit of a trained model on the test split (part of ``python -m training.evaluate``).

- **Stamp test**: annotations from a generator training never used (``draw_audit_stamps``:
  TrueType fonts, other words and shapes, another seed) are burned into every test image. A
  model that reads the lungs keeps its answer; one that learnt "annotated -> covid" does not.
  Reported: fraction of top labels that change, mean change of p(covid), and the share of the
  Grad-CAM mass that lands on the stamps (against the share of the image they cover).
- **Pipeline test** per source: the test images through a low-quality pipeline (160-px
  thumbnail, JPEG q40, scaled back up); accuracy and label changes per source.
- **Where the heat goes**: share of Grad-CAM mass outside a central chest box (x 12.5-87.5 %,
  y 10-90 % of the image: neck, shoulders, abdomen and borders are outside), per source.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from service.inference.preprocess import to_model_batch
from service.inference.runtime import ClassifierRuntime
from training.stamps import draw_audit_stamps

CHEST_BOX = (0.125, 0.875, 0.10, 0.90)  # x0, x1, y0, y1 as fractions of width and height
_SIDE = 224


def degrade(gray: np.ndarray) -> np.ndarray:
    """A low-quality imaging pipeline: a 160-px thumbnail, JPEG quality 40, scaled back up."""
    h, w = gray.shape
    factor = min(1.0, 160 / max(h, w))
    small = cv2.resize(
        gray, (max(1, round(w * factor)), max(1, round(h * factor))), interpolation=cv2.INTER_AREA
    )
    _, encoded = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 40])
    decoded = np.asarray(cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE))
    return np.asarray(cv2.resize(decoded, (w, h), interpolation=cv2.INTER_LINEAR))


def predict_batched(
    runtime: ClassifierRuntime, grays: list[np.ndarray], desc: str, explain: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    probs, cams = [], []
    for start in tqdm(range(0, len(grays), 16), desc=desc, unit="batch"):
        batch = to_model_batch(grays[start : start + 16], runtime.input_size)
        if explain:
            out = runtime.explain(batch, np.full(len(batch), -1, dtype=np.int32))
            probs.append(out.probabilities)
            cams.append(out.cams)
        else:
            probs.append(runtime.predict(batch))
    return np.concatenate(probs), (np.concatenate(cams) if explain else None)


def heat_maps(cams: np.ndarray) -> np.ndarray:
    """(n, h, w) CAMs -> (n, 224, 224) maps that sum to 1 (a uniform map where a CAM is 0)."""
    maps = np.stack(
        [
            cv2.resize(c.astype(np.float32), (_SIDE, _SIDE), interpolation=cv2.INTER_LINEAR)
            for c in cams
        ]
    )
    maps = np.clip(maps, 0, None)
    totals = maps.sum(axis=(1, 2), keepdims=True)
    return np.where(totals > 0, maps / np.where(totals > 0, totals, 1), 1.0 / _SIDE**2)


def outside_box_mass(maps: np.ndarray) -> np.ndarray:
    x0, x1, y0, y1 = (round(f * _SIDE) for f in CHEST_BOX)
    inside = maps[:, y0:y1, x0:x1].sum(axis=(1, 2))
    return 1.0 - inside


def stamp_test(
    runtime: ClassifierRuntime,
    grays: list[np.ndarray],
    clean_probs: np.ndarray,
    classes: list[str],
    seed: int,
) -> dict[str, Any]:
    stamped, masks = [], []
    for i, gray in enumerate(grays):
        image, mask = draw_audit_stamps(gray, np.random.default_rng([seed, i]))
        stamped.append(image)
        small = cv2.resize(mask.astype(np.uint8), (_SIDE, _SIDE), interpolation=cv2.INTER_NEAREST)
        masks.append(small > 0)
    probs, cams = predict_batched(runtime, stamped, "stamp test", explain=True)
    assert cams is not None
    maps, mask_arr = heat_maps(cams), np.stack(masks)
    changed = probs.argmax(axis=1) != clean_probs.argmax(axis=1)
    result: dict[str, Any] = {
        "generator": "training.stamps.draw_audit_stamps (TrueType fonts), seed " + str(seed),
        "n": len(grays),
        "top_label_changed": round(float(changed.mean()), 4),
        "cam_mass_on_stamps": round(float((maps * mask_arr).sum(axis=(1, 2)).mean()), 4),
        "stamp_area_fraction": round(float(mask_arr.mean()), 4),
    }
    if "covid" in classes:
        delta = probs[:, classes.index("covid")] - clean_probs[:, classes.index("covid")]
        result["mean_delta_p_covid"] = round(float(delta.mean()), 4)
        result["mean_abs_delta_p_covid"] = round(float(np.abs(delta).mean()), 4)
    return result


def per_source(
    values: np.ndarray, sources: np.ndarray, summarise: Callable[[np.ndarray], float]
) -> dict[str, float]:
    return {str(s): round(float(summarise(values[sources == s])), 4) for s in sorted(set(sources))}


def run_audit(
    runtime: ClassifierRuntime,
    grays: list[np.ndarray],
    y: np.ndarray,
    clean_probs: np.ndarray,
    sources: np.ndarray,
    classes: list[str],
    seed: int,
) -> tuple[dict[str, Any], np.ndarray]:
    """The audit block of metrics.json, and the clean images' Grad-CAM maps (for the gallery)."""
    _, cams = predict_batched(runtime, grays, "grad-cam", explain=True)
    assert cams is not None
    outside = outside_box_mass(heat_maps(cams))
    degraded_probs, _ = predict_batched(
        runtime, [degrade(g) for g in grays], "pipeline test", False
    )
    degraded_right = degraded_probs.argmax(axis=1) == y
    degraded_changed = degraded_probs.argmax(axis=1) != clean_probs.argmax(axis=1)
    audit = {
        "stamp_test": stamp_test(runtime, grays, clean_probs, classes, seed),
        "pipeline_test": {
            "pipeline": "160-px thumbnail + JPEG q40 + upscale",
            "accuracy": round(float(degraded_right.mean()), 4),
            "top_label_changed": round(float(degraded_changed.mean()), 4),
            "accuracy_by_source": per_source(degraded_right, sources, np.mean),
            "top_label_changed_by_source": per_source(degraded_changed, sources, np.mean),
        },
        "heat": {
            "chest_box": dict(zip(("x0", "x1", "y0", "y1"), CHEST_BOX, strict=True)),
            "mass_outside_chest_box": round(float(outside.mean()), 4),
            "mass_outside_chest_box_by_source": per_source(outside, sources, np.mean),
        },
    }
    return audit, cams
