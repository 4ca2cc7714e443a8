"""MODEL_CARD.md from metadata.json + metrics.json + the manifest rows the model was built on."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import yaml

from service.inference.artifact import ModelMetadata, read_metadata
from training.card_sections import (
    audit_section,
    calibration_section,
    gate_section,
    targets_section,
)
from training.config import DEFAULTS
from training.config import data_dir as resolve_data_dir
from training.data import read_manifest, select


def _fmt(entry: dict | None) -> str:
    if not entry or entry.get("value") is None:
        return "n/a"
    ci = entry.get("ci95")
    return f"{entry['value']:.3f}" + (f" (95% CI {ci[0]:.3f}-{ci[1]:.3f})" if ci else "")


def _adult_pneumonia(report: dict, classes: list[str]) -> str:
    """Where the test split's adult non-COVID pneumonias (the ieee8023 ones) went."""
    if "pneumonia" not in classes:
        return ""
    predicted = Counter(
        classes[p["probabilities"].index(max(p["probabilities"]))]
        for p in report.get("predictions", [])
        if p["label"] == "pneumonia" and p["source"].startswith("ieee8023/")
    )
    if not predicted:
        return ""
    spread = ", ".join(f"{c} {predicted[c]}" for c in classes if predicted[c])
    text = f" Of the {sum(predicted.values())} adult (ieee8023) pneumonias in the test split, this"
    text += f" model predicts {spread}"
    if predicted.most_common(1)[0][0] == "covid":
        return text + ": it tends to read an adult film with opacities as covid."
    return text + "."


def _licences(records) -> str:
    counts = Counter((r.source_repo, r.license) for r in records)
    lines = ["| source repository | licence (as given by the source) | images |", "|---|---|--:|"]
    lines += [f"| `{s}` | {lic} | {n} |" for (s, lic), n in sorted(counts.items())]
    return "\n".join(lines)


def write_model_card(model_dir: Path, metadata: ModelMetadata, report: dict, records) -> Path:
    classes, overall = metadata.classes, report["overall"]
    training = metadata.training
    probe = report.get("linear_probe_baseline") or {}
    per_class = "\n".join(
        f"| {c} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} | {v['support']} |"
        for c, v in overall["per_class"].items()
    )
    aucs = "\n".join(f"| {c} vs rest | {_fmt(overall.get(f'auc_{c}'))} |" for c in classes)
    per_source = "\n".join(
        f"| `{s}` | {e['n']} | {', '.join(f'{k} {v}' for k, v in sorted(e['labels'].items()))} | "
        f"{_fmt(e['accuracy'])} | {_fmt(e['macro_f1'])} |"
        + (f" {_fmt(e.get('covid_sensitivity'))} |" if "covid" in classes else "")
        for s, e in report["per_source"].items()
    )
    covid_rows = ""
    if "covid" in classes:
        covid_rows = (
            f"| covid sensitivity | {_fmt(overall['covid_sensitivity'])} |\n"
            f"| covid specificity | {_fmt(overall['covid_specificity'])} |\n"
        )
    timings = training.get("timings", {})
    n_train = training.get("data", {}).get("summary", {}).get("train", {}).get("total", "?")
    source_header = "| source | n | labels | accuracy | macro-F1 (classes present) |"
    source_header += " covid sensitivity |" if "covid" in classes else ""
    source_header += "\n|---|--:|---|---|---|" + ("---|" if "covid" in classes else "")
    text = f"""# Model card: {metadata.name} v{metadata.version}

Chest X-ray classifier ({" / ".join(classes)}) with Grad-CAM explanations: VGG16 (ImageNet) with
block5 and a small head fine-tuned on {n_train} public chest radiographs (the train split).

## Intended use
Research, teaching and software engineering (demonstrating an explainable image-classification
service). **NOT for diagnosis, triage or any clinical decision.** It has not been validated
clinically; its outputs are not medical findings. The data behind it has strong source and age
bias (below), so a high score here does not mean it recognises disease.

## Model
- Architecture: `VGG16(include_top=False)` at 224x224x3 -> AveragePooling2D(4x4, stride 3) ->
  Flatten -> Dense(relu) -> Dropout -> Dense(`logits`) -> softmax (`probabilities`). Grad-CAM at
  `{metadata.gradcam_layer}`. Preprocessing `{metadata.preprocessing}` (grayscale, area resize,
  3 identical channels, VGG16 caffe mean subtraction), shared code with the service.
- Weights: blocks 1-4 are the Oxford VGG16 ImageNet weights (Simonyan & Zisserman 2014, "Very Deep
  Convolutional Networks for Large-Scale Image Recognition", released under CC BY 4.0), kept
  frozen; block5 and the head are fine-tuned here.
- Training: phase 1 trains the head on cached frozen features (Adam, cross-entropy weighted by
  `{training.get("config", {}).get("weighting")}`: classes balanced, and with `class_source` the
  sources within a class evened out); phase 2 (and 3) fine-tune block5 at a low learning rate.
  Model selection on the validation split's macro-F1 (never on test). Augmentation on the
  grayscale image: burned-in annotation stamps on images of every class (text, scores, L/R
  markers, arrows, boxes; `training/stamps.py`), horizontal flips (no vertical flips), rotation,
  shift/zoom, crop/border padding, brightness/contrast/gamma, blur/unsharp, JPEG re-compression,
  a resolution bottleneck (down and up again); cached as a fixed number of views per training
  image. Probabilities calibrated by temperature scaling on the val split.
- Git commit: `{training.get("git_commit", "unknown")}`; timings (s): {timings}.

## Data
`../shared/data/cxr` (manifest-defined, patient/group-level train/val/test splits; no patient or
near-duplicate crosses splits). Counts used:

```
{yaml.safe_dump(training.get("data", {}).get("summary", {}), sort_keys=False).strip()}
```

Sources and licences (from the manifest; treat the set as research-use only):

{_licences(records)}

## Results on the test split (n = {overall["n"]}, {report["n_bootstrap"]} bootstrap resamples)

| metric | value |
|---|---|
| macro-F1 | {_fmt(overall["macro_f1"])} |
| accuracy | {_fmt(overall["accuracy"])} |
{covid_rows}| expected calibration error | {overall["calibration"]["ece"]:.3f} |

| class | precision | recall | F1 | support |
|---|--:|--:|--:|--:|
{per_class}

| one-vs-rest ROC AUC | value |
|---|---|
{aucs}

Confusion matrix (rows true, columns predicted, order {classes}): `{overall["confusion_matrix"]}`.
Plots: `confusion_matrix.png`, `roc.png`, `reliability.png`, `reliability_uncalibrated.png`,
`training_curves.png`, `gradcam_gallery.png`.

### Per source (`source_repo`)
{source_header}
{per_source}

### Shortcut audit
{audit_section(report)}

### Calibration
{calibration_section(report)}

### Input gate ("is this a frontal chest X-ray?")
{gate_section(metadata)}

### Against the project's targets (model 2.0 issue)
{targets_section(metadata, report)}

### Baseline: linear probe
{probe.get("method", "not computed")}: test macro-F1 {probe.get("test_macro_f1", float("nan")):.3f},
accuracy {probe.get("test_accuracy", float("nan")):.3f}, covid sensitivity
{probe.get("test_covid_sensitivity", float("nan")):.3f} (C = {probe.get("C")}).

## Known limitations
- **Shortcut risk / source and age bias.** covid images are adult, mostly web and paper figures
  (ieee8023, COVID-CXNet, Figure1, Actualmed); pneumonia is 57% pediatric (Kermany, one
  hospital), 35% adult NIH; normal is pediatric Kermany plus adult NIH and RSNA thumbnails. Class
  is therefore partly predictable from age, body size, hospital, resolution, borders and
  burned-in text. Per-source numbers above mostly measure within-source separation of at most two
  classes. Stamp and pipeline augmentation reduce this (see the audit) but cannot remove it.
- Adult non-COVID pneumonias: 331 NIH films with report-mined, noisy labels plus 74 ieee8023
  figures.{_adult_pneumonia(report, classes)}
- Label noise (ieee8023 "No Finding" films of COVID patients, Kermany image-level grading, NIH
  labels text-mined from reports).
- Small test set: wide confidence intervals; performance on other hospitals and imaging
  pipelines is unknown and likely lower.
- Probabilities are calibrated on the val split of this data only; they are not clinical risks.

## Training config
```yaml
{yaml.safe_dump(training.get("config", {}), sort_keys=False).strip()}
```

## Credits and licence
VGG16 weights: Karen Simonyan and Andrew Zisserman, Visual Geometry Group, University of Oxford
(2014), CC BY 4.0. Data: the repositories and datasets listed above, under their own terms.
"""
    path = model_dir / "MODEL_CARD.md"
    path.write_text(text)
    return path


def rewrite_model_card(model_dir: Path, data_dir: Path | None = None) -> Path:
    """The card from the folder's metadata.json and metrics.json (no re-evaluation)."""
    metadata = read_metadata(model_dir)
    config = {**DEFAULTS, **metadata.training.get("config", {})}
    records = read_manifest(data_dir or resolve_data_dir(config))
    used = select(records, metadata.classes, config["limit_per_split_class"])
    report = json.loads((model_dir / "metrics.json").read_text())
    return write_model_card(model_dir, metadata, report, used)


def main() -> None:
    """``python -m training.model_card MODEL_DIR``: rewrite the card from the folder's
    metadata.json and metrics.json (no re-evaluation), e.g. after the card's template changed."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("model_dir", type=Path)
    parser.add_argument(
        "--data", default=None, help="cxr data folder (default: CXR_DATA_DIR / config)"
    )
    args = parser.parse_args()
    data = resolve_data_dir(DEFAULTS, args.data) if args.data else None
    print(rewrite_model_card(args.model_dir, data))


if __name__ == "__main__":
    main()
