"""Rebuild the example X-rays from ``../shared/data/cxr/originals`` (see README.md here).

    .venv/bin/python examples/build.py [--originals PATH]

Test-split, CC BY 4.0 files only. The PNG is a resized copy (to stay small); the DICOM wraps an
unchanged JPEG in a DICOM file whose patient and study attributes are invented.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import JPEGBaseline8Bit, SecondaryCaptureImageStorage

HERE = Path(__file__).resolve().parent
ORIGINALS = HERE.parent.parent / "shared" / "data" / "cxr" / "originals"
PNG_WIDTH = 800
# Fixed UIDs under the pydicom root, so a rebuild gives the same file.
UID_ROOT = "1.2.826.0.1.3680043.8.498.14"


def copy(source: Path, target: Path) -> None:
    target.write_bytes(source.read_bytes())


def resized_png(source: Path, target: Path) -> None:
    gray = cv2.imread(str(source), cv2.IMREAD_GRAYSCALE)
    height = round(gray.shape[0] * PNG_WIDTH / gray.shape[1])
    small = cv2.resize(gray, (PNG_WIDTH, height), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(target), small, [cv2.IMWRITE_PNG_COMPRESSION, 9])


def jpeg_in_dicom(source: Path, target: Path) -> None:
    """A CR DICOM whose pixel data is the JPEG file itself (JPEG Baseline transfer syntax)."""
    jpeg = source.read_bytes()
    height, width = cv2.imread(str(source), cv2.IMREAD_GRAYSCALE).shape
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = f"{UID_ROOT}.3.1"
    meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = f"{UID_ROOT}.1"
    ds.SeriesInstanceUID = f"{UID_ROOT}.2"
    ds.PatientName = "Example^Invented"  # no real patient: every identifying value is made up
    ds.PatientID = "EXAMPLE-0001"
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.StudyDate = "20180101"
    ds.AccessionNumber = ""
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.Modality = "CR"
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = "AP"
    ds.ImageComments = (
        "Example: Kermany et al. 2018 (CC BY 4.0), person1140_bacteria_3083.jpeg, unchanged JPEG"
    )
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = height, width
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = encapsulate([jpeg])
    ds["PixelData"].VR = "OB"
    ds.save_as(target, enforce_file_format=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--originals", type=Path, default=ORIGINALS)
    originals = parser.parse_args().originals
    copy(originals / "pneumonia" / "person1031_virus_1723.jpeg", HERE / "pneumonia.jpeg")
    copy(originals / "covid" / "12941_2020_358_Fig1_HTML.jpg", HERE / "covid.jpg")
    resized_png(originals / "normal" / "NORMAL2-IM-1105-0001.jpeg", HERE / "normal.png")
    jpeg_in_dicom(originals / "pneumonia" / "person1140_bacteria_3083.jpeg", HERE / "pneumonia.dcm")
    for path in sorted(HERE.glob("*.*")):
        if path.suffix != ".py" and path.name != "README.md":
            print(f"{path.name:16} {path.stat().st_size / 1024:6.0f} KiB")


if __name__ == "__main__":
    main()
