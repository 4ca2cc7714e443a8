"""Secondary Capture and Structured Report builders."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import ComprehensiveSRStorage, SecondaryCaptureImageStorage

from service.dicom.outputs import (
    CODING_SCHEME,
    Finding,
    ModelIdentity,
    output_uids,
    secondary_capture,
    structured_report,
    to_bytes,
)
from service.settings import DISCLAIMER
from tests.dicom_samples import PATIENT_NAME, dark_with_bright_spot, make_dataset

MODEL = ModelIdentity(name="cxr-vgg16-3class", version="1.2.3")
FINDING = Finding(
    label="pneumonia",
    probabilities={"covid": 0.1, "normal": 0.25, "pneumonia": 0.65},
    target="pneumonia",
)


def _source(**attributes: object) -> Dataset:
    return make_dataset(dark_with_bright_spot(64, 64), modality="CR", **attributes)


def _overlay() -> np.ndarray:
    overlay = np.zeros((32, 48, 3), np.uint8)
    overlay[..., 0] = 200  # blue in OpenCV's BGR
    return overlay


def _reread(dataset: Dataset) -> Dataset:
    return pydicom.dcmread(io.BytesIO(to_bytes(dataset)))


def test_uids_are_deterministic_and_distinct() -> None:
    source = _source()
    first, again = output_uids(source, MODEL, "covid"), output_uids(source, MODEL, "covid")
    assert first == again
    values = {first.sc_series, first.sc_instance, first.sr_series, first.sr_instance}
    assert len(values) == 4 and source.SOPInstanceUID not in values
    assert output_uids(source, MODEL, "normal").sc_instance != first.sc_instance
    newer = ModelIdentity(name=MODEL.name, version="1.2.4")
    assert output_uids(source, newer, "covid").sr_instance != first.sr_instance
    assert all(len(uid) <= 64 and uid.is_valid for uid in values)


def test_secondary_capture() -> None:
    source = _source(PatientOrientation=["L", "F"], PatientAge="067Y", IssuerOfPatientID="HOSP")
    image = _reread(secondary_capture(source, _overlay(), FINDING, MODEL))
    assert image.SOPClassUID == SecondaryCaptureImageStorage and image.Modality == "OT"
    assert image.StudyInstanceUID == source.StudyInstanceUID
    assert image.SeriesInstanceUID != source.SeriesInstanceUID
    for keyword in (
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "PatientAge",
        "IssuerOfPatientID",
        "AccessionNumber",
        "StudyDate",
        "StudyTime",
        "StudyID",
    ):
        assert image[keyword].value == source[keyword].value, keyword
    assert image.PatientOrientation == ["L", "F"]
    assert image.pixel_array.shape == (32, 48, 3)
    assert tuple(image.pixel_array[0, 0]) == (0, 0, 200)  # BGR overlay -> RGB DICOM
    assert "NOT FOR DIAGNOSTIC USE" in image.SeriesDescription
    assert (image.ManufacturerModelName, image.SoftwareVersions) == (MODEL.name, MODEL.version)
    assert "pneumonia 0.6500" in image.ImageComments and DISCLAIMER in image.ImageComments
    assert image.ImageType == ["DERIVED", "SECONDARY", "OTHER"]


def test_secondary_capture_without_stated_orientation_leaves_it_empty() -> None:
    image = _reread(secondary_capture(_source(), _overlay(), FINDING, MODEL))
    assert image.PatientOrientation == ""


def _items(report: Dataset) -> dict[str, Dataset]:
    return {item.ConceptNameCodeSequence[0].CodeMeaning: item for item in report.ContentSequence}


def test_structured_report_content_and_references() -> None:
    source = _source()
    capture = secondary_capture(source, _overlay(), FINDING, MODEL)
    report = _reread(structured_report(source, FINDING, MODEL, capture))
    assert report.SOPClassUID == ComprehensiveSRStorage
    assert report.StudyInstanceUID == source.StudyInstanceUID
    assert str(report.PatientName) == PATIENT_NAME and report.PatientID == source.PatientID
    assert report.SeriesInstanceUID not in (source.SeriesInstanceUID, capture.SeriesInstanceUID)
    assert "NOT FOR DIAGNOSTIC USE" in report.SeriesDescription
    assert report.VerificationFlag == "UNVERIFIED" and report.CompletionFlag == "COMPLETE"
    assert "NOT FOR DIAGNOSTIC USE" in report.ConceptNameCodeSequence[0].CodeMeaning
    items = _items(report)
    assert items["Comment"].TextValue == DISCLAIMER
    assert items["Algorithm Name"].TextValue == MODEL.name
    assert items["Algorithm Version"].TextValue == MODEL.version
    top = items["Finding"]
    assert top.ConceptCodeSequence[0].CodeValue == "pneumonia"
    assert top.ConceptCodeSequence[0].CodingSchemeDesignator == CODING_SCHEME
    inferred = top.ContentSequence[0]
    assert inferred.RelationshipType == "INFERRED FROM"
    assert inferred.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    for name, probability in FINDING.probabilities.items():
        measured = items[f"Probability of {name}"].MeasuredValueSequence[0]
        assert float(measured.NumericValue) == probability
    assert items["Source image"].ReferencedSOPSequence[0].ReferencedSOPInstanceUID == (
        source.SOPInstanceUID
    )
    illustration = items["Best illustration of finding"].ReferencedSOPSequence[0]
    assert illustration.ReferencedSOPInstanceUID == capture.SOPInstanceUID
    evidence = {
        sop.ReferencedSOPInstanceUID
        for series in report.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence
        for sop in series.ReferencedSOPSequence
    }
    assert evidence == {source.SOPInstanceUID, capture.SOPInstanceUID}


def test_single_component_patient_name_is_kept_and_never_warned_about() -> None:
    source = _source()
    source.PatientName = "Onlyfamilyname"  # highdicom would warn, quoting it
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        capture = secondary_capture(source, _overlay(), FINDING, MODEL)
        report = structured_report(source, FINDING, MODEL, capture)
    assert capture.PatientName == report.PatientName == "Onlyfamilyname"
    assert not [w for w in caught if "Onlyfamilyname" in str(w.message)]
