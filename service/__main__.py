"""``python -m service [--host H] [--port P]``: serve the app with uvicorn (``make serve``).

The app cannot see which address uvicorn binds, so the secure default is enforced here, before
the port opens: without API keys (``CXR_API_KEYS_FILE``) the service binds loopback only, unless
``CXR_ALLOW_ANONYMOUS=true``. (Started some other way, the routes still refuse anonymous requests
that arrive on a non-loopback address: ``service.api.deps.identify``.)
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys

import uvicorn

from service.http_protocol import H11WithHeadTimeout
from service.settings import Settings, get_settings


def is_loopback_host(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def exposure_problem(settings: Settings, host: str) -> str | None:
    """Why serving on ``host`` would be unsafe, or None."""
    if settings.api_keys_file or settings.allow_anonymous or is_loopback_host(host):
        return None
    return (
        f"Refusing to serve on {host}: no API keys are configured, so anyone who can reach that "
        "address could use the service. Create a key (python -m service.keys add NAME "
        "--scopes infer) and set CXR_API_KEYS_FILE, or set CXR_ALLOW_ANONYMOUS=true to serve "
        "anonymously on purpose."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    args = parser.parse_args(argv)
    settings = get_settings()
    problem = exposure_problem(settings, args.host)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    uvicorn.run(
        "service.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=1,  # one model per process; TensorFlow already uses every core
        access_log=False,  # the app writes its own, richer line: service/observability/access.py
        timeout_keep_alive=5,  # idle keep-alive connections are closed after 5 s
        # h11, not httptools: httptools takes request headers of any size (memory per
        # connection without bound), h11 refuses a request line + headers over 16 KiB. Its
        # parsing costs microseconds against a model call of tens of milliseconds. And a head
        # must arrive within CXR_HEAD_TIMEOUT_SECONDS (uvicorn itself has no such limit).
        http=type(
            "H11", (H11WithHeadTimeout,), {"head_timeout_seconds": settings.head_timeout_seconds}
        ),
        h11_max_incomplete_event_size=16 * 1024,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
