"""API keys: the file of hashed keys, the check of a presented key, and the CLI that manages it.

A key reads ``cxr_<id>_<secret>``. The 8-hex ``id`` names its record in the file in the clear, so
checking a key costs ONE argon2 verification (never one per stored key) and an unknown id is
refused without any. Only the argon2 hash of the whole key is stored. A verified key is then
remembered under an HMAC of it with a secret drawn at start (not the key, never logged), so the
argon2 cost is paid once per key and process. The file is re-read when it changes on disk: a
revoked key stops working without a restart.

    python -m service.keys add NAME --scopes infer,pacs,dicom-out   # prints the new key once
    python -m service.keys list
    python -m service.keys revoke NAME
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import sys
import tempfile
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# infer: /predict, /explain; pacs: /pacs/...; dicom-out: DICOM answers (they carry patient data).
SCOPES = ("infer", "pacs", "dicom-out")
_KEY = re.compile(r"^cxr_([0-9a-f]{8})_([A-Za-z0-9_-]{20,100})$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
# A key is 256 random bits, so argon2 guards against nothing a cheap hash would not; the RFC 9106
# low-memory parameters keep a first verification near 20 ms.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)
_CACHE_LIMIT = 4096
logger = logging.getLogger("service.keys")


class KeyFileError(Exception):
    """The keys file is missing or malformed: the service refuses to start."""


@dataclass(frozen=True)
class ApiKey:
    name: str
    key_id: str
    hash: str
    scopes: frozenset[str]
    created: str

    def as_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "id": self.key_id,
            "hash": self.hash,
            "scopes": sorted(self.scopes),
            "created": self.created,
        }


def read_keys(path: Path) -> list[ApiKey]:
    try:
        records = json.loads(path.read_text(encoding="utf-8"))["keys"]
        return [
            ApiKey(
                name=str(r["name"]),
                key_id=str(r["id"]),
                hash=str(r["hash"]),
                scopes=frozenset(str(s) for s in r["scopes"]),
                created=str(r.get("created", "")),
            )
            for r in records
        ]
    except FileNotFoundError as exc:
        raise KeyFileError(
            f"The API keys file {path} does not exist: create it with "
            "`python -m service.keys add NAME --scopes infer`, or unset CXR_API_KEYS_FILE."
        ) from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise KeyFileError(f"The API keys file {path} is not a valid keys file: {exc}") from exc


def write_keys(path: Path, keys: list[ApiKey]) -> None:
    """Replace the file atomically (a reader sees the old or the new file, never half of one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"keys": [k.as_json() for k in keys]}, indent=2) + "\n"
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def new_key(name: str, scopes: frozenset[str]) -> tuple[str, ApiKey]:
    """A fresh key and its record; the key itself is returned once and stored nowhere."""
    key_id = secrets.token_hex(4)
    key = f"cxr_{key_id}_{secrets.token_urlsafe(32)}"
    created = datetime.now(UTC).isoformat(timespec="seconds")
    return key, ApiKey(name, key_id, _HASHER.hash(key), scopes, created)


class KeyStore:
    """The keys of ``path``, re-read when the file changes; safe to use from several threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pepper = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._by_id: dict[str, ApiKey] = {}
        self._verified: dict[bytes, str] = {}  # HMAC of a verified key -> its id
        self._refresh(at_start=True)

    def _refresh(self, at_start: bool = False) -> None:
        try:
            stat = self.path.stat()
            stamp: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            stamp = None
        if stamp == self._stamp and not at_start:
            return
        try:
            keys = read_keys(self.path)
        except KeyFileError:
            if at_start:
                raise
            # Removed or broken while serving: refuse every key rather than keep stale ones.
            logger.error("API keys file %s unreadable; refusing all keys until fixed", self.path)
            keys = []
        with self._lock:
            self._by_id = {k.key_id: k for k in keys}
            self._verified = {}
            self._stamp = stamp

    def _digest(self, presented: str) -> bytes:
        return hmac.new(self._pepper, presented.encode(), hashlib.sha256).digest()

    def cached(self, presented: str) -> ApiKey | None:
        """The key's record if it was verified before (fast, for the event loop), else None."""
        self._refresh()
        key_id = self._verified.get(self._digest(presented))
        return self._by_id.get(key_id) if key_id else None

    def verify(self, presented: str) -> ApiKey | None:
        """The key's record, or None for an unknown or wrong key (one argon2 check at most)."""
        cached = self.cached(presented)
        if cached is not None:
            return cached
        match = _KEY.match(presented)
        record = self._by_id.get(match.group(1)) if match else None
        if record is None:
            return None
        try:
            _HASHER.verify(record.hash, presented)
        except (VerificationError, InvalidHashError):
            return None
        with self._lock:
            if len(self._verified) >= _CACHE_LIMIT:
                self._verified.clear()
            self._verified[self._digest(presented)] = record.key_id
        return record


def _parse_scopes(text: str) -> frozenset[str]:
    scopes = frozenset(s.strip() for s in text.split(",") if s.strip())
    unknown = scopes - set(SCOPES)
    if not scopes or unknown:
        raise argparse.ArgumentTypeError(
            f"scopes must be some of {', '.join(SCOPES)} (got {text!r})"
        )
    return scopes


def _default_file() -> Path | None:
    from service.settings import Settings

    return Settings().api_keys_file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m service.keys", description="Manage the service's API keys."
    )
    parser.add_argument("--file", type=Path, help="keys file (default: CXR_API_KEYS_FILE)")
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help="create a key, print it once, store its hash")
    add.add_argument("name")
    add.add_argument("--scopes", type=_parse_scopes, default=frozenset({"infer"}))
    commands.add_parser("list", help="names, ids, scopes and dates (never keys)")
    revoke = commands.add_parser("revoke", help="delete the key of that name")
    revoke.add_argument("name")
    args = parser.parse_args(argv)

    path = args.file or _default_file()
    if path is None:
        parser.error("set CXR_API_KEYS_FILE or pass --file")
    keys = read_keys(path) if path.exists() or args.command != "add" else []
    if args.command == "add":
        if not _NAME.match(args.name):
            parser.error("NAME: letters, digits and _.@- only, at most 64")
        if any(k.name == args.name for k in keys):
            parser.error(f"a key named {args.name!r} exists; revoke it first")
        key, record = new_key(args.name, args.scopes)
        write_keys(path, [*keys, record])
        print(key)
        print(
            f"Key {args.name!r} ({', '.join(sorted(args.scopes))}) added to {path}. "
            "It is shown only now: send it as `Authorization: Bearer <key>`.",
            file=sys.stderr,
        )
    elif args.command == "list":
        for k in keys:
            print(f"{k.name}\t{k.key_id}\t{','.join(sorted(k.scopes))}\t{k.created}")
    else:
        remaining = [k for k in keys if k.name != args.name]
        if len(remaining) == len(keys):
            parser.error(f"no key named {args.name!r}")
        write_keys(path, remaining)
        print(f"Key {args.name!r} revoked.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyFileError as error:
        sys.exit(str(error))
