"""The console's "probar" buttons: one short, real exchange with each configured device.

Card readers wait for the next card (a tap or a swipe); the fingerprint sensor answers a
handshake and then waits for a touch; the camera gives one frame, measured for size and focus.
Results are Spanish sentences for the technician and never carry a full card number.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.station import Station

CARD_WAIT_S = 10.0
TOUCH_WAIT_S = 8.0


@dataclass(frozen=True)
class TestResult:
    __test__ = False  # not a pytest class
    ok: bool
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_device_test(station: Station, device: str) -> TestResult:
    if device.startswith("card_reader_"):
        return _card(station)
    if device == "fingerprint":
        return _fingerprint(station)
    if device == "camera":
        return _camera(station)
    return TestResult(False, f"dispositivo desconocido: {device}")


def _card(station: Station) -> TestResult:
    cards = station.cards
    if cards is None or not cards.readers:
        return TestResult(False, "no hay lectores de tarjetas configurados")
    import time

    after = cards.hub.last_seq
    deadline = time.monotonic() + CARD_WAIT_S
    while (left := deadline - time.monotonic()) > 0:
        events, _ = cards.hub.wait(after, left)
        for event in events:
            after = event.seq
            if event.type == "swipe.created":
                card = str(event.data.get("card_id") or "")
                return TestResult(True, f"tarjeta leída por {event.data.get('source')} ({event.data.get('card_type')})"
                                  f", terminada en {card[-4:]}")
            if event.type == "swipe.failed":
                return TestResult(False, f"el lector leyó algo pero no una tarjeta válida ({event.data.get('code')})")
    return TestResult(False, f"no se leyó ninguna tarjeta en {CARD_WAIT_S:.0f} s: acerque o deslice una")


def _fingerprint(station: Station) -> TestResult:
    service = station.fingerprint
    if service is None:
        return TestResult(False, "no hay lector de huellas configurado")
    status = service.sensor.probe()
    if not status.connected:
        return TestResult(False, f"el lector de huellas no responde ({status.last_error or 'sin conexión'})")
    try:
        touched = service.sensor.detect_finger(TOUCH_WAIT_S)
    except Exception as exc:  # noqa: BLE001 - busy with an enrollment, or lost meanwhile
        return TestResult(False, f"el lector respondió ({status.model}) pero no pudo esperar un dedo: "
                          f"{getattr(exc, 'code', type(exc).__name__)}")
    if touched:
        return TestResult(True, f"lector {status.model} respondió y detectó un dedo")
    return TestResult(True, f"lector {status.model} responde; no se tocó el sensor en {TOUCH_WAIT_S:.0f} s")


def _camera(station: Station) -> TestResult:
    idcard = station.idcard
    if idcard is None:
        return TestResult(False, "no hay cámara de documentos configurada")
    import cv2

    service = idcard.service()  # loads OpenCV if no capture did yet: a person asked for it
    try:
        camera = service.camera_factory()
    except OSError as exc:
        service.camera_link.down("camera_unavailable")
        return TestResult(False, f"no se pudo abrir la cámara ({exc})")
    try:
        frame = camera.read()
    finally:
        camera.close()
    if frame is None:
        service.camera_link.down("no_frames")
        return TestResult(False, "la cámara no entregó imagen")
    service.camera_link.up()
    sharpness = cv2.Laplacian(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var()
    height, width = frame.shape[:2]
    return TestResult(True, f"imagen de {width}x{height}, nitidez {sharpness:.0f}")
