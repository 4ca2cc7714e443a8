"""The input gate's fitting rules (training/gate.py): threshold and positive weights."""

from __future__ import annotations

import numpy as np

from training.gate import SOURCE_MIN_IMAGES, source_weights, threshold_for


def rejected(scores: np.ndarray, threshold: float) -> float:
    return float((scores < threshold).mean())


def test_the_threshold_rejects_at_most_the_rate_overall() -> None:
    scores = np.linspace(0.0, 1.0, 400)
    sources = np.array(["a"] * 400)
    threshold = threshold_for(scores, sources, 0.01)
    assert rejected(scores, threshold) <= 0.01
    assert rejected(scores, threshold) >= 0.0075  # and not far below it: 3 of 400


def test_a_source_of_unusual_films_is_not_sacrificed_to_the_average() -> None:
    rng = np.random.default_rng(0)
    common = rng.uniform(0.5, 1.0, 360)
    unusual = np.concatenate([rng.uniform(0.0, 0.1, 3), rng.uniform(0.5, 1.0, 37)])
    scores = np.concatenate([common, unusual])
    sources = np.array(["common"] * 360 + ["unusual"] * 40)
    threshold = threshold_for(scores, sources, 0.01)
    assert rejected(unusual, threshold) <= 0.03  # 1 of 40, not 3
    assert rejected(scores, threshold) <= 0.01


def test_sources_below_the_minimum_size_do_not_set_the_threshold() -> None:
    scores = np.concatenate([np.linspace(0.2, 1.0, 300), [0.0, 0.01]])
    sources = np.array(["big"] * 300 + ["tiny"] * 2)
    assert SOURCE_MIN_IMAGES > 2
    threshold = threshold_for(scores, sources, 0.01)
    assert threshold > 0.01  # the two tiny-source films may be rejected


def test_each_source_weighs_the_square_root_of_its_size() -> None:
    sources = np.array(["a"] * 100 + ["b"] * 25)
    weights = source_weights(sources)
    assert np.isclose(weights.sum(), 1.0)
    assert np.isclose(weights[:100].sum() / weights[100:].sum(), 10 / 5)
