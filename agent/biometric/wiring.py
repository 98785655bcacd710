"""Build the fingerprint service for the running agent (real sensor or simulated)."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.biometric.config import FingerprintSettings
from agent.biometric.sensor import FingerprintSensor
from agent.biometric.service import BiometricService, consent_from_customers
from agent.biometric.templates import KEY_NAME, TemplateStore
from agent.keys import load_or_create_key
from agent.store.db import Database


class SimulatedCustomer:
    """Simulated mode: a fake sensor on a pty and a customer who follows every prompt.

    The simulated finger's identity is the customer id, so a simulated verification of an
    enrolled customer matches; the driver, codec and storage run exactly as with hardware.
    """

    def __init__(self) -> None:
        from agent.simulators.r30x_sensor import FakeR30xSensor

        self.fake = FakeR30xSensor(baud=57600).start()

    def __call__(self, kind: str, customer_id: str, code: str) -> None:
        if code in ("place_finger", "place_again"):
            self.fake.place_finger(customer_id)
        elif code == "lift_finger":
            self.fake.lift_finger()

    def stop(self) -> None:
        self.fake.stop()


class _SimulatedService(BiometricService):
    simulated = True  # health and the console say so

    def __init__(self, *args: Any, simulation: SimulatedCustomer, **kwargs: Any) -> None:
        super().__init__(*args, prompt_hook=simulation, **kwargs)
        self._simulation = simulation

    def stop(self) -> None:
        super().stop()
        self._simulation.stop()


def build_biometric_service(settings: FingerprintSettings, db: Database, customers: Any, key_dir: Path,
                            *, simulated: bool = False) -> BiometricService:
    """The station's ``fingerprint`` part (agent/station.py also hooks ``consent_withdrawal_hook``)."""
    store = TemplateStore(db, load_or_create_key(key_dir, KEY_NAME))
    consent = consent_from_customers(customers)
    if simulated or settings.simulated:
        simulation = SimulatedCustomer()
        sensor = FingerprintSensor(settings, port_path=simulation.fake.path)
        service: BiometricService = _SimulatedService(sensor, store, consent, simulation=simulation)
    else:
        service = BiometricService(FingerprintSensor(settings), store, consent)
    service.start_monitor()  # connects (and later reconnects) in the background
    return service


def consent_withdrawal_hook(store: TemplateStore) -> Callable[[Any, str, dict[str, Any]], None]:
    """A ``CustomerService.change_hooks`` entry: withdrawing the biometric consent deletes the
    customer's templates in the same transaction as the change."""

    def on_customer_change(conn: Any, customer_id: str, changes: dict[str, Any]) -> None:
        change = changes.get("consents.biometrics")
        if change is None:
            return
        new = change[1]
        if not (isinstance(new, dict) and new.get("value")):
            store.delete_tx(conn, customer_id)

    return on_customer_change
