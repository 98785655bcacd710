"""Domain errors of the fingerprint feature (stable codes, Spanish and English texts)."""
from __future__ import annotations

from agent.drivers.errors import DeviceError
from agent.errors import AgentError


class BiometricError(AgentError):
    pass


def sensor_failed(exc: DeviceError) -> BiometricError:
    """A sensor-side failure as the API reports it: the driver's code and texts, HTTP 503 because
    the device, not the request, failed."""
    return BiometricError(exc.code, exc.es, exc.en, status=503)


class ConsentRequired(BiometricError):
    def __init__(self) -> None:
        super().__init__(
            "biometric_consent_required",
            "El cliente no ha dado su consentimiento biométrico; use la identificación sin huella",
            "The customer has not given biometric consent; use the non-biometric path",
            status=409,
        )


class Cancelled(BiometricError):
    def __init__(self) -> None:
        super().__init__("fingerprint_cancelled", "Operación de huella cancelada", "Fingerprint operation cancelled", status=409)


class NoFinger(BiometricError):
    def __init__(self, seconds: float) -> None:
        super().__init__(
            "fingerprint_no_finger",
            f"No se colocó el dedo en {seconds:.0f} s",
            f"No finger was placed within {seconds:.0f} s",
            status=408,
        )


class CaptureFailed(BiometricError):
    def __init__(self, reason: str, attempts: int) -> None:
        super().__init__(
            "fingerprint_capture_failed",
            f"No se obtuvo una huella legible tras {attempts} intentos ({reason})",
            f"No readable fingerprint after {attempts} attempts ({reason})",
        )
        self.reason = reason


class EnrollMismatch(BiometricError):
    def __init__(self) -> None:
        super().__init__(
            "fingerprint_enroll_mismatch",
            "Las dos capturas no coinciden; repita el registro con el mismo dedo",
            "The two captures differ; repeat the enrollment with the same finger",
        )


class SensorUnavailable(BiometricError):
    def __init__(self, detail: str) -> None:
        super().__init__(
            "fingerprint_sensor_unavailable",
            "El lector de huellas no está disponible",
            f"The fingerprint sensor is not available ({detail})",
            status=503,
        )


class SensorBusy(BiometricError):
    def __init__(self) -> None:
        super().__init__(
            "fingerprint_sensor_busy",
            "El lector de huellas está ocupado con otra operación",
            "The fingerprint sensor is busy with another operation",
            status=409,
        )


class TemplateSizeError(BiometricError):
    def __init__(self, size: int, expected: int) -> None:
        super().__init__(
            "fingerprint_template_size",
            f"Plantilla de huella de tamaño inválido ({size} bytes, se esperaban {expected})",
            f"Fingerprint template has the wrong size ({size} bytes, expected {expected})",
            field="template",
        )


class TemplateNotFound(BiometricError):
    def __init__(self) -> None:
        super().__init__(
            "fingerprint_not_enrolled",
            "El cliente no tiene huella registrada",
            "The customer has no enrolled fingerprint",
            status=404,
        )


class TemplateUnreadable(BiometricError):
    """Decryption failed: tampered ciphertext, a row moved to another record, or a changed key."""

    def __init__(self) -> None:
        super().__init__(
            "fingerprint_template_unreadable",
            "La plantilla guardada no es válida para este cliente; registre la huella de nuevo",
            "The stored template is not valid for this customer; enroll the finger again",
            status=409,
        )
