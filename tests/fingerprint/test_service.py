"""BiometricService: consent gate, operations with prompt events, cancel, no false match.

Real SQLite, real key files, real pty fake sensor; the customer follows the prompts through the
service's prompt hook (the same hook the simulated mode uses).
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.biometric import templates as tmpl
from agent.biometric.config import FingerprintSettings
from agent.biometric.errors import ConsentRequired, SensorBusy, TemplateNotFound
from agent.biometric.sensor import FingerprintSensor
from agent.biometric.service import BiometricService, Operation, consent_from_customers
from agent.customers.models import CustomerCreate, CustomerPatch
from agent.customers.service import CustomerService
from agent.keys import load_or_create_key
from agent.store.db import Database
from agent.station import MIGRATIONS
from tests.fakes.r30x_sensor import FakeR30xSensor


class Person:
    """Who is at the sensor: follows place/lift prompts with their own finger."""

    def __init__(self, fake: FakeR30xSensor) -> None:
        self.fake = fake
        self.identity = "nobody"
        self.present = True

    def __call__(self, kind: str, customer_id: str, code: str) -> None:
        if code in ("place_finger", "place_again") and self.present:
            self.fake.place_finger(self.identity)
        elif code == "lift_finger":
            self.fake.lift_finger()


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[BiometricService, CustomerService, Person, FakeR30xSensor]]:
    db = Database(tmp_path / "agent.db", list(MIGRATIONS))
    customers = CustomerService(db)
    fake = FakeR30xSensor().start()
    person = Person(fake)
    sensor = FingerprintSensor(FingerprintSettings(port=fake.path, reply_timeout_s=0.5, capture_timeout_s=0.5, finger_wait_s=3))
    store = tmpl.TemplateStore(db, load_or_create_key(tmp_path / "keys", tmpl.KEY_NAME))
    service = BiometricService(sensor, store, consent_from_customers(customers), prompt_hook=person)
    yield service, customers, person, fake
    service.stop()
    fake.stop()
    db.close()


def new_customer(customers: CustomerService, number: str, biometrics: bool | None) -> str:
    body: dict[str, object] = {"document": {"country": "CL", "type": "RUT", "number": number},
                               "first_name": "Ana", "first_surname": "Pérez"}
    if biometrics is not None:
        body["consents"] = {"biometrics": biometrics}
    return customers.create(CustomerCreate.model_validate(body), "test").id


def finish(op: Operation, timeout: float = 5.0) -> Operation:
    deadline = time.monotonic() + timeout
    while op.state == "running" and time.monotonic() < deadline:
        op.events_after(len(op.events), wait_s=0.2)
    return op


def test_enroll_then_verify_with_prompt_events(env) -> None:  # type: ignore[no-untyped-def]
    service, customers, person, fake = env
    ana = new_customer(customers, "12.345.678-5", biometrics=True)
    person.identity = "ana-finger"
    op = finish(service.start_enroll(ana))
    assert op.state == "succeeded", op.error
    codes = [e.code for e in op.events]
    assert codes[:4] == ["place_finger", "captured", "lift_finger", "place_again"] and codes[-1] == "succeeded"
    assert service.enrolled_fingers(ana) == ["right_index"]

    fake.lift_finger()
    op = finish(service.start_verify(ana))
    assert op.state == "succeeded" and op.result and op.result["matched"] is True

    fake.lift_finger()
    person.identity = "someone-else"
    op = finish(service.start_verify(ana))
    assert op.result and op.result["matched"] is False and op.result["reason"] == "score_below_threshold"


def test_enrollment_refused_without_consent(env) -> None:  # type: ignore[no-untyped-def]
    service, customers, _, fake = env
    no_answer = new_customer(customers, "12.345.678-5", biometrics=None)
    refused = new_customer(customers, "11.111.111-1", biometrics=False)
    for customer_id in (no_answer, refused):
        with pytest.raises(ConsentRequired) as err:
            service.start_enroll(customer_id)
        assert err.value.code == "biometric_consent_required" and err.value.status == 409
    assert fake.received_ops == []  # the sensor was never touched


def test_consent_withdrawn_during_capture_stores_nothing(env) -> None:  # type: ignore[no-untyped-def]
    service, customers, person, _ = env
    ana = new_customer(customers, "12.345.678-5", biometrics=True)
    person.identity = "ana-finger"
    real_hook = service._prompt_hook

    def withdraw_on_second_capture(kind: str, customer_id: str, code: str) -> None:
        if code == "place_again":
            customers.update(ana, CustomerPatch.model_validate({"consents": {"biometrics": False}}), "test")
        real_hook(kind, customer_id, code)  # type: ignore[misc]

    service._prompt_hook = withdraw_on_second_capture
    op = finish(service.start_enroll(ana))
    assert op.state == "failed" and op.error is not None and op.error.code == "biometric_consent_required"
    assert service.enrolled_fingers(ana) == []


def test_verify_without_enrollment_fails_before_the_sensor(env) -> None:  # type: ignore[no-untyped-def]
    service, customers, _, fake = env
    ana = new_customer(customers, "12.345.678-5", biometrics=True)
    with pytest.raises(TemplateNotFound):
        service.start_verify(ana)
    assert fake.received_ops == []


def test_cancel_and_one_operation_at_a_time(env) -> None:  # type: ignore[no-untyped-def]
    service, customers, person, _ = env
    ana = new_customer(customers, "12.345.678-5", biometrics=True)
    person.present = False  # customer walks away: no finger ever
    op = service.start_enroll(ana)
    assert op.events_after(0, wait_s=2)[0].code == "place_finger"
    with pytest.raises(SensorBusy):
        service.start_enroll(ana)
    service.cancel(op.id)
    assert finish(op).state == "cancelled"
    assert op.error is not None and op.error.code == "fingerprint_cancelled"
    assert service.enrolled_fingers(ana) == []


def test_health_reports_the_sensor(env) -> None:  # type: ignore[no-untyped-def]
    service, _, _, fake = env
    assert service.health()["state"] == "error"  # never connected yet
    service.sensor.probe()
    report = service.health()
    assert report["state"] == "ok" and report["model"] == "R307" and report["packet_size"] == 128
    fake.unplug()
    service.sensor.probe()
    assert service.health()["last_error"] == "sensor_disconnected"
