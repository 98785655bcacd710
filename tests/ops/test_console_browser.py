"""The technician console in a real browser: Debian's chromium driven by Selenium through
/usr/bin/chromedriver, against a real agent process (simulated devices, real Mosquitto, a fake
head office that acks only when told to). Screenshots go to tests/output/ (ignored by git); the
page load time measured by the browser is printed and saved there too (no speed assertion:
speed targets live in bench/)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import MARIA, free_port, wait_until
from tests.fakes.head_office import FakeHeadOffice
from tests.fakes.mosquitto import Mosquitto, mosquitto_binary

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
OUTPUT = Path(__file__).resolve().parents[1] / "output"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
                       reason="Debian chromium and chromium-driver are not installed (CI installs them)"),
    pytest.mark.skipif(mosquitto_binary() is None, reason="mosquitto is not installed"),
]


def _browser():  # type: ignore[no-untyped-def]
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,1800",
                "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)  # --no-sandbox: CI runs as root, where chromium refuses its sandbox
    # An explicit driver path: Selenium Manager never downloads a browser or driver.
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def _post(port: int, token: str, path: str, body: dict) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def test_console_in_chromium_tests_a_device_and_syncs_with_progress(tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    OUTPUT.mkdir(exist_ok=True)
    broker = Mosquitto(tmp_path / "broker").start()
    head_office = FakeHeadOffice(broker.port, acking=False)  # receives, does not confirm yet
    port, data = free_port(), tmp_path / "data"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_AGENT_")},
           "LOYALTY_AGENT_MQTT__URL": broker.url, "LOYALTY_AGENT_STATION__ID": "cl-stgo-0007",
           "LOYALTY_AGENT_DEVICES__SIMULATED": "true"}
    token = subprocess.run([sys.executable, "-m", "agent.cli", "token", "create", "--name", "pos-1", "--data-dir",
                            str(data)], env=env, capture_output=True, text=True, check=True).stdout.strip()
    agent = subprocess.Popen([sys.executable, "-m", "agent.cli", "run", "--data-dir", str(data), "--port", str(port)],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    driver = None
    try:
        def up() -> bool:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/health", timeout=2) as r:
                return json.loads(r.read())["components"]["sync"]["broker"] == "connected"

        assert wait_until(up, 30, tolerate=(OSError,))
        for i, number in enumerate(["12.345.678-5", "9.876.543-3", "11.111.111-1"]):
            body = {**MARIA, "document": {**MARIA["document"], "number": number}, "email": f"c{i}@example.com"}
            assert _post(port, token, "/v1/customers", body) == 201
        assert head_office.wait_for(lambda: head_office.unique() == 3, 15)  # delivered, not confirmed

        driver = _browser()
        driver.get(f"http://127.0.0.1:{port}/")
        assert wait_until(lambda: driver.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1", 15)
        timing = driver.execute_script(
            "const n = performance.getEntriesByType('navigation')[0];"
            "return {load_ms: n.loadEventEnd - n.startTime, dom_ms: n.domContentLoadedEventEnd - n.startTime};")
        print(f"\nconsole page load in chromium: {timing['load_ms']:.0f} ms (DOMContentLoaded {timing['dom_ms']:.0f} ms)")
        (OUTPUT / "console-timing.json").write_text(json.dumps(timing))
        assert driver.title == "Estación cl-stgo-0007 · agente de fidelización"
        assert driver.find_element(By.ID, "broker").text == "conectado"
        assert driver.find_element(By.ID, "sync-delivered").text == "3"
        driver.save_screenshot(str(OUTPUT / "console-1-loaded.png"))

        driver.find_element(By.CSS_SELECTOR, 'button.test[data-device="camera"]').click()
        result = driver.find_element(By.ID, "result-camera")
        assert wait_until(lambda: result.text.startswith("imagen de"), 30), result.text
        assert "ok" in result.get_attribute("class")

        head_office.acking = True
        driver.find_element(By.ID, "sync-now").click()
        progress = driver.find_element(By.ID, "sync-progress")
        assert wait_until(lambda: progress.get_attribute("value") == "100", 30), progress.get_attribute("value")
        assert wait_until(lambda: "sincronizado" in driver.find_element(By.ID, "sync-text").text, 10)
        assert driver.find_element(By.ID, "sync-confirmed").text == "3"
        driver.save_screenshot(str(OUTPUT / "console-2-synced.png"))

        driver.get(f"http://127.0.0.1:{port}/docs")
        assert "POST" in driver.page_source and "/v1/customers" in driver.page_source
        driver.save_screenshot(str(OUTPUT / "api-docs.png"))
        # Everything came from the agent: the browser fetched nothing from any other host.
        hosts = driver.execute_script("return performance.getEntriesByType('resource').map(r => new URL(r.name).host);")
        assert set(hosts) <= {f"127.0.0.1:{port}"}, hosts
    finally:
        if driver is not None:
            driver.quit()
        agent.send_signal(signal.SIGTERM)
        agent.wait(20)
        head_office.close()
        broker.kill()
