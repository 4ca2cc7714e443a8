"""Slow and short request bodies against the real server (uvicorn): cut off, others served."""

from __future__ import annotations

import socket
import time
import urllib.request
from urllib.parse import urlsplit

from tests.e2e.conftest import BODY_TIMEOUT_SECONDS, HEAD_TIMEOUT_SECONDS

HEAD = (
    "POST /predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: image/png\r\n"
    "Content-Length: 100000\r\n\r\n"
)


def _connect(service_url: str) -> tuple[socket.socket, str]:
    parts = urlsplit(service_url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=5)
    return sock, parts.netloc


def _read_until_closed(sock: socket.socket) -> bytes:
    sock.settimeout(BODY_TIMEOUT_SECONDS * 10)
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def test_short_body_gets_408_and_the_connection_closed(service_url: str) -> None:
    sock, host = _connect(service_url)
    with sock:
        # Content-Length promises 100000 bytes; 8 arrive, then nothing.
        sock.sendall(HEAD.format(host=host).encode() + b"\x89PNG\r\n\x1a\n")
        # Meanwhile another client is served as usual.
        with urllib.request.urlopen(f"{service_url}/health", timeout=5) as health:
            assert health.status == 200
        answer = _read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b'"request_timeout"' in answer


def test_slow_loris_body_is_cut_off(service_url: str) -> None:
    sock, host = _connect(service_url)
    with sock:
        sock.sendall(HEAD.format(host=host).encode())
        deadline = time.monotonic() + BODY_TIMEOUT_SECONDS * 5
        answer = b""
        sock.settimeout(0.5)
        # One byte every half second would take 14 hours for the declared body.
        while time.monotonic() < deadline:
            try:
                sock.sendall(b"x")
                answer = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if answer:
                break
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]


def test_oversized_headers_are_refused(service_url: str) -> None:
    sock, host = _connect(service_url)
    with sock:
        # 1 MiB: it reaches the parser in pieces, and the unfinished head passes the limit.
        padding = "".join(f"X-Padding-{i}: {'a' * 1000}\r\n" for i in range(1024))
        try:
            sock.sendall(f"GET /health HTTP/1.1\r\nHost: {host}\r\n{padding}\r\n".encode())
            answer = _read_until_closed(sock)
        except (ConnectionResetError, BrokenPipeError):  # closed while the head was coming
            answer = b""
    assert answer == b"" or answer.startswith(b"HTTP/1.1 4"), answer[:200]


def test_slow_head_is_cut_off_while_others_are_served(service_url: str) -> None:
    sock, host = _connect(service_url)
    with sock:
        sock.sendall(f"GET /health HTTP/1.1\r\nHost: {host}\r\n".encode())
        sock.settimeout(0.5)
        closed = False
        deadline = time.monotonic() + HEAD_TIMEOUT_SECONDS * 5
        while time.monotonic() < deadline and not closed:
            try:
                sock.sendall(b"X-Slow: a\r\n")  # a header line now and then, never the end
                closed = sock.recv(65536) == b""
            except TimeoutError:
                with urllib.request.urlopen(f"{service_url}/health", timeout=5) as health:
                    assert health.status == 200  # everyone else is served meanwhile
            except OSError:
                closed = True
    assert closed
