"""Classify chest X-ray files with NVIDIA's tritonclient over the Open Inference Protocol v2.

    python examples/triton_client.py http://127.0.0.1:8000 examples/normal.png examples/covid.jpg

Sends the files as one BYTES tensor (binary data), asks for the probabilities, the labels and
the Grad-CAM heatmaps (binary), prints one line per file and writes ``<file>.heatmap.png`` in
the current folder. Research software, NOT for diagnostic use.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import tritonclient.http as http


def main(url: str, paths: list[Path]) -> None:
    client = http.InferenceServerClient(url.removeprefix("http://"))
    name = client.get_server_metadata()["models"][0]  # the default model
    image = http.InferInput("image", [len(paths)], "BYTES")
    files = [path.read_bytes() for path in paths]
    image.set_data_from_numpy(np.array(files, dtype=np.object_), binary_data=True)
    outputs = [
        http.InferRequestedOutput(output, binary_data=True)
        for output in ("probabilities", "label", "gradcam_heatmap_png")
    ]
    result = client.infer(name, [image], outputs=outputs)
    classes = result.get_response()["parameters"]["classes"].split(",")
    probabilities = result.as_numpy("probabilities")
    labels = result.as_numpy("label")
    heatmaps = result.as_numpy("gradcam_heatmap_png")
    for path, row, label, heatmap in zip(paths, probabilities, labels, heatmaps, strict=True):
        shares = ", ".join(f"{c} {p:.3f}" for c, p in zip(classes, row, strict=True))
        print(f"{path.name}: {label.decode()} ({shares}) [{name}]")
        Path(f"{path.name}.heatmap.png").write_bytes(heatmap)
    print(result.get_response()["parameters"]["disclaimer"])


if __name__ == "__main__":
    main(sys.argv[1], [Path(arg) for arg in sys.argv[2:]])
