"""Request and response models: the public JSON contract, with OpenAPI examples."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from service.inference.artifact import InputSpec
from service.io.sniff import ImageFormat
from service.settings import DISCLAIMER

# A 64 x 64 mid-gray PNG: a real, valid example body (the model answers it, if not usefully).
EXAMPLE_PNG_BASE64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAEAAAABACAAAAACPAi4CAAAAK0lEQVRYw+3MMREAAAgEoNfkRjeEmwcBqMlNRyAQCAQ"
    "CgUAgEAgEAsHzYAFAdAEAmH6OfgAAAABJRU5ErkJggg=="
)


class ImageRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"image_base64": EXAMPLE_PNG_BASE64}]},
    )
    image_base64: str = Field(min_length=1, description="Base64 of the PNG, JPEG or DICOM bytes")
    model: str | None = Field(
        None, description="Name of the served model to use (GET /models); default: the default"
    )


class ExplainRequest(ImageRequest):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"image_base64": EXAMPLE_PNG_BASE64, "target": "covid"}]},
    )
    target: str | None = Field(None, description="Class to explain; default: the top class")


class ModelRef(BaseModel):
    name: str = Field(examples=["cxr-vgg16-3class"])
    version: str = Field(examples=["1.0.0"])


class InputInfo(BaseModel):
    format: ImageFormat
    width: int = Field(examples=[1024])
    height: int = Field(examples=[1024])


class Timing(BaseModel):
    decode: float = Field(description="Milliseconds to read and decode the upload", examples=[9.1])
    inference: float = Field(description="Milliseconds in the model, queueing included")
    total: float = Field(description="Milliseconds from request start to response body")


class InputCheck(BaseModel):
    """The input gate's verdict: is this a frontal chest radiograph? (see /model: input_gate)."""

    score: float | None = Field(
        description="P(frontal chest X-ray) from the gate on the model's own features; null when"
        " the model folder has no gate",
        examples=[0.998],
    )
    threshold: float | None = Field(description="Minimum score to pass", examples=[0.41])
    passed: bool = Field(description="Score at or above threshold and every image check passed")
    reason: str | None = Field(None, description="Why it did not pass", examples=[None])
    mode: str = Field(description="CXR_INPUT_GATE: enforce, report or off", examples=["enforce"])


class Prediction(BaseModel):
    label: str = Field(description="The class with the highest probability", examples=["normal"])
    probabilities: dict[str, float] = Field(
        description="One probability per class, in the model's class order; they sum to 1",
        examples=[{"covid": 0.02, "normal": 0.95, "pneumonia": 0.03}],
    )
    model: ModelRef
    input: InputInfo
    input_check: InputCheck
    disclaimer: str = Field(DISCLAIMER, examples=[DISCLAIMER])
    timing_ms: Timing


class GradCam(BaseModel):
    target: str = Field(description="The class the map explains", examples=["normal"])
    layer: str = Field(examples=["block5_conv3"])
    width: int = Field(description="Width of both PNGs", examples=[512])
    height: int = Field(description="Height of both PNGs", examples=[512])
    heatmap_png_base64: str = Field(
        description="8-bit grayscale PNG of the Grad-CAM map: 0 = no attention, 255 = most"
    )
    overlay_png_base64: str = Field(description="Colour-mapped heatmap blended on the image (PNG)")


class Explanation(Prediction):
    gradcam: GradCam


class ErrorDetail(BaseModel):
    code: str = Field(examples=["unsupported_media_type"])
    message: str = Field(examples=["Unrecognised file type: send a PNG, JPEG or DICOM."])


class ErrorResponse(BaseModel):
    error: ErrorDetail


class ProtocolError(BaseModel):
    """The error shape of the inference protocols (``/v2``, ``/v1``)."""

    error: str = Field(examples=["No model named 'edema-net' is served; ..."])


class Status(BaseModel):
    status: str = Field(examples=["ok"])


class ModelInfo(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    name: str
    version: str
    default: bool = Field(True, description="Used when a request names no model")
    classes: list[str] = Field(examples=[["covid", "normal", "pneumonia"]])
    input: InputSpec
    preprocessing: str
    gradcam_layer: str = Field(examples=["block5_conv3"])
    sha256: str
    training: dict[str, Any] = Field(description="Training config, data summary, git commit")
    metrics: dict[str, Any] = Field(description="Test-split metrics from the evaluation")
    backend: str = Field(description="Trunk backend serving requests", examples=["tensorflow"])
    input_gate: dict[str, Any] | None = Field(
        None, description="The input gate: threshold, image checks and its validation figures"
    )
    calibration: dict[str, Any] | None = Field(
        None, description="Temperature scaling applied to every probability (fitted on val)"
    )
    backends: dict[str, Any] = Field(
        description="Exported fast trunks and their accuracy parity report against fp32"
    )
    disclaimer: str = Field(DISCLAIMER)


class ModelSummary(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    name: str = Field(examples=["cxr-vgg16-3class"])
    version: str = Field(examples=["2.0.0"])
    classes: list[str] = Field(examples=[["covid", "normal", "pneumonia"]])
    backend: str | None = Field(
        description="Trunk backend serving it; null while it loads", examples=["openvino-bf16"]
    )
    default: bool = Field(description="Used when a request names no model")
    ready: bool = Field(description="Loaded and warmed up")
    test_metrics: dict[str, Any] = Field(
        description="Headline test-split figures from its evaluation (GET /model?model=NAME has "
        "them all)",
        examples=[{"macro_f1": 0.823, "accuracy": 0.821, "n_test": 391}],
    )


class ModelList(BaseModel):
    models: list[ModelSummary] = Field(description="Every served model, the default first")
    default: str = Field(description="The model used when a request names none")
    disclaimer: str = Field(DISCLAIMER)


class AnalyzedInstance(BaseModel):
    sop_instance_uid: str = Field(description="The source image")
    label: str = Field(examples=["normal"])
    probabilities: dict[str, float] = Field(
        examples=[{"covid": 0.02, "normal": 0.95, "pneumonia": 0.03}]
    )


class StoredInstance(BaseModel):
    sop_instance_uid: str
    sop_class_uid: str = Field(
        description="1.2.840.10008.5.1.4.1.1.7 (Secondary Capture, the Grad-CAM overlay) or "
        "1.2.840.10008.5.1.4.1.1.88.33 (Comprehensive SR, the probabilities)",
        examples=["1.2.840.10008.5.1.4.1.1.7"],
    )
    series_instance_uid: str


class SkippedInstance(BaseModel):
    sop_instance_uid: str
    reason: str = Field(
        examples=["Lateral view (ViewPosition LL): the model is for frontal (PA/AP) views only."]
    )


class StudyAnalysis(BaseModel):
    study_instance_uid: str
    results: list[AnalyzedInstance] = Field(description="One per analysed frontal CR/DX image")
    stored: list[StoredInstance] = Field(description="Results stored in the PACS by this call")
    already_stored: list[StoredInstance] = Field(
        description="Results the PACS already held from an earlier run (same UIDs): not stored "
        "again"
    )
    skipped: list[SkippedInstance] = Field(description="Instances not analysed, with the reason")
    model: ModelRef
    disclaimer: str = Field(DISCLAIMER, examples=[DISCLAIMER])
