"""TF Serving / KServe v1 REST: ``:predict`` and ``:explain`` request bodies and answers.

Binary inputs go in as ``{"b64": "<base64>"}``, as TF Serving's REST API defines them. Accepted:

- row format: ``{"instances": [{"b64": ...}, ...]}``, or named inputs per instance
  ``{"instances": [{"image": {"b64": ...}, "target": "covid"}]}``; answered
  ``{"predictions": [{...}, ...]}``, one object per instance;
- columnar format: ``{"inputs": [{"b64": ...}, ...]}``, ``{"inputs": {"b64": ...}}`` or
  ``{"inputs": {"image": [{"b64": ...}, ...]}}``; answered ``{"outputs": {name: [...]}}``.

A top-level ``"target"`` (or per instance) chooses the Grad-CAM class of ``:explain``.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from service.errors import BadRequest

INPUT = "image"
MAX_IMAGES = 16
VERBS = ("predict", "explain")


@dataclass(frozen=True)
class V1Request:
    images: list[bytes]
    targets: list[str | None]  # one per image
    columnar: bool


def split_verb(name_verb: str) -> tuple[str, str]:
    """``"cxr-vgg16-3class:predict"`` -> (name, verb); 400 for another verb or none."""
    name, colon, verb = name_verb.rpartition(":")
    if not colon or verb not in VERBS or not name:
        raise BadRequest(
            f"Use POST /v1/models/<name>:predict or :explain, not {name_verb[:100]!r}."
        )
    return name, verb


def _b64(value: Any, where: str) -> bytes:
    if not isinstance(value, dict) or not isinstance(value.get("b64"), str):
        raise BadRequest(f'{where}: an image is an object {{"b64": "<base64 of the file>"}}.')
    try:
        return base64.b64decode("".join(value["b64"].split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadRequest(f"{where}: `b64` is not valid base64.") from exc


def _target(value: Any, where: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise BadRequest(f"{where}: `target` must be a class name.")
    return value or None


def _rows(instances: Any, target: str | None) -> tuple[list[bytes], list[str | None]]:
    if not isinstance(instances, list):
        raise BadRequest("`instances` must be a list.")
    images: list[bytes] = []
    targets: list[str | None] = []
    for i, instance in enumerate(instances):
        where = f"instances[{i}]"
        if isinstance(instance, dict) and INPUT in instance:
            images.append(_b64(instance[INPUT], where))
            targets.append(_target(instance.get("target"), where) or target)
        else:
            images.append(_b64(instance, where))
            targets.append(target)
    return images, targets


def _columns(inputs: Any) -> list[bytes]:
    if isinstance(inputs, dict) and INPUT in inputs:
        inputs = inputs[INPUT]
    if isinstance(inputs, dict):
        inputs = [inputs]
    if not isinstance(inputs, list):
        raise BadRequest('`inputs` must be {"b64": ...}, a list of them, or {"image": [...]}.')
    return [_b64(item, f"inputs[{i}]") for i, item in enumerate(inputs)]


def parse_request(body: bytes) -> V1Request:
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(f"The request's JSON is invalid: {exc}") from exc
    if not isinstance(payload, dict) or ("instances" in payload) == ("inputs" in payload):
        raise BadRequest('Send a JSON object with either "instances" or "inputs".')
    target = _target(payload.get("target"), "target")
    if "instances" in payload:
        images, targets = _rows(payload["instances"], target)
    else:
        images = _columns(payload["inputs"])
        targets = [target] * len(images)
    if not 1 <= len(images) <= MAX_IMAGES:
        raise BadRequest(f"Send 1 to {MAX_IMAGES} images per request, not {len(images)}.")
    return V1Request(images=images, targets=targets, columnar="inputs" in payload)


def answer(request: V1Request, rows: list[dict[str, Any]], extra: dict[str, Any]) -> dict[str, Any]:
    """``{"predictions": rows}`` for row requests; ``{"outputs": columns}`` for columnar ones."""
    if not request.columnar:
        return {"predictions": rows, **extra}
    columns = {key: [row[key] for row in rows] for key in rows[0]}
    return {"outputs": columns, **extra}
