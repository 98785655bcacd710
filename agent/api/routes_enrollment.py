"""Enrollment helpers: what the POS must ask (before its first 422) and how many were enrolled.

- ``GET /v1/enrollment/requirements[?country=CL]``: per country, document types and mandatory
  fields per customer kind; the photo and fingerprint policy; the consents on record.
- ``GET /v1/enrollment/stats[?from=&to=]``: customers enrolled per day (station time zone) and per
  attendant (from ``X-Attendant-Id``), and the station's total (seed 003: "Usuarios enrolados: N").
- ``GET /v1/enrollment/requests[?country=&type=&number=]``: requests customers made on the chain's
  website, received from head office in the directory, to pre-fill the enrollment form (only
  those not expired and not yet a customer here).
"""
from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query

from agent.api.deps import get_station
from agent.api.problems import problem_responses
from agent.clock import utcnow
from agent.customers import enrollment
from agent.loyalty import enrollment_requests
from agent.errors import AgentError
from agent.station import Station

router = APIRouter(prefix="/v1/enrollment", tags=["customers"])


@router.get("/requirements", summary="Mandatory enrollment fields per country and kind; photo and fingerprint policy",
            responses=problem_responses({422: "Unknown country (`unknown_country`)"}))
def get_requirements(country: str | None = Query(None, min_length=2, max_length=2, examples=["CL"]),
                     station: Station = Depends(get_station)) -> dict:
    settings = station.settings
    configured = sorted(set(settings.enrollment.required_fields) | {settings.station.country})
    if country is not None:
        country = country.upper()
        if country not in configured:
            raise AgentError("unknown_country", f"No hay requisitos de inscripción para el país {country}.",
                             f"There are no enrollment requirements for country {country}.", status=422,
                             field="country")
    return enrollment.requirements(
        settings.enrollment.required_fields, [country] if country else configured,
        photos_required=settings.enrollment.photos_required,
        fingerprint_available=settings.fingerprint.enabled or settings.devices.simulated)


@router.get("/stats", summary="Customers enrolled per day and per attendant, and in all",
            responses=problem_responses({422: "Bad range (`invalid_range`)"}))
def get_stats(from_: date | None = Query(None, alias="from", description="First day (default: 30 days ago)"),
              to: date | None = Query(None, description="Last day, included (default: today)"),
              station: Station = Depends(get_station)) -> dict:
    zone = ZoneInfo(station.settings.station.timezone)
    last = to or utcnow().astimezone(zone).date()
    first = from_ or last - timedelta(days=29)
    if first > last or (last - first).days >= enrollment.MAX_STATS_DAYS:
        raise AgentError("invalid_range", f"Indique un rango de 1 a {enrollment.MAX_STATS_DAYS} días con from <= to.",
                         f"Give a range of 1 to {enrollment.MAX_STATS_DAYS} days with from <= to.", status=422,
                         field="from")
    try:
        return station.db.read(lambda c: enrollment.stats(c, first, last, zone))
    except OverflowError:  # to=9999-12-31: the day after does not exist
        raise AgentError("invalid_range", "Fecha fuera del rango admitido.", "Date out of the supported range.",
                         status=422, field="to") from None


@router.get("/requests", summary="Enrollment requests from the website, to pre-fill the enrollment form",
            responses=problem_responses({422: "Incomplete document (`document_incomplete`)"}))
def get_requests(country: str | None = Query(None, min_length=2, max_length=2, examples=["CL"]),
                 type_: str | None = Query(None, alias="type", min_length=1, max_length=10, examples=["RUT"]),
                 number: str | None = Query(None, min_length=1, max_length=40, examples=["12.345.678-5"]),
                 station: Station = Depends(get_station)) -> dict:
    given = [v for v in (country, type_, number) if v is not None]
    if given and len(given) != 3:
        raise AgentError("document_incomplete", "Indique país, tipo y número del documento, o ninguno.",
                         "Give the document's country, type and number, or none of them.", status=422,
                         field="number")
    document = (country, type_, number) if given else None
    now = utcnow()
    rows = station.db.read(lambda c: enrollment_requests.pending(c, now, document))  # type: ignore[arg-type]
    return {"requests": rows}
