"""``make fuzz``: mutated real PNG / JPEG / DICOM files through the service's decode pool.

    python -m bench.fuzz [--inputs 100000] [--seed 1] [--workers 2] [--small-only]

Seeds are the real originals (``CXR_DATA_DIR/originals``), the real DICOM transcoded into
every transfer syntax the service decodes, and small copies of all of them (fast inputs, so
most of the budget goes to headers and structure). Each input is a seed with one to three
mutations: bit flips, "interesting" integers written over length and size fields, truncation,
deleted, duplicated or spliced byte ranges, mostly in the first kilobyte where the headers are.

Every input goes through ``DecodePool.run`` exactly as an upload would (same limits). The only
acceptable outcomes are an image or a ``ServiceError``; any other exception and a worker that
dies are findings. Inputs that ran into the time limit (a clean ``422 decode_timeout``, but
worth a look: CharLS spends seconds on some corrupt JPEG-LS streams) are kept too, in
``--crashes``. Prints inputs/s, the outcome classes, worker deaths and timeouts, and the peak
RSS of this process and of the workers. Exit status 1 if there were findings.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import random
import resource
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from service.errors import ServiceError
from service.io.prepared import DecodeSpec
from service.io.workers import DecodePool
from service.settings import Settings

REPO = Path(__file__).resolve().parent.parent
CRASHES = REPO / "bench" / "results" / "tmp" / "fuzz-crashes"
INTERESTING = (0, 1, 2, 7, 8, 15, 16, 32, 64, 127, 128, 255, 256, 4095, 32767, 32768, 65535)
INTERESTING_32 = (65536, 2**24, 2**31 - 1, 2**31, 2**32 - 1)


def spec_from(settings: Settings, display: bool = True) -> DecodeSpec:
    return DecodeSpec(
        max_pixels=settings.max_image_pixels,
        max_decoded_bytes=settings.max_decoded_bytes,
        min_side=settings.min_image_side,
        modalities=settings.dicom_modality_set,
        model_size=(224, 224),
        heatmap_max_side=settings.heatmap_max_side,
        display=display,
    )


def _small_copy(data: bytes, suffix: str) -> bytes | None:
    """The same picture at <= 160 px, in the same format and bit depth."""
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None:
        return None
    scale = 160 / max(pixels.shape[:2])
    small = cv2.resize(pixels, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".png" if suffix == ".png" else ".jpg", small)
    return encoded.tobytes() if ok else None


def _dicom_seeds(data: bytes, small: bool) -> list[bytes]:
    import pydicom

    from tests.service.io.hostile import DECODED_SYNTAXES, transcoded

    if small:
        ds = pydicom.dcmread(io.BytesIO(data))
        pixels = cv2.resize(ds.pixel_array, (128, 128), interpolation=cv2.INTER_AREA)
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
        ds.set_pixel_data(pixels, "MONOCHROME2", 8)
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        data = buffer.getvalue()
    with tempfile.TemporaryDirectory() as tmp:
        return [transcoded(data, syntax, Path(tmp)) for syntax in DECODED_SYNTAXES]


def seeds(originals: Path, *, small_only: bool) -> list[bytes]:
    found: list[bytes] = []
    for path in sorted(originals.glob("*/*")):
        suffix = path.suffix.lower()
        data = path.read_bytes()
        if suffix == ".dcm":
            found += _dicom_seeds(data, small=True)
            if not small_only:
                found += [data, *_dicom_seeds(data, small=False)]
        elif suffix in {".png", ".jpg", ".jpeg"}:
            small = _small_copy(data, suffix)
            found += [small] if small else []
            if not small_only:
                found.append(data)
    return found


def _head_position(rng: random.Random, data: bytes | bytearray) -> int:
    """Mostly in the first kilobyte (headers), sometimes anywhere."""
    limit = len(data) if rng.random() < 0.3 else min(len(data), 1024)
    return rng.randrange(max(1, limit))


def _flip(rng: random.Random, data: bytearray, _: list[bytes]) -> bytearray:
    for _ in range(rng.choice((1, 1, 2, 4, 16))):
        data[_head_position(rng, data)] ^= 1 << rng.randrange(8)
    return data


def _integer(rng: random.Random, data: bytearray, _: list[bytes]) -> bytearray:
    width = rng.choice((1, 2, 4))
    value = rng.choice(INTERESTING + (INTERESTING_32 if width == 4 else ()))
    value %= 256**width
    order = rng.choice(("big", "little"))
    position = _head_position(rng, data)
    data[position : position + width] = value.to_bytes(width, order)  # type: ignore[arg-type]
    return data


def _truncate(rng: random.Random, data: bytearray, _: list[bytes]) -> bytearray:
    return data[: rng.randrange(1, len(data))] if len(data) > 1 else data


def _delete(rng: random.Random, data: bytearray, _: list[bytes]) -> bytearray:
    start = _head_position(rng, data)
    del data[start : start + rng.choice((1, 4, 16, 256))]
    return data


def _duplicate(rng: random.Random, data: bytearray, _: list[bytes]) -> bytearray:
    start = _head_position(rng, data)
    piece = data[start : start + rng.choice((4, 16, 256))]
    position = _head_position(rng, data)
    return data[:position] + piece + data[position:]


def _splice(rng: random.Random, data: bytearray, pool: list[bytes]) -> bytearray:
    other = rng.choice(pool)
    cut = _head_position(rng, data)
    return data[:cut] + bytearray(other[min(cut, len(other) - 1) :])


Mutation = Callable[[random.Random, bytearray, list[bytes]], bytearray]
MUTATIONS: tuple[Mutation, ...] = (_flip, _flip, _integer, _integer, _truncate, _delete)
MUTATIONS += (_duplicate, _splice)


def mutated(rng: random.Random, pool: list[bytes], count: int) -> Iterator[bytes]:
    """``count`` mutated inputs, the same ones for the same seed."""
    for _ in range(count):
        data = bytearray(rng.choice(pool))
        for _ in range(rng.choice((1, 1, 2, 3))):
            data = rng.choice(MUTATIONS)(rng, data, pool)
        yield bytes(data)


@dataclass
class Report:
    inputs: int = 0
    seconds: float = 0.0
    outcomes: Counter[str] = field(default_factory=Counter)
    kept: list[tuple[str, bytes]] = field(default_factory=list)  # (outcome, input)
    worker_deaths: int = 0
    timeouts: int = 0
    peak_worker_rss_mib: float = 0.0
    peak_rss_mib: float = 0.0

    @property
    def inputs_per_second(self) -> float:
        return self.inputs / self.seconds if self.seconds else 0.0

    @property
    def exceptions(self) -> int:
        """Outcomes that were not a ServiceError: there must be none."""
        return sum(n for outcome, n in self.outcomes.items() if outcome.startswith("EXCEPTION"))


def _outcome(pool: DecodePool, spec: DecodeSpec, data: bytes) -> str:
    try:
        pool.run(data, spec)
    except ServiceError as exc:
        return exc.code
    except BaseException as exc:  # a finding: nothing but ServiceError may come out
        return f"EXCEPTION {type(exc).__name__}"
    return "ok"


def fuzz(
    pool: DecodePool, spec: DecodeSpec, inputs: Iterator[bytes], threads: int, progress: int = 0
) -> Report:
    """Every input through ``pool`` (``threads`` at a time); outcomes and findings."""
    report, started = Report(), time.perf_counter()
    before = pool.stats
    with ThreadPoolExecutor(threads) as runner:
        pending: list[tuple[bytes, object]] = []

        def collect(keep: int) -> None:
            while len(pending) > keep:
                data, future = pending.pop(0)
                outcome = future.result()  # type: ignore[attr-defined]
                report.inputs += 1
                report.outcomes[outcome] += 1
                if outcome.startswith("EXCEPTION") or outcome == "decode_timeout":
                    report.kept.append((outcome, data))
                if progress and report.inputs % progress == 0:
                    rate = report.inputs / (time.perf_counter() - started)
                    print(f"  {report.inputs:,} inputs, {rate:.0f}/s", flush=True)

        for data in inputs:
            pending.append((data, runner.submit(_outcome, pool, spec, data)))
            collect(keep=threads * 4)
        collect(keep=0)
    after = pool.stats
    report.seconds = time.perf_counter() - started
    report.worker_deaths = after.crashes - before.crashes
    report.timeouts = after.timeouts - before.timeouts
    report.peak_worker_rss_mib = after.peak_worker_rss_mib
    report.peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return report


def _keep(kept: list[tuple[str, bytes]], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for what, data in kept:
        name = f"{what.replace(' ', '-')}-{hashlib.sha1(data).hexdigest()[:16]}.bin"
        (folder / name).write_bytes(data)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--inputs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2, help="decode worker processes")
    parser.add_argument("--small-only", action="store_true", help="only the small seed copies")
    parser.add_argument("--crashes", type=Path, default=CRASHES)
    args = parser.parse_args()
    settings = Settings()
    pool_seeds = seeds(settings.data_dir / "originals", small_only=args.small_only)
    print(f"{len(pool_seeds)} seeds, {args.inputs:,} inputs, seed {args.seed}", flush=True)
    pool = DecodePool(
        workers=args.workers,
        memory_mb=settings.decode_memory_mb,
        timeout_seconds=settings.decode_timeout_seconds,
    )
    pool.start()
    try:
        inputs = mutated(random.Random(args.seed), pool_seeds, args.inputs)
        report = fuzz(pool, spec_from(settings), inputs, args.workers, progress=5000)
    finally:
        pool.close()
    _keep(report.kept, args.crashes)
    print(f"\n{report.inputs:,} inputs in {report.seconds:.0f} s: {report.inputs_per_second:.1f}/s")
    for outcome, count in report.outcomes.most_common():
        print(f"  {outcome:28s} {count:7,}")
    print(f"worker deaths {report.worker_deaths}, timeouts {report.timeouts}")
    print(f"peak RSS: this process {report.peak_rss_mib:.0f} MiB, ", end="")
    print(f"a worker {report.peak_worker_rss_mib:.0f} MiB (limit {settings.decode_memory_mb} MiB)")
    if report.kept:
        print(f"{len(report.kept)} inputs (exceptions, timeouts) kept in {args.crashes}")
    return 1 if report.exceptions or report.worker_deaths else 0


if __name__ == "__main__":
    sys.exit(main())
