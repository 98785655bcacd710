"""The customer registry: enroll, update, look up, search, and the change history.

Every change runs in one write transaction that also records its history rows and queues
its outbox event, so the POS is answered only once all three are durable together.
"""
from __future__ import annotations

import json
import logging
import sqlite3
import unicodedata
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from agent.clock import iso, utcnow
from agent.customers.config import EnrollmentSettings
from agent.customers.documents import DocumentError, identity_type, is_tax_id, mask, validate_document
from agent.customers.models import (
    Change,
    ConsentIn,
    Customer,
    CustomerCreate,
    CustomerFields,
    CustomerPatch,
    CustomerSummary,
    DocumentIn,
)
from agent.customers.phones import PhoneError, normalize_phone
from agent.errors import AgentError, ValidationProblems
from agent.ids import new_id
from agent.store.outbox import append_event
from agent.store.db import Database

log = logging.getLogger(__name__)

_NAME_FIELDS = ("first_name", "second_name", "first_surname", "second_surname", "business_name")
_LABELS_ES = {
    "first_name": "primer nombre", "second_name": "segundo nombre", "first_surname": "primer apellido",
    "second_surname": "segundo apellido", "business_name": "razón social", "birth_date": "fecha de nacimiento",
    "sex": "sexo", "phones": "teléfono", "email": "correo electrónico", "address": "dirección",
    "tax_id": "identificación tributaria",
}


class CustomerNotFound(AgentError):
    def __init__(self) -> None:
        super().__init__("customer_not_found", "No existe un cliente con esos datos.",
                         "No customer matches.", status=404)


class CustomerExists(AgentError):
    def __init__(self, customer_id: str) -> None:
        super().__init__(
            "customer_exists",
            "Ya existe un cliente con ese documento; puede actualizar sus datos.",
            "A customer with that document already exists; you can update it.",
            status=409, field="document.number", extra={"customer_id": customer_id},
        )


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def search_text(data: dict[str, Any]) -> str:
    """Names folded to lower case without accents, for the full-text index.

    >>> search_text({"first_name": "María", "first_surname": "Peña"})
    'maria pena'
    """
    words = " ".join(str(data.get(f) or "") for f in _NAME_FIELDS).split()
    folded = unicodedata.normalize("NFKD", " ".join(words).lower())
    return "".join(ch for ch in folded if not unicodedata.combining(ch))


def display_name(data: dict[str, Any]) -> str:
    if data.get("business_name"):
        return str(data["business_name"])
    return " ".join(str(data[f]) for f in ("first_name", "second_name", "first_surname", "second_surname") if data.get(f))


class CustomerService:
    def __init__(self, db: Database, enrollment: EnrollmentSettings | None = None, *, country: str = "CL",
                 timezone: str = "America/Santiago") -> None:
        """``country``: the station's, for phone numbers without a prefix; ``timezone``: for the
        calendar weeks and months of the change history."""
        self._db = db
        self._enrollment = enrollment or EnrollmentSettings()
        self._country = country
        self._timezone = timezone
        # Called inside the update transaction with (conn, customer_id, {field: (old, new)}):
        # features react to a change atomically (e.g. consent withdrawn -> templates deleted).
        self.change_hooks: list[Callable[[sqlite3.Connection, str, dict[str, tuple[Any, Any]]], None]] = []

    # ---- writes ------------------------------------------------------------------------

    def create(self, body: CustomerCreate, actor: str) -> Customer:
        return self._db.write(lambda conn: self.create_tx(conn, body, actor))

    def create_tx(self, conn: sqlite3.Connection, body: CustomerCreate, actor: str) -> Customer:
        return Customer.model_validate(self.create_tx_json(conn, body, actor))

    def create_tx_json(self, conn: sqlite3.Connection, body: CustomerCreate, actor: str) -> dict[str, Any]:
        """Create inside the caller's transaction; returns the customer as the API's JSON (hot path:
        the canonical form is validated once and reused for the row, the event and the answer)."""
        now = utcnow()
        data = _canonical(self._build(None, body, now))
        doc = data["document"]
        existing = conn.execute(
            "SELECT id FROM customers WHERE doc_country=? AND doc_type=? AND doc_number=?",
            (doc["country"], identity_type(doc["country"], doc["type"]), doc["number"]),
        ).fetchone()
        if existing:
            raise CustomerExists(existing["id"])
        self._check_loyalty_id(conn, data.get("loyalty_id"), None)
        customer_id = new_id()
        stamp = iso(now)
        conn.execute(
            "INSERT INTO customers(id, doc_country, doc_type, doc_number, kind, loyalty_id, search_name, data,"
            " version, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,1,?,?)",
            (customer_id, doc["country"], identity_type(doc["country"], doc["type"]), doc["number"], data["kind"],
             data.get("loyalty_id"), search_text(data), _json(data), stamp, stamp),
        )
        customer = _with_meta(customer_id, data, 1, stamp, stamp)
        conn.executemany(
            "INSERT INTO customer_changes(customer_id, field, old, new, at, actor) VALUES (?,?,?,?,?,?)",
            [(customer_id, field, None, _json(value), stamp, actor) for field, value in _flatten(data).items()
             if value not in (None, [], {})],
        )
        append_event(conn, "customer.created", {"customer": customer, "actor": actor})
        log.info("customer created id=%s document=%s/%s/%s", customer_id, doc["country"], doc["type"], mask(doc["number"]))
        return customer

    def update(self, customer_id: str, patch: CustomerPatch, actor: str) -> Customer:
        return self._db.write(lambda conn: self.update_tx(conn, customer_id, patch, actor))

    def update_tx(self, conn: sqlite3.Connection, customer_id: str, patch: CustomerPatch, actor: str) -> Customer:
        row = conn.execute("SELECT * FROM customers WHERE id=?", (customer_id,)).fetchone()
        if row is None:
            raise CustomerNotFound()
        old = json.loads(row["data"])
        now = utcnow()
        data = _canonical(self._build(old, patch, now))
        changes = _diff(_flatten(old), _flatten(data))
        if not changes:
            return self._to_model(customer_id, old, row["version"], row["created_at"], row["updated_at"])
        doc = data["document"]
        if doc != old["document"]:
            clash = conn.execute(
                "SELECT id FROM customers WHERE doc_country=? AND doc_type=? AND doc_number=? AND id != ?",
                (doc["country"], identity_type(doc["country"], doc["type"]), doc["number"], customer_id),
            ).fetchone()
            if clash:
                raise CustomerExists(clash["id"])
        self._check_loyalty_id(conn, data.get("loyalty_id"), customer_id)
        stamp = iso(now)
        version = row["version"] + 1
        conn.execute(
            "UPDATE customers SET doc_country=?, doc_type=?, doc_number=?, kind=?, loyalty_id=?, search_name=?,"
            " data=?, version=?, updated_at=? WHERE id=?",
            (doc["country"], identity_type(doc["country"], doc["type"]), doc["number"], data["kind"],
             data.get("loyalty_id"), search_text(data), _json(data), version, stamp, customer_id),
        )
        conn.executemany(
            "INSERT INTO customer_changes(customer_id, field, old, new, at, actor) VALUES (?,?,?,?,?,?)",
            [(customer_id, field, _json(o), _json(n), stamp, actor) for field, (o, n) in changes.items()],
        )
        for hook in self.change_hooks:
            hook(conn, customer_id, changes)
        customer = self._to_model(customer_id, data, version, row["created_at"], stamp)
        append_event(conn, "customer.updated", {
            "customer": customer.model_dump(mode="json"),
            "changes": [{"field": f, "old": o, "new": n} for f, (o, n) in changes.items()],
            "actor": actor,
        }, security=any(f.startswith("consents.") for f in changes))  # a withdrawn consent is never refused
        log.info("customer updated id=%s fields=%s", customer_id, ",".join(sorted(changes)))
        return customer

    # ---- reads -------------------------------------------------------------------------

    def get(self, customer_id: str) -> Customer:
        return Customer.model_validate(self.get_json(customer_id))

    def get_json(self, customer_id: str) -> dict[str, Any]:
        """The customer as the API returns it, straight from the stored canonical JSON (hot path)."""
        row = self._db.read(lambda c: c.execute(_SELECT_JSON + " WHERE id=?", (customer_id,)).fetchone())
        if row is None:
            raise CustomerNotFound()
        return _row_json(row)

    def find_by_document(self, country: str, doc_type: str, number: str) -> Customer:
        return Customer.model_validate(self.find_by_document_json(country, doc_type, number))

    def find_by_document_json(self, country: str, doc_type: str, number: str) -> dict[str, Any]:
        try:
            doc = validate_document(country, doc_type, number)
        except DocumentError as exc:  # the same shape as a create's: validation_failed, detail in errors[]
            problems = ValidationProblems()
            problems.add(exc.field.replace("document.", "document_"), exc.code, exc.es, exc.en)
            problems.raise_if_any()
        row = self._db.read(lambda c: c.execute(
            _SELECT_JSON + " WHERE doc_country=? AND doc_type=? AND doc_number=?",
            (doc.country, identity_type(doc.country, doc.type), doc.number)).fetchone())
        if row is None:
            raise CustomerNotFound()
        return _row_json(row)

    def search(self, q: str, limit: int = 20) -> list[CustomerSummary]:
        """By document number (any spelling), loyalty id, or name words (prefix match, accents ignored)."""
        q = q.strip()
        if not q or len(q) > 100 or any(ord(ch) < 32 or ord(ch) == 127 for ch in q):
            raise AgentError("invalid_query", "Ingrese entre 1 y 100 caracteres visibles para buscar.",
                             "Enter 1 to 100 visible characters to search.", status=422, field="q")
        compact = "".join(ch for ch in q.upper() if ch.isascii() and ch.isalnum())
        words = [w for w in search_text({"first_name": q}).split() if w]
        fts = " ".join('"' + w.replace('"', '""') + '"*' for w in words)

        def run(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            rows: dict[str, sqlite3.Row] = {}
            if compact:
                for r in conn.execute(
                    SEARCH_BY_NUMBER,
                    (compact, compact.lstrip("0") or "0", q.upper(), limit),
                ):
                    rows[r["id"]] = r
            if fts and len(rows) < limit:
                for r in conn.execute(
                    "SELECT c.* FROM customers_fts f JOIN customers c ON c.rowid = f.rowid"
                    " WHERE customers_fts MATCH ? ORDER BY rank LIMIT ?",
                    (fts, limit),
                ):
                    rows.setdefault(r["id"], r)
            return list(rows.values())[:limit]

        return [self._summary(r) for r in self._db.read(run)]

    def changes(self, customer_id: str, start: datetime, end: datetime) -> list[Change]:
        def run(conn: sqlite3.Connection) -> list[sqlite3.Row] | None:
            if conn.execute("SELECT 1 FROM customers WHERE id=?", (customer_id,)).fetchone() is None:
                return None
            return conn.execute(
                "SELECT field, old, new, at, actor FROM customer_changes WHERE customer_id=? AND at >= ? AND at < ?"
                " ORDER BY id", (customer_id, iso(start), iso(end))).fetchall()

        rows = self._db.read(run)
        if rows is None:
            raise CustomerNotFound()
        return [Change(field=r["field"], old=_loads(r["old"]), new=_loads(r["new"]), at=r["at"], actor=r["actor"])
                for r in rows]

    def period_bounds(self, period: str, day: date | None = None) -> tuple[datetime, datetime]:
        """Calendar week (Monday first) or month containing ``day``, in the station's time zone."""
        zone = ZoneInfo(self._timezone)
        day = day or utcnow().astimezone(zone).date()
        if period == "week":
            first = day - timedelta(days=day.weekday())
            last = first + timedelta(days=7)
        else:
            first = day.replace(day=1)
            last = (first + timedelta(days=32)).replace(day=1)
        return (datetime.combine(first, time(), zone), datetime.combine(last, time(), zone))

    # ---- helpers -----------------------------------------------------------------------

    def _build(self, old: dict[str, Any] | None, body: CustomerFields, now: datetime) -> dict[str, Any]:
        """Merge the request into the stored document, validating everything; all errors at once."""
        problems = ValidationProblems()
        data: dict[str, Any] = dict(old or {})
        given = body.model_fields_set
        country = self._country
        stamp = iso(now)

        for name in given:
            value = getattr(body, name)
            if name == "document":
                if value is None:
                    problems.add("document", "required", "El documento es obligatorio.", "The document is required.")
                    continue
                doc = self._document(value, "document", problems)
                if doc:
                    data["document"] = doc
            elif name == "tax_id":
                data["tax_id"] = self._document(value, "tax_id", problems) if value is not None else None
            elif name == "phones":
                data["phones"] = self._phones(value or [], country, problems)
            elif name == "authorized_contacts":
                contacts = []
                for i, c in enumerate(value or []):
                    phone = None
                    if c.phone:
                        try:
                            phone = normalize_phone(c.phone, "other", country)
                        except PhoneError as exc:
                            problems.add(f"authorized_contacts[{i}].phone", exc.code, exc.es, exc.en)
                    contacts.append({"name": c.name, "phone": phone, "relationship": c.relationship})
                data["authorized_contacts"] = contacts
            elif name == "consents":
                data["consents"] = _merge_consents(data.get("consents") or {}, value, stamp) if value else data.get("consents", {})
            elif name == "credit_limit":
                data[name] = str(value) if value is not None else None
            elif name == "loyalty_id":
                data[name] = value.upper() if value else None  # printed codes: one spelling
            elif name == "birth_date":
                data[name] = value.isoformat() if value else None
            elif name == "kind" and value is None:
                problems.add("kind", "required", "Indique el tipo de cliente.", "Give the customer kind.")
            else:
                data[name] = value

        data.setdefault("kind", "natural")
        data.setdefault("foreigner", False)
        if data.get("foreigner") is None:
            data["foreigner"] = False
        problems.raise_if_any()
        # On an update only the fields it touches must meet the enrollment minimum: a field made
        # mandatory after this customer enrolled must not block changing their phone (seed 004).
        # A new document country or kind brings its own minimum: check everything then.
        partial = old is not None and not ({"document", "kind"} & set(given))
        self._check_required(data, problems, only=set(given) if partial else None)
        problems.raise_if_any()
        return data

    def _document(self, doc: DocumentIn, field: str, problems: ValidationProblems) -> dict[str, str] | None:
        try:
            parsed = validate_document(doc.country, doc.type, doc.number)
        except DocumentError as exc:
            problems.add(exc.field.replace("document", field, 1), exc.code, exc.es, exc.en)
            return None
        return {"country": parsed.country, "type": parsed.type, "number": parsed.number, "display": parsed.display}

    def _phones(self, phones: list[Any], country: str, problems: ValidationProblems) -> list[dict[str, str]]:
        out: list[dict[str, str]] = []
        seen: set[str] = set()
        for i, p in enumerate(phones):
            try:
                number = normalize_phone(p.number, p.kind, country)
            except PhoneError as exc:
                problems.add(f"phones[{i}].number", exc.code, exc.es, exc.en)
                continue
            if number in seen:
                problems.add(f"phones[{i}].number", "duplicate_phone", "Ese teléfono ya está en la lista.",
                             "That phone is already in the list.")
                continue
            seen.add(number)
            out.append({"number": number, "kind": p.kind})
        return out

    def _check_required(self, data: dict[str, Any], problems: ValidationProblems, only: set[str] | None = None) -> None:
        doc = data["document"]
        if data["kind"] in ("juridica", "gobierno"):
            if not data.get("business_name"):
                problems.add("business_name", "required", "La razón social es obligatoria para empresas.",
                             "A business name is required for companies.")
            if data["kind"] == "juridica" and not is_tax_id(doc["country"], doc["type"]) and not data.get("tax_id"):
                problems.add("tax_id", "required",
                             "Las empresas necesitan un identificador tributario (RUT, NIT, RUC o CUIT).",
                             "Companies need a tax id (RUT, NIT, RUC or CUIT).")
            tax = data.get("tax_id")
            if tax and not is_tax_id(tax["country"], tax["type"]):
                problems.add("tax_id.type", "not_a_tax_id", "El identificador tributario debe ser RUT, NIT, RUC o CUIT.",
                             "The tax id must be a RUT, NIT, RUC or CUIT.")
            return
        required = self._enrollment.required_fields.get(doc["country"], [])
        for name in required:
            if only is not None and name not in only:
                continue
            if not data.get(name):
                label = _LABELS_ES.get(name, name)
                problems.add(name, "required", f"El campo {label} es obligatorio para inscribir al cliente.",
                             f"The field {name} is required to enroll the customer.")

    @staticmethod
    def _check_loyalty_id(conn: sqlite3.Connection, loyalty_id: str | None, customer_id: str | None) -> None:
        if not loyalty_id:
            return
        row = conn.execute("SELECT id FROM customers WHERE loyalty_id=?", (loyalty_id,)).fetchone()
        if row and row["id"] != customer_id:
            raise AgentError("loyalty_id_taken", "Ese ID de fidelización ya pertenece a otro cliente.",
                             "That loyalty id already belongs to another customer.", status=409, field="loyalty_id",
                             extra={"customer_id": row["id"]})

    @staticmethod
    def _to_model(customer_id: str, data: dict[str, Any], version: int, created: str, updated: str) -> Customer:
        return Customer.model_validate({**data, "id": customer_id, "version": version,
                                        "created_at": created, "updated_at": updated})

    @staticmethod
    def _summary(row: sqlite3.Row) -> CustomerSummary:
        data = json.loads(row["data"])
        return CustomerSummary(id=row["id"], document=data["document"], kind=data["kind"],
                               name=display_name(data), loyalty_id=data.get("loyalty_id"))


_SELECT_JSON = "SELECT id, data, version, created_at, updated_at FROM customers"
_META = ("id", "version", "created_at", "updated_at")


# By a bare number (any document type) or a loyalty id; both are indexed (see tests/test_store.py).
SEARCH_BY_NUMBER = "SELECT * FROM customers WHERE doc_number IN (?, ?) OR loyalty_id = ? LIMIT ?"


def _row_json(row: sqlite3.Row) -> dict[str, Any]:
    return _with_meta(row["id"], json.loads(row["data"]), row["version"], row["created_at"], row["updated_at"])


def _with_meta(customer_id: str, data: dict[str, Any], version: int, created: str, updated: str) -> dict[str, Any]:
    """Stored canonical JSON plus id, version and stamps: exactly ``Customer.model_dump(mode="json")``."""
    return {"id": customer_id, **data, "version": version, "created_at": created, "updated_at": updated}


def _canonical(data: dict[str, Any]) -> dict[str, Any]:
    """The stored form is exactly the API's JSON (minus id and stamps), so reads skip pydantic."""
    placeholder = {"id": "", "version": 1, "created_at": "2000-01-01T00:00:00Z", "updated_at": "2000-01-01T00:00:00Z"}
    return Customer.model_validate({**data, **placeholder}).model_dump(mode="json", exclude=set(_META))


def _merge_consents(current: dict[str, Any], given: Any, stamp: str) -> dict[str, Any]:
    """Record each consent given with its time and channel; keep the old record when nothing changed."""
    merged = dict(current)
    for name in ("offers", "data_processing", "biometrics"):
        if name not in given.model_fields_set:
            continue
        value = getattr(given, name)
        if value is None:
            merged.pop(name, None)
            continue
        consent = value if isinstance(value, ConsentIn) else ConsentIn(value=value)
        before = merged.get(name)
        if before and before["value"] == consent.value and before["channel"] == consent.channel:
            continue
        merged[name] = {"value": consent.value, "at": stamp, "channel": consent.channel}
    if "partner_programs" in given.model_fields_set:
        previous = {p["name"].casefold(): p for p in current.get("partner_programs", [])}
        programs = []
        for p in given.partner_programs or []:
            before = previous.get(p.name.casefold())
            if before and (before["value"], before.get("member_id"), before["channel"]) == (p.value, p.member_id, p.channel):
                programs.append(before)
            else:
                programs.append({"name": p.name, "member_id": p.member_id, "value": p.value, "at": stamp,
                                 "channel": p.channel})
        merged["partner_programs"] = programs
    return merged


def _flatten(data: dict[str, Any]) -> dict[str, Any]:
    """One history row per top-level field, and per consent (``consents.offers``)."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if key == "consents" and isinstance(value, dict):
            for name, consent in value.items():
                flat[f"consents.{name}"] = consent
        else:
            flat[key] = value
    return flat


def _diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    changes: dict[str, tuple[Any, Any]] = {}
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key), new.get(key)
        if before != after and not (before in (None, [], {}) and after in (None, [], {})):
            changes[key] = (before, after)
    return changes


def _loads(value: str | None) -> Any:
    return None if value is None else json.loads(value)

