"""DICOM results: a Secondary Capture of the Grad-CAM overlay and a Comprehensive SR.

Both join the source's study and patient, in their own series, and say on every surface a
viewer shows (SeriesDescription, ImageComments, the SR's title and text) that they are research
AI output NOT FOR DIAGNOSTIC USE.

UIDs are derived, not random: the same source, model name/version and explained class always
give the same Series and SOP Instance UIDs. Storing a result twice therefore overwrites or is
ignored by the PACS instead of creating a duplicate, which is what makes the PACS analysis
idempotent.

Patient data: highdicom validates patient attributes while building and warns with the value
quoted (e.g. a single-component PatientName). So the objects are built from a copy of the
source whose patient and study attributes are blanked, and the real ones are then copied over
verbatim. That also keeps them byte-identical to the source's.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import highdicom as hd
import numpy as np
from pydicom import dcmwrite
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.sr.codedict import codes
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from service.settings import DISCLAIMER

MANUFACTURER = "cxr-service (research software)"
CODING_SCHEME = "99CXRSVC"  # private coding scheme for the model's classes
SC_SERIES_NUMBER = 9901
SR_SERIES_NUMBER = 9902
NOT_FOR_DIAGNOSTIC_USE = "NOT FOR DIAGNOSTIC USE"
SC_SERIES_DESCRIPTION = f"AI Grad-CAM heatmap - {NOT_FOR_DIAGNOSTIC_USE}"
SR_SERIES_DESCRIPTION = f"AI classification report - {NOT_FOR_DIAGNOSTIC_USE}"

# Belt and braces for the blanking above: never let a library print a person name.
warnings.filterwarnings("ignore", message=r"The string .* person name", category=UserWarning)

_BLANKED = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "AccessionNumber",
    "StudyID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
)
# Copied when highdicom does not know the source's IOD (e.g. a private SOP class).
_PATIENT_AND_STUDY = (
    *_BLANKED,
    "IssuerOfPatientID",
    "OtherPatientIDsSequence",
    "PatientBirthTime",
    "PatientAge",
    "PatientSize",
    "PatientWeight",
    "StudyDescription",
)


@dataclass(frozen=True)
class ModelIdentity:
    name: str
    version: str


@dataclass(frozen=True)
class Finding:
    label: str  # top class
    probabilities: dict[str, float]  # in the model's class order
    target: str  # class the heatmap explains


@dataclass(frozen=True)
class OutputUids:
    sc_series: UID
    sc_instance: UID
    sr_series: UID
    sr_instance: UID


def output_uids(source: Dataset, model: ModelIdentity, target: str) -> OutputUids:
    """Deterministic UIDs: one result series per study and model version, one result per source."""
    study, instance = str(source.StudyInstanceUID), str(source.SOPInstanceUID)
    ident = ["cxr-service", model.name, model.version]
    return OutputUids(
        sc_series=generate_uid(entropy_srcs=[*ident, study, "gradcam-sc-series"]),
        sc_instance=generate_uid(entropy_srcs=[*ident, study, instance, target, "gradcam-sc"]),
        sr_series=generate_uid(entropy_srcs=[*ident, study, "report-sr-series"]),
        sr_instance=generate_uid(entropy_srcs=[*ident, study, instance, "report-sr"]),
    )


def _lo(text: str) -> str:
    """A valid LO value: at most 64 characters, no backslash."""
    return text.replace("\\", "/")[:64]


def summary(finding: Finding, model: ModelIdentity) -> str:
    probabilities = ", ".join(f"{name} {p:.4f}" for name, p in finding.probabilities.items())
    return (
        f"AI research output, {NOT_FOR_DIAGNOSTIC_USE}. Model {model.name} {model.version}. "
        f"Top class: {finding.label}. Probabilities: {probabilities}. "
        f"Heatmap class: {finding.target}. {DISCLAIMER}"
    )


def _blanked_reference(source: Dataset) -> Dataset:
    reference = Dataset()
    for keyword in ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"):
        setattr(reference, keyword, getattr(source, keyword))
    for keyword in _BLANKED:
        setattr(reference, keyword, "")
    reference.SpecificCharacterSet = source.get("SpecificCharacterSet", "ISO_IR 100")
    return reference


def _copy_patient_and_study(source: Dataset, target: hd.SOPClass) -> None:
    try:
        target.copy_patient_and_study_information(source)
    except KeyError:  # highdicom has no module map for this SOP class
        for keyword in _PATIENT_AND_STUDY:
            if keyword in source:
                target[keyword] = source[keyword]
    if "SpecificCharacterSet" in source:
        target.SpecificCharacterSet = source.SpecificCharacterSet


def _identify(target: hd.SOPClass, model: ModelIdentity, description: str) -> None:
    target.SeriesDescription = description
    target.ManufacturerModelName = _lo(model.name)
    target.SoftwareVersions = _lo(model.version)


def _source_reference(source: Dataset) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = source.SOPClassUID
    item.ReferencedSOPInstanceUID = source.SOPInstanceUID
    return item


def secondary_capture(
    source: Dataset, overlay_bgr: np.ndarray, finding: Finding, model: ModelIdentity
) -> hd.sc.SCImage:
    """The rendered Grad-CAM overlay (``RenderedCam.overlay``, OpenCV BGR) as an RGB SC image."""
    uids = output_uids(source, model, finding.target)
    rgb = np.ascontiguousarray(overlay_bgr[:, :, ::-1])
    orientation = source.get("PatientOrientation")
    image = hd.sc.SCImage(
        pixel_array=rgb,
        photometric_interpretation="RGB",
        bits_allocated=8,
        coordinate_system="PATIENT",
        # highdicom needs two values here; the source's own (or none) are set below.
        patient_orientation=("L", "F"),
        study_instance_uid=source.StudyInstanceUID,
        series_instance_uid=uids.sc_series,
        series_number=SC_SERIES_NUMBER,
        sop_instance_uid=uids.sc_instance,
        instance_number=int(source.get("InstanceNumber") or 1),
        manufacturer=MANUFACTURER,
        transfer_syntax_uid=ExplicitVRLittleEndian,
    )
    # The overlay is the source resized, so it has the source's orientation; when the source
    # states none, the Type 2 attribute stays empty rather than guessed.
    stated = isinstance(orientation, MultiValue) and len(orientation) == 2
    image["PatientOrientation"].value = list(orientation) if stated else ""
    _copy_patient_and_study(source, image)
    _identify(image, model, SC_SERIES_DESCRIPTION)
    image.ImageComments = summary(finding, model)
    image.DerivationDescription = (
        f"Grad-CAM heatmap for class {finding.target} (JET colour map) blended on the source "
        f"image by {model.name} {model.version}; resized. {NOT_FOR_DIAGNOSTIC_USE}."
    )
    image.SourceImageSequence = [_source_reference(source)]
    image.BurnedInAnnotation = "NO"
    return image


def _class_code(name: str) -> hd.sr.CodedConcept:
    return hd.sr.CodedConcept(_lo(name), CODING_SCHEME, _lo(name))


def _content(
    source: Dataset, finding: Finding, model: ModelIdentity, overlay: Dataset | None
) -> hd.sr.ContainerContentItem:
    contains = "CONTAINS"
    root = hd.sr.ContainerContentItem(
        name=hd.sr.CodedConcept(
            "cxr-ai-result",
            CODING_SCHEME,
            f"AI chest X-ray classification, {NOT_FOR_DIAGNOSTIC_USE}",
        )
    )
    source_image = hd.sr.ImageContentItem(
        name=codes.DCM.SourceImage,
        referenced_sop_class_uid=source.SOPClassUID,
        referenced_sop_instance_uid=source.SOPInstanceUID,
        relationship_type=contains,
    )
    top = hd.sr.CodeContentItem(
        name=codes.DCM.Finding, value=_class_code(finding.label), relationship_type=contains
    )
    top.ContentSequence = Sequence(
        [
            hd.sr.ImageContentItem(
                name=codes.DCM.SourceImage,
                referenced_sop_class_uid=source.SOPClassUID,
                referenced_sop_instance_uid=source.SOPInstanceUID,
                relationship_type="INFERRED FROM",
            )
        ]
    )
    items: list[Dataset] = [
        hd.sr.TextContentItem(name=codes.DCM.Comment, value=DISCLAIMER, relationship_type=contains),
        hd.sr.TextContentItem(
            name=codes.DCM.AlgorithmName, value=model.name, relationship_type=contains
        ),
        hd.sr.TextContentItem(
            name=codes.DCM.AlgorithmVersion, value=model.version, relationship_type=contains
        ),
        top,
        *(
            hd.sr.NumContentItem(
                name=hd.sr.CodedConcept(
                    _lo(f"p-{name}"), CODING_SCHEME, _lo(f"Probability of {name}")
                ),
                value=round(float(p), 6),
                unit=codes.UCUM.NoUnits,
                relationship_type=contains,
            )
            for name, p in finding.probabilities.items()
        ),
        source_image,
    ]
    if overlay is not None:
        items.append(
            hd.sr.ImageContentItem(
                name=codes.DCM.BestIllustrationOfFinding,
                referenced_sop_class_uid=overlay.SOPClassUID,
                referenced_sop_instance_uid=overlay.SOPInstanceUID,
                relationship_type=contains,
            )
        )
    root.ContentSequence = Sequence(items)
    return root


def structured_report(
    source: Dataset, finding: Finding, model: ModelIdentity, overlay: Dataset | None = None
) -> hd.sr.ComprehensiveSR:
    """A Comprehensive SR with the probabilities, top class, model and disclaimer."""
    uids = output_uids(source, model, finding.target)
    evidence = [_blanked_reference(source)]
    if overlay is not None:
        evidence.append(overlay)
    report = hd.sr.ComprehensiveSR(
        evidence=evidence,
        content=_content(source, finding, model, overlay),
        series_instance_uid=uids.sr_series,
        series_number=SR_SERIES_NUMBER,
        sop_instance_uid=uids.sr_instance,
        instance_number=int(source.get("InstanceNumber") or 1),
        manufacturer=MANUFACTURER,
        is_complete=True,
        is_final=False,  # unverified machine output, never a final report
    )
    _copy_patient_and_study(source, report)
    _identify(report, model, SR_SERIES_DESCRIPTION)
    return report


def to_bytes(dataset: Dataset) -> bytes:
    buffer = io.BytesIO()
    dcmwrite(buffer, dataset, enforce_file_format=True)
    return buffer.getvalue()
