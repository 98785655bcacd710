"""Enrollment capture session: read the ID barcode from the camera, take front/back photos.

Flow (seed 003): start a capture -> decode live frames until a document parses (or timeout) ->
photo of the back and the front, each checked for focus and glare (retake asked otherwise) and
stored encrypted -> the result holds the prefilled fields, the images' ids and warnings.
Sessions are kept in memory: a capture is short-lived and its images are already on disk.
"""
from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from agent.drivers.camera import CameraError, FrameSource, capture_until
from agent.drivers.transitions import LinkState
from agent.idcard.config import IdCardSettings
from agent.idcard.errors import CaptureError
from agent.idcard.frame_reader import MRZ_UNREADABLE_EN, MRZ_UNREADABLE_ES, FrameReader
from agent.idcard.pipeline import DecodePipeline, PipelineSettings
from agent.idcard.quality import QualityReport, assess
from agent.idcard.schema import IdDocument
from agent.idcard.vault import SIDES, ImageVault
from agent.telemetry import TELEMETRY

log = logging.getLogger(__name__)


@dataclass
class CaptureSession:
    capture_id: str
    status: str = "started"  # started -> read | no_barcode | mrz_unreadable
    message: str | None = None  # for the attendant, Spanish (with the status' stable code beside it)
    message_en: str | None = None  # the same in English (Accept-Language: en)
    document: IdDocument | None = None
    symbology: str | None = None
    image_ids: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self, lang: str = "es") -> dict[str, Any]:
        message = self.message_en if lang == "en" and self.message_en else self.message
        return {"capture_id": self.capture_id, "status": self.status, "message": message,
                "document": self.document.to_dict() if self.document else None,
                "format": self.symbology, "image_ids": dict(self.image_ids), "warnings": list(self.warnings)}


def _unknown(capture_id: str) -> CaptureError:
    return CaptureError("unknown_capture", "No existe esa captura (puede haber expirado): inicie una nueva.", "No such capture (it may have expired): start a new one.", status=404, field="capture_id")


class IdCardService:
    def __init__(self, settings: IdCardSettings, vault: ImageVault,
                 camera_factory: Callable[[], FrameSource], pipeline: DecodePipeline | None = None) -> None:
        self.settings = settings
        self.vault = vault
        self.camera_factory = camera_factory
        self.pipeline = pipeline or DecodePipeline(PipelineSettings(budget_ms=settings.frame_budget_ms))
        self.reader = FrameReader(self.pipeline)
        self._sessions: dict[str, CaptureSession] = {}
        self._lock = threading.Lock()
        # A camera that cannot be opened (or gives no frame) is a device lost until one works:
        # logged once, reported by health and metrics.
        self.camera_link = LinkState(log, "cámara de documentos")

    def start_capture(self) -> str:
        capture_id = secrets.token_hex(12)
        with self._lock:
            self._sessions[capture_id] = CaptureSession(capture_id)
        return capture_id

    def _session(self, capture_id: str) -> CaptureSession:
        with self._lock:
            session = self._sessions.get(capture_id)
        if session is None:
            raise _unknown(capture_id)
        return session

    def _open_camera(self) -> FrameSource:
        try:
            camera = self.camera_factory()
        except CameraError:
            self.camera_link.down("camera_unavailable")
            raise CaptureError("camera_unavailable", "la camara de documentos no esta disponible",
                               "the document camera is not available", status=503) from None
        return camera

    def read_document(self, capture_id: str) -> CaptureSession:
        """Decode successive camera frames until an ID document parses or the timeout passes."""
        session = self._session(capture_id)
        seen = {"mrz": False, "rejected": False}

        def attempt(frame: np.ndarray) -> tuple[IdDocument, str] | None:
            result = self.reader.read(frame)
            seen["mrz"] |= result.mrz_seen
            seen["rejected"] |= bool(result.rejected)
            return (result.document, result.source or "") if result.document else None

        started = time.monotonic()
        try:
            camera = self._open_camera()
        except CaptureError as exc:
            TELEMETRY.count("idcard_reads", outcome=exc.code)
            raise
        try:
            found, frames = capture_until(camera, attempt, self.settings.capture_timeout_s)
        finally:
            camera.close()
        # /metrics: how reads end and how long a successful one takes (camera open included).
        TELEMETRY.count("idcard_reads", outcome="read" if found else "no_barcode")
        if found:
            TELEMETRY.observe("idcard_read_seconds", time.monotonic() - started)
        if frames:
            self.camera_link.up()
        else:
            self.camera_link.down("no_frames")
        if found:
            session.document, session.symbology = found
            session.status = "read"
            session.warnings = list(found[0].warnings)
            log.info("documento leído %s %s por %s tras %d cuadros [idcard_read]", found[0].country, found[0].masked_number(),
                     found[1], frames)
        elif seen["mrz"]:
            # The card was recognised (its MRZ is in view) but no frame gave a validated read.
            session.status, session.message, session.message_en = ("mrz_unreadable", MRZ_UNREADABLE_ES,
                                                                   MRZ_UNREADABLE_EN)
            session.warnings = ["mrz_unreadable"]
            log.info("MRZ vista pero no validada tras %d cuadros [mrz_unreadable]", frames)
        else:
            session.status = "no_barcode"
            session.warnings = ["invalid_id_barcode" if seen["rejected"] else "no_barcode_found"]
            log.info("ningún documento tras %d cuadros [idcard_not_found]", frames)
        return session

    def capture_image(self, capture_id: str, side: str, frame: np.ndarray | None = None) -> QualityReport:
        """Check and store one side's photo (a given frame, or the camera's next one).

        Raises ``CaptureError('retake_needed')`` carrying the problems when the photo is blurry or
        has glare; nothing is stored then."""
        if side not in SIDES:
            raise CaptureError("invalid_side", "lado invalido (front o back)", "side must be front or back",
                               field="side")
        session = self._session(capture_id)
        if frame is None:
            camera = self._open_camera()
            try:
                frame = camera.read()
            finally:
                camera.close()
            if frame is None:
                self.camera_link.down("no_frames")
                raise CaptureError("camera_unavailable", "la camara no entrego imagen", "the camera gave no frame",
                                   status=503)
            self.camera_link.up()
        report = assess(frame, min_sharpness=self.settings.min_sharpness,
                        max_glare_fraction=self.settings.max_glare_fraction)
        if not report.ok:
            reasons_es = {"blurry": "imagen desenfocada", "glare": "reflejo sobre el documento"}
            raise CaptureError("retake_needed",
                               "repita la foto: " + ", ".join(reasons_es[p] for p in report.problems),
                               "retake the photo: " + ", ".join(report.problems), field=side)
        ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
        if not ok:
            raise CaptureError("image_encoding_failed", "no se pudo codificar la imagen", "could not encode image")
        old = session.image_ids.get(side)
        session.image_ids[side] = self.vault.put(capture_id, side, jpeg.tobytes())
        if old:
            self.vault.delete(old)
        return report

    def result(self, capture_id: str) -> CaptureSession:
        return self._session(capture_id)

    def discard(self, capture_id: str) -> None:
        """Forget a capture and delete its images (enrollment cancelled)."""
        with self._lock:
            session = self._sessions.pop(capture_id, None)
        if session is None:
            raise _unknown(capture_id)
        for image_id in session.image_ids.values():
            self.vault.delete(image_id)

    def purge_expired_images(self) -> int:
        return self.vault.purge_older_than(self.settings.image_retention_days * 86400)
