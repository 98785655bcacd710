"""The web app in a real browser: Debian's chromium driven by Selenium through
/usr/bin/chromedriver (never downloaded), against ``loyalty-hub web`` (a real uvicorn process)
over a real PostgreSQL. Screenshots of the main pages go to test-artifacts/screenshots/."""
from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import httpx
import psycopg
import pytest

from hub.central.keys import create_pepper
from tests.conftest import free_port
from tests.fakes.mosquitto import Mosquitto
from tests.hub.conftest import ROOT, needs_services
from tests.hub.test_monthly_close import Ledger
from tests.signing import HEAD_OFFICE_KEY, write_private_pem

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
SHOTS = Path(os.environ.get("SCREENSHOT_DIR", ROOT / "test-artifacts" / "screenshots"))
pytestmark = [needs_services, pytest.mark.slow,
              pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                                 reason="chromium and chromium-driver are needed (.ci/run installs them)")]
CARD, DOCUMENT = "6000000000000001", "12.345.678-5"
GENERIC = "No pudimos verificar los datos. Revise el número de tarjeta y el documento."


def seed(conn: psycopg.Connection) -> None:
    book = Ledger(conn)
    book.station("st-1", point_value="2")
    book.station("st-2", point_value="1.5")
    customer = {"id": "C-1", "first_name": "María", "first_surname": "Peña", "business_name": None,
                "document": {"country": "CL", "type": "RUT", "number": "123456785", "display": DOCUMENT}}
    conn.execute("INSERT INTO customers(customer_id, version, document_country, document_type, document_number, data,"
                 " station_id) VALUES ('C-1', 1, 'CL', 'RUT', '123456785', %s, 'st-1')", (json.dumps(customer),))
    book.account("A")
    conn.execute("UPDATE accounts SET customer_id = 'C-1' WHERE account_id = 'A'")
    conn.execute("INSERT INTO cards(card_number, account_id, role, state) VALUES (%s, 'A', 'primary', 'issued')", (CARD,))
    book.move("A", "st-1", 100, "2024-10-10T10:00:00.000Z")
    book.move("A", "st-1", 70, "2026-11-10T14:05:00.000Z")
    book.move("A", "st-2", -20, "2026-11-12T09:30:00.000Z")
    book.move("A", "st-1", 5, "2026-12-01T08:00:00.000Z")
    conn.execute("INSERT INTO reward_requests(redemption_id, station_id, account_id, reward_id, quantity, points,"
                  " occurred_at, event_id) VALUES ('R-1', 'st-1', 'A', 'BIKE', 1, -900, '2026-11-27T10:00:00.000Z', 'e')")
    for station in ("st-1", "st-2"):
        conn.execute("INSERT INTO station_stock(station_id, reward_id, stock) VALUES (%s, 'CAP', 3)", (station,))


def hub(database: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hub.cli", *args, "--database-url", database], input=stdin,
                          capture_output=True, text=True, cwd=ROOT, timeout=60)


@pytest.fixture
def site(database: str, tmp_path: Path, broker: Mosquitto) -> Iterator[str]:
    with psycopg.connect(database, autocommit=True) as conn:
        seed(conn)
    for user, role, extra in (("admin", "admin", []), ("lector", "readonly", []), ("encargado", "manager", ["--station", "st-1"])):
        done = hub(database, "web-user", "add", user, "--role", role, *extra, stdin="clave-de-prueba-123\n")
        assert done.returncode == 0, done.stderr
    for station in ("st-1", "st-2"):  # as ``loyalty-hub station add`` would have made them
        create_pepper(tmp_path / "peppers", station)
    port = free_port()
    env = {**os.environ, "LOYALTY_HUB_CENTRAL__SIGNING_KEY_FILE": str(write_private_pem(tmp_path / "ho.pem")),
           "LOYALTY_HUB_CENTRAL__PEPPER_DIR": str(tmp_path / "peppers")}
    proc = subprocess.Popen([sys.executable, "-m", "hub.cli", "web", "--database-url", database, "--port", str(port),
                             "--mqtt-url", broker.url], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=(tmp_path / "web.log").open("w"))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/saldo").status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait(15)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000",
                f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def fill(driver, **fields: str) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    for name, value in fields.items():
        element = driver.find_element(By.ID, name)
        element.clear()
        element.send_keys(value)


def submit(driver, button_id: str) -> None:  # type: ignore[no-untyped-def]
    """Click a submit button and wait for the next page (a click returns before navigation)."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    old = driver.find_element(By.TAG_NAME, "html")

    def replaced(_: object) -> bool:
        try:
            old.is_enabled()
        except WebDriverException:  # stale, or chromium's "node does not belong to the document"
            return True
        return False

    driver.find_element(By.ID, button_id).click()
    WebDriverWait(driver, 20).until(replaced)
    WebDriverWait(driver, 20).until(lambda d: d.execute_script("return document.readyState") == "complete")


def text(driver, element_id: str) -> str:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id).text


def query(driver, site: str, card: str, document: str) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    driver.get(f"{site}/saldo")
    fill(driver, card=card, document=document)
    submit(driver, "consultar")


def test_balance_query_one_generic_answer_and_rate_limit(site: str, browser) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    query(browser, site, CARD, "11.111.111-1")
    wrong_document = text(browser, "error")
    browser.save_screenshot(str(SHOTS / "saldo-error.png"))
    query(browser, site, "6000000000009999", DOCUMENT)
    assert wrong_document == text(browser, "error") == GENERIC  # no hint which one was wrong

    query(browser, site, CARD, DOCUMENT)
    assert browser.find_element(By.TAG_NAME, "h1").text == "Hola, María Peña"
    assert text(browser, "balance") == "155"
    rows = [r.text for r in browser.find_elements(By.CSS_SELECTOR, "#movements tbody tr")]
    assert rows[0] == "2026-12-01 08:00 Estación st-1 5" and rows[1] == "2026-11-12 09:30 Estación st-2 -20"
    assert len(rows) == 4
    browser.save_screenshot(str(SHOTS / "saldo.png"))

    for _ in range(3):
        query(browser, site, CARD, "22.222.222-2")
        assert text(browser, "error") == GENERIC
    query(browser, site, CARD, DOCUMENT)  # the 6th try on this card in 15 minutes: refused even when right
    assert "Demasiados intentos" in text(browser, "error")


def test_enrollment_request_reaches_the_back_office(site: str, browser) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    browser.get(f"{site}/adhesion")
    fill(browser, first_name="Jorge", surname="Soto", document_number="9.876.543-3")
    submit(browser, "enviar")
    errors = text(browser, "errors")
    assert "Elija la estación" in errors and "Debe aceptar" in errors
    Select(browser.find_element(By.ID, "station_id")).select_by_visible_text("Estación st-1")
    browser.find_element(By.ID, "consent").click()
    browser.save_screenshot(str(SHOTS / "adhesion.png"))
    submit(browser, "enviar")
    assert text(browser, "ok") == "Solicitud recibida"

    login(browser, site, "encargado")
    assert "Jorge Soto" in text(browser, "requests")
    assert [r.text.split()[0] for r in browser.find_elements(By.CSS_SELECTOR, "#stations tbody tr")] == ["st-1"]
    browser.get(f"{site}/admin/premios")
    assert "R-1 2026-11-27T10:00 st-1 BIKE 1" in text(browser, "pending")
    assert "st-2" not in text(browser, "immobilized")  # a manager sees only its station
    browser.save_screenshot(str(SHOTS / "premios.png"))


def login(browser, site: str, user: str, password: str = "clave-de-prueba-123") -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    browser.get(f"{site}/admin/login")
    fill(browser, username=user, password=password)
    submit(browser, "ingresar")


def test_monthly_close_from_the_back_office(site: str, browser, database: str) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    login(browser, site, "admin", "otra-clave-incorrecta")
    assert text(browser, "error") == "Usuario o contraseña incorrectos."
    login(browser, site, "admin")
    browser.save_screenshot(str(SHOTS / "admin.png"))
    browser.get(f"{site}/admin/cierre")
    fill(browser, month="2999-01")
    submit(browser, "cerrar")
    assert "no terminó" in text(browser, "error")
    fill(browser, month="2026-11")
    submit(browser, "cerrar")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Liquidación 2026-11"
    lines = [r.text for r in browser.find_elements(By.CSS_SELECTOR, "#settlement tbody tr")]
    assert lines == ["st-1 Estación st-1 FUEL 70 2.0000 140.00"]
    assert "st-2" in text(browser, "incomplete")  # its last event is from November: not synced past the month
    browser.save_screenshot(str(SHOTS / "cierre.png"))
    cookie = browser.get_cookie("hub_session")
    pdf = httpx.get(browser.find_element(By.ID, "pdf").get_attribute("href"),
                    cookies={"hub_session": cookie["value"]})
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    browser.get(f"{site}/admin/premios")
    assert "R-1" in text(browser, "pending") and "st-2 CAP 3 nunca" in text(browser, "immobilized")
    browser.get(f"{site}/admin/auditoria")
    assert "web:admin month.closed" in text(browser, "audit")
    browser.save_screenshot(str(SHOTS / "auditoria.png"))

    with psycopg.connect(database) as conn:
        assert conn.execute("SELECT first_closed_by FROM monthly_closes").fetchone()[0] == "web:admin"
    browser.delete_all_cookies()
    login(browser, site, "lector")
    browser.get(f"{site}/admin/cierre")
    assert browser.find_elements(By.ID, "cerrar") == [] and "2026-11" in text(browser, "closes")
    forged = httpx.post(f"{site}/admin/cierre", data={"month": "2026-10", "csrf": "x"},
                        cookies={"hub_session": browser.get_cookie("hub_session")["value"]})
    assert forged.status_code == 403
    browser.delete_all_cookies()
    login(browser, site, "encargado")
    browser.get(f"{site}/admin/cierre")
    assert "Su rol no permite" in browser.page_source, (browser.current_url, browser.page_source[:2000])


def test_attendants_and_rules_are_authored_and_published_from_the_back_office(  # type: ignore[no-untyped-def]
        site: str, browser, database: str, broker: Mosquitto, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    from agent.cards.pin_bundle import verify_bundle
    from agent.queue.signed_config import ConfigVerifier
    from tests.hub.test_scheduled import client

    received: queue.Queue[tuple[str, bytes]] = queue.Queue()
    watcher = client(broker.port, received)
    watcher.subscribe("loyalty/v1/stations/+/config/+", qos=1)
    try:
        login(browser, site, "encargado")
        browser.get(f"{site}/admin/playeros/st-1")
        fill(browser, attendant_id="P-09", attendant_name="Marta")
        submit(browser, "crear-playero")
        assert "P-09 Marta sin PIN activo" in text(browser, "attendants")
        fill(browser, **{"pin-P-09": "12"})
        submit(browser, "set-pin-P-09")
        assert text(browser, "error") == "el PIN debe tener entre 4 y 8 dígitos"
        fill(browser, **{"pin-P-09": "1234"})
        submit(browser, "set-pin-P-09")
        assert text(browser, "error") == "PIN demasiado fácil (un dígito repetido o una secuencia)"
        fill(browser, **{"pin-P-09": "4817"})
        submit(browser, "set-pin-P-09")
        assert "P-09 Marta asignado activo" in text(browser, "attendants")
        assert browser.find_elements(By.ID, "error") == []
        browser.save_screenshot(str(SHOTS / "playeros.png"))
        topic, body = received.get(timeout=15)  # the station's new PIN bundle, published at once
        assert topic == "loyalty/v1/stations/st-1/config/pin_bundle"
        bundle = verify_bundle(body, HEAD_OFFICE_KEY.public_key(), station_id="st-1", now=datetime.now(timezone.utc))
        assert list(bundle.attendants) == ["P-09"]
        assert b"4817" not in body
        cookie = {"hub_session": browser.get_cookie("hub_session")["value"]}
        csrf = browser.find_element(By.NAME, "csrf").get_attribute("value")
        # A manager changes only its own station's attendants, and no rules.
        assert httpx.post(f"{site}/admin/playeros/st-2", data={"attendant_id": "X-1", "name": "X", "csrf": csrf},
                          cookies=cookie).status_code == 403
        assert httpx.post(f"{site}/admin/configuracion/rewards", data={"body": "[]", "csrf": csrf},
                          cookies=cookie).status_code == 403

        browser.delete_all_cookies()
        login(browser, site, "admin")
        browser.get(f"{site}/admin/configuracion")
        rewards = [{"reward_id": "MUG", "name": "Taza", "points_cost": -5, "delivery": "immediate"}]
        fill(browser, **{"doc-rewards": json.dumps(rewards)})
        submit(browser, "guardar-rewards")
        assert text(browser, "error") == ("Catálogo de premios: rewards inválido: 1 error(es); el primero en "
                                          "0.points_cost: Input should be greater than 0")
        rewards[0]["points_cost"] = 900
        fill(browser, **{"doc-rewards": json.dumps(rewards)})
        submit(browser, "guardar-rewards")
        assert text(browser, "notice") == "Catálogo de premios: guardado (falta publicarlo)."
        program = {"label": "2026-12", "timezone": "America/Bogota",
                   "earn": [{"rule_id": "fuel", "article_group": "FUEL", "basis": "per_unit", "points": "2"}]}
        fill(browser, **{"doc-program": json.dumps(program)})
        submit(browser, "guardar-program")
        submit(browser, "publicar")
        assert text(browser, "notice").startswith("Publicado en 2 estaciones: earning_rules versión 1, directory versión")
        assert "earning_rules 1" in text(browser, "published")
        browser.save_screenshot(str(SHOTS / "configuracion.png"))
        verifier = ConfigVerifier(HEAD_OFFICE_KEY.public_key(), required=True)
        got: dict[str, bytes] = {}
        while len(got) < 4:
            topic, body = received.get(timeout=15)
            if not topic.endswith("/pin_bundle"):
                got[topic] = body
        rules = json.loads(verifier.unwrap("earning_rules", got["loyalty/v1/stations/st-2/config/earning_rules"]))
        assert rules["data"]["rules"][0]["points"] == "2"
        catalog = json.loads(verifier.unwrap("directory", got["loyalty/v1/stations/st-1/config/directory"]))
        assert [r["reward_id"] for r in catalog["rewards"]] == ["MUG"]
    finally:
        watcher.loop_stop()
        watcher.disconnect()
    with psycopg.connect(database) as conn:
        actions = [r[0] for r in conn.execute("SELECT actor || ' ' || action FROM audit_log ORDER BY audit_id")]
        hashes = conn.execute("SELECT pin_hash FROM attendants WHERE attendant_id = 'P-09'").fetchone()[0]
    assert {"web:encargado attendant.created", "web:encargado attendant.pin_set", "web:admin config.rewards.saved",
            "web:admin config.earning_rules.signed"} <= set(actions)
    assert hashes.startswith("$argon2id$") and "4817" not in hashes
    assert "4817" not in (tmp_path / "web.log").read_text()
