"""A small, blocking DICOMweb client for one PACS (QIDO/WADO/STOW-RS via dicomweb-client).

Every call is bounded by ``CXR_DICOMWEB_TIMEOUT_SECONDS`` (connect and read) and retried never:
dicomweb-client's default exponential retry would turn a dead PACS into a minute-long hang.
Failures become ``ServiceError``s with a message for the operator: 502 when the PACS cannot be
reached or answers with an error, 504 when it does not answer in time. Messages name the
PACS host and the step that failed, never the request's DICOM content.

Callers run these methods in a worker thread (``service.pools.Pools.network``): they block.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from urllib.parse import urlsplit

import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.dataset import Dataset

from service.errors import (
    PacsNotConfigured,
    PacsTimeout,
    PacsUnavailable,
    ServiceError,
    StudyNotFound,
)
from service.settings import Settings

logger = logging.getLogger("service.pacs")

# Retrieve instances as stored: the service decodes every syntax the PACS is likely to hold,
# and asking for the default (uncompressed) would make the PACS transcode for nothing.
_AS_STORED = (("application/dicom", "*"),)


class StoreFailed(PacsUnavailable):
    code = "pacs_store_failed"


class Pacs:
    def __init__(self, settings: Settings) -> None:
        if not settings.dicomweb_url:
            raise PacsNotConfigured(
                "No PACS is configured: set CXR_DICOMWEB_URL to the DICOMweb root of the PACS "
                "(e.g. http://orthanc:8042/dicom-web)."
            )
        parts = urlsplit(settings.dicomweb_url)
        self.host = parts.hostname or "?"
        if parts.port:
            self.host += f":{parts.port}"
        self.timeout = settings.dicomweb_timeout_seconds
        session = requests.Session()
        if settings.dicomweb_username:
            password = settings.dicomweb_password
            session.auth = (
                settings.dicomweb_username,
                password.get_secret_value() if password else "",
            )
        self._session = session
        self._client = DICOMwebClient(settings.dicomweb_url, session=session, timeout=self.timeout)
        self._client.set_http_retry_params(retry=False)

    def close(self) -> None:
        self._session.close()

    @contextmanager
    def _call(self, step: str) -> Iterator[None]:
        try:
            yield
        except ServiceError:
            raise
        except requests.Timeout as exc:
            logger.warning("PACS %s timed out while %s", self.host, step)
            raise PacsTimeout(
                f"The PACS at {self.host} did not answer within {self.timeout:g} s while {step}."
            ) from exc
        except requests.ConnectionError as exc:
            logger.warning("PACS %s unreachable while %s", self.host, step)
            raise PacsUnavailable(
                f"The PACS at {self.host} could not be reached while {step}; check "
                "CXR_DICOMWEB_URL and that the PACS is running."
            ) from exc
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else 0
            logger.warning("PACS %s answered HTTP %s while %s", self.host, status, step)
            hint = " (check CXR_DICOMWEB_USERNAME/PASSWORD)" if status in (401, 403) else ""
            raise PacsUnavailable(
                f"The PACS at {self.host} answered HTTP {status} while {step}{hint}."
            ) from exc
        except Exception as exc:  # a malformed answer: multipart, JSON or DICOM parse errors
            logger.warning("PACS %s sent an unreadable answer while %s", self.host, step)
            raise PacsUnavailable(
                f"The PACS at {self.host} sent an unreadable answer while {step} "
                f"({type(exc).__name__})."
            ) from exc

    def study_metadata(self, study_instance_uid: str) -> list[Dataset]:
        """Header of every instance in the study (WADO-RS metadata: no pixel data)."""
        step = "listing the study's instances"
        with self._call(step):
            try:
                found = self._client.retrieve_study_metadata(study_instance_uid)
            except requests.HTTPError as exc:
                if exc.response is None or exc.response.status_code != 404:
                    raise
                found = []
        if not found:
            raise StudyNotFound(f"The PACS at {self.host} has no study with that UID.")
        with self._call(step):
            return [Dataset.from_json(item, bulk_data_uri_handler=_no_bulk) for item in found]

    def retrieve(self, study: str, series: str, instance: str) -> Dataset:
        with self._call("retrieving an image"):
            return self._client.retrieve_instance(study, series, instance, media_types=_AS_STORED)

    def store(self, datasets: Sequence[Dataset], study_instance_uid: str) -> None:
        """One STOW-RS request for all results; a partial refusal is reported, not hidden."""
        step = f"storing {len(datasets)} result(s)"
        try:
            with self._call(step):
                answer = self._client.store_instances(list(datasets), study_instance_uid)
        except (PacsUnavailable, PacsTimeout) as exc:
            exc.message += (
                " None or only some of the results may have been stored; running analyze "
                "again stores what is missing (results have fixed UIDs, so never twice)."
            )
            raise
        failed = answer.get("FailedSOPSequence") or []
        if failed:
            stored = len(answer.get("ReferencedSOPSequence") or [])
            logger.warning("PACS %s refused %d of %d results", self.host, len(failed), stored)
            raise StoreFailed(
                f"The PACS at {self.host} refused {len(failed)} of {len(datasets)} result(s) "
                f"and stored {stored}. Running analyze again stores only what is missing."
            )


def _no_bulk(*_: object) -> bytes:
    """Metadata only: never fetch bulk data (pixels) while listing a study."""
    return b""
