"""Fingerprint routes: enroll, verify (1:1), delete, status, and operation polling / cancel.

Enroll and verify wait for a person, so they answer 202 with an operation at once; the POS
long-polls ``GET /v1/biometrics/operations/{id}?after=<seq>&wait=<s>`` for prompt events
("place_finger", "lift_finger", "place_again", "no_finger", "too_messy" ...) and the final
state, and may ``POST .../cancel``. Every flow has a non-biometric alternative (document).
"""
from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict

from agent.api.deps import get_station
from agent.api.problems import language, problem_responses
from agent.biometric.service import BiometricService, Operation
from agent.biometric.templates import Finger
from agent.errors import AgentError
from agent.station import Station

router = APIRouter(prefix="/v1/biometrics", tags=["biometrics"])

# Each route lists what its own code raises; 401 (token), 400/413 (body) and the parameters'
# 422 are added by agent/api/openapi.py. Failures after the 202 (no finger, sensor lost, no
# match...) are the operation's ``error``, not an HTTP status.
_DISABLED = problem_responses({503: "Fingerprint sensor not enabled at this station (`fingerprint_disabled`)"})
_OPERATION = problem_responses({404: "No such operation (`fingerprint_operation_not_found`)"})
_CUSTOMER_ID = Path(..., min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")


class FingerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    finger: Finger = "right_index"


class EventOut(BaseModel):
    seq: int
    type: Literal["prompt", "state"]
    code: str


class ErrorOut(BaseModel):
    code: str
    message: str


class OperationOut(BaseModel):
    id: str
    kind: Literal["enroll", "verify"]
    customer_id: str
    finger: str
    state: Literal["running", "succeeded", "failed", "cancelled"]
    events: list[EventOut]
    result: dict[str, Any] | None = None
    error: ErrorOut | None = None


def _service(station: Station = Depends(get_station)) -> BiometricService:
    service = station.fingerprint
    if service is None:
        raise AgentError("fingerprint_disabled", "El lector de huellas no está habilitado en esta estación",
                         "The fingerprint sensor is not enabled at this station", status=503)
    return service


def _out(op: Operation, after: int = 0, lang: str = "es", wait_s: float = 0.0) -> OperationOut:
    events = op.events_after(after, wait_s)
    error = ErrorOut(code=op.error.code, message=op.error.message(lang)) if op.error is not None else None
    return OperationOut(id=op.id, kind=op.kind, customer_id=op.customer_id, finger=op.finger, state=op.state,
                        events=[EventOut(seq=e.seq, type=e.type, code=e.code) for e in events],
                        result=op.result, error=error)


@router.post("/customers/{customer_id}/enroll", status_code=202, response_model=OperationOut,
             responses={**_DISABLED, **problem_responses({
                 404: "No such customer (`customer_not_found`)",
                 409: "No biometric consent (`biometric_consent_required`) or sensor busy (`fingerprint_sensor_busy`)",
             })},
             summary="Start enrolling a finger (needs the customer's biometric consent)")
def enroll(body: FingerIn, customer_id: str = _CUSTOMER_ID, service: BiometricService = Depends(_service)) -> OperationOut:
    return _out(service.start_enroll(customer_id, body.finger))


@router.post("/customers/{customer_id}/verify", status_code=202, response_model=OperationOut,
             responses={**_DISABLED, **problem_responses({
                 404: "That finger is not enrolled (`fingerprint_not_enrolled`)",
                 409: "Stored template unreadable (`fingerprint_template_unreadable`: enroll again) or sensor busy "
                      "(`fingerprint_sensor_busy`)",
             })},
             summary="Start a 1:1 verification against the customer's enrolled finger")
def verify(body: FingerIn, customer_id: str = _CUSTOMER_ID, service: BiometricService = Depends(_service)) -> OperationOut:
    return _out(service.start_verify(customer_id, body.finger))


@router.get("/operations/{operation_id}", response_model=OperationOut, responses={**_DISABLED, **_OPERATION},
            summary="Operation state and events after `after` (long-poll up to `wait` seconds)")
def get_operation(
    request: Request,
    operation_id: str = Path(..., max_length=64),
    after: int = Query(0, ge=0),
    wait: float = Query(0.0, ge=0, le=25),
    service: BiometricService = Depends(_service),
) -> OperationOut:
    return _out(service.get(operation_id), after, language(request), wait)


@router.post("/operations/{operation_id}/cancel", response_model=OperationOut, responses={**_DISABLED, **_OPERATION},
             summary="Cancel a running operation (the customer chose the non-biometric path)")
def cancel_operation(request: Request, operation_id: str = Path(..., max_length=64),
                     service: BiometricService = Depends(_service)) -> OperationOut:
    op = service.cancel(operation_id)
    op.wait_finished(2.0)  # the worker notices within one poll, so the answer usually says "cancelled"
    return _out(op, 0, language(request))


class EnrollmentOut(BaseModel):
    customer_id: str
    fingers: list[str]


@router.get("/customers/{customer_id}", response_model=EnrollmentOut, responses=_DISABLED,
            summary="Which fingers are enrolled (never the template)")
def enrollment(customer_id: str = _CUSTOMER_ID, service: BiometricService = Depends(_service)) -> EnrollmentOut:
    return EnrollmentOut(customer_id=customer_id, fingers=service.enrolled_fingers(customer_id))


class DeletedOut(BaseModel):
    deleted: int


@router.delete("/customers/{customer_id}", response_model=DeletedOut,
               responses={**_DISABLED, **problem_responses({507: "Sync queue full (disk budget): nothing was "
                                                                 "deleted (`outbox_full`)"})},
               summary="Delete the customer's fingerprint templates (one finger or all)")
def delete(customer_id: str = _CUSTOMER_ID, finger: Finger | None = Query(None),
           service: BiometricService = Depends(_service)) -> DeletedOut:
    return DeletedOut(deleted=service.delete(customer_id, finger))


@router.get("/status", summary="Sensor state: connected, model, last error", responses=_DISABLED)
def status(service: BiometricService = Depends(_service)) -> dict[str, Any]:
    return service.health()
