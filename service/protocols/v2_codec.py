"""Open Inference Protocol v2 (KServe / Triton REST): infer requests in, responses out.

The model has one input, ``image``: ``BYTES``, one element per encoded image file (PNG, JPEG or
DICOM), shape ``[n]`` (or ``[n, 1]``). Its data is either JSON (each element the file's base64)
or binary through the binary tensor data extension: the body is the JSON header, whose length is
in the ``Inference-Header-Content-Length`` header, then each binary input's bytes (its
``parameters.binary_data_size``); a ``BYTES`` tensor's bytes are, per element, a 4-byte
little-endian length and the element. Outputs: ``probabilities`` (``FP32 [n, classes]``),
``label`` (``BYTES [n]``) and, when asked for (requested in ``outputs``, or the request parameter
``gradcam``), ``gradcam_heatmap_png`` (``BYTES [n]``: 8-bit gray PNGs, base64 in JSON). Each
output is JSON or binary (``parameters.binary_data`` of a requested output, or the request
parameter ``binary_data_output``); binary outputs follow the JSON in the response body.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.errors import BadRequest

HEADER_LENGTH = "Inference-Header-Content-Length"
INPUT = "image"
PROBABILITIES, LABEL, HEATMAP = "probabilities", "label", "gradcam_heatmap_png"
OUTPUTS = (PROBABILITIES, LABEL, HEATMAP)
MAX_IMAGES = 16  # per request: each image is one model call's worth of work


@dataclass(frozen=True)
class InferRequest:
    request_id: str | None
    images: list[bytes]
    target: str | None  # the Grad-CAM class; None: each image's top class
    outputs: dict[str, bool]  # output name -> binary, in the order they are answered

    @property
    def gradcam(self) -> bool:
        return HEATMAP in self.outputs


def _json_header(body: bytes, header_length: str | None) -> tuple[dict[str, Any], bytes]:
    size = len(body)
    if header_length is not None:
        if not header_length.strip().isdigit() or int(header_length) > len(body):
            raise BadRequest(f"{HEADER_LENGTH} must be a byte count within the body.")
        size = int(header_length)
    try:
        header = json.loads(body[:size])
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(f"The request's JSON is invalid: {exc}") from exc
    if not isinstance(header, dict):
        raise BadRequest("The request must be a JSON object with `inputs`.")
    return header, body[size:]


def split_bytes_tensor(raw: bytes) -> list[bytes]:
    """The elements of a binary ``BYTES`` tensor (4-byte little-endian length + bytes each)."""
    elements, offset = [], 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise BadRequest("A BYTES element's 4-byte length is cut off.")
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise BadRequest("A BYTES element is shorter than its length says.")
        elements.append(raw[offset : offset + length])
        offset += length
    return elements


def join_bytes_tensor(elements: Sequence[bytes]) -> bytes:
    return b"".join(struct.pack("<I", len(e)) + e for e in elements)


def _flatten(data: Any) -> list[Any]:
    if isinstance(data, list):
        return [item for part in data for item in _flatten(part)]
    return [data]


def _from_base64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise BadRequest("Each element of `image` in JSON must be the file's base64 (a string).")
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadRequest("An element of `image` is not valid base64.") from exc


def _images(tensor: Any, binary: bytes) -> tuple[list[bytes], int]:
    """The input's images, and how many bytes of ``binary`` they took."""
    if not isinstance(tensor, dict) or tensor.get("name") != INPUT:
        raise BadRequest(f"The model has one input, {INPUT!r} (BYTES, one element per image).")
    if tensor.get("datatype") != "BYTES":
        raise BadRequest(
            f"Input {INPUT!r} must have datatype BYTES, not {tensor.get('datatype')!r}."
        )
    shape = tensor.get("shape")
    if (
        not isinstance(shape, list)
        or not shape
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise BadRequest(f"Input {INPUT!r} needs a shape such as [n] (n images).")
    count = math.prod(shape)
    if not 1 <= count <= MAX_IMAGES:
        raise BadRequest(f"Send 1 to {MAX_IMAGES} images per request, not {count}.")
    size = (tensor.get("parameters") or {}).get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or size < 0 or size > len(binary):
            raise BadRequest(f"Input {INPUT!r}: binary_data_size exceeds the binary data sent.")
        images, used = split_bytes_tensor(binary[:size]), size
    else:
        if "data" not in tensor:
            raise BadRequest(f"Input {INPUT!r} has neither `data` nor binary data.")
        images, used = [_from_base64(item) for item in _flatten(tensor["data"])], 0
    if len(images) != count:
        raise BadRequest(
            f"Input {INPUT!r} has {len(images)} elements but its shape {shape} says {count}."
        )
    return images, used


def _wanted_outputs(header: dict[str, Any], parameters: dict[str, Any]) -> dict[str, bool]:
    binary_default = parameters.get("binary_data_output") is True
    requested = header.get("outputs")
    if requested is None:
        names = [PROBABILITIES, LABEL] + ([HEATMAP] if parameters.get("gradcam") is True else [])
        return dict.fromkeys(names, binary_default)
    if not isinstance(requested, list) or not requested:
        raise BadRequest("`outputs` must be a non-empty list of {name, parameters}.")
    wanted: dict[str, bool] = {}
    for output in requested:
        name = output.get("name") if isinstance(output, dict) else None
        if name not in OUTPUTS:
            raise BadRequest(f"Unknown output {name!r}; the model has: {', '.join(OUTPUTS)}.")
        binary = (output.get("parameters") or {}).get("binary_data", binary_default)
        wanted[name] = binary is True
    return wanted


def parse_infer_request(body: bytes, header_length: str | None) -> InferRequest:
    header, binary = _json_header(body, header_length)
    inputs = header.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1:
        raise BadRequest(f"The model has one input, {INPUT!r}: send `inputs` with it alone.")
    images, used = _images(inputs[0], binary)
    if used != len(binary):
        raise BadRequest("The body has binary data no input claims (binary_data_size).")
    parameters = header.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise BadRequest("`parameters` must be a JSON object.")
    target = parameters.get("target")
    if target is not None and not isinstance(target, str):
        raise BadRequest("Parameter `target` must be a class name.")
    request_id = header.get("id")
    return InferRequest(
        request_id=str(request_id) if request_id is not None else None,
        images=images,
        target=target or None,
        outputs=_wanted_outputs(header, parameters),
    )


@dataclass(frozen=True)
class InferResult:
    classes: list[str]
    probabilities: np.ndarray  # (n, classes) float32
    labels: list[str]
    heatmaps: list[bytes] | None  # PNGs, when Grad-CAM was asked for


def _tensor(name: str, result: InferResult) -> tuple[str, list[int], list[Any], bytes]:
    """datatype, shape, JSON data and binary data of one output."""
    n = len(result.labels)
    if name == PROBABILITIES:
        values = np.asarray(result.probabilities, dtype="<f4")
        return "FP32", [n, len(result.classes)], values.ravel().tolist(), values.tobytes()
    if name == LABEL:
        encoded = [label.encode() for label in result.labels]
        return "BYTES", [n], list(result.labels), join_bytes_tensor(encoded)
    assert result.heatmaps is not None
    as_text = [base64.b64encode(png).decode("ascii") for png in result.heatmaps]
    return "BYTES", [n], as_text, join_bytes_tensor(result.heatmaps)


def encode_infer_response(
    request: InferRequest,
    result: InferResult,
    *,
    model_name: str,
    model_version: str,
    parameters: dict[str, Any],
) -> tuple[bytes, int | None]:
    """The response body, and the JSON header's length when binary outputs follow it."""
    outputs: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for name, binary in request.outputs.items():
        datatype, shape, data, raw = _tensor(name, result)
        tensor: dict[str, Any] = {"name": name, "datatype": datatype, "shape": shape}
        if binary:
            tensor["parameters"] = {"binary_data_size": len(raw)}
            blobs.append(raw)
        else:
            tensor["data"] = data
        outputs.append(tensor)
    response: dict[str, Any] = {"model_name": model_name, "model_version": model_version}
    if request.request_id is not None:
        response["id"] = request.request_id
    response["parameters"] = parameters
    response["outputs"] = outputs
    header = json.dumps(response, separators=(",", ":")).encode()
    if not blobs:
        return header, None
    return header + b"".join(blobs), len(header)


def model_metadata(
    name: str, version: str, classes: list[str], parameters: dict[str, Any]
) -> dict[str, Any]:
    return {
        "name": name,
        "versions": [version],
        "platform": "tensorflow_keras",
        "inputs": [{"name": INPUT, "datatype": "BYTES", "shape": [-1]}],
        "outputs": [
            {"name": PROBABILITIES, "datatype": "FP32", "shape": [-1, len(classes)]},
            {"name": LABEL, "datatype": "BYTES", "shape": [-1]},
            {"name": HEATMAP, "datatype": "BYTES", "shape": [-1]},
        ],
        "parameters": parameters,
    }
