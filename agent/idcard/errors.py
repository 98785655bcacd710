"""Domain errors of the ID-card feature (``AgentError`` subclasses: stable code, es + en texts)."""
from __future__ import annotations

from agent.errors import AgentError


class IdCardError(AgentError):
    """Base of every error this feature raises on purpose; carries a stable ``code``."""

    def __init__(self, code: str, es: str, en: str, *, status: int = 422, field: str | None = None) -> None:
        super().__init__(code, es, en, status=status, field=field)
        self.field = field

    @property
    def message_es(self) -> str:
        return self.es

    @property
    def message_en(self) -> str:
        return self.en


class NotAnIdDocument(IdCardError):
    """The payload is not one of the ID documents we know (a product EAN, a random QR, ...)."""

    def __init__(self, en: str = "the barcode is not an identity document",
                 es: str = "el codigo leido no es un documento de identidad") -> None:
        super().__init__("not_an_id_document", es, en)


class InvalidIdPayload(IdCardError):
    """The payload looks like a known document but is damaged (truncated, bad check digit, ...)."""

    def __init__(self, en: str, es: str, *, field: str | None = None) -> None:
        super().__init__("invalid_id_payload", es, en, field=field)


class CaptureError(IdCardError):
    """A camera / capture-session problem (no device, timeout, retake needed, unknown capture)."""
