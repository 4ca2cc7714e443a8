"""API keys: the CLI, the file (hashes only, atomic, private) and the check of a presented key."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from service.keys import KeyFileError, KeyStore, main


def add(path: Path, name: str, scopes: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["--file", str(path), "add", name, "--scopes", scopes]) == 0
    key = capsys.readouterr().out.strip()
    assert key.startswith("cxr_")
    return key


def test_add_prints_the_key_once_and_stores_only_its_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "keys.json"
    key = add(path, "pacs-bridge", "infer,pacs", capsys)
    text = path.read_text()
    assert key not in text and key.split("_")[2] not in text
    (record,) = json.loads(text)["keys"]
    assert record["name"] == "pacs-bridge" and record["scopes"] == ["infer", "pacs"]
    assert record["hash"].startswith("$argon2id$")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["keys.json"]  # no temporary file left

    assert main(["--file", str(path), "list"]) == 0
    listed = capsys.readouterr().out
    assert "pacs-bridge" in listed and "infer,pacs" in listed and key not in listed


def test_add_refuses_duplicates_and_unknown_scopes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "keys.json"
    add(path, "viewer", "infer", capsys)
    with pytest.raises(SystemExit):
        main(["--file", str(path), "add", "viewer"])
    with pytest.raises(SystemExit):
        main(["--file", str(path), "add", "other", "--scopes", "infer,admin"])
    with pytest.raises(SystemExit):
        main(["--file", str(path), "revoke", "nobody"])
    assert len(json.loads(path.read_text())["keys"]) == 1


def test_store_verifies_keys_and_follows_revocation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "keys.json"
    viewer = add(path, "viewer", "infer", capsys)
    bridge = add(path, "bridge", "pacs,dicom-out", capsys)
    store = KeyStore(path)
    record = store.verify(viewer)
    assert record is not None and record.name == "viewer" and record.scopes == {"infer"}
    assert store.cached(viewer) == record  # the second time without argon2
    assert store.verify(bridge).scopes == {"pacs", "dicom-out"}  # type: ignore[union-attr]
    assert store.verify(viewer[:-2] + "xx") is None  # right id, wrong secret
    assert store.verify("cxr_00000000_" + "a" * 43) is None  # unknown id
    assert store.verify("not a key") is None

    assert main(["--file", str(path), "revoke", "viewer"]) == 0
    assert store.cached(viewer) is None and store.verify(viewer) is None
    assert store.verify(bridge) is not None


def test_missing_or_broken_file_stops_the_start(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="does not exist"):
        KeyStore(tmp_path / "absent.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(KeyFileError, match="not a valid keys file"):
        KeyStore(broken)
