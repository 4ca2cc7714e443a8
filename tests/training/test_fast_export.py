"""The fast-trunk export on the tiny model: IRs, checksums, parity report, backend choice."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from service.errors import ModelArtifactError
from service.inference.artifact import read_metadata
from service.inference.backends import OpenVinoTrunk, choose_backend, native_bf16
from service.inference.preprocess import to_model_input
from service.inference.runtime import ClassifierRuntime
from training.fast_export import FP32_IR, GATES, run


@pytest.fixture(scope="module")
def exported(tiny_model_dir: Path, data_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    model_dir = tmp_path_factory.mktemp("fast") / "model"
    shutil.copytree(tiny_model_dir, model_dir)
    report = run(model_dir, data_dir, calibration=6, limit=3)
    return model_dir, report


def test_report_has_every_gate_figure(exported) -> None:
    model_dir, report = exported
    assert report["gates"] == GATES
    assert json.loads((model_dir / "parity.json").read_text()) == report
    # bf16 is measured only where the CPU computes it natively; elsewhere the report says why not
    bf16 = "openvino-bf16"
    assert (bf16 in report["backends"]) == native_bf16() == (bf16 not in report["skipped"])
    for name in report["backends"]:
        figures = report["backends"][name]
        for key in (
            "argmax_agreement",
            "macro_f1_drop_points",
            "max_abs_prob_delta",
            "gradcam_correlation_mean",
            "batch1_ms",
            "gates_passed",
        ):
            assert key in figures
    # fp32 OpenVINO computes the same function as TensorFlow
    assert report["backends"]["openvino-fp32"]["max_abs_prob_delta"] < 1e-3


def test_metadata_lists_checksummed_trunks(exported) -> None:
    model_dir, report = exported
    metadata = read_metadata(model_dir)  # re-verifies every listed file's sha256
    assert {"trunk-openvino-int8.xml", "trunk-openvino-int8.bin", "parity.json"} <= set(
        metadata.files
    )
    assert metadata.backends["default"] == report["default"]
    assert choose_backend("auto", metadata) == report["default"]


def test_fast_runtime_matches_tensorflow(exported) -> None:
    model_dir, _ = exported
    gray = np.full((200, 300), 20, np.uint8)
    gray[:100, 150:] = 235
    batch = to_model_input(gray, (64, 64))[None]
    reference = ClassifierRuntime.load(model_dir, backend="tensorflow")
    fast = ClassifierRuntime.load(model_dir, backend="openvino-fp32")
    fast.warm_up()
    assert fast.backend == "openvino-fp32"
    target = np.array([-1], np.int32)
    np.testing.assert_allclose(
        fast.explain(batch, target).cams, reference.explain(batch, target).cams, atol=1e-3
    )
    np.testing.assert_allclose(fast.predict(batch), reference.predict(batch), atol=1e-4)


def test_unexported_backend_is_refused(tiny_model_dir: Path) -> None:
    with pytest.raises(ModelArtifactError, match="make export-fast"):
        ClassifierRuntime.load(tiny_model_dir, backend="openvino-int8")
    assert choose_backend("auto", read_metadata(tiny_model_dir)) == "tensorflow"


def test_trunk_precision_is_explicit_and_falls_back_without_native_bf16(exported) -> None:
    model_dir, _ = exported
    assert OpenVinoTrunk(model_dir / FP32_IR, precision="f32").precision == "f32"
    expected = "bf16" if native_bf16() else "f32"
    assert OpenVinoTrunk(model_dir / FP32_IR, precision="bf16").precision == expected


def test_a_smaller_folder_without_int8_and_with_fp16_weights(
    tiny_model_dir: Path, data_dir: Path, tmp_path: Path
) -> None:
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model_dir)
    report = run(model_dir, data_dir, calibration=6, limit=3, int8=False, fp16_weights=True)
    assert "openvino-int8" in report["skipped"] and "openvino-int8" not in report["backends"]
    assert not (model_dir / "trunk-openvino-int8.bin").exists()
    metadata = read_metadata(model_dir)  # consistent: only what exists is listed
    assert "trunk-openvino-int8.xml" not in metadata.files
    assert metadata.backends["trunks"]["openvino-fp32"]["ir_weights"] == "fp16"
    with pytest.raises(ModelArtifactError):
        ClassifierRuntime.load(model_dir, backend="openvino-int8")
    fp32 = report["backends"]["openvino-fp32"]  # fp16-stored weights: still TF's function
    assert fp32["argmax_agreement"] == 1.0 and fp32["max_abs_prob_delta"] < 0.02
