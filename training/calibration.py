"""Temperature scaling (Guo et al. 2017), fitted on the validation split.

One scalar T divides the logits: softmax(z / T). It changes no argmax (so no accuracy figure),
only how confident the probabilities are. Because softmax(z / T) = p^(1/T) / sum(p^(1/T)), it can
be fitted and applied from probabilities alone. The service applies the T stored in
``metadata.json`` (``calibration.temperature``) in its head, so every route, backend and batch
tool returns the calibrated probabilities.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    logits = np.log(np.clip(probs.astype(np.float64), 1e-12, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    scaled = np.exp(logits)
    return (scaled / scaled.sum(axis=1, keepdims=True)).astype(np.float32)


def nll(probs: np.ndarray, y: np.ndarray) -> float:
    return float(-np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, 1.0)).mean())


def fit_temperature(probs: np.ndarray, y: np.ndarray) -> dict[str, float | str]:
    """The T in [0.05, 20] that minimises the negative log-likelihood of ``y`` (val split)."""
    result = minimize_scalar(
        lambda log_t: nll(apply_temperature(probs, float(np.exp(log_t))), y),
        bounds=(np.log(0.05), np.log(20.0)),
        method="bounded",
    )
    temperature = float(np.exp(result.x))
    return {
        "method": "temperature",
        "temperature": round(temperature, 4),
        "fitted_on": "val",
        "val_nll_before": round(nll(probs, y), 4),
        "val_nll_after": round(nll(apply_temperature(probs, temperature), y), 4),
    }
