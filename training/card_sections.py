"""Model card sections that state plainly where a model stands: targets, shortcut audit,
calibration and input gate. Computed from metadata.json + metrics.json only, so a card rewritten
later (``python -m training.model_card``) says the same."""

from __future__ import annotations

from typing import Any

from service.inference.artifact import ModelMetadata

NIH = "muhammedtalo/COVID-19"  # NIH ChestX-ray14 films in the manifest's source_repo
TARGETS = {
    "macro_f1": 0.88,
    "margin_over_probe": 0.05,
    "covid_sensitivity": 0.93,
    "nih_pneumonia_recall": 0.60,
    "source_accuracy": 0.70,  # every source with >= 20 test images
    "stamp_label_change": 0.02,
    "stamp_delta_p_covid": 0.02,
    "ece": 0.04,
}


def _verdict(ok: bool) -> str:
    return "met" if ok else "**NOT met**"


def _line(name: str, shown: str, ok: bool) -> str:
    return f"- {name}: {shown}, {_verdict(ok)}."


def _ci(entry: dict[str, Any] | None) -> str:
    if not entry or entry.get("value") is None:
        return "n/a"
    ci = entry.get("ci95")
    return f"{entry['value']:.3f}" + (f" (95% CI {ci[0]:.3f}-{ci[1]:.3f})" if ci else "")


def final_val_macro_f1(metadata: ModelMetadata) -> float | None:
    """Val macro-F1 of the exported weights: the last phase's best (a later phase starts from
    the previous one's best and only replaces it by doing better on val)."""
    phases = metadata.training.get("phases", {})
    for name in ("phase3", "phase2", "phase1"):
        if phases.get(name, {}).get("val_macro_f1") is not None:
            return float(phases[name]["val_macro_f1"])
    return None


def targets_section(metadata: ModelMetadata, report: dict[str, Any]) -> str:
    classes = metadata.classes
    if sorted(classes) != ["covid", "normal", "pneumonia"]:
        return "The targets apply to the 3-class model only; figures above."
    overall, t = report["overall"], TARGETS
    probe = report.get("linear_probe_baseline") or {}
    lines = []
    f1 = overall["macro_f1"]["value"]
    lines.append(
        _line(f"test macro-F1 >= {t['macro_f1']}", _ci(overall["macro_f1"]), f1 >= t["macro_f1"])
    )
    val_f1, probe_val = final_val_macro_f1(metadata), probe.get("val_macro_f1")
    probe_test = probe.get("test_macro_f1")
    if probe_test is not None:
        ok = f1 - probe_test >= t["margin_over_probe"]
        lines.append(
            f"- >= {t['margin_over_probe']:.2f} above the linear probe on test: "
            f"{f1:.3f} vs {probe_test:.3f} ({f1 - probe_test:+.3f}), {_verdict(ok)}."
        )
    if probe_val is not None and val_f1 is not None:
        ok = val_f1 - probe_val >= t["margin_over_probe"]
        lines.append(
            f"- >= {t['margin_over_probe']:.2f} above the linear probe on val (the selection "
            f"split, so optimistic): {val_f1:.3f} vs {probe_val:.3f} ({val_f1 - probe_val:+.3f}), "
            f"{_verdict(ok)}."
        )
    sens = overall["covid_sensitivity"]["value"]
    target = t["covid_sensitivity"]
    lines.append(
        _line(f"covid sensitivity >= {target}", _ci(overall["covid_sensitivity"]), sens >= target)
    )
    nih = report["per_source"].get(NIH)
    if nih:
        recall = nih["per_class"]["pneumonia"]["recall"]
        n = nih["per_class"]["pneumonia"]["support"]
        target = t["nih_pneumonia_recall"]
        shown = f"{recall:.3f} (n = {n})"
        lines.append(_line(f"NIH adult-pneumonia recall >= {target}", shown, recall >= target))
    weak = {
        s: e["accuracy"]["value"]
        for s, e in report["per_source"].items()
        if e["n"] >= 20 and e["accuracy"]["value"] < t["source_accuracy"]
    }
    shown = ", ".join(f"`{s}` {v:.3f}" for s, v in weak.items()) or "no source below"
    name = f"every source with >= 20 test images at accuracy >= {t['source_accuracy']}"
    lines.append(_line(name, shown, not weak))
    stamp = report.get("audit", {}).get("stamp_test")
    if stamp:
        changed, delta = stamp["top_label_changed"], stamp.get("mean_delta_p_covid", 0.0)
        limit = t["stamp_label_change"]
        name = f"stamp test, top labels changed <= {limit:.0%}"
        lines.append(_line(name, f"{changed:.1%}", changed <= limit))
        limit = t["stamp_delta_p_covid"]
        name = f"stamp test, |mean delta p(covid)| <= {limit}"
        lines.append(_line(name, f"{delta:+.4f}", abs(delta) <= limit))
    calibration = report.get("calibration")
    if calibration:
        ece = calibration["test_ece_15_bins_after"]
        name = f"test ECE (15 bins) after calibration <= {t['ece']}"
        lines.append(_line(name, f"{ece:.4f}", ece <= t["ece"]))
    return "\n".join(lines)


def audit_section(report: dict[str, Any]) -> str:
    audit = report.get("audit")
    if not audit:
        return "Not run."
    stamp, pipeline, heat = audit["stamp_test"], audit["pipeline_test"], audit["heat"]
    rows = "\n".join(
        f"| `{s}` | {pipeline['accuracy_by_source'][s]:.3f} | "
        f"{pipeline['top_label_changed_by_source'][s]:.3f} | "
        f"{heat['mass_outside_chest_box_by_source'][s]:.3f} |"
        for s in sorted(pipeline["accuracy_by_source"])
    )
    delta = stamp.get("mean_delta_p_covid")
    delta_text = "n/a" if delta is None else f"{delta:+.4f}"
    return f"""- **Stamp test** ({stamp["generator"]}; {stamp["n"]} test images, 3 annotations each:
  text in TrueType fonts, boxed text, pointers, dashed rulers): top label changed for
  {stamp["top_label_changed"]:.1%}; mean delta p(covid) {delta_text}.
  Grad-CAM mass on the stamps {stamp["cam_mass_on_stamps"]:.3f}, against the
  {stamp["stamp_area_fraction"]:.3f} of the image they cover (equal = the stamps draw no extra
  attention).
- **Pipeline test** ({pipeline["pipeline"]}): accuracy {pipeline["accuracy"]:.3f}, top label
  changed for {pipeline["top_label_changed"]:.1%}.
- **Where the heat goes**: {heat["mass_outside_chest_box"]:.3f} of the Grad-CAM mass lies outside
  the central chest box (x {heat["chest_box"]["x0"]}-{heat["chest_box"]["x1"]}, y
  {heat["chest_box"]["y0"]}-{heat["chest_box"]["y1"]} of the image; it covers 60 % of the image).

| source | accuracy, degraded pipeline | label changed by it | heat outside chest box |
|---|--:|--:|--:|
{rows}

`gradcam_gallery.png` shows, per source, the most confident correct and wrong test images."""


def calibration_section(report: dict[str, Any]) -> str:
    c = report.get("calibration")
    if not c:
        return "Not calibrated."
    return (
        f"Temperature scaling fitted on the val split: T = {c['temperature']:.3f} "
        f"(softmax(logits / T), applied by the service to every probability it returns). "
        f"Test ECE (15 bins): {c['test_ece_15_bins_before']:.4f} before, "
        f"{c['test_ece_15_bins_after']:.4f} after. Plots: `reliability_uncalibrated.png`, "
        f"`reliability.png`."
    )


def gate_section(metadata: ModelMetadata) -> str:
    gate = (metadata.model_extra or {}).get("gate")
    if not gate:
        return "No input gate fitted (`python -m training.gate MODEL_DIR`)."
    ood = gate["ood_cross_validated"]
    by_category = ", ".join(f"{k} {v:.0%}" for k, v in ood["rejection_by_category"].items())
    by_source = "".join(
        f"\n| `{s}` | {e['n']} | {e['rate']:.1%} |"
        for s, e in gate.get("test_false_rejection_by_source", {}).items()
    )
    rule = gate.get(
        "threshold_rule",
        f"the {gate.get('target_false_rejection', 0.01):.0%} quantile of val X-rays",
    )
    positives = gate.get("positives", "train split")
    return (
        f"`gate.json`: logistic regression on sqrt(mean) of `{metadata.gradcam_layer}` "
        f"(C = {gate['C']}; positives: {positives}), threshold {gate['threshold']:.4f}: "
        f"{rule}. Val false rejection "
        f"{gate['val_false_rejection']:.1%}. Non-X-ray images rejected (5-fold cross-validated, "
        f"{gate['negatives']['n']} images of `../shared/data/ood`): {by_category}. "
        f"Test false rejection {gate.get('test_false_rejection', float('nan')):.1%}; ROC in "
        "`gate_roc.png`.\n\n| test source | n | false rejection |\n|---|--:|--:|" + by_source
    )
