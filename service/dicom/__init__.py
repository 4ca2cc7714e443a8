"""DICOM outputs (Secondary Capture, Structured Report) and the PACS (DICOMweb) workflow."""

import service.io.dicom  # noqa: F401  # first: switches off pydicom's value-quoting warnings
