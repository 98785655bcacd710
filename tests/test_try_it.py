"""docs/api.md's "Try it with make run" walk-through, run word for word against the real agent
process in simulated mode (as ``make run`` starts it), on a free port and a temporary data dir.

Also: the development PIN key and bundle key are never accepted in real mode, and the
simulated reader's route does not exist there.
"""
from __future__ import annotations

import json
import os
from base64 import b64encode
from datetime import datetime, timezone
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient

from agent.api.app import create_app
from agent.cards.config import CardsSettings
from agent.cards.demo import DEV_PEPPER, demo_bundle, dev_public_key
from agent.cards.pins import install_pepper
from agent.cards.wiring import CardStation
from agent.errors import AgentError
from agent.station import build_station
from agent.store.db import Database
from agent.station import MIGRATIONS
from tests.conftest import free_port, make_settings, wait_until

ROOT = Path(__file__).resolve().parent.parent


def _walkthrough() -> str:
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sh\n(# try-it:.*?)```", text, flags=re.S)
    assert len(blocks) == 1, "docs/api.md must hold exactly one '# try-it:' block"
    return blocks[0]


@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("jq")), reason="the walk-through needs curl and jq")
@pytest.mark.skipif(not (ROOT / ".venv" / "bin" / "loyalty-agent").exists(), reason="run through make test")
def test_the_guide_walks_swipe_pin_sale_redemption(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "LOYALTY_AGENT_API__PORT": str(port), "LOYALTY_AGENT_STORAGE__DATA_DIR": str(tmp_path / "data"),
           "AGENT": f"http://127.0.0.1:{port}"}
    env.pop("LOYALTY_AGENT_CONFIG", None)
    log = (tmp_path / "agent.log").open("w")
    agent = subprocess.Popen([sys.executable, "-m", "agent.cli", "run"], cwd=ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=log)
    try:
        import http.client

        def healthy() -> bool:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/v1/health")
            return conn.getresponse().status == 200

        assert wait_until(healthy, 60, tolerate=(OSError,)), (tmp_path / "agent.log").read_text()
        run = subprocess.run(["bash", "-euo", "pipefail", "-c", _walkthrough()], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=120)
    finally:
        agent.terminate()
        agent.wait(20)
        log.close()
    assert run.returncode == 0, f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    out = run.stdout
    outputs = [json.loads(chunk) for chunk in _json_values(out)]
    pin_answers = [o for o in outputs if isinstance(o, dict) and o.get("state") == "authorized"]
    assert [a["attendant_id"] for a in pin_answers] == ["DEMO-1", "DEMO-2"]
    display = next(o for o in outputs if isinstance(o, dict) and "display_name" in o)
    assert display["display_name"] == "Demo Cliente" and display["document"] == "RUT 12.345.678-5"
    sales = [o for o in outputs if isinstance(o, dict) and set(o) == {"points", "balance"}]
    assert [(s["points"], s["balance"]["points"]) for s in sales] == [(40, 40), (10, 50)]
    assert {"status": "delivered", "points": -30} in outputs
    assert outputs[-2:] == [20, ["B-2", "B-1"]]


def _json_values(text: str) -> list[str]:
    """Split concatenated JSON documents (curl and jq output, pretty or not)."""
    decoder = json.JSONDecoder()
    values, i = [], 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        _, end = decoder.raw_decode(text, i)
        values.append(text[i:end])
        i = end
    return values


def test_real_mode_never_accepts_the_development_keys(tmp_path: Path) -> None:
    db = Database(tmp_path / "agent.db", list(MIGRATIONS))
    try:
        # Simulated mode without keys: the demo attendants work.
        simulated = CardStation(CardsSettings(), db, station_id="st-1", key_dir=tmp_path / "keys", simulated=True,
                                demo=True)
        assert simulated.demo_pins
        simulated.start()
        simulated.pins.verify("DEMO-1", "1234")
        simulated.stop()
        # A simulated station with a head office (demo=False) gets its PINs from head office only.
        with_head_office = CardStation(CardsSettings(), db, station_id="st-1", key_dir=tmp_path / "none",
                                       simulated=True, demo=False)
        assert not with_head_office.demo_pins and not with_head_office.pins.pepper_installed
        # The same station switched to real mode, even with the public development pepper copied into
        # its key folder and the development public key configured: neither is accepted.
        install_pepper(tmp_path / "keys", DEV_PEPPER)
        raw = dev_public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        cards = CardsSettings.model_validate({"pins": {"bundle_public_key": b64encode(raw).decode()}})
        real = CardStation(cards, db, station_id="st-1", key_dir=tmp_path / "keys", simulated=False)
        assert not real.pins.pepper_installed and not real.demo_pins
        with pytest.raises(AgentError) as err:
            real.pins.verify("DEMO-1", "1234")
        assert err.value.code == "attendant_pin_invalid"
        with pytest.raises(AgentError) as err:
            real.pins.import_bundle(demo_bundle("st-1", datetime.now(timezone.utc)))
        assert err.value.code == "pin_bundle_no_key"
    finally:
        db.close()


def test_the_simulated_reader_route_exists_only_in_simulated_mode(tmp_path: Path) -> None:
    for simulated, expected in ((False, 404), (True, 201)):
        settings = make_settings(tmp_path / str(simulated), devices={"simulated": simulated})
        services = build_station(settings)
        token = services.tokens.create("pos-1")
        try:
            with TestClient(create_app(settings, services), base_url="http://127.0.0.1", headers={"Authorization": f"Bearer {token}"}) as client:
                if simulated:
                    # As on a real reader: a card the directory does not know opens a session marked
                    # unknown (the POS offers to issue it); a blocked card is refused at the swipe.
                    unknown = client.post("/v1/simulated/swipes", json={"card": "04:A1:B2:C3", "reader": "isla-1"})
                    assert unknown.status_code == 201 and unknown.json()["card_status"] == "unknown"
                    assert client.post("/v1/loyalty/cards", json={"card_number": "0BADCAFE"}).status_code == 201
                    assert client.post("/v1/loyalty/cards/0BADCAFE/block", json={"reason": "robada"}).status_code == 200
                    blocked = client.post("/v1/simulated/swipes", json={"card": "0BADCAFE"})
                    assert blocked.status_code == 409 and blocked.json()["code"] == "card_blocked"
                    assert client.post("/v1/loyalty/cards", json={"card_number": "04A1B2C3"}).status_code == 201
                r = client.post("/v1/simulated/swipes", json={"card": "04:A1:B2:C3", "reader": "isla-1"})
                assert r.status_code == expected, r.text
                if simulated:
                    assert (r.json()["card_id"], r.json()["card_type"], r.json()["reader"], r.json()["card_status"]) == (
                        "04A1B2C3", "uid", "isla-1", "issued")
                    bad = client.post("/v1/simulated/swipes", json={"card": "hola"})
                    assert bad.status_code == 422 and bad.json()["code"] == "card_line_malformed"
        finally:
            services.close()
