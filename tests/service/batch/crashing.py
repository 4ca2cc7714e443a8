"""A decode task that kills its worker process on a marked file, as a crashing codec would."""

from __future__ import annotations

import os

from service.io.prepared import DecodeSpec, PreparedImage, prepare_image

MARKER = b"CRASH-THE-DECODER"


def crash_on_marker(data: bytes, spec: DecodeSpec) -> PreparedImage:
    if MARKER in data:
        os.abort()
    return prepare_image(data, spec)
