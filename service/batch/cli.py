"""``cxr-score PATH... --out results.csv|.parquet``: score every file under PATHs.

One row per file, whatever it holds; a file that cannot be scored gets its error code in
``status`` and the run goes on. Rows are on disk in small chunks: a rerun with the same
``--out`` skips what is there, and Ctrl-C (once: finish the file at hand; twice: at once)
leaves a valid partial output. NOT FOR DIAGNOSTIC USE.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# Nothing heavy at import time, on purpose: decode workers start from a forkserver, and each
# worker imports the main module (this one, or the ``cxr-score`` script that imports it). With
# TensorFlow imported here every worker would load it too, before its memory limit applies.


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="cxr-score", description=__doc__.split("\n")[0] if __doc__ else None
    )
    parser.add_argument("paths", nargs="+", type=Path, help="files or folders (recursive)")
    parser.add_argument("--out", type=Path, required=True, help="results.csv or results.parquet")
    parser.add_argument("--model", type=Path, help="model folder (default: CXR_MODEL_DIR)")
    parser.add_argument("--backend", help="trunk backend (default: CXR_BACKEND, else auto)")
    parser.add_argument("--explain-dir", type=Path, help="write each image's Grad-CAM overlay")
    parser.add_argument("--report", type=Path, help="HTML report (plots written beside it)")
    parser.add_argument(
        "--labels",
        type=Path,
        help="CSV manifest with path,label (paths relative to it); "
        "default: folder names that are class names",
    )
    parser.add_argument("--workers", type=int, default=0, help="decode processes (local)")
    ray = parser.add_argument_group("Ray (pip install '.[ray]')")
    ray.add_argument("--ray", action="store_true", help="score on Ray Data (a local Ray)")
    ray.add_argument("--ray-address", help="score on this Ray cluster, e.g. ray://head:10001")
    ray.add_argument("--actors", type=int, default=1, help="model actors (each loads the model)")
    ray.add_argument("--actor-cpus", type=float, default=1.0, help="CPUs Ray reserves per actor")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from service.batch.run import score_command

    return score_command(args)


if __name__ == "__main__":
    sys.exit(main())
