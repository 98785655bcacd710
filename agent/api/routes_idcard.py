"""ID-card capture routes: thin over :class:`agent.idcard.service.IdCardService`.

The service is ``station.idcard``, built lazily by ``agent.idcard.wiring``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError

from agent.api.deps import actor, get_station, require_client
from agent.api.problems import problem_responses, translate_validation
from agent.errors import AgentError
from agent.idcard.enroll import upsert_customer
from agent.station import Station

if TYPE_CHECKING:  # the service module pulls in OpenCV: load it only when a capture starts
    from agent.idcard.service import IdCardService

router = APIRouter(prefix="/v1/idcard", tags=["idcard"], dependencies=[Depends(require_client)])

# What each route's own code raises; 401 (token), 400/413 (body) and the parameters' 422 are
# added by agent/api/openapi.py.
_UNAVAILABLE = problem_responses({503: "ID-card capture not configured (`idcard_unavailable`) or the document "
                                       "camera is not available (`camera_unavailable`)"})
_NOT_FOUND = problem_responses({404: "No such capture, or it expired: start a new one (`unknown_capture`)"})


def _service(station: Station) -> "IdCardService":
    service = station.idcard
    if service is None:
        raise AgentError("idcard_unavailable", "La captura de documentos no está configurada en esta estación.",
                         "ID-card capture is not configured at this station.", status=503)
    return service


@router.post("/captures", status_code=201, summary="Start a capture and read the document barcode",
             responses=_UNAVAILABLE)
async def start_capture(station: Station = Depends(get_station)) -> dict[str, Any]:
    service = _service(station)
    # Both block: the first call builds the decoder (imports OpenCV), then the camera loop runs.
    capture_id = await run_in_threadpool(service.start_capture)
    session = await run_in_threadpool(service.read_document, capture_id)
    return session.to_dict()


@router.get("/captures/{capture_id}", summary="A capture's prefilled fields, image ids and warnings",
            responses={**_UNAVAILABLE, **_NOT_FOUND})
async def get_capture(capture_id: str, station: Station = Depends(get_station)) -> dict[str, Any]:
    return _service(station).result(capture_id).to_dict()


@router.post("/captures/{capture_id}/images/{side}", summary="Take the front or back photo (retake on blur/glare)",
             responses={**_UNAVAILABLE, **_NOT_FOUND, **problem_responses({
                 422: "Blurred or glare: take it again (`retake_needed`), or a side other than front/back "
                      "(`invalid_side`)"})})
async def capture_image(capture_id: str, side: str, station: Station = Depends(get_station)) -> dict[str, Any]:
    service = _service(station)
    report = await run_in_threadpool(service.capture_image, capture_id, side)
    return {"side": side, "sharpness": report.sharpness, "glare_fraction": report.glare_fraction,
            "image_id": service.result(capture_id).image_ids[side]}


@router.post("/captures/{capture_id}/customer", summary="Create or update the customer from the capture",
             responses={**_UNAVAILABLE, **_NOT_FOUND, **problem_responses({
                 409: "No document was read in this capture (`no_document_read`), the loyalty id belongs to another "
                      "customer (`loyalty_id_taken`, with `customer_id`), or a concurrent enrollment "
                      "(`enrollment_conflict`: retry)",
                 422: "What the attendant typed is not valid (`validation_failed`, per-field errors)",
                 507: "Sync queue full (disk budget): nothing was stored (`outbox_full`)"})})
async def enroll(capture_id: str, extra: dict[str, Any] | None = None, station: Station = Depends(get_station),
                 who: str = Depends(actor)) -> dict[str, Any]:
    session = _service(station).result(capture_id)
    try:
        customer, created = await run_in_threadpool(upsert_customer, station.customers, session.document,
                                                    extra or {}, who)
    except ValidationError as exc:
        # What the attendant typed is validated here, by the customer models, not by FastAPI:
        # answer the 422 the body validation would have given, not a 500.
        if exc.title not in ("CustomerCreate", "CustomerPatch"):
            raise
        raise AgentError("validation_failed", "Los datos enviados no son válidos.", "The submitted data is not valid.",
                         status=422, errors=translate_validation(list(exc.errors()))) from None
    return {"created": created, "customer": customer.model_dump(mode="json"), "image_ids": session.image_ids}
