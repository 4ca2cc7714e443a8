"""One output row per scanned file, and the table layout shared by CSV and Parquet."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

OK = "ok"
REJECTED = "not_a_chest_xray"  # decoded and run, but the input gate says it is no chest X-ray


@dataclass
class ScoreRow:
    """What ``cxr-score`` knows about one file. Never a patient identifier: for a DICOM only
    its SOP Instance UID, which names the image, not the person."""

    path: str  # absolute path of the file
    status: str  # "ok", "not_a_chest_xray" or the ServiceError code that stopped it
    message: str = ""  # why, for any status but "ok"
    format: str = ""  # png / jpeg / dicom, when recognised
    width: int | None = None
    height: int | None = None
    label: str = ""  # the top class, for "ok" rows only
    probabilities: dict[str, float] = field(default_factory=dict)  # calibrated, per class
    gate_score: float | None = None  # P(frontal chest X-ray); None without a fitted gate
    gate_passed: bool | None = None
    sop_instance_uid: str = ""
    true_label: str = ""  # from --labels or the folder name, when known
    model_name: str = ""
    model_version: str = ""


def probability_column(class_name: str) -> str:
    return f"p_{class_name}"


def columns(classes: list[str]) -> list[str]:
    """The output's columns, in order: fixed for one model, so appended chunks line up."""
    head = ["path", "status", "message", "format", "width", "height", "label"]
    tail = ["gate_score", "gate_passed", "sop_instance_uid", "true_label"]
    return [*head, *(probability_column(c) for c in classes), *tail, "model_name", "model_version"]


def to_record(row: ScoreRow, classes: list[str]) -> dict[str, Any]:
    record = asdict(row)
    probabilities = record.pop("probabilities")
    for name in classes:
        record[probability_column(name)] = probabilities.get(name)
    return {column: record[column] for column in columns(classes)}


def from_record(record: dict[str, Any], classes: list[str]) -> ScoreRow:
    """Inverse of ``to_record`` for values read back from CSV (strings) or Parquet (typed)."""

    def number(value: Any) -> float | None:
        return None if value in (None, "") or value != value else float(value)  # NaN -> None

    def integer(value: Any) -> int | None:
        parsed = number(value)
        return None if parsed is None else int(parsed)

    def flag(value: Any) -> bool | None:
        if value in (None, ""):
            return None
        return value if isinstance(value, bool) else str(value).lower() == "true"

    probabilities = {
        name: p
        for name in classes
        if (p := number(record.get(probability_column(name)))) is not None
    }
    return ScoreRow(
        path=str(record["path"]),
        status=str(record["status"]),
        message=str(record.get("message") or ""),
        format=str(record.get("format") or ""),
        width=integer(record.get("width")),
        height=integer(record.get("height")),
        label=str(record.get("label") or ""),
        probabilities=probabilities,
        gate_score=number(record.get("gate_score")),
        gate_passed=flag(record.get("gate_passed")),
        sop_instance_uid=str(record.get("sop_instance_uid") or ""),
        true_label=str(record.get("true_label") or ""),
        model_name=str(record.get("model_name") or ""),
        model_version=str(record.get("model_version") or ""),
    )
