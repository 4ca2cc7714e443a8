"""Resumable outputs. Every chunk of rows is on disk, whole, before the next one is scored.

- CSV: rows are appended one chunk at a time, each chunk a single write followed by fsync. A run
  killed mid-write leaves at worst a torn last line, which the next run cuts off before going on.
- Parquet: ``results.parquet`` is a folder of part files (what pyarrow, pandas, Polars, DuckDB
  and Ray read as one table); each chunk is a new part, written under a temporary name and
  renamed, so a reader never sees half a part.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from service.batch.rows import ScoreRow, columns, from_record, to_record


class RowWriter(Protocol):
    def write(self, rows: list[ScoreRow]) -> None: ...


def is_parquet(path: Path) -> bool:
    return path.suffix.lower() == ".parquet"


def open_writer(path: Path, classes: list[str]) -> RowWriter:
    return ParquetWriter(path, classes) if is_parquet(path) else CsvWriter(path, classes)


def read_rows(path: Path, classes: list[str]) -> list[ScoreRow]:
    """The rows already in ``path`` (none when it does not exist)."""
    if not path.exists():
        return []
    return [from_record(record, classes) for record in _records(path)]


def scored_paths(path: Path) -> set[str]:
    """The files an earlier run already wrote a row for: a rerun skips them."""
    return {str(record["path"]) for record in _records(path)} if path.exists() else set()


def _records(path: Path) -> Iterator[dict[str, Any]]:
    if is_parquet(path):
        import pyarrow.parquet as pq

        for part in _parts(path):
            yield from pq.read_table(part).to_pylist()
    else:
        text = path.read_text(encoding="utf-8")
        # A torn last line (a run killed mid-write) is no row; the next writer cuts it off.
        whole = text[: text.rfind("\n") + 1]
        yield from csv.DictReader(io.StringIO(whole, newline=""))


def _parts(folder: Path) -> list[Path]:
    return sorted(folder.glob("part-*.parquet"))


class CsvWriter:
    def __init__(self, path: Path, classes: list[str]) -> None:
        self._path, self._classes, self._columns = path, classes, columns(classes)
        self._cut_torn_line()
        if not path.exists() or path.stat().st_size == 0:
            self._append(",".join(self._columns) + "\n")
        else:
            with path.open(newline="", encoding="utf-8") as handle:
                header = next(csv.reader(handle), [])
            if header != self._columns:
                raise ValueError(
                    f"{path} has other columns (another model's classes?); choose another --out"
                )

    def write(self, rows: list[ScoreRow]) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, self._columns, lineterminator="\n")
        for row in rows:
            writer.writerow(to_record(row, self._classes))
        self._append(buffer.getvalue())  # one write: a chunk is on disk whole or not at all

    def _append(self, text: str) -> None:
        fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, text.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)

    def _cut_torn_line(self) -> None:
        """A run killed mid-write may leave a last line without its newline: drop it."""
        if not self._path.exists() or self._path.stat().st_size == 0:
            return
        with self._path.open("rb+") as handle:
            data = handle.read()
            if not data.endswith(b"\n"):
                handle.truncate(data.rfind(b"\n") + 1)


class ParquetWriter:
    def __init__(self, path: Path, classes: list[str]) -> None:
        import pyarrow as pa

        self._folder, self._classes = path, classes
        path.mkdir(parents=True, exist_ok=True)
        for leftover in path.glob(".tmp-*"):  # a part a killed run did not finish
            leftover.unlink()
        parts = _parts(path)
        self._next = int(parts[-1].stem.split("-")[1]) + 1 if parts else 0
        fields: list[tuple[str, Any]] = []
        for name in columns(classes):
            if name in ("width", "height"):
                fields.append((name, pa.int64()))
            elif name.startswith("p_") or name == "gate_score":
                fields.append((name, pa.float64()))
            elif name == "gate_passed":
                fields.append((name, pa.bool_()))
            else:
                fields.append((name, pa.string()))
        self._schema = pa.schema(fields)

    def write(self, rows: list[ScoreRow]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not rows:
            return
        table = pa.Table.from_pylist([to_record(r, self._classes) for r in rows], self._schema)
        final = self._folder / f"part-{self._next:06d}.parquet"
        temporary = self._folder / f".tmp-{final.name}"
        pq.write_table(table, temporary)
        os.replace(temporary, final)
        self._next += 1
