"""Enroll / verify flows of FingerprintSensor against the fake sensor on a real pty."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from agent.biometric.config import FingerprintSettings
from agent.biometric.errors import (
    Cancelled,
    CaptureFailed,
    EnrollMismatch,
    NoFinger,
    SensorBusy,
    SensorUnavailable,
    TemplateSizeError,
)
from agent.biometric.sensor import FingerprintSensor
from tests.fakes.r30x_sensor import FakeR30xSensor, identity_template


def make_sensor(fake: FakeR30xSensor, **overrides: object) -> FingerprintSensor:
    values: dict[str, object] = {
        "port": fake.path, "address": fake.address, "password": fake.password, "model": fake.model,
        "reply_timeout_s": 0.5, "capture_timeout_s": 0.5, "finger_wait_s": 3.0, "reminder_every_s": 0.2,
    }
    values.update(overrides)
    return FingerprintSensor(FingerprintSettings(**values))


def person(fake: FakeR30xSensor, first: str, second: str | None = None, **finger: object) -> tuple[list[str], Callable[[str], None]]:
    """A customer who follows the prompts: places ``first``, lifts when asked, places ``second``."""
    prompts: list[str] = []

    def on_prompt(code: str) -> None:
        prompts.append(code)
        if code == "place_finger":
            fake.place_finger(first, **finger)  # type: ignore[arg-type]
        elif code == "lift_finger":
            fake.lift_finger()
        elif code == "place_again":
            fake.place_finger(second or first)

    return prompts, on_prompt


def test_enroll_then_verify_same_and_other_person(fake: FakeR30xSensor) -> None:
    sensor = make_sensor(fake)
    prompts, on_prompt = person(fake, "ana")
    template = sensor.enroll(on_prompt, threading.Event())
    assert template == identity_template("ana")
    assert prompts == ["place_finger", "captured", "lift_finger", "place_again", "captured", "processing"]

    fake.lift_finger()
    _, on_prompt = person(fake, "ana", quality=0.8)
    same = sensor.verify(template, on_prompt, threading.Event())
    assert same.matched and same.reason == "match" and same.score >= 200

    _, on_prompt = person(fake, "bob")
    other = sensor.verify(template, on_prompt, threading.Event())
    assert not other.matched and other.reason == "score_below_threshold" and other.score < 60


def test_threshold_is_ours_not_the_sensors(fake: FakeR30xSensor) -> None:
    sensor = make_sensor(fake, score_threshold=250)
    _, on_prompt = person(fake, "ana", quality=0.5)  # the sensor itself calls this a match (~150)
    result = sensor.verify(identity_template("ana"), on_prompt, threading.Event())
    assert not result.matched and 100 < result.score < 250 and result.threshold == 250


def test_messy_capture_is_retried_after_lift(fake: FakeR30xSensor) -> None:
    sensor = make_sensor(fake)
    prompts: list[str] = []
    tries = iter([{"condition": "messy"}, {}])

    def on_prompt(code: str) -> None:
        prompts.append(code)
        if code == "place_finger":
            fake.place_finger("ana", **next(tries))
        elif code == "lift_finger":
            fake.lift_finger()

    assert sensor.verify(identity_template("ana"), on_prompt, threading.Event()).matched
    assert prompts[:5] == ["place_finger", "too_messy", "lift_finger", "place_finger", "captured"]


def test_persistent_bad_captures_give_up_with_a_reason(fake: FakeR30xSensor) -> None:
    sensor = make_sensor(fake, max_capture_attempts=2)
    _, on_prompt = person(fake, "ana", condition="few_features")
    with pytest.raises(CaptureFailed) as err:
        sensor.verify(identity_template("ana"), on_prompt, threading.Event())
    assert err.value.reason == "too_few_features"


def test_enrolling_two_different_fingers_is_refused(fake: FakeR30xSensor) -> None:
    sensor = make_sensor(fake)
    _, on_prompt = person(fake, "ana", "bob")
    with pytest.raises(EnrollMismatch):
        sensor.enroll(on_prompt, threading.Event())


def test_no_finger_reminds_then_times_out(fake: FakeR30xSensor) -> None:
    sensor = make_sensor(fake, finger_wait_s=0.7)
    prompts: list[str] = []
    with pytest.raises(NoFinger):
        sensor.verify(identity_template("ana"), prompts.append, threading.Event())
    assert prompts[0] == "place_finger" and prompts.count("no_finger") >= 2


def test_cancel_stops_the_wait_promptly(fake: FakeR30xSensor) -> None:
    sensor = make_sensor(fake, finger_wait_s=30)
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(Cancelled):
        sensor.enroll(lambda code: None, cancel)
    assert time.monotonic() - started < 2
    assert sensor.status().busy is False


def test_wrong_size_template_never_reaches_the_sensor(fake: FakeR30xSensor) -> None:
    sensor = make_sensor(fake)
    with pytest.raises(TemplateSizeError) as err:
        sensor.verify(bytes(500), lambda code: None, threading.Event())
    assert err.value.code == "fingerprint_template_size"
    assert fake.received_ops == []


def test_one_operation_at_a_time(fake: FakeR30xSensor) -> None:
    sensor = make_sensor(fake, finger_wait_s=30)
    cancel = threading.Event()
    errors: list[Exception] = []

    def waiting() -> None:
        try:
            sensor.enroll(lambda code: None, cancel)
        except Exception as exc:  # noqa: BLE001 - collected for the assertion below
            errors.append(exc)

    worker = threading.Thread(target=waiting)
    worker.start()
    time.sleep(0.3)
    with pytest.raises(SensorBusy):
        sensor.verify(identity_template("ana"), lambda code: None, threading.Event())
    cancel.set()
    worker.join(2)
    assert isinstance(errors[0], Cancelled)


def test_password_protected_sensor() -> None:
    with FakeR30xSensor(password=424242, address=0x0A0B0C0D, packet_size=32) as fake:
        with pytest.raises(SensorUnavailable):
            make_sensor(fake, password=1).connect()
        sensor = make_sensor(fake)
        _, on_prompt = person(fake, "ana")
        assert sensor.verify(identity_template("ana"), on_prompt, threading.Event()).matched
        assert sensor.status().packet_size == 32


def test_usb_unplug_is_detected_and_replug_reconnects(fake: FakeR30xSensor) -> None:
    sensor = make_sensor(fake)
    sensor.connect()
    assert sensor.status().connected
    fake.unplug()
    _, on_prompt = person(fake, "ana")
    with pytest.raises(SensorUnavailable):
        sensor.verify(identity_template("ana"), on_prompt, threading.Event())
    status = sensor.status()
    assert not status.connected and status.last_error == "sensor_disconnected"
    assert not sensor.probe().connected  # still unplugged: the probe fails quietly
    fake.replug()
    assert sensor.probe().connected
    fake.lift_finger()
    assert sensor.verify(identity_template("ana"), on_prompt, threading.Event()).matched
    assert sensor.status().last_error is None


def test_missing_port_is_a_clear_error() -> None:
    sensor = FingerprintSensor(FingerprintSettings(port="/nonexistent/ttyUSB9"))
    with pytest.raises(SensorUnavailable) as err:
        sensor.verify(identity_template("ana"), lambda code: None, threading.Event())
    assert err.value.code == "fingerprint_sensor_unavailable"
    assert not sensor.status().connected


def test_a_sensor_failure_mid_operation_is_the_drivers_code_as_a_503_feature_error(fake: FakeR30xSensor) -> None:
    # The driver raises plain DeviceErrors (no HTTP); the feature maps them for the API.
    from agent.biometric.errors import BiometricError
    from agent.drivers.errors import DeviceError
    from agent.errors import AgentError

    sensor = make_sensor(fake)
    sensor.connect()
    fake.silent = True  # the sensor stops answering: the driver's reply timeout
    _, on_prompt = person(fake, "ana")
    with pytest.raises(BiometricError) as err:
        sensor.verify(identity_template("ana"), on_prompt, threading.Event())
    assert err.value.code == "sensor_timeout" and err.value.status == 503 and "no respondió" in err.value.es
    assert isinstance(err.value.__cause__, DeviceError) and not isinstance(err.value.__cause__, AgentError)
    assert sensor.status().last_error == "sensor_timeout"
