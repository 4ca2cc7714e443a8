"""Synthetic DICOM files for tests: any modality, view, photometric, bit depth, syntax or size.

Every file carries the same recognisable patient data, so tests can check that it never shows
up in an error message, a log line or a response.
"""

from __future__ import annotations

import io

import numpy as np
from pydicom import dcmwrite
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    UID,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    generate_uid,
)

PATIENT_NAME = "Secretpatient^Jane"
PATIENT_ID = "PID-SECRET-4711"
BIRTH_DATE = "19450203"


def dark_with_bright_spot(height: int = 256, width: int = 256, high: int = 4095) -> np.ndarray:
    """Mostly black with one small bright square: the tiny model says "normal"; its negative
    (mostly bright) says "covid", so a missed MONOCHROME1 inversion changes the label."""
    pixels = np.full((height, width), high // 20, np.uint16)
    pixels[height // 8 : height // 4, width // 8 : width // 4] = high
    return pixels


def make_dataset(
    pixels: np.ndarray,
    *,
    modality: str = "DX",
    photometric: str = "MONOCHROME2",
    bits_stored: int | None = None,
    view: str | None = "PA",
    study_uid: str | None = None,
    series_uid: str | None = None,
    sop_uid: str | None = None,
    sop_class: str = DigitalXRayImageStorageForPresentation,
    syntax: str = ExplicitVRLittleEndian,
    **attributes: object,
) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = UID(ExplicitVRLittleEndian)
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid or generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.PatientName = PATIENT_NAME
    ds.PatientID = PATIENT_ID
    ds.PatientBirthDate = BIRTH_DATE
    ds.PatientSex = "F"
    ds.StudyDate = "20240102"
    ds.StudyTime = "101500"
    ds.AccessionNumber = "ACC-SECRET-1"
    ds.ReferringPhysicianName = ""
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.Modality = modality
    if view is not None:
        ds.ViewPosition = view
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    bits = bits_stored or (8 if pixels.dtype == np.uint8 else 16)
    ds.set_pixel_data(pixels, photometric, bits)
    if syntax != ExplicitVRLittleEndian:
        ds.compress(syntax)
    return ds


def to_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def make_dicom(pixels: np.ndarray, **options: object) -> bytes:
    return to_bytes(make_dataset(pixels, **options))  # type: ignore[arg-type]
