"""Augmentation of the uint8 grayscale image, applied BEFORE ``to_model_input``.

Two kinds: anatomy-preserving geometry/intensity jitter (rotation, shift, zoom, brightness,
contrast, gamma) and *pipeline* jitter (crop/border padding, blur/sharpen, JPEG re-compression,
down-and-up scaling). The second kind matters most here: in this data the source hospital can be
read off resolution, border style and compression, and the hidden evaluation set comes from other
pipelines, so we make those cues unreliable. Horizontal flips are allowed (the three classes are
not lateralised; mirrored burned-in text is also less of a shortcut); vertical flips never.
Annotation stamps (``training.stamps``: text, scores, L/R markers, arrows, boxes) are drawn into
images of every class first, before the pipeline jitter, as real annotations are burned in before
an image is exported, resized and compressed.
Output is always uint8 with the input's shape.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from training.stamps import draw_training_stamps


def _uniform(rng: np.random.Generator, bounds: list[float] | tuple[float, float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def crop_or_pad(gray: np.ndarray, rng: np.random.Generator, fraction: float) -> np.ndarray:
    """Crop away or add a border of up to ``fraction`` per side (borders/text are shortcuts)."""
    h, w = gray.shape
    if rng.random() < 0.5:  # crop
        top, bottom = (int(rng.uniform(0, fraction) * h) for _ in range(2))
        left, right = (int(rng.uniform(0, fraction) * w) for _ in range(2))
        out = gray[top : h - bottom, left : w - right]
    else:  # pad with a flat black, white-ish or mid-gray border, like scanned films/screenshots
        value = int(rng.choice([0, 0, 255, int(rng.integers(0, 256))]))
        top, bottom, left, right = (int(rng.uniform(0, fraction) * s) for s in (h, h, w, w))
        out = cv2.copyMakeBorder(gray, top, bottom, left, right, cv2.BORDER_CONSTANT, value=value)
    return cv2.resize(out, (w, h), interpolation=cv2.INTER_AREA)


def affine(gray: np.ndarray, rng: np.random.Generator, cfg: dict[str, Any]) -> np.ndarray:
    h, w = gray.shape
    angle = _uniform(rng, (-cfg["rotate_deg"], cfg["rotate_deg"]))
    scale = _uniform(rng, cfg["zoom"])
    matrix = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, scale)
    matrix[0, 2] += _uniform(rng, (-cfg["shift"], cfg["shift"])) * w
    matrix[1, 2] += _uniform(rng, (-cfg["shift"], cfg["shift"])) * h
    return cv2.warpAffine(
        gray, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )


def intensity(gray: np.ndarray, rng: np.random.Generator, cfg: dict[str, Any]) -> np.ndarray:
    values = gray.astype(np.float32) / 255.0
    values = values ** _uniform(rng, cfg["gamma"])
    mean = float(values.mean())
    values = (values - mean) * _uniform(rng, cfg["contrast"]) + mean
    values = values * 255.0 + _uniform(rng, (-cfg["brightness"], cfg["brightness"]))
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def blur_or_sharpen(gray: np.ndarray, rng: np.random.Generator, cfg: dict[str, Any]) -> np.ndarray:
    draw = rng.random()
    if draw < cfg["blur"]:
        return cv2.GaussianBlur(gray, (0, 0), sigmaX=_uniform(rng, (0.4, 1.6)))
    if draw < cfg["blur"] + cfg["sharpen"]:  # unsharp mask
        blurred = cv2.GaussianBlur(gray, (0, 0), sigmaX=_uniform(rng, (1.0, 3.0)))
        amount = _uniform(rng, (0.3, 1.2))
        return cv2.addWeighted(gray, 1.0 + amount, blurred, -amount, 0)
    return gray


def down_up(gray: np.ndarray, rng: np.random.Generator, sizes: list[int]) -> np.ndarray:
    """Shrink the longer side to a random size (often exactly 224, a common thumbnail) and back."""
    h, w = gray.shape
    target = 224 if rng.random() < 0.3 else int(rng.integers(sizes[0], sizes[1] + 1))
    factor = target / max(h, w)
    if factor >= 1.0:
        return gray
    small_size = (max(1, round(w * factor)), max(1, round(h * factor)))
    down_mode = cv2.INTER_AREA if rng.random() < 0.5 else cv2.INTER_LINEAR
    small = cv2.resize(gray, small_size, interpolation=down_mode)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def jpeg(gray: np.ndarray, rng: np.random.Generator, qualities: list[int]) -> np.ndarray:
    quality = int(rng.integers(qualities[0], qualities[1] + 1))
    ok, encoded = cv2.imencode(".jpg", gray, [cv2.IMWRITE_JPEG_QUALITY, quality])
    decoded = cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE) if ok else None
    return gray if decoded is None else np.asarray(decoded)


def augment(gray: np.ndarray, rng: np.random.Generator, cfg: dict[str, Any]) -> np.ndarray:
    """One random view of a uint8 (H, W) image; same dtype and shape out."""
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError(f"expected uint8 (H, W), got {gray.dtype} {gray.shape}")
    out = gray
    if rng.random() < cfg["hflip"]:
        out = out[:, ::-1]  # horizontal only: axis 1. Never axis 0.
    if rng.random() < cfg.get("stamps", 0.0):  # after the flip: stamped text reads normally
        out = draw_training_stamps(out, rng, cfg.get("max_stamps", 4))
    if rng.random() < 0.7:
        out = crop_or_pad(out, rng, cfg["crop_pad"])
    out = affine(np.ascontiguousarray(out), rng, cfg)
    out = intensity(out, rng, cfg)
    if rng.random() < cfg["down_up"]:
        out = down_up(out, rng, cfg["down_up_size"])
    out = blur_or_sharpen(out, rng, cfg)
    if rng.random() < cfg["jpeg"]:
        out = jpeg(out, rng, cfg["jpeg_quality"])
    assert out.shape == gray.shape and out.dtype == np.uint8
    return np.ascontiguousarray(out)
