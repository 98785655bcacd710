"""ID-card capture routes: thin over :class:`agent.idcard.service.IdCardService`.

The service is ``station.idcard``, built lazily by ``agent.idcard.wiring``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError

from agent.api.deps import actor, get_station, require_client
from agent.api.problems import language, problem_responses, translate_validation
from agent.clock import utcnow
from agent.errors import AgentError, FieldError
from agent.idcard import photos
from agent.idcard.enroll import upsert_customer
from agent.station import Station

if TYPE_CHECKING:  # the service module pulls in OpenCV: load it only when a capture starts
    from agent.idcard.scanners import IdScanners, Scan
    from agent.idcard.service import CaptureSession, IdCardService
    from agent.idcard.wiring import LazyIdCardService

router = APIRouter(prefix="/v1/idcard", tags=["idcard"], dependencies=[Depends(require_client)])
# A customer's photos, under the customer (the capture that took them is long gone).
photos_router = APIRouter(prefix="/v1/customers", tags=["idcard"], dependencies=[Depends(require_client)])

# What each route's own code raises; 401 (token), 400/413 (body) and the parameters' 422 are
# added by agent/api/openapi.py.
_UNAVAILABLE = problem_responses({503: "ID-card capture not configured (`idcard_unavailable`) or the document "
                                       "camera is not available (`camera_unavailable`)"})
_NOT_FOUND = problem_responses({404: "No such capture, or it expired: start a new one (`unknown_capture`)"})


def _service_configured(station: Station) -> "LazyIdCardService":
    if station.idcard is None:
        raise AgentError("idcard_unavailable", "La captura de documentos no está configurada en esta estación.",
                         "ID-card capture is not configured at this station.", status=503)
    return station.idcard


def _service(station: Station) -> "IdCardService":
    service = station.idcard
    if service is None:
        raise AgentError("idcard_unavailable", "La captura de documentos no está configurada en esta estación.",
                         "ID-card capture is not configured at this station.", status=503)
    return service


def _scanners(station: Station) -> "IdScanners":
    if station.idcard_scanners is None:
        raise AgentError("idcard_scanners_disabled", "No hay escáner de documentos configurado en esta estación.",
                         "No ID scanner is configured at this station.", status=503)
    return station.idcard_scanners


def _capture_or_scan(station: Station, capture_id: str) -> "CaptureSession | Scan":
    """A capture, or a hand-held scanner's read under its scan id: both enroll the same way."""
    scanners = station.idcard_scanners
    scan = scanners.inbox.get(capture_id) if scanners is not None else None
    if scan is not None:
        return scan
    if scanners is not None and station.idcard is None:  # scanners only: no captures to look in
        raise _unknown_scan()
    return _service(station).result(capture_id)


def _unknown_scan() -> AgentError:
    return AgentError("unknown_scan", "No existe esa lectura del escáner (puede haber expirado): escanee de nuevo.",
                      "No such scan (it may have expired): scan again.", status=404, field="scan_id")


_SCAN_DISABLED = problem_responses({503: "No hand-held ID scanner is configured (`idcard_scanners_disabled`)"})


@router.get("/scans/latest", summary="The last hand-held scanner read (MRZ reader or wedge PDF417/QR)",
            responses={**_SCAN_DISABLED, **problem_responses({404: "No scan in the last `idcard.scanners.keep_s` "
                                                                   "(`no_recent_scan`)"})})
def latest_scan(request: Request, station: Station = Depends(get_station)) -> dict[str, Any]:
    scan = _scanners(station).inbox.latest()
    if scan is None:
        raise AgentError("no_recent_scan", "No hay lecturas recientes del escáner de documentos.",
                         "There is no recent read from the ID scanner.", status=404)
    return scan.to_dict(language(request))


@router.get("/scans/{scan_id}", summary="One hand-held scanner read, by the id its `idcard.scanned` event gave",
            responses={**_SCAN_DISABLED, **problem_responses({404: "No such scan, or it expired (`unknown_scan`)"})})
def get_scan(scan_id: str, request: Request, station: Station = Depends(get_station)) -> dict[str, Any]:
    scan = _scanners(station).inbox.get(scan_id)
    if scan is None:
        raise _unknown_scan()
    return scan.to_dict(language(request))


@router.post("/captures", status_code=201, summary="Start a capture and read the document barcode",
             responses=_UNAVAILABLE)
async def start_capture(request: Request, station: Station = Depends(get_station)) -> dict[str, Any]:
    service = _service(station)
    # Both block: the first call builds the decoder (imports OpenCV), then the camera loop runs.
    capture_id = await run_in_threadpool(service.start_capture)
    session = await run_in_threadpool(service.read_document, capture_id)
    return session.to_dict(language(request))


@router.get("/captures/{capture_id}", summary="A capture's prefilled fields, image ids and warnings",
            responses={**_UNAVAILABLE, **_NOT_FOUND})
async def get_capture(capture_id: str, request: Request, station: Station = Depends(get_station)) -> dict[str, Any]:
    return _service(station).result(capture_id).to_dict(language(request))


@router.post("/captures/{capture_id}/images/{side}", summary="Take the front or back photo (retake on blur/glare)",
             responses={**_UNAVAILABLE, **_NOT_FOUND, **problem_responses({
                 422: "Blurred or glare: take it again (`retake_needed`), or a side other than front/back "
                      "(`invalid_side`)"})})
async def capture_image(capture_id: str, side: str, station: Station = Depends(get_station)) -> dict[str, Any]:
    service = _service(station)
    report = await run_in_threadpool(service.capture_image, capture_id, side)
    return {"side": side, "sharpness": report.sharpness, "glare_fraction": report.glare_fraction,
            "image_id": service.result(capture_id).image_ids[side]}


@router.post("/captures/{capture_id}/customer", summary="Create or update the customer from the capture "
                                                 "(or from a hand-held scanner's read, by its scan id)",
             responses={**_UNAVAILABLE, **problem_responses({
                 404: "No such capture or scan, or it expired: start a new one (`unknown_capture`, `unknown_scan`)",
                 409: "No document was read in this capture (`no_document_read`), the loyalty id belongs to another "
                      "customer (`loyalty_id_taken`, with `customer_id`), or a concurrent enrollment "
                      "(`enrollment_conflict`: retry)",
                 422: "What the attendant typed is not valid (`validation_failed`, per-field errors), or the "
                      "front/back photos are missing while `enrollment.photos_required` (`photos_required`)",
                 507: "Sync queue full (disk budget): nothing was stored (`outbox_full`)"})})
async def enroll(capture_id: str, extra: dict[str, Any] | None = None, station: Station = Depends(get_station),
                 who: str = Depends(actor)) -> dict[str, Any]:
    session = _capture_or_scan(station, capture_id)
    missing = [side for side in ("front", "back") if side not in session.image_ids]
    if station.settings.enrollment.photos_required and missing:
        # Seed 003 marks both photos mandatory: refused before anything is saved.
        raise AgentError("photos_required", "Faltan las fotos del documento: " + ", ".join(
            {"front": "frente", "back": "reverso"}[m] for m in missing) + ".",
            "The document photos are missing: " + ", ".join(missing) + ".", status=422,
            errors=[FieldError(f"images.{m}", "photo_required", f"Tome la foto del {'frente' if m == 'front' else 'reverso'}"
                               " del documento.", f"Take the {m} photo of the document.") for m in missing])
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
    if session.image_ids:
        # The photos now belong to the customer: found again after a restart, replaced by a
        # newer capture's, purged with the vault's retention (agent/idcard/photos.py).
        replaced = station.db.write(lambda c: photos.link(c, customer.id, capture_id, session.image_ids, utcnow()))
        vault = station.idcard.vault() if station.idcard is not None else None
        for image_id in replaced:
            if vault is not None:
                vault.delete(image_id)
    return {"created": created, "customer": customer.model_dump(mode="json"), "image_ids": session.image_ids}


@photos_router.get("/{customer_id}/photos", summary="The customer's ID-card photos on record (front, back)",
                   responses={**_UNAVAILABLE, **problem_responses({404: "No such customer (`customer_not_found`)"})})
def customer_photos(customer_id: str, station: Station = Depends(get_station)) -> dict[str, Any]:
    _service_configured(station)
    station.customers.get_json(customer_id)  # 404 customer_not_found
    items = station.db.read(lambda c: photos.photos_of(c, customer_id))
    return {"customer_id": customer_id, "items": [{k: i[k] for k in ("side", "image_id", "stored_at")} for i in items]}


@photos_router.get("/{customer_id}/photos/{side}", summary="One of the customer's ID-card photos (JPEG)",
                   response_class=Response,
                   responses={**_UNAVAILABLE, 200: {"description": "The photo", "content": {"image/jpeg": {}}},
                              **problem_responses({404: "No such customer, no photo of that side, or purged by "
                                                        "retention (`photo_not_found`)"})})
def customer_photo(customer_id: str, side: Literal["front", "back"], station: Station = Depends(get_station)) -> Response:
    lazy = _service_configured(station)
    found = [i for i in station.db.read(lambda c: photos.photos_of(c, customer_id)) if i["side"] == side]
    vault = lazy.vault()
    if not found or not vault.exists(found[0]["image_id"]):
        raise AgentError("photo_not_found", "No hay foto de ese lado del documento (o ya se eliminó por retención).",
                         "There is no photo of that side of the document (or retention deleted it).", status=404,
                         field="side")
    image = vault.get(found[0]["capture_id"], side, found[0]["image_id"])
    return Response(image, media_type="image/jpeg", headers={"Cache-Control": "no-store"})
