"""Printing through the real app: the documents as text, and ESC/POS on a serial pty (the kernel's
serial line discipline, as a serial receipt printer is wired) and into a file; a printer that
does not answer is a 503 and the redemption stays booked. Swipes: tests.loyalty_fixtures.FakeSessions."""
from __future__ import annotations

import os
import select
import tty
from datetime import datetime, timezone
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from agent.api.app import create_app
from agent.config import Settings
from agent.printing.escpos_printer import ReceiptPrinter
from agent.station import assemble_station
from tests.conftest import MARIA
from tests.loyalty_fixtures import STATION, make_service

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=timezone.utc)
INIT, BOLD_ON, CUT = b"\x1b@", b"\x1bE\x01", b"\x1dV"


def client_for(tmp_path: Path, printer: dict | None):
    service, sessions, clock, db = make_service(tmp_path, NOW)
    settings = Settings(storage={"data_dir": tmp_path}, **({"printer": printer} if printer else {}))
    parts = {"loyalty": service}
    if printer:
        parts["printer"] = ReceiptPrinter(settings.printer)
    station = assemble_station(settings, db, **parts)
    token = station.tokens.create("pos-1")
    client = TestClient(create_app(settings, station), base_url="http://127.0.0.1", headers={"Authorization": f"Bearer {token}"})
    return client, sessions, db


def redeem(client: TestClient, sessions, reward: str = "MUG") -> dict:
    client.post("/v1/rewards/stock", json={"reward_id": "MUG", "kind": "receipt", "quantity": 5, "document": "R1"})
    sessions.authorize("s-" + reward, "C1000")
    r = client.post("/v1/rewards/redemptions", json={"session_id": "s-" + reward, "reward_id": reward})
    assert r.status_code == 201, r.text
    return r.json()


def read_until_cut(fd: int, timeout: float = 10.0) -> bytes:
    data = b""
    while CUT not in data:
        ready, _, _ = select.select([fd], [], [], timeout)
        assert ready, f"the printer got no cut command; got {data!r}"
        data += os.read(fd, 4096)
    return data


def test_documents_as_text(tmp_path: Path) -> None:
    client, sessions, db = client_for(tmp_path, None)
    with client:
        voucher = redeem(client, sessions)
        text = client.get(f"/v1/documents/redemptions/{voucher['redemption_id']}")
        assert text.status_code == 200 and text.headers["content-type"].startswith("text/plain")
        assert "Comprobante de canje" in text.text and "Taza" in text.text and voucher["redemption_id"] in text.text
        moves = client.get("/v1/documents/movements/A1").text
        assert "Últimos movimientos" in moves and "canje" in moves and "-300" in moves and "Saldo: 700 puntos" in moves
        assert all(len(line) <= 42 for line in moves.splitlines())
        not_configured = client.post("/v1/documents/movements/A1/print")
        assert not_configured.status_code == 503 and not_configured.json()["code"] == "printer_not_configured"
        unknown = client.get("/v1/documents/redemptions/nope")
        assert unknown.status_code == 404 and unknown.json()["code"] == "redemption_unknown"
        sessions.authorize("truck", "TRUCK-1")
        masked = client.get("/v1/documents/movements/FLEET", params={"session_id": "truck"})
        assert masked.status_code == 403
    db.close()


def test_movements_and_slip_print_as_escpos_on_a_serial_pty(tmp_path: Path) -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    client, sessions, db = client_for(tmp_path, {"kind": "serial", "serial_port": os.ttyname(slave)})
    try:
        with client:
            printed = client.post("/v1/documents/movements/A1/print")
            assert printed.status_code == 200, printed.text
            data = read_until_cut(master)
            # ESC @ first, a bold title, the cut last; python-escpos selects a code page holding each
            # letter (ESC t): "Ú" is not in PC437, so the title switches to one that has it (0xE9).
            assert data.startswith(INIT) and BOLD_ON in data and data.endswith(CUT + b"\x00")
            assert b"\x1bt\r\xe9ltimos movimientos" in data
            assert "Saldo: 1000 puntos".encode("cp437") in data
            maria = client.post("/v1/customers", json=MARIA).json()["id"]
            client.post("/v1/sales", json={"customer_id": maria, "receipt": {"station": STATION, "pos": "P", "number": "1"},
                                           "lines": [{"sku": "PREMIUM95", "article_group": "FUEL", "quantity": "500",
                                                      "amount": "650000"}]})
            client.post("/v1/loyalty/cards", json={"card_number": "NEW-1", "customer_id": maria})
            sessions.authorize("m", "NEW-1")
            bike = client.post("/v1/rewards/redemptions", json={"session_id": "m", "reward_id": "BIKE"}).json()
            assert client.post(f"/v1/documents/reward-requests/{bike['redemption_id']}/print").status_code == 200
            slip = read_until_cut(master)
            assert "Solicitud de premio".encode("cp437") in slip and "María Peña Soto".encode("cp437") in slip
            assert b"+56987654321" in slip and b"Bicicleta" in slip
    finally:
        db.close()
        os.close(master)
        os.close(slave)


def test_voucher_into_a_file_and_an_offline_printer_does_not_undo_the_redemption(tmp_path: Path) -> None:
    out = tmp_path / "printer.bin"
    client, sessions, db = client_for(tmp_path, {"kind": "file", "file": str(out)})
    with client:
        voucher = redeem(client, sessions)
        assert client.post(f"/v1/documents/redemptions/{voucher['redemption_id']}/print").status_code == 200
        data = out.read_bytes()
        assert data.startswith(INIT) and b"Comprobante de canje" in data and CUT in data
    db.close()

    offline_dir = tmp_path / "offline"
    offline_dir.mkdir()
    client, sessions, db = client_for(offline_dir, {"kind": "serial", "serial_port": str(offline_dir / "no-such-tty")})
    with client:
        voucher = redeem(client, sessions)
        r = client.post(f"/v1/documents/redemptions/{voucher['redemption_id']}/print")
        assert r.status_code == 503 and r.json()["code"] == "printer_offline"
        # The redemption stands: balance taken, voucher still readable, and printable later.
        assert client.get("/v1/accounts/A1").json()["balance"]["points"] == 700
        assert client.get(f"/v1/documents/redemptions/{voucher['redemption_id']}").status_code == 200
        printer = client.get("/v1/health").json()["components"]["printer"]
        assert printer["state"] == "degraded" and printer["last_error"]
    db.close()


def test_printer_settings_need_their_connection() -> None:
    with pytest.raises(ValueError, match="serial_port"):
        Settings(printer={"kind": "serial"})
