"""Encrypted template storage on a real SQLite database with the core's migrations."""
from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.biometric import templates as tmpl
from agent.biometric.errors import TemplateNotFound, TemplateSizeError, TemplateUnreadable
from agent.customers.models import CustomerCreate
from agent.customers.service import CustomerService
from agent.errors import AgentError
from agent.keys import load_or_create_key
from agent.store.db import Database
from agent.station import MIGRATIONS
from tests.fakes.r30x_sensor import identity_template

ANA = identity_template("ana")


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "agent.db", list(MIGRATIONS))
    yield database
    database.close()


@pytest.fixture
def customers(db: Database) -> tuple[str, str]:
    service = CustomerService(db)
    a = service.create(CustomerCreate.model_validate({"document": {"country": "CL", "type": "RUT", "number": "12.345.678-5"},
                                                      "first_name": "Ana", "first_surname": "Pérez"}), "test")
    b = service.create(CustomerCreate.model_validate({"document": {"country": "CL", "type": "RUT", "number": "11.111.111-1"},
                                                      "first_name": "Bruno", "first_surname": "Soto"}), "test")
    return a.id, b.id


@pytest.fixture
def store(db: Database, tmp_path: Path) -> tmpl.TemplateStore:
    return tmpl.TemplateStore(db, load_or_create_key(tmp_path / "keys", tmpl.KEY_NAME))


def raw_row(db: Database, customer_id: str) -> sqlite3.Row:
    return db.read(lambda c: c.execute("SELECT * FROM biometric_templates WHERE customer_id=?", (customer_id,)).fetchone())


def test_round_trip_and_ciphertext_is_not_the_template(store: tmpl.TemplateStore, db: Database, customers: tuple[str, str]) -> None:
    ana, _ = customers
    store.save(ana, "right_index", ANA, "r30x-char-v1", "R307")
    loaded = store.load(ana, "right_index")
    assert loaded.template == ANA and loaded.sensor_model == "R307"
    row = raw_row(db, ana)
    assert ANA not in bytes(row["ciphertext"]) and ANA[4:40] not in bytes(row["ciphertext"])
    assert "ana" not in repr(loaded) and ANA.hex()[:16] not in repr(loaded)


def test_enrollment_and_deletion_emit_events_without_template(store: tmpl.TemplateStore, db: Database, customers: tuple[str, str]) -> None:
    ana, _ = customers
    store.save(ana, "right_index", ANA, "r30x-char-v1", "R307")
    assert store.delete(ana) == 1
    with pytest.raises(TemplateNotFound):
        store.load(ana, "right_index")
    events = db.read(lambda c: c.execute("SELECT type, payload FROM outbox WHERE type LIKE 'biometric.%' ORDER BY seq").fetchall())
    assert [e["type"] for e in events] == ["biometric.enrolled", "biometric.deleted"]
    assert all(ANA.hex()[:32] not in e["payload"] for e in events)
    assert store.delete(ana) == 0


def test_tampered_ciphertext_is_refused(store: tmpl.TemplateStore, db: Database, customers: tuple[str, str]) -> None:
    ana, _ = customers
    store.save(ana, "right_index", ANA, "r30x-char-v1", "R307")
    sealed = bytearray(raw_row(db, ana)["ciphertext"])
    sealed[10] ^= 1
    db.write(lambda c: c.execute("UPDATE biometric_templates SET ciphertext=? WHERE customer_id=?", (bytes(sealed), ana)))
    with pytest.raises(TemplateUnreadable) as err:
        store.load(ana, "right_index")
    assert err.value.code == "fingerprint_template_unreadable"


def test_ciphertext_moved_to_another_customer_fails(store: tmpl.TemplateStore, db: Database, customers: tuple[str, str]) -> None:
    ana, bruno = customers
    store.save(ana, "right_index", ANA, "r30x-char-v1", "R307")
    store.save(bruno, "right_index", identity_template("bruno"), "r30x-char-v1", "R307")
    row = raw_row(db, ana)
    db.write(lambda c: c.execute("UPDATE biometric_templates SET nonce=?, ciphertext=? WHERE customer_id=?",
                                 (row["nonce"], row["ciphertext"], bruno)))
    with pytest.raises(TemplateUnreadable):
        store.load(bruno, "right_index")  # Ana's finger can never verify as Bruno


@pytest.mark.parametrize(("column", "value"), [("finger", "left_index"), ("sensor_model", "R503"), ("template_format", "iso-19794-2")])
def test_relabelled_record_fails(store: tmpl.TemplateStore, db: Database, customers: tuple[str, str], column: str, value: str) -> None:
    ana, _ = customers
    store.save(ana, "right_index", ANA, "r30x-char-v1", "R307")
    db.write(lambda c: c.execute(f"UPDATE biometric_templates SET {column}=? WHERE customer_id=?", (value, ana)))
    finger = value if column == "finger" else "right_index"
    with pytest.raises(TemplateUnreadable):
        store.load(ana, finger)


def test_wrong_key_fails(db: Database, customers: tuple[str, str], tmp_path: Path) -> None:
    ana, _ = customers
    tmpl.TemplateStore(db, load_or_create_key(tmp_path / "k1", tmpl.KEY_NAME)).save(ana, "right_index", ANA, "f", "R307")
    with pytest.raises(TemplateUnreadable):
        tmpl.TemplateStore(db, load_or_create_key(tmp_path / "k2", tmpl.KEY_NAME)).load(ana, "right_index")


def test_wrong_size_or_bad_finger_is_refused_and_nothing_stored(store: tmpl.TemplateStore, db: Database, customers: tuple[str, str]) -> None:
    ana, _ = customers
    with pytest.raises(TemplateSizeError):
        store.save(ana, "right_index", ANA[:-1], "r30x-char-v1", "R307")
    with pytest.raises(AgentError) as err:
        store.save(ana, "sixth_finger", ANA, "r30x-char-v1", "R307")
    assert err.value.code == "invalid_finger"
    assert raw_row(db, ana) is None


def test_deleting_the_customer_removes_the_template(store: tmpl.TemplateStore, db: Database, customers: tuple[str, str]) -> None:
    ana, _ = customers
    store.save(ana, "right_index", ANA, "r30x-char-v1", "R307")
    db.write(lambda c: c.execute("DELETE FROM customers WHERE id=?", (ana,)))
    assert raw_row(db, ana) is None
