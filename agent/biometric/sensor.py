"""High-level fingerprint operations on an R30x sensor: enroll and 1:1 verify.

Templates live on the host (encrypted by ``templates.py``); the sensor's flash library is not
used. Every operation reports progress through a ``prompt`` callback (the POS shows it to the
customer) and stops promptly when its ``cancel`` event is set.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from agent.biometric.config import FingerprintSettings
from agent.biometric.errors import (
    Cancelled,
    CaptureFailed,
    EnrollMismatch,
    NoFinger,
    SensorBusy,
    SensorUnavailable,
    TemplateSizeError,
    sensor_failed,
)
from agent.drivers.r30x.client import R30xClient
from agent.drivers.r30x.commands import LedColor, LedMode, Status
from agent.drivers.r30x.errors import PortLost, R30xError
from agent.drivers.r30x.link import Link, open_serial
from agent.drivers.r30x.protocol import TEMPLATE_SIZE
from agent.drivers.transitions import LinkState

TEMPLATE_FORMAT = "r30x-char-v1"  # bound into the template's encryption associated data

PromptFn = Callable[[str], None]

# Prompt codes sent to the POS; it maps them to screen texts.
PLACE_FINGER = "place_finger"
LIFT_FINGER = "lift_finger"
PLACE_AGAIN = "place_again"
NO_FINGER = "no_finger"  # reminder: still waiting for a finger
CAPTURED = "captured"
PROCESSING = "processing"

# Img2Tz outcomes worth another try after lifting the finger, each with its own prompt code.
_RETRYABLE = {
    Status.TOO_MESSY: "too_messy",
    Status.TOO_FEW_FEATURES: "too_few_features",
    Status.TOO_DRY: "too_dry",
    Status.TOO_WET: "too_wet",
    Status.CAPTURE_FAILED: "capture_failed",
    Status.INVALID_IMAGE: "capture_failed",
}
_POLL_S = 0.05  # GenImg polling interval while waiting for a finger (the exchange itself ~2 ms)


@dataclass(frozen=True, slots=True)
class VerifyResult:
    matched: bool
    score: int
    threshold: int
    reason: str  # "match" | "score_below_threshold"


@dataclass(frozen=True, slots=True)
class SensorStatus:
    connected: bool
    model: str
    port: str
    packet_size: int | None
    security_level: int | None
    busy: bool
    last_error: str | None  # a stable error code, never personal data
    last_ok_at: float | None  # time.time() of the last successful exchange


class FingerprintSensor:
    def __init__(self, settings: FingerprintSettings, port_path: str | None = None) -> None:
        self.settings = settings
        self.port_path = port_path or settings.port
        self._client: R30xClient | None = None
        self._op_lock = threading.Lock()
        self._packet_size: int | None = None
        self._security_level: int | None = None
        self._last_error: str | None = None
        self._last_ok_at: float | None = None
        # Logs "lost" and "back after N min" once each; the monitor's probes in between are quiet.
        self.link = LinkState(logging.getLogger(__name__), "lector de huellas")

    # -- connection ----------------------------------------------------------------------------
    def connect(self) -> None:
        """Open the port, unlock with the password, learn the packet size. Idempotent."""
        if self._client is not None:
            return
        s = self.settings
        try:
            port = open_serial(self.port_path, s.baud)
        except (OSError, ValueError) as exc:  # serial.SerialException is an OSError
            self._last_error = "sensor_disconnected"
            self.link.down("sensor_disconnected")
            raise SensorUnavailable(type(exc).__name__) from exc
        client = R30xClient(Link(port, s.address, s.reply_timeout_s), capture_timeout=s.capture_timeout_s)
        try:
            client.verify_password(s.password)
            params = client.read_system_parameters()
        except R30xError as exc:
            client.link.close()
            self._last_error = exc.code
            self.link.down(exc.code)
            raise SensorUnavailable(exc.code) from exc
        client.packet_size = params.packet_size  # what the sensor is set to is what it expects
        self._packet_size, self._security_level = params.packet_size, params.security_level
        self._client = client
        self._mark_ok()

    def close(self) -> None:
        if self._client is not None:
            self._client.link.close()
            self._client = None

    def probe(self) -> SensorStatus:
        """Health check and reconnect: called by a monitor thread or the health endpoint."""
        if self._op_lock.acquire(blocking=False):
            try:
                if self._client is None:
                    self.connect()
                else:
                    self._client.read_system_parameters()
                    self._mark_ok()
            except SensorUnavailable:
                pass
            except PortLost:
                self._drop("sensor_disconnected")
            except R30xError as exc:
                self._last_error = exc.code
            finally:
                self._op_lock.release()
        return self.status()

    def detect_finger(self, timeout_s: float) -> bool:
        """The technician's test: whether a finger touches the sensor within ``timeout_s``."""
        with self._operation() as client:
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                if client.gen_img() is Status.OK:
                    return True
                time.sleep(_POLL_S)
        return False

    def status(self) -> SensorStatus:
        return SensorStatus(
            connected=self._client is not None,
            model=self.settings.model,
            port=self.port_path,
            packet_size=self._packet_size,
            security_level=self._security_level,
            busy=self._op_lock.locked(),
            last_error=self._last_error,
            last_ok_at=self._last_ok_at,
        )

    # -- operations ----------------------------------------------------------------------------
    def enroll(self, prompt: PromptFn, cancel: threading.Event) -> bytes:
        """Two captures of the same finger merged by the sensor; returns the 512-byte template."""
        with self._operation() as client:
            self._capture(client, 1, prompt, cancel, first_prompt=PLACE_FINGER)
            prompt(LIFT_FINGER)
            self._wait_lift(client, cancel)
            self._capture(client, 2, prompt, cancel, first_prompt=PLACE_AGAIN)
            prompt(PROCESSING)
            if client.reg_model() is not Status.OK:
                self._led(client, LedMode.FLASHING, LedColor.RED, cycles=3)
                raise EnrollMismatch()
            template = client.up_char(1)
            self._led(client, LedMode.FADE_OFF, LedColor.BLUE)
            return template

    def verify(self, template: bytes, prompt: PromptFn, cancel: threading.Event) -> VerifyResult:
        """1:1: the stored template goes into buffer 2, a fresh capture into buffer 1, Match."""
        if len(template) != TEMPLATE_SIZE:
            raise TemplateSizeError(len(template), TEMPLATE_SIZE)
        with self._operation() as client:
            client.down_char(2, template)
            self._capture(client, 1, prompt, cancel, first_prompt=PLACE_FINGER)
            prompt(PROCESSING)
            return self.decide(client.match().score)

    def decide(self, score: int) -> VerifyResult:
        threshold = self.settings.score_threshold
        if score >= threshold:
            return VerifyResult(True, score, threshold, "match")
        return VerifyResult(False, score, threshold, "score_below_threshold")

    # -- steps ---------------------------------------------------------------------------------
    def _capture(self, client: R30xClient, buffer: int, prompt: PromptFn, cancel: threading.Event, first_prompt: str) -> None:
        prompt(first_prompt)
        reason = ""
        for _attempt in range(self.settings.max_capture_attempts):
            self._wait_finger(client, prompt, cancel)
            status = client.img2tz(buffer)
            if status is Status.OK:
                prompt(CAPTURED)
                return
            reason = _RETRYABLE.get(status, "")
            if not reason:
                self._led(client, LedMode.FLASHING, LedColor.RED, cycles=2)
                raise CaptureFailed(status.code, _attempt + 1)
            prompt(reason)
            prompt(LIFT_FINGER)
            self._wait_lift(client, cancel)
            prompt(first_prompt)
        self._led(client, LedMode.FLASHING, LedColor.RED, cycles=2)
        raise CaptureFailed(reason, self.settings.max_capture_attempts)

    def _wait_finger(self, client: R30xClient, prompt: PromptFn, cancel: threading.Event) -> None:
        self._led(client, LedMode.BREATHING, LedColor.BLUE)
        started = last_reminder = time.monotonic()
        while True:
            if cancel.is_set():
                raise Cancelled()
            status = client.gen_img()
            if status is Status.OK:
                return
            if status not in (Status.NO_FINGER, Status.CAPTURE_FAILED):
                raise CaptureFailed(status.code, 1)
            now = time.monotonic()
            if now - started >= self.settings.finger_wait_s:
                raise NoFinger(self.settings.finger_wait_s)
            if now - last_reminder >= self.settings.reminder_every_s:
                prompt(NO_FINGER)
                last_reminder = now
            cancel.wait(_POLL_S)

    def _wait_lift(self, client: R30xClient, cancel: threading.Event) -> None:
        started = time.monotonic()
        while client.gen_img() is not Status.NO_FINGER:
            if cancel.is_set():
                raise Cancelled()
            if time.monotonic() - started >= self.settings.finger_wait_s:
                raise NoFinger(self.settings.finger_wait_s)  # a finger that never lifts
            cancel.wait(_POLL_S)

    def _led(self, client: R30xClient, mode: LedMode, color: LedColor, cycles: int = 0) -> None:
        if self.settings.model != "R503":
            return
        try:
            client.led(mode, color, cycles=cycles)
        except R30xError:
            pass  # the LED is a courtesy: never fail a verification over it

    @contextmanager
    def _operation(self) -> Iterator[R30xClient]:
        # A health probe holds the lock for one short exchange: wait that out; a real operation
        # (a person at the sensor) holds it much longer, so give up and report busy.
        if not self._op_lock.acquire(timeout=2 * self.settings.reply_timeout_s + 0.5):
            raise SensorBusy()
        try:
            if self._client is None:
                self.connect()  # reconnect after a loss: the next operation tries again
            client = self._client
            assert client is not None
            try:
                yield client
            except PortLost as exc:
                self._drop("sensor_disconnected")
                raise SensorUnavailable("port lost") from exc
            except R30xError as exc:
                self._last_error = exc.code
                raise sensor_failed(exc) from exc
            self._mark_ok()
        finally:
            self._op_lock.release()

    def _drop(self, code: str) -> None:
        self._last_error = code
        self.link.down(code)
        self.close()

    def _mark_ok(self) -> None:
        self._last_error = None
        self._last_ok_at = time.time()
        self.link.up()


class ReconnectMonitor:
    """Background thread probing the sensor so a replugged USB adapter comes back by itself."""

    def __init__(self, sensor: FingerprintSensor, every_s: float) -> None:
        self.sensor = sensor
        self.every_s = every_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="fingerprint-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            self.sensor.probe()  # first probe at once: the sensor connects at start-up
            if self._stop.wait(self.every_s):
                return
