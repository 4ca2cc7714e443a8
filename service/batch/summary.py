"""The numbers behind the report: counts per status and, with true labels, the metrics."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from service.batch.rows import OK, REJECTED, ScoreRow


@dataclass(frozen=True)
class Metrics:
    labelled: int  # scored rows whose true label is one of the model's classes
    confusion: np.ndarray  # (true, predicted) counts over the model's classes
    accuracy: float
    macro_f1: float
    recall: dict[str, float | None]  # None: no image of that class
    precision: dict[str, float | None]  # None: never predicted


@dataclass(frozen=True)
class Summary:
    total: int
    scored: int  # status ok
    rejected: int  # the input gate said: not a chest X-ray
    failures: dict[str, int]  # unreadable files by error code
    true_labels: dict[str, int]  # files per true label, over every row that has one
    metrics: Metrics | None  # when some scored rows have a true label


def summarise(rows: list[ScoreRow], classes: list[str]) -> Summary:
    statuses = Counter(row.status for row in rows)
    failures = {
        code: count for code, count in sorted(statuses.items()) if code not in (OK, REJECTED)
    }
    labelled = [r for r in rows if r.status == OK and r.true_label in classes]
    return Summary(
        total=len(rows),
        scored=statuses[OK],
        rejected=statuses[REJECTED],
        failures=failures,
        true_labels=dict(sorted(Counter(r.true_label for r in rows if r.true_label).items())),
        metrics=_metrics(labelled, classes) if labelled else None,
    )


def _metrics(rows: list[ScoreRow], classes: list[str]) -> Metrics:
    index = {name: i for i, name in enumerate(classes)}
    confusion = np.zeros((len(classes), len(classes)), dtype=np.int64)
    for row in rows:
        confusion[index[row.true_label], index[row.label]] += 1
    true_counts, predicted_counts = confusion.sum(axis=1), confusion.sum(axis=0)
    hits = np.diag(confusion)
    recall = {c: _ratio(hits[i], true_counts[i]) for i, c in enumerate(classes)}
    precision = {c: _ratio(hits[i], predicted_counts[i]) for i, c in enumerate(classes)}
    f1_scores = []
    for name in classes:  # macro-F1 over the classes present among the true labels
        r, p = recall[name], precision[name]
        if r is None:
            continue
        f1_scores.append(0.0 if not p or not r else 2 * p * r / (p + r))
    return Metrics(
        labelled=len(rows),
        confusion=confusion,
        accuracy=float(hits.sum() / confusion.sum()),
        macro_f1=float(np.mean(f1_scores)) if f1_scores else 0.0,
        recall=recall,
        precision=precision,
    )


def _ratio(numerator: np.integer, denominator: np.integer) -> float | None:
    return float(numerator / denominator) if denominator else None
