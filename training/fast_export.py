"""Export the fast trunks (OpenVINO fp32, bf16, int8) and gate them on accuracy against fp32 TF.

    python -m training.fast_export MODEL_DIR [--data DIR] [--calibration 300]

1. The trunk (input -> block5_conv3) of ``model.keras`` is converted to OpenVINO IR (fp32) and
   quantised to int8 with NNCF post-training quantisation, calibrated on training-split images
   (never test images) decoded and preprocessed by the service's own path. ``openvino-bf16`` is
   the fp32 IR run at bfloat16 precision; it is measured only on a CPU with native bf16.
2. Every backend runs the test split through ``ClassifierRuntime`` (the served code: fast trunk,
   TF head, Grad-CAM over the head) and is compared with plain TensorFlow fp32: argmax agreement,
   macro-F1 drop, max |delta probability| and the Pearson correlation of Grad-CAM maps.
3. ``parity.json`` is written beside the model, and ``metadata.json`` lists the trunks, their
   checksums and the recommended backend: the fastest one that passed every gate.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import f1_score
from tqdm import tqdm

from service.inference.artifact import (
    read_metadata,
)
from service.inference.backends import TENSORFLOW, native_bf16
from service.inference.preprocess import to_model_batch
from service.inference.runtime import ClassifierRuntime, split_at_layer
from service.settings import Settings
from training.data import Record, load_gray, read_manifest, select
from training.metadata import update_metadata

GATES = {
    "argmax_agreement_min": 0.995,
    "macro_f1_drop_max_points": 0.5,
    "max_abs_prob_delta_max": 0.05,
    "gradcam_correlation_min": 0.95,
}
FP32_IR, INT8_IR = "trunk-openvino-fp32.xml", "trunk-openvino-int8.xml"
# Backend -> IR and the precision of its non-int8 layers (see service/inference/backends.py).
TRUNKS = {
    "openvino-fp32": {"ir_file": FP32_IR, "precision": "f32"},
    "openvino-bf16": {"ir_file": FP32_IR, "precision": "bf16"},
    "openvino-int8": {"ir_file": INT8_IR, "precision": "f32"},
}


def batches(data_dir: Path, records: list[Record], size: tuple[int, int], desc: str):
    for start in tqdm(range(0, len(records), 16), desc=desc, unit="batch"):
        chunk = records[start : start + 16]
        yield to_model_batch([load_gray(data_dir, r) for r in chunk], size)


def last_convolutions(model: Any, count: int) -> list[str]:
    """The converted IR names ops generically; in graph order block5's convs come last."""
    ordered = [op for op in model.get_ordered_ops() if op.get_type_name() == "Convolution"]
    return [op.get_friendly_name() for op in ordered[-count:]]


def export_trunks(
    model_dir: Path,
    data_dir: Path,
    train: list[Record],
    calibration: int,
    *,
    int8: bool = True,
    fp16_weights: bool = False,
) -> None:
    """``fp16_weights``: the IR stores its weights in fp16 (half the size; the CPU computes in
    the backend's precision all the same), ``int8=False``: no int8 trunk. Both make a smaller
    model folder; the parity gates judge the result either way."""
    import nncf
    import openvino as ov

    runtime = ClassifierRuntime.load(model_dir)
    metadata = runtime.metadata
    trunk, _ = split_at_layer(runtime.model, metadata.gradcam_layer, metadata.logits_layer)
    example = np.zeros((1, *runtime.input_size, 3), np.float32)
    fp32 = ov.convert_model(trunk, example_input=example)
    fp32.reshape([-1, *runtime.input_size, 3])
    ov.save_model(fp32, model_dir / FP32_IR, compress_to_fp16=fp16_weights)
    if not int8:
        return

    rng = np.random.default_rng(0)  # calibration images: a fixed random subset of train
    chosen = [train[i] for i in rng.permutation(len(train))[:calibration]]
    samples = [
        batch[i : i + 1]
        for batch in batches(data_dir, chosen, runtime.input_size, "calibration images")
        for i in range(len(batch))
    ]
    # block5 (about 9% of the FLOPs) stays fp32: Grad-CAM reads block5_conv3 and the head's
    # probabilities depend on it most; quantising it too moved probabilities by up to 0.11.
    quantised = nncf.quantize(
        fp32,
        nncf.Dataset(samples),
        subset_size=len(samples),
        ignored_scope=nncf.IgnoredScope(names=last_convolutions(fp32, 3)),
    )
    ov.save_model(quantised, model_dir / INT8_IR, compress_to_fp16=False)


def cpu_name() -> str:
    import openvino as ov

    return str(ov.Core().get_property("CPU", "FULL_DEVICE_NAME"))


def run_split(runtime: ClassifierRuntime, data_dir: Path, records: list[Record]):
    probabilities, cams = [], []
    for batch in batches(data_dir, records, runtime.input_size, f"test split ({runtime.backend})"):
        explained = runtime.explain(batch, np.full(len(batch), -1, np.int32))
        probabilities.append(explained.probabilities)
        cams.append(explained.cams)
    return np.concatenate(probabilities), np.concatenate(cams)


def median_ms(call: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``call()`` in milliseconds, after one untimed warm-up call."""
    call()
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        timings.append((time.perf_counter() - started) * 1000)
    return float(np.median(timings))


def batch1_ms(runtime: ClassifierRuntime, repeats: int = 20) -> float:
    batch = np.random.default_rng(0).normal(0, 50, (1, *runtime.input_size, 3)).astype(np.float32)
    return median_ms(lambda: runtime.predict(batch), repeats)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    denominator = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denominator) if denominator > 0 else float(np.array_equal(a, b))


def compare(reference, candidate, labels: np.ndarray) -> dict[str, Any]:
    (ref_p, ref_cam), (p, cam) = reference, candidate
    macro = lambda probs: 100 * f1_score(labels, probs.argmax(1), average="macro")  # noqa: E731
    # The target class of each map is the reference's top class where the two agree.
    same = ref_p.argmax(1) == p.argmax(1)
    correlations = [correlation(ref_cam[i], cam[i]) for i in np.flatnonzero(same)]
    figures = {
        "argmax_agreement": float(same.mean()),
        "macro_f1_points": float(macro(p)),
        "macro_f1_drop_points": float(macro(ref_p) - macro(p)),
        "max_abs_prob_delta": float(np.abs(ref_p - p).max()),
        "gradcam_correlation_mean": float(np.mean(correlations)),
        "gradcam_correlation_min": float(np.min(correlations)),
    }
    figures["gates_passed"] = bool(
        figures["argmax_agreement"] >= GATES["argmax_agreement_min"]
        and figures["macro_f1_drop_points"] <= GATES["macro_f1_drop_max_points"]
        and figures["max_abs_prob_delta"] <= GATES["max_abs_prob_delta_max"]
        and figures["gradcam_correlation_mean"] >= GATES["gradcam_correlation_min"]
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--calibration", type=int, default=300, help="training images for int8")
    parser.add_argument("--limit", type=int, default=None, help="test images per class (smoke)")
    parser.add_argument("--no-int8", action="store_true", help="no int8 trunk (smaller folder)")
    parser.add_argument("--fp16-weights", action="store_true", help="IR weights stored as fp16")
    args = parser.parse_args()
    data_dir = args.data or Settings().data_dir  # --data, else CXR_DATA_DIR, else ../shared
    report = run(
        args.model_dir,
        data_dir,
        args.calibration,
        args.limit,
        int8=not args.no_int8,
        fp16_weights=args.fp16_weights,
    )
    print(f"default backend: {report['default']}; wrote {args.model_dir / 'parity.json'}")


def run(
    model_dir: Path,
    data_dir: Path,
    calibration: int,
    limit: int | None,
    *,
    int8: bool = True,
    fp16_weights: bool = False,
) -> dict[str, Any]:
    metadata = read_metadata(model_dir)
    records = select(read_manifest(data_dir), metadata.classes, limit)
    train = [r for r in records if r.split == "train"]
    test = [r for r in records if r.split == "test"]
    labels = np.array([metadata.classes.index(r.label) for r in test])

    export_trunks(model_dir, data_dir, train, calibration, int8=int8, fp16_weights=fp16_weights)
    irs = (FP32_IR, INT8_IR) if int8 else (FP32_IR,)
    files = [name for xml in irs for name in (xml, xml.replace(".xml", ".bin"))]
    skipped = {}
    if not int8:
        skipped["openvino-int8"] = "not exported (fast_export_int8: false, a smaller folder)"
    if not native_bf16():  # bf16 would be emulated here: its figures would mean nothing
        skipped["openvino-bf16"] = "no native bfloat16 on the CPU that ran the export"
    weights = "fp16" if fp16_weights else "fp32"
    trunks = {
        name: {**spec, "ir_weights": "int8" if spec["ir_file"] == INT8_IR else weights}
        for name, spec in TRUNKS.items()
        if name not in skipped
    }
    update_metadata(model_dir, files=files, backends={"default": TENSORFLOW, "trunks": trunks})

    reference_runtime = ClassifierRuntime.load(model_dir, backend=TENSORFLOW)
    reference = run_split(reference_runtime, data_dir, test)
    report: dict[str, Any] = {
        "gates": GATES,
        "test_images": len(test),
        "reference": {"backend": TENSORFLOW, "batch1_ms": batch1_ms(reference_runtime)},
        "backends": {},
        "skipped": skipped,
        "cpu": cpu_name(),
    }
    for name in trunks:
        runtime = ClassifierRuntime.load(model_dir, backend=name)
        figures = compare(reference, run_split(runtime, data_dir, test), labels)
        figures["batch1_ms"] = batch1_ms(runtime)
        report["backends"][name] = figures
        trunks[name]["gates_passed"] = figures["gates_passed"]
        print(name, json.dumps(figures))
    passing = [n for n, f in report["backends"].items() if f["gates_passed"]]
    fastest = min(passing, key=lambda n: report["backends"][n]["batch1_ms"], default=None)
    default = fastest or TENSORFLOW
    if fastest and report["backends"][fastest]["batch1_ms"] >= report["reference"]["batch1_ms"]:
        default = TENSORFLOW  # a passing backend that is not faster brings nothing
    report["default"] = default
    (model_dir / "parity.json").write_text(json.dumps(report, indent=2) + "\n")
    update_metadata(
        model_dir,
        files=["parity.json"],
        backends={"default": default, "trunks": trunks, "parity": report},
    )
    return report


if __name__ == "__main__":
    main()
