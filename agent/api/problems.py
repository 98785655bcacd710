"""RFC 9457 problem+json responses, in Spanish by default and English on request."""
from __future__ import annotations

import logging
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from agent.errors import AgentError, FieldError, prefers_english

log = logging.getLogger(__name__)
PROBLEM_TYPE = "application/problem+json"


class FieldProblem(BaseModel):
    field: str = Field(description="Dotted path of the input field, e.g. document.number or phones[0].number")
    code: str = Field(description="Stable machine-readable code")
    message: str


# Documentation only: problem() builds the body. The optional members after ``errors`` are the
# extension members some codes add (AgentError.extra); tests/test_openapi.py fails when the code
# emits one that is not listed here. The docstring is the schema's public description.
class Problem(BaseModel):
    """RFC 9457 problem details (`application/problem+json`), plus a stable `code`, per-field
    `errors` and, for some codes, the extension members below."""

    type: str
    title: str
    status: int
    detail: str | None = None
    code: str
    instance: str | None = None
    errors: list[FieldProblem] = []
    customer_id: str | None = Field(None, description="`customer_exists`, `loyalty_id_taken` (409): the customer "
                                                      "that already has this document or loyalty id")
    retry_after_s: int | None = Field(None, description="`attendant_locked_out`, `station_pin_paused` (423): seconds "
                                                        "until a PIN may be tried again; `pin_checks_busy` (503): "
                                                        "seconds to wait (also in `Retry-After`)")
    reason: Literal["bytes", "age", "disk"] | None = Field(
        None, description="`outbox_full` (507): which sync-queue budget is exhausted (size or age of unsynced "
                          "events); `storage_full` (507): `disk`")
    allowed: list[str] | None = Field(None, description="`invalid_finger` (422): the finger names accepted")
    account_id: str | None = Field(None, description="`customer_has_primary_card` (409): the customer's account, "
                                                     "to issue the card as additional to")
    unknown_migrations: list[str] | None = Field(
        None, description="`database_newer_than_build`: migrations in the database this build does not know "
                          "(start-up and CLI only; the agent does not serve over such a database)")
    writer_versions: list[str] | None = Field(
        None, description="`database_newer_than_build`: the versions that applied them")


# The schema every error response declares (see agent/api/openapi.py, which also sets the
# media type: FastAPI would say application/json, the server sends application/problem+json).
PROBLEM_REF = "#/components/schemas/Problem"


def problem_responses(described: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries for a route's error statuses: {status: description} -> Problem."""
    return {status: {"model": Problem, "description": text} for status, text in described.items()}


def language(request: Request) -> str:
    """``en`` when the client ranks English above Spanish, otherwise Spanish."""
    return "en" if prefers_english(request.headers.get("accept-language", "")) else "es"


def problem(request: Request, status: int, code: str, es: str, en: str,
            errors: list[FieldError] | None = None, extra: dict[str, Any] | None = None,
            headers: dict[str, str] | None = None) -> JSONResponse:
    lang = language(request)
    message = en if lang == "en" else es
    body: dict[str, Any] = {
        "type": f"urn:loyalty-agent:problem:{code}",
        "title": message,
        "status": status,
        "detail": message,
        "code": code,
        "instance": request.url.path,
        "errors": [e.render(lang) for e in errors or []],
    }
    for key, value in (extra or {}).items():
        body.setdefault(key, value)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_TYPE, headers=headers,
                        )


# pydantic error type -> (code, Spanish, English). Unknown types fall back to invalid_value.
_PYDANTIC: dict[str, tuple[str, str, str]] = {
    "missing": ("required", "Este campo es obligatorio.", "This field is required."),
    "extra_forbidden": ("unknown_field", "Campo desconocido: revise el nombre.", "Unknown field: check its name."),
    "string_too_long": ("too_long", "El texto es demasiado largo.", "The text is too long."),
    "string_too_short": ("required", "Este campo no puede estar vacío.", "This field cannot be empty."),
    "string_pattern_mismatch": ("invalid_characters", "El texto tiene caracteres no permitidos.", "The text has characters that are not allowed."),
    "string_type": ("invalid_type", "Debe ser un texto.", "Must be a string."),
    "bool_type": ("invalid_type", "Debe ser verdadero o falso.", "Must be true or false."),
    "bool_parsing": ("invalid_type", "Debe ser verdadero o falso.", "Must be true or false."),
    "date_parsing": ("invalid_date", "Fecha no válida: use AAAA-MM-DD con una fecha que exista.", "Invalid date: use YYYY-MM-DD with a date that exists."),
    "date_from_datetime_parsing": ("invalid_date", "Fecha no válida: use AAAA-MM-DD con una fecha que exista.", "Invalid date: use YYYY-MM-DD with a date that exists."),
    "date_from_datetime_inexact": ("invalid_date", "Fecha no válida: use AAAA-MM-DD.", "Invalid date: use YYYY-MM-DD."),
    "date_type": ("invalid_date", "Fecha no válida: use AAAA-MM-DD.", "Invalid date: use YYYY-MM-DD."),
    "datetime_parsing": ("invalid_datetime", "Fecha y hora no válidas (ISO 8601).", "Invalid date-time (ISO 8601)."),
    "datetime_from_date_parsing": ("invalid_datetime", "Fecha y hora no válidas (ISO 8601).", "Invalid date-time (ISO 8601)."),
    "literal_error": ("invalid_choice", "Valor no permitido.", "Value not allowed."),
    "enum": ("invalid_choice", "Valor no permitido.", "Value not allowed."),
    "decimal_parsing": ("invalid_number", "Debe ser un número.", "Must be a number."),
    "decimal_type": ("invalid_number", "Debe ser un número.", "Must be a number."),
    "decimal_max_places": ("too_many_decimals", "Use como máximo 2 decimales.", "Use at most 2 decimal places."),
    "greater_than_equal": ("out_of_range", "El valor es demasiado bajo.", "The value is too low."),
    "less_than_equal": ("out_of_range", "El valor es demasiado alto.", "The value is too high."),
    "int_parsing": ("invalid_number", "Debe ser un número entero.", "Must be a whole number."),
    "int_type": ("invalid_number", "Debe ser un número entero.", "Must be a whole number."),
    "too_long": ("too_many_items", "Demasiados elementos en la lista.", "Too many items in the list."),
    "list_type": ("invalid_type", "Debe ser una lista.", "Must be a list."),
    "model_type": ("invalid_type", "Debe ser un objeto JSON.", "Must be a JSON object."),
    "model_attributes_type": ("invalid_type", "Debe ser un objeto JSON.", "Must be a JSON object."),
    "dict_type": ("invalid_type", "Debe ser un objeto JSON.", "Must be a JSON object."),
    "union_tag_invalid": ("invalid_type", "Tipo de valor no válido.", "Invalid value type."),
}


def _path(loc: tuple[Any, ...]) -> str:
    """('body', 'phones', 0, 'number') -> 'phones[0].number'; drops pydantic's union branch names."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and ("[" in part or part in ("bool", "ConsentIn", "function-after")):
            continue  # union member tags such as 'bool' or 'function-after[...]'
        else:
            out += ("." if out else "") + str(part)
    return out or "body"


def translate_validation(errors: list[dict[str, Any]]) -> list[FieldError]:
    result: list[FieldError] = []
    seen: set[str] = set()
    for err in errors:
        kind = err.get("type", "")
        field = _path(tuple(err.get("loc", ())))
        if field in seen:
            continue  # a union reports one error per branch; one message per field is enough
        seen.add(field)
        if kind == "value_error" and "email" in str(err.get("msg", "")).lower():
            code, es, en = "invalid_email", "El correo electrónico no es válido.", "The email address is not valid."
        elif kind == "value_error" and field == "birth_date":
            code, es, en = "invalid_date", "La fecha de nacimiento no es posible.", "The birth date is not possible."
        elif kind == "literal_error":
            expected = str(err.get("ctx", {}).get("expected", ""))  # pydantic's English: "'F', 'M' or 'X'"
            code, es, en = ("invalid_choice", f"Valor no permitido; use {expected.replace(' or ', ' o ')}.",
                            f"Value not allowed; use {expected}.")
        else:
            code, es, en = _PYDANTIC.get(kind, ("invalid_value", "Valor no válido.", "Invalid value."))
        result.append(FieldError(field, code, es, en))
    return result


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(AgentError)
    async def _agent_error(request: Request, exc: AgentError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        if isinstance(exc.extra.get("retry_after_s"), int):
            headers = {"Retry-After": str(exc.extra["retry_after_s"])}
        return problem(request, exc.status, exc.code, exc.es, exc.en, exc.errors, exc.extra, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        content_type = request.headers.get("content-type", "")
        if content_type and "json" not in content_type.lower() and any(tuple(e.get("loc", ())) == ("body",)
                                                                        for e in errors):
            # FastAPI reads a non-JSON body as bytes and then says "not an object": name the real cause.
            return problem(request, 415, "unsupported_media_type",
                           "Envíe el cuerpo como JSON (Content-Type: application/json).",
                           "Send the body as JSON (Content-Type: application/json).")
        if any(e.get("type") == "json_invalid" for e in errors):
            return problem(request, 400, "malformed_json",
                           "El cuerpo de la solicitud no es JSON válido (UTF-8).",
                           "The request body is not valid JSON (UTF-8).")
        return problem(request, 422, "validation_failed", "Los datos enviados no son válidos.",
                       "The submitted data is not valid.", translate_validation(errors))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return problem(request, 404, "not_found", "Recurso no encontrado.", "Resource not found.")
        if exc.status_code == 400:
            # Starlette's own parse failure (e.g. a body that is not UTF-8).
            return problem(request, 400, "malformed_json",
                           "El cuerpo de la solicitud no es JSON válido (UTF-8).",
                           "The request body is not valid JSON (UTF-8).")
        if exc.status_code == 405:
            return problem(request, 405, "method_not_allowed", "Método no permitido.", "Method not allowed.")
        return problem(request, exc.status_code, "http_error", str(exc.detail), str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Only the type and path: exception messages can carry personal data.
        log.error("error inesperado en %s %s: %s [internal_error]", request.method, request.url.path, type(exc).__name__,
                  exc_info=exc)
        return problem(request, 500, "internal_error", "Error interno del agente. Intente de nuevo.",
                       "Internal agent error. Try again.")
