"""Fingerprint enrollment and 1:1 verification as background operations the POS can follow.

A POS call starts an operation and gets its id at once; the operation runs on its own thread
(the sensor waits for a human), emits prompt events ("place_finger", "lift_finger" ...) that
the POS reads by long-polling, and can be cancelled. Only one runs at a time: there is one
sensor. Templates are read and written only through ``TemplateStore`` (encrypted).
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from agent.biometric.errors import BiometricError, ConsentRequired, SensorBusy
from agent.biometric.sensor import TEMPLATE_FORMAT, FingerprintSensor, ReconnectMonitor
from agent.biometric.templates import TemplateStore, check_finger
from agent.errors import AgentError
from agent.ids import new_id
from agent.telemetry import TELEMETRY
from agent.lifecycle import Part

ConsentCheck = Callable[[str], bool]  # customer id -> has a recorded biometric consent
PromptHook = Callable[[str, str, str], None]  # (operation kind, customer id, prompt code), simulated mode

State = Literal["running", "succeeded", "failed", "cancelled"]
_KEEP_FINISHED = 50  # finished operations kept for late polls (a POS that lost its connection)


@dataclass
class Event:
    seq: int
    type: Literal["prompt", "state"]
    code: str
    at: float


@dataclass
class Operation:
    id: str
    kind: Literal["enroll", "verify"]
    customer_id: str
    finger: str
    state: State = "running"
    events: list[Event] = field(default_factory=list)
    result: dict[str, Any] | None = None
    error: AgentError | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def emit(self, type_: Literal["prompt", "state"], code: str) -> None:
        with self._changed:
            self.events.append(Event(len(self.events) + 1, type_, code, time.time()))
            self._changed.notify_all()

    def finish(self, state: State, result: dict[str, Any] | None = None, error: AgentError | None = None) -> None:
        with self._changed:
            self.state, self.result, self.error = state, result, error
        # /metrics: outcomes by kind; a failure is counted by its stable code (no_finger, ...).
        TELEMETRY.count("fingerprint_operations", kind=self.kind,
                        outcome=error.code if state == "failed" and error is not None else state)
        self.emit("state", state)

    def wait_finished(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while self.state == "running":
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
        return True

    def events_after(self, seq: int, wait_s: float = 0.0) -> list[Event]:
        """Events with a sequence number above ``seq``, waiting up to ``wait_s`` for one (long poll)."""
        deadline = time.monotonic() + wait_s
        with self._changed:
            while len(self.events) <= seq and self.state == "running":
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
            return self.events[seq:]


class OperationNotFound(AgentError):
    def __init__(self) -> None:
        super().__init__("fingerprint_operation_not_found", "Operación de huella no encontrada",
                         "Fingerprint operation not found", status=404)


class BiometricService(Part):
    def __init__(self, sensor: FingerprintSensor, templates: TemplateStore, consent: ConsentCheck,
                 prompt_hook: PromptHook | None = None) -> None:
        self.sensor = sensor
        self.templates = templates
        self._consent = consent
        self._prompt_hook = prompt_hook
        self._ops: OrderedDict[str, Operation] = OrderedDict()
        self._lock = threading.Lock()
        self._monitor: ReconnectMonitor | None = None

    # -- lifecycle (agent.lifecycle: the station calls stop() and health(); the monitor starts at build) --
    def start_monitor(self) -> None:
        self._monitor = ReconnectMonitor(self.sensor, self.sensor.settings.reconnect_every_s)
        self._monitor.start()

    def stop(self) -> None:
        with self._lock:
            running = [op for op in self._ops.values() if op.state == "running"]
        for op in running:
            op.cancel.set()
        if self._monitor:
            self._monitor.stop()
        self.sensor.close()

    def health(self) -> dict[str, Any]:
        s = self.sensor.status()
        return {
            "state": "ok" if s.connected else "error",
            "connected": s.connected,
            "model": s.model,
            "port": s.port,
            "busy": s.busy,
            "packet_size": s.packet_size,
            "security_level": s.security_level,
            "last_error": s.last_error,
            "last_ok_at": s.last_ok_at,
        }

    # -- operations ----------------------------------------------------------------------------
    def start_enroll(self, customer_id: str, finger: str = "right_index") -> Operation:
        check_finger(finger)
        self._require_consent(customer_id)
        return self._start("enroll", customer_id, finger, self._run_enroll)

    def start_verify(self, customer_id: str, finger: str = "right_index") -> Operation:
        check_finger(finger)
        self.templates.load(customer_id, finger)  # fail fast (not enrolled / unreadable) before the sensor
        return self._start("verify", customer_id, finger, self._run_verify)

    def get(self, op_id: str) -> Operation:
        with self._lock:
            op = self._ops.get(op_id)
        if op is None:
            raise OperationNotFound()
        return op

    def cancel(self, op_id: str) -> Operation:
        op = self.get(op_id)
        op.cancel.set()
        return op

    def delete(self, customer_id: str, finger: str | None = None) -> int:
        return self.templates.delete(customer_id, finger)

    def enrolled_fingers(self, customer_id: str) -> list[str]:
        return self.templates.enrolled_fingers(customer_id)

    # -- internals -----------------------------------------------------------------------------
    def _require_consent(self, customer_id: str) -> None:
        if not self._consent(customer_id):
            raise ConsentRequired()

    def _start(self, kind: Literal["enroll", "verify"], customer_id: str, finger: str,
               body: Callable[[Operation], dict[str, Any]]) -> Operation:
        op = Operation(new_id(), kind, customer_id, finger)
        with self._lock:
            if any(o.state == "running" for o in self._ops.values()):
                raise SensorBusy()
            self._ops[op.id] = op
            finished = [k for k, o in self._ops.items() if o.state != "running"]
            for key in finished[: max(0, len(finished) - _KEEP_FINISHED)]:
                del self._ops[key]
        threading.Thread(target=self._run, args=(op, body), name=f"fingerprint-{kind}", daemon=True).start()
        return op

    def _run(self, op: Operation, body: Callable[[Operation], dict[str, Any]]) -> None:
        try:
            result = body(op)
        except BiometricError as exc:
            op.finish("cancelled" if exc.code == "fingerprint_cancelled" else "failed", error=exc)
        except AgentError as exc:
            op.finish("failed", error=exc)
        except Exception:  # noqa: BLE001 - a bug must end the operation, not leave the POS polling forever
            op.finish("failed", error=AgentError("fingerprint_internal_error", "Error interno del lector de huellas",
                                                 "Internal fingerprint error", status=500))
        else:
            op.finish("succeeded", result=result)

    def _prompt(self, op: Operation) -> Callable[[str], None]:
        def prompt(code: str) -> None:
            op.emit("prompt", code)
            if self._prompt_hook is not None:
                self._prompt_hook(op.kind, op.customer_id, code)
        return prompt

    def _run_enroll(self, op: Operation) -> dict[str, Any]:
        template = self.sensor.enroll(self._prompt(op), op.cancel)
        # Consent may have been withdrawn while the customer was at the sensor: check again.
        self._require_consent(op.customer_id)
        self.templates.save(op.customer_id, op.finger, template, TEMPLATE_FORMAT, self.sensor.settings.model)
        return {"enrolled": True, "finger": op.finger}

    def _run_verify(self, op: Operation) -> dict[str, Any]:
        stored = self.templates.load(op.customer_id, op.finger)
        outcome = self.sensor.verify(stored.template, self._prompt(op), op.cancel)
        return {"matched": outcome.matched, "score": outcome.score, "threshold": outcome.threshold,
                "reason": outcome.reason}


def consent_from_customers(customers: Any) -> ConsentCheck:
    """Consent check over the core's CustomerService: ``consents.biometrics.value`` must be true."""

    def check(customer_id: str) -> bool:
        consent = customers.get(customer_id).consents.biometrics
        return bool(consent is not None and consent.value)

    return check
