"""Burned-in annotations: text, scores, L/R markers, arrows and boxes drawn into an X-ray.

In this data the covid films are mostly web and paper figures with annotations ("CXR SCORE: 11",
panel letters, arrows, boxes, "PORTABLE"), while normal and pneumonia films are mostly clean
hospital exports: a CNN learns "annotated -> covid". Stamping random annotations into training
images of *every* class makes annotations carry no label information.

Two independent generators, so the shortcut audit never tests on the stamps training saw:
- ``training`` draws with OpenCV's Hershey stroke fonts (``draw_training_stamps``);
- ``audit`` draws with TrueType fonts through Pillow, other words, other shapes
  (``draw_audit_stamps``), and returns the mask of stamped pixels for the Grad-CAM check.
Both take and return uint8 (H, W) images of the same shape.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

Rng = np.random.Generator

# --- training generator (OpenCV Hershey fonts) --------------------------------------------------
_HERSHEY = [
    cv2.FONT_HERSHEY_SIMPLEX,
    cv2.FONT_HERSHEY_PLAIN,
    cv2.FONT_HERSHEY_DUPLEX,
    cv2.FONT_HERSHEY_COMPLEX,
    cv2.FONT_HERSHEY_TRIPLEX,
    cv2.FONT_HERSHEY_COMPLEX_SMALL,
    cv2.FONT_HERSHEY_SCRIPT_SIMPLEX,
]
_TRAIN_WORDS = [
    "PORTABLE", "AP ERECT", "SUPINE", "UPRIGHT", "PA", "AP", "CHEST", "ICU", "DAY 4", "DAY 11",
    "At admission", "Follow-up", "SEMI-ERECT", "STANDING", "MOBILE", "Pre", "Post", "ER",
]  # fmt: skip


def _color(rng: Rng) -> int:
    """White most often (burned-in overlays), black, or a random gray."""
    draw = rng.random()
    return 255 if draw < 0.55 else 0 if draw < 0.85 else int(rng.integers(0, 256))


def _random_text(rng: Rng) -> str:
    kind = rng.integers(0, 6)
    if kind == 0:
        return str(rng.choice(_TRAIN_WORDS))
    if kind == 1:  # a date
        return f"{rng.integers(1, 29):02d}/{rng.integers(1, 13):02d}/{rng.integers(2015, 2024)}"
    if kind == 2:  # a score
        return f"{rng.choice(['CXR SCORE', 'SCORE', 'RALE', 'Brixia'])}: {rng.integers(0, 19)}"
    if kind == 3:  # panel letter
        letter = str(rng.choice(list(string.ascii_letters[:8])))
        return str(rng.choice([letter, f"({letter})", f"{letter})", letter.upper()]))
    if kind == 4:  # digits row, as in zone scores "0 1 2"
        return " ".join(str(d) for d in rng.integers(0, 4, size=int(rng.integers(2, 5))))
    length = int(rng.integers(2, 9))
    return "".join(rng.choice(list(string.ascii_uppercase + string.digits + " -:"), size=length))


def _position(rng: Rng, h: int, w: int, tw: int, th: int) -> tuple[int, int]:
    """Bottom-left corner for a text of size (tw, th): corners and edges most often."""
    if rng.random() < 0.6:
        x = int(rng.uniform(0.01, 0.12) * w) if rng.random() < 0.5 else w - tw - int(0.02 * w)
        y = th + int(rng.uniform(0.01, 0.1) * h) if rng.random() < 0.5 else h - int(0.03 * h)
    else:
        x, y = int(rng.uniform(0, max(1, w - tw))), int(rng.uniform(th, h))
    return max(0, x), max(th, min(h - 1, y))


def _cv_text(gray: np.ndarray, rng: Rng, text: str, boxed: bool) -> None:
    h, w = gray.shape
    font = int(rng.choice(_HERSHEY))
    height_px = rng.uniform(0.025, 0.08) * h
    scale = height_px / 22.0
    thickness = max(1, round(scale * rng.uniform(1.0, 2.5)))
    (tw, th), _ = cv2.getTextSize(text, font, scale, thickness)
    x, y = _position(rng, h, w, tw, th)
    color = _color(rng)
    if boxed:
        pad = max(2, th // 3)
        if rng.random() < 0.5:  # filled box, text in the opposite colour
            cv2.rectangle(gray, (x - pad, y - th - pad), (x + tw + pad, y + pad), color, -1)
            color = 255 - color
        else:
            cv2.rectangle(gray, (x - pad, y - th - pad), (x + tw + pad, y + pad), color, thickness)
    cv2.putText(gray, text, (x, y), font, scale, color, thickness, cv2.LINE_AA)


def _cv_marker(gray: np.ndarray, rng: Rng) -> None:
    """An L/R side marker, usually near a top corner, sometimes boxed."""
    _cv_text(
        gray, rng, str(rng.choice(["L", "R", "LT", "RT", "L ", "R "])).strip(), rng.random() < 0.4
    )


def _cv_arrow(gray: np.ndarray, rng: Rng) -> None:
    h, w = gray.shape
    tip = (int(rng.uniform(0.2, 0.8) * w), int(rng.uniform(0.2, 0.8) * h))
    length = rng.uniform(0.06, 0.2) * max(h, w)
    angle = rng.uniform(0, 2 * np.pi)
    tail = (int(tip[0] + length * np.cos(angle)), int(tip[1] + length * np.sin(angle)))
    thickness = max(1, int(rng.uniform(0.004, 0.012) * max(h, w)))
    cv2.arrowedLine(gray, tail, tip, _color(rng), thickness, cv2.LINE_AA, tipLength=0.3)


def _cv_shape(gray: np.ndarray, rng: Rng) -> None:
    """A rectangle or ellipse outline (regions of interest drawn by authors)."""
    h, w = gray.shape
    x0, y0 = int(rng.uniform(0.05, 0.7) * w), int(rng.uniform(0.05, 0.7) * h)
    x1 = min(w - 1, x0 + int(rng.uniform(0.08, 0.35) * w))
    y1 = min(h - 1, y0 + int(rng.uniform(0.08, 0.35) * h))
    thickness = max(1, int(rng.uniform(0.003, 0.01) * max(h, w)))
    if rng.random() < 0.6:
        cv2.rectangle(gray, (x0, y0), (x1, y1), _color(rng), thickness, cv2.LINE_AA)
    else:
        center, axes = ((x0 + x1) // 2, (y0 + y1) // 2), ((x1 - x0) // 2, (y1 - y0) // 2)
        cv2.ellipse(gray, center, axes, 0, 0, 360, _color(rng), thickness, cv2.LINE_AA)


_TRAIN_KINDS: list[Callable[[np.ndarray, Rng], None]] = [
    lambda g, r: _cv_text(g, r, _random_text(r), boxed=False),
    lambda g, r: _cv_text(g, r, _random_text(r), boxed=True),
    _cv_marker,
    _cv_arrow,
    _cv_shape,
]


def draw_training_stamps(gray: np.ndarray, rng: Rng, max_stamps: int = 4) -> np.ndarray:
    """1..max_stamps random annotations of random kinds, drawn into a copy of ``gray``."""
    out = np.ascontiguousarray(gray.copy())
    for _ in range(int(rng.integers(1, max_stamps + 1))):
        _TRAIN_KINDS[int(rng.integers(0, len(_TRAIN_KINDS)))](out, rng)
    return out


# --- audit generator (TrueType fonts through Pillow; words and shapes training never drew) -----
_FONT_DIRS = [Path("/usr/share/fonts/truetype"), Path("/usr/share/fonts")]
_AUDIT_WORDS = [
    "ANTERIOR", "BEDSIDE", "CR CHEST", "Lat. decub", "img 3/7", "kVp 110", "mAs 2.5",
    "SCORE 14/18", "HOSP-XR2", "Ward 5B", "T+48h", "F/U", "Severity: 3", "ROI",
]  # fmt: skip


def _truetype_fonts() -> list[Path]:
    for folder in _FONT_DIRS:
        found = sorted(folder.rglob("*.ttf")) if folder.is_dir() else []
        if found:
            return found
    return []


def _audit_font(rng: Rng, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    fonts = _truetype_fonts()
    if fonts:
        return ImageFont.truetype(str(fonts[int(rng.integers(0, len(fonts)))]), size)
    return ImageFont.load_default(size)  # Pillow >= 10.1 draws a scalable default font


def draw_audit_stamps(
    gray: np.ndarray, rng: Rng, n_stamps: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """(stamped copy, boolean mask of the pixels the stamps cover, dilated by 2 px)."""
    h, w = gray.shape
    image = Image.fromarray(gray)
    mask_image = Image.new("L", (w, h), 0)
    draw, mask = ImageDraw.Draw(image), ImageDraw.Draw(mask_image)
    for _ in range(n_stamps):
        fill = 255 if rng.random() < 0.6 else 0
        kind = int(rng.integers(0, 4))
        if kind <= 1:  # text, sometimes in a box
            size = max(8, int(rng.uniform(0.03, 0.07) * h))
            font = _audit_font(rng, size)
            text = str(rng.choice(_AUDIT_WORDS))
            left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
            tw, th = right - left, bottom - top
            x = int(rng.uniform(0.02, 0.98) * max(1, w - tw))
            y = int(rng.uniform(0.02, 0.98) * max(1, h - th))
            if kind == 1:
                box = (x - 3, y - 3, x + tw + 3, y + th + 6)
                draw.rectangle(box, outline=fill, width=max(1, size // 10))
                mask.rectangle(box, outline=255, width=max(1, size // 10))
            draw.text((x, y), text, fill=fill, font=font)
            mask.text((x, y), text, fill=255, font=font)
        elif kind == 2:  # a triangle pointer (not an arrow with a line as in training)
            cx, cy = rng.uniform(0.15, 0.85) * w, rng.uniform(0.15, 0.85) * h
            r = rng.uniform(0.02, 0.05) * max(h, w)
            a = rng.uniform(0, 2 * np.pi)
            points = [
                (cx + r * np.cos(a + k * 2.1), cy + r * np.sin(a + k * 2.1)) for k in range(3)
            ]
            draw.polygon(points, fill=fill)
            mask.polygon(points, fill=255)
        else:  # a dashed-looking frame of small squares (a crop mark / ruler)
            y = int(rng.uniform(0.03, 0.97) * h)
            step = max(4, int(0.03 * w))
            for x in range(int(rng.uniform(0, 0.3) * w), int(rng.uniform(0.5, 1.0) * w), step):
                square = (x, y, x + step // 2, y + max(2, step // 3))
                draw.rectangle(square, fill=fill)
                mask.rectangle(square, fill=255)
    covered = np.asarray(mask_image) > 0
    covered = cv2.dilate(covered.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    return np.asarray(image, dtype=np.uint8).copy(), covered
