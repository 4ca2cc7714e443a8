"""A decode task for tests that misbehaves on request, as a native codec might.

Workers import it by name (it is pickled by reference), so it lives in a module of its own.
Input starting with ``ABORT`` aborts the worker (SIGABRT, like GDCM's uncaught C++ exception),
``SLEEP <path>`` creates ``path`` and then decodes for a minute, ``HOG`` allocates 4 GiB;
anything else is decoded normally.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from service.io.prepared import DecodeSpec, PreparedImage, prepare_image


def misbehaving(data: bytes, spec: DecodeSpec) -> PreparedImage:
    if data.startswith(b"ABORT"):
        os.abort()
    if data.startswith(b"SLEEP "):
        Path(data[6:].decode()).touch()  # "the decode has started"
        time.sleep(60)
    if data.startswith(b"HOG"):
        hog = bytearray(4 * 2**30)
        hog[-1] = 1
    return prepare_image(data, spec)
