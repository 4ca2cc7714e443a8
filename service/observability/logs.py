"""Log format for the service's loggers: uvicorn-like text lines, or one JSON object per line.

``CXR_LOG_FORMAT=json`` also switches uvicorn's own handlers, so a log shipper reads one format.
Fields added with ``extra={"fields": {...}}`` (the access log) become top-level JSON keys.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["text", "json"]

TEXT_FORMAT = "%(levelname)s:     %(name)s: %(message)s"  # lines up with uvicorn's own
_UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


_handler: logging.Handler | None = None  # ours, so a second app in one process reuses it


def configure_logging(log_format: LogFormat) -> None:
    global _handler
    formatter = JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    service_logger = logging.getLogger("service")
    if _handler is None and not service_logger.handlers and not logging.getLogger().handlers:
        # uvicorn configures only its own loggers; give ours a handler of our own.
        _handler = logging.StreamHandler()
        service_logger.addHandler(_handler)
        service_logger.setLevel(logging.INFO)
    if _handler is not None:
        _handler.setFormatter(formatter)
    if log_format == "json":
        for name in _UVICORN_LOGGERS:
            for handler in logging.getLogger(name).handlers:
                handler.setFormatter(formatter)
