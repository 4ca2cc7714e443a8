"""What to score: files under the given paths, and the true label of each when it is known."""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterable
from pathlib import Path

Labeller = Callable[[str], str]  # absolute path -> true label ("" when unknown)


def absolute(path: Path | str) -> str:
    """The form every row's ``path`` has: absolute, symlinks kept (as the user sees them)."""
    return os.path.abspath(path)


def find_files(paths: Iterable[Path], *, exclude: Iterable[Path] = ()) -> list[str]:
    """Every regular file under ``paths`` (recursively), sorted, each once. The type is decided
    later from the content, so no extension filter; hidden files and folders are skipped, and so
    is everything in ``exclude`` (files or folders: our own outputs inside a scanned tree)."""
    skipped = {absolute(p) for p in exclude}
    found: set[str] = set()
    for root in paths:
        if root.is_file():
            found.add(absolute(root))
            continue
        if not root.is_dir():
            raise FileNotFoundError(f"{root}: no such file or folder")
        for folder, subfolders, files in os.walk(root, followlinks=False):
            subfolders[:] = [
                d
                for d in subfolders
                if not d.startswith(".") and absolute(Path(folder) / d) not in skipped
            ]
            found.update(absolute(Path(folder) / f) for f in files if not f.startswith("."))
    return sorted(found - skipped)


def manifest_labeller(manifest: Path) -> Labeller:
    """A CSV with ``path`` and ``label`` columns; paths relative to the manifest's folder."""
    base = manifest.parent
    labels: dict[str, str] = {}
    with manifest.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"path", "label"} <= set(reader.fieldnames):
            raise ValueError(f"{manifest} needs a 'path' and a 'label' column")
        for record in reader:
            labels[absolute(base / record["path"])] = record["label"].strip()
    return lambda path: labels.get(path, "")


def folder_labeller(roots: Iterable[Path], classes: Iterable[str]) -> Labeller:
    """One folder per label: the nearest folder (up to a scanned root) named like a class."""
    known = {c.lower(): c for c in classes}
    root_list = [absolute(r) for r in roots]

    def label(path: str) -> str:
        root = next((r for r in root_list if path.startswith(r + os.sep)), None)
        if root is None:
            return ""
        # The root itself counts too: ``cxr-score images/covid`` knows its files are covid.
        folders = (Path(root).name, *Path(path[len(root) + 1 :]).parts[:-1])
        for part in reversed(folders):
            if part.lower() in known:
                return known[part.lower()]
        return ""

    return label
