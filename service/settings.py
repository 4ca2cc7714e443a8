"""Service settings, read from the environment with the ``CXR_`` prefix (or a ``.env`` file)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.inference.backends import BackendName
from service.inference.gate import GateMode
from service.observability.logs import LogFormat

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_DIR = REPO_ROOT / "models" / "cxr-vgg16-3class"
# Served beside the default when present; relative entries of this default are under REPO_ROOT.
DEFAULT_EXTRA_MODEL_DIRS = "models/cxr-vgg16-covid-vs-normal,models/cxr-vgg16-covid-vs-pneumonia"

DISCLAIMER = (
    "Research software. NOT a medical device and NOT for diagnostic use: the output must not be "
    "used to diagnose, treat or triage any patient."
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CXR_", env_file=".env", extra="ignore")

    model_dir: Path = Field(
        DEFAULT_MODEL_DIR, description="Folder with model.keras + metadata.json"
    )
    extra_model_dirs: str = Field(
        DEFAULT_EXTRA_MODEL_DIRS,
        description="Comma-separated further model folders, chosen per request with `model`; "
        "folders of the default list that do not exist are skipped, set ones must exist",
    )
    max_upload_bytes: int = Field(20 * 1024 * 1024, gt=0, description="Largest accepted file")
    max_image_pixels: int = Field(50_000_000, gt=0, description="Largest width x height")
    heatmap_max_side: int = Field(
        512, gt=0, description="Longer side of heatmap/overlay PNGs (never above the input's)"
    )
    png_compression: int = Field(1, ge=0, le=9, description="PNG level for heatmaps (speed)")
    overlay_alpha: float = Field(0.4, ge=0.0, le=1.0, description="Heatmap weight in the overlay")
    inference_concurrency: int = Field(
        1, ge=1, description="Model calls in flight at once (1 is fastest on a CPU)"
    )
    max_queue: int = Field(64, ge=0, description="Requests waiting for the model before 503")
    # 1 from `make bench` here: int8 runs batches 11 % faster per image in-process, but at
    # concurrency 16 the service reached the same req/s with 1 and 8 (decoding and encoding share
    # the 2 cores); bf16 and fp32 gain nothing from batches. Raise it on GPU hosts.
    max_batch_size: int = Field(
        1, ge=1, le=64, description="Waiting requests of one kind run as one model call, up to this"
    )
    batch_window_ms: float = Field(
        0.0, ge=0.0, le=100.0, description="Extra wait to gather a batch (0: only what is waiting)"
    )
    reading_requests: int = Field(
        0,
        ge=0,
        description="Admitted requests that read and decode their bodies at once; the others "
        "wait their turn with the body unread (0: model slots + 4)",
    )
    retry_after_seconds: int = Field(1, ge=1, description="Retry-After sent with a full queue")
    work_niceness: int = Field(
        10,
        ge=0,
        le=19,
        description="Nice value of model, decode and rendering threads, so the event loop "
        "(health checks, 503s) runs first under load (0: same priority)",
    )
    decode_concurrency: int = Field(
        2, ge=1, description="Decode worker processes (images decoded at once) and PNG threads"
    )
    decode_memory_mb: int = Field(
        1536, ge=256, description="Address-space limit of each decode worker process (MiB)"
    )
    decode_timeout_seconds: float = Field(
        10.0, gt=0, description="Longest one decode may take before 422 decode_timeout"
    )
    max_decoded_bytes: int = Field(
        128 * 2**20,
        gt=0,
        description="Largest decoded raster (width x height x channels x bytes per sample)",
    )
    min_image_side: int = Field(64, ge=1, description="Shortest accepted image side (pixels)")
    backend: BackendName = Field(
        "auto",
        description="Trunk backend: tensorflow (fp32), openvino-fp32, openvino-bf16, "
        "openvino-int8, or auto "
        "(the exported backend that passed the accuracy gates, else tensorflow)",
    )
    input_gate: GateMode = Field(
        "enforce",
        description="Input gate: enforce (422 not_a_chest_xray), report (answer, with "
        "input_check.passed false) or off",
    )
    tf_intra_op_threads: int = Field(0, ge=0, description="TensorFlow threads per op (0 = auto)")
    tf_inter_op_threads: int = Field(0, ge=0, description="TensorFlow parallel ops (0 = auto)")
    warmup: bool = Field(True, description="Run the model once before /ready turns 200")
    background_load: bool = Field(
        True, description="Open the port at once (/health 200, /ready 503) and load meanwhile"
    )
    log_format: LogFormat = Field(
        "text", description="text: uvicorn-like lines; json: one JSON object per line"
    )
    metrics_access: Literal["loopback", "open"] = Field(
        "loopback", description="Who may read GET /metrics: loopback clients only, or anyone"
    )
    dicom_modalities: str = Field(
        "CR,DX", description="Comma-separated DICOM Modality values accepted (others get 422)"
    )
    dicomweb_url: str | None = Field(
        None, description="DICOMweb root of the PACS, e.g. http://orthanc:8042/dicom-web"
    )
    dicomweb_username: str | None = Field(None, description="HTTP basic auth user for the PACS")
    dicomweb_password: SecretStr | None = Field(None, description="HTTP basic auth password")
    dicomweb_timeout_seconds: float = Field(
        30.0, gt=0, description="Timeout of each DICOMweb request (connect and read)"
    )
    api_keys_file: Path | None = Field(
        None, description="API keys (hashed; `python -m service.keys add`); unset: no keys"
    )
    allow_anonymous: bool = Field(
        False, description="Without API keys, also serve requests on non-loopback addresses"
    )
    cors_origins: str = Field(
        "", description="Comma-separated origins allowed to call the API from a browser page"
    )
    body_timeout_seconds: float = Field(
        30.0, gt=0, description="Time for a request body to arrive in full before 408"
    )
    head_timeout_seconds: float = Field(
        10.0, gt=0, description="Time for a request line and headers to arrive (python -m service)"
    )
    data_dir: Path = Field(
        REPO_ROOT.parent / "shared" / "data" / "cxr",
        description="Labelled CXR data (training, tests)",
    )

    @property
    def extra_model_dirs_explicit(self) -> bool:
        """True when ``CXR_EXTRA_MODEL_DIRS`` was set (then every folder must exist)."""
        return "extra_model_dirs" in self.model_fields_set

    @property
    def extra_model_dir_list(self) -> list[Path]:
        folders = [Path(p.strip()) for p in self.extra_model_dirs.split(",") if p.strip()]
        if self.extra_model_dirs_explicit:
            return folders
        return [p if p.is_absolute() else REPO_ROOT / p for p in folders]

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip().rstrip("/") for o in self.cors_origins.split(",") if o.strip()]

    @property
    def dicom_modality_set(self) -> frozenset[str]:
        return frozenset(m.strip().upper() for m in self.dicom_modalities.split(",") if m.strip())


@lru_cache
def get_settings() -> Settings:
    return Settings()
