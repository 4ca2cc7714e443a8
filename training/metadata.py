"""The one writer of a model folder's ``metadata.json`` on the training side.

Export creates it; evaluation (metrics), the fast export (backends, parity report) and the gate
(gate.json) update parts of it. They all go through ``update_metadata``, which re-reads the file
first (so an update never drops what another step wrote), records the sha256 of the files it is
given, writes atomically and validates the result the way the service does at start-up.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from service.inference.artifact import (
    METADATA_FILE,
    ModelMetadata,
    read_metadata,
    sha256_file,
    write_metadata,
)


def create_metadata(model_dir: Path, metadata: ModelMetadata) -> ModelMetadata:
    """A new folder's metadata (export): written, then checked like the service checks it."""
    write_metadata(model_dir, metadata)
    return read_metadata(model_dir)


def update_metadata(model_dir: Path, *, files: Iterable[str] = (), **fields: Any) -> ModelMetadata:
    """Set top-level ``fields`` and the checksums of ``files`` (names inside ``model_dir``)."""
    # Parsed without the checksum check: the caller has just rewritten some of ``files``.
    metadata = ModelMetadata.model_validate_json((model_dir / METADATA_FILE).read_text())
    for name, value in fields.items():
        if name not in ModelMetadata.model_fields and name not in (metadata.model_extra or {}):
            setattr(metadata, name, value)  # extra keys are allowed (e.g. ``gate``)
        else:
            setattr(metadata, name, value)
    metadata.files = {**metadata.files, **{n: sha256_file(model_dir / n) for n in files}}
    write_metadata(model_dir, ModelMetadata.model_validate(metadata.model_dump(mode="json")))
    return read_metadata(model_dir)
