"""Keep docs/ honest: every check here fails when the code and the documentation drift apart.

- docs/agent.example.toml loads with the real settings loader (unknown keys are errors);
- docs/configuration.md lists every setting with its current default;
- docs/schemas/*.json are valid JSON Schema 2020-12, their pydantic-generated parts equal
  what the models generate today, and real messages produced by the code validate against
  them (events encoded by the publisher's own encoder; availability, status, alerts, replay
  results and config errors captured from a real Mosquitto);
- every JSON example in docs/head-office.md validates against the schema it names;
- every event type the code emits, every MQTT topic and every HTTP route is documented.
"""
from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from pydantic import BaseModel
from pydantic_core import PydanticUndefined
from referencing import Registry, Resource

from agent.config import ConfigError, MqttSettings, Settings, load_settings
from agent.customers.models import Customer, CustomerCreate, CustomerPatch
from agent.loyalty.directory import DirectoryDelta
from agent.loyalty.models import RuleProgram
from agent.loyalty.requests import IssueCardRequest
from agent.ops.health import assess
from agent.store import outbox
from agent.queue.downlink import Envelope
from agent.queue.messages import encode_batch
from agent.queue.topics import StationTopics
from agent.secret_fields import is_secret
from agent.station import Station, build_station
from tests.conftest import MARIA, make_settings

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SCHEMAS = DOCS / "schemas"
HEAD_OFFICE = DOCS / "head-office.md"
BASE = "https://schemas.loyalty-agent.invalid/v1/"


# ---- helpers ---------------------------------------------------------------------------------

def _schema_files() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(SCHEMAS.glob("*.json"))}


def _registry() -> Registry:
    return Registry().with_resources(
        (BASE + name, Resource.from_contents(schema)) for name, schema in _schema_files().items())


def validate(name: str, instance: Any) -> None:
    schema = _schema_files()[name]
    errors = sorted(Draft202012Validator(schema, registry=_registry()).iter_errors(instance), key=str)
    assert not errors, f"{name}: " + "; ".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])


def _documented_properties(name: str) -> set[str]:
    """Every property a schema names at its top level (in any oneOf branch)."""
    schema = _schema_files()[name]
    keys = set(schema.get("properties", {}))
    for branch in schema.get("oneOf", []) + [s.get("then", {}) for s in schema.get("allOf", [])]:
        keys |= set(branch.get("properties", {}))
    return keys


def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("LOYALTY_AGENT_"):
            monkeypatch.delenv(name)


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Station]:
    built = build_station(make_settings(tmp_path / "data", station={"id": "st-docs"}))
    yield built
    built.close()


# ---- configuration ---------------------------------------------------------------------------

def test_example_config_validates_and_shows_a_real_station(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_env(monkeypatch)
    settings = load_settings(DOCS / "agent.example.toml")
    assert settings.station.country in ("CO", "CL") and settings.station.id != "station-local"
    assert settings.mqtt.url and settings.mqtt.url.startswith("mqtts://")
    assert settings.mqtt.cert_file and settings.mqtt.key_file and settings.mqtt.ca_file
    assert settings.fingerprint.enabled and settings.fingerprint.port.startswith("/dev/serial/by-id/")
    assert settings.cards.pcsc.enabled
    assert settings.devices.simulated is False


def test_example_config_with_a_typo_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The docs promise that unknown keys are errors; prove it on the example itself.
    _no_env(monkeypatch)
    text = (DOCS / "agent.example.toml").read_text(encoding="utf-8")
    assert "\n[mqtt]\n" in text
    broken = tmp_path / "typo.toml"
    broken.write_text(text.replace("\n[mqtt]\n", "\n[mqtt]\nbatch_max_event = 10\n"), encoding="utf-8")
    with pytest.raises(ConfigError, match="batch_max_event"):
        load_settings(broken)


def _leaves(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    for name, field in model.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            yield from _leaves(field.annotation, prefix + (name,))
        else:
            yield prefix + (name,), field


def _default_text(field: Any) -> str:
    value = field.default if field.default is not PydanticUndefined else field.default_factory()
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and value == 0xFFFFFFFF:
        return "4294967295 (0xFFFFFFFF)"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=str)
    if isinstance(value, (int, float)) and not isinstance(value, Decimal):
        return str(value)
    return json.dumps(str(value))


def _config_tables() -> dict[str, dict[str, str]]:
    """configuration.md: section -> {key: default cell}."""
    tables: dict[str, dict[str, str]] = {}
    section = None
    for line in (DOCS / "configuration.md").read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^### `\[(.+)\]`$", line) or re.match(r"^### (Top level)$", line)
        if heading:
            section = "" if heading.group(1) == "Top level" else heading.group(1)
            tables[section] = {}
            continue
        row = re.match(r"^\| `([a-z_]+)` \| `(.*?)` \|", line)
        if row and section is not None:
            tables[section][row.group(1)] = row.group(2)
    return tables


def test_configuration_reference_lists_every_setting_with_its_default() -> None:
    tables = _config_tables()
    documented = {(s, k) for s, rows in tables.items() for k in rows}
    actual = set()
    for path, field in _leaves(Settings):
        section, key = ".".join(path[:-1]), path[-1]
        actual.add((section, key))
        assert section in tables, f"docs/configuration.md has no section [{section}]"
        assert key in tables[section], f"docs/configuration.md does not list {'.'.join(path)}"
        assert tables[section][key] == _default_text(field), f"default of {'.'.join(path)} changed"
    assert documented == actual, f"documented settings that do not exist: {documented - actual}"


def test_configuration_reference_names_every_secret_check_config_masks() -> None:
    text = " ".join((DOCS / "configuration.md").read_text(encoding="utf-8").split())
    start = text.index("safe to paste into a ticket")  # the check-config paragraph lists the masked settings
    masked = text[start:start + 400]
    secrets = [".".join(path) for path, field in _leaves(Settings) if is_secret(field)]
    assert "mqtt.password" in secrets  # the marker is found at all
    for name in secrets:
        assert f"`{name}`" in masked, f"docs/configuration.md does not say check-config masks {name}"


def test_configuration_reference_explains_env_names_and_precedence(monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    assert "LOYALTY_AGENT_MQTT__BATCH_MAX_EVENTS" in text and "LOYALTY_AGENT_CONFIG" in text
    # The documented precedence (defaults < file < environment < flags), checked on the loader.
    _no_env(monkeypatch)
    file = tmp_path / "a.toml"
    file.write_text("[api]\nport = 9001\nhost = \"127.0.0.2\"\n[mqtt]\nkeepalive_s = 40\n", encoding="utf-8")
    monkeypatch.setenv("LOYALTY_AGENT_API__PORT", "9002")
    monkeypatch.setenv("LOYALTY_AGENT_MQTT__KEEPALIVE_S", "41")
    loaded = load_settings(file, {"api": {"port": 9003}})
    assert (loaded.api.port, loaded.api.host, loaded.mqtt.keepalive_s) == (9003, "127.0.0.2", 41)
    assert loaded.mqtt.batch_max_events == MqttSettings().batch_max_events


# ---- schemas ---------------------------------------------------------------------------------

def test_every_schema_is_valid_json_schema_2020_12_with_resolvable_refs() -> None:
    files = _schema_files()
    assert len(files) >= 14
    registry = _registry()
    for name, schema in files.items():
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema", name
        assert schema["$id"] == BASE + name, name
        Draft202012Validator.check_schema(schema)
        for ref in re.findall(r'"\$ref": "([^"#]+)', json.dumps(schema)):
            assert ref in files, f"{name} refers to missing {ref}"
        # Resolving every reference: validating an empty object walks them lazily, so resolve explicitly.
        resolver = registry.resolver(base_uri=BASE + name)
        for ref in re.findall(r'"\$ref": "([^"]+)"', json.dumps(schema)):
            resolver.lookup(ref)


@pytest.mark.parametrize(("name", "model", "mode"), [
    ("customer.json", Customer, "serialization"),
    ("directory-delta.json", DirectoryDelta, "validation"),
])
def test_generated_schemas_match_the_models(name: str, model: type[BaseModel], mode: str) -> None:
    committed = _schema_files()[name]
    current = model.model_json_schema(mode=mode)
    for key in ("$defs", "properties", "required", "type", "additionalProperties"):
        assert committed.get(key) == current.get(key), f"{name}: {key} differs from {model.__name__}; regenerate it"


def test_earning_rules_schema_matches_the_models() -> None:
    committed = _schema_files()["earning-rules.json"]
    program = RuleProgram.model_json_schema(mode="validation")
    defs = program.pop("$defs")
    assert committed["$defs"] == {**defs, "RuleProgram": program}
    envelope = Envelope.model_json_schema()
    assert set(committed["properties"]) == set(envelope["properties"])
    assert set(committed["required"]) == set(envelope["required"])


def _json_examples(path: Path) -> list[tuple[str, Any]]:
    """Fenced blocks written as ```json <schema-file> in a markdown page."""
    text = path.read_text(encoding="utf-8")
    return [(name, json.loads(body)) for name, body in re.findall(r"```json ([a-z0-9-]+\.json)\n(.*?)```", text, re.DOTALL)]


def test_every_head_office_example_validates_against_its_schema() -> None:
    examples = _json_examples(HEAD_OFFICE)
    names = {name for name, _ in examples}
    for required in ("event-batch.json", "ack.json", "replay-request.json", "replay-result.json", "availability.json",
                     "status.json", "alert.json", "config-error.json", "earning-rules.json",
                     "directory-delta.json", "pin-bundle.json"):
        assert required in names, f"docs/head-office.md has no example of {required}"
    for name, example in examples:
        validate(name, example)
        # The agent's own parsers must accept the downlink examples too.
        if name == "earning-rules.json":
            RuleProgram.model_validate(Envelope.model_validate(example).data)
        elif name == "directory-delta.json":
            DirectoryDelta.model_validate(example)
        elif name == "ack.json":
            assert all(isinstance(i, str) for i in example["event_ids"])


# ---- real messages ---------------------------------------------------------------------------

def _encoded_batch(services: Station) -> dict[str, Any]:
    rows = services.db.read(lambda c: outbox.unconfirmed_after(c, 0, 1000))
    return json.loads(encode_batch("st-docs", rows))  # the publisher's own encoder


def test_real_customer_events_validate_and_every_field_is_documented(services: Station) -> None:
    created = services.customers.create(CustomerCreate.model_validate(MARIA), "pos:pos-1/attendant:P-017")
    services.customers.update(created.id, CustomerPatch.model_validate(
        {"phones": [], "email": None, "consents": {"data_processing": True}}), "pos:pos-1")
    services.loyalty.issue_card(IssueCardRequest(card_number="6000000000000001", customer_id=created.id))
    batch = _encoded_batch(services)
    validate("event-batch.json", batch)
    types = [e["type"] for e in batch["events"]]
    assert types[:2] == ["customer.created", "customer.updated"] and "card.issued" in types
    assert [e["seq"] for e in batch["events"]] == list(range(1, len(types) + 1))
    event_keys = set(_schema_files()["event-batch.json"]["$defs"]["event"]["properties"])
    customer_keys = set(_schema_files()["customer.json"]["properties"])
    for event in batch["events"]:
        assert set(event) == event_keys, "an event field is missing from docs/schemas/event-batch.json"
    assert set(batch) == set(_schema_files()["event-batch.json"]["properties"])
    created_payload, updated_payload = batch["events"][0]["payload"], batch["events"][1]["payload"]
    assert set(created_payload) == _documented_properties("event-customer-created.json")
    assert set(updated_payload) == _documented_properties("event-customer-updated.json")
    assert set(created_payload["customer"]) == customer_keys
    # The schema is not a rubber stamp: a payload without its customer fails.
    broken = json.loads(json.dumps(batch))
    del broken["events"][1]["payload"]["changes"]
    with pytest.raises(AssertionError):
        validate("event-batch.json", broken)


def test_every_emitted_event_type_is_documented() -> None:
    emitted = set()
    for source in (ROOT / "agent").rglob("*.py"):
        emitted |= set(re.findall(r'append_event\(\s*\w+,\s*"([a-z_.]+)"', source.read_text(encoding="utf-8")))
    assert len(emitted) >= 15, emitted  # the regex still finds the calls
    text = HEAD_OFFICE.read_text(encoding="utf-8")
    missing = sorted(t for t in emitted if f"`{t}`" not in text)
    assert not missing, f"event types missing from docs/head-office.md: {missing}"


def test_sync_status_counters_are_the_documented_ones(services: Station) -> None:
    stats = services.db.read(outbox.stats)
    status_keys = _documented_properties("status.json")
    extra = assess(services).status_message_extra()
    assert set(stats) | {"station_id", "at", "version", "downlink"} | set(extra) == status_keys
    validate("status.json", {**stats, "station_id": "st-docs", "at": "2026-01-01T00:00:00.000Z", "version": "0.1.0",
                             "downlink": {"earning_rules": {"version": 2, "applied_at": "2026-01-01T00:00:00.000Z"}},
                             **extra})


def test_real_pin_bundle_validates() -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from agent.cards.pin_bundle import build_bundle

    now = datetime.now(UTC)
    raw = build_bundle(Ed25519PrivateKey.generate(), version=3, stations=["st-docs"], issued_at=now,
                       expires_at=now + timedelta(days=30), pins={"P-017": "4821"}, pepper=b"p" * 32)
    validate("pin-bundle.json", json.loads(raw))


# ---- real broker: what the publisher actually sends ----------------------------------------------

class _Recorder:
    """A plain MQTT 5 client that keeps every station message (topic, JSON, retain flag)."""

    def __init__(self, port: int) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.messages: list[tuple[str, Any, bool]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="docs-recorder", protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe("loyalty/v1/stations/+/#", qos=1)
        self.client.loop_start()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        body = json.loads(message.payload) if message.payload else None
        with self.lock:
            self.messages.append((message.topic, body, bool(message.retain)))

    def of(self, topic: str) -> list[Any]:
        with self.lock:
            return [body for t, body, _ in self.messages if t == topic]

    def publish(self, topic: str, body: Any) -> None:
        payload = body if isinstance(body, (bytes, str)) else json.dumps(body)
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _wait(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def test_messages_from_a_real_publisher_validate(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from agent.api.app import create_app
    from tests.fakes.mosquitto import Mosquitto, mosquitto_binary

    if mosquitto_binary() is None:  # CI installs it (apt mosquitto); without it only this test is skipped
        pytest.skip("mosquitto is not installed")
    broker = Mosquitto(tmp_path / "broker").start()
    recorder = _Recorder(broker.port)
    # A budget of 1500 bytes holds one customer event: the second enrollment is refused (507 + alert).
    settings = make_settings(tmp_path / "data", station={"id": "st-docs"},
                             mqtt={"url": broker.url, "outbox_max_bytes": 1500, "reconnect_min_s": 0.2})
    services = build_station(settings)
    topics = StationTopics("st-docs")
    try:
        services.start()
        client = TestClient(create_app(settings, services), base_url="http://127.0.0.1",
                            headers={"Authorization": f"Bearer {services.tokens.create('pos-1')}"})
        assert client.post("/v1/customers", json=MARIA).status_code == 201
        other = {**MARIA, "document": {"country": "CO", "type": "CC", "number": "1020304050"}}
        assert client.post("/v1/customers", json=other).status_code == 507
        assert _wait(lambda: recorder.of(topics.events) and recorder.of(topics.alerts))
        batch = recorder.of(topics.events)[0]
        recorder.publish(topics.acks, {"event_ids": [e["id"] for e in batch["events"]]})
        assert _wait(lambda: services.db.read(outbox.stats)["confirmed"] == 1)
        recorder.publish(topics.replay, {"from_seq": 1, "to_seq": 1, "request_id": "r-1"})
        recorder.publish(topics.replay, {"from_seq": 5, "to_seq": 2, "request_id": "r-2"})
        recorder.publish(topics.config("earning_rules"), {"version": 1, "data": {"rules": "none"}})
        recorder.publish(topics.config("pin_bundle"), {"payload": {"version": 1}, "signature": "AA=="})  # no key installed
        assert _wait(lambda: len(recorder.of(topics.replay_result)) == 2 and len(recorder.of(topics.config_errors)) == 2)
        assert _wait(lambda: recorder.of(topics.status))
    finally:
        services.close()
    assert _wait(lambda: recorder.of(topics.availability) and recorder.of(topics.availability)[-1]["state"] == "offline")
    recorder.close()
    broker.kill()

    for body in recorder.of(topics.events):
        validate("event-batch.json", body)
    for name, topic in (("alert.json", topics.alerts), ("replay-result.json", topics.replay_result),
                        ("config-error.json", topics.config_errors), ("status.json", topics.status),
                        ("availability.json", topics.availability)):
        bodies = recorder.of(topic)
        assert bodies, topic
        for body in bodies:
            validate(name, body)
            assert set(body) <= _documented_properties(name), f"{name}: undocumented {set(body) - _documented_properties(name)}"
    assert recorder.of(topics.alerts)[0]["type"] == "outbox_full"
    results = {r["status"] for r in recorder.of(topics.replay_result)}
    assert results == {"ok", "rejected"}
    assert {e["code"] for e in recorder.of(topics.config_errors)} == {"config_unsigned", "pin_bundle_no_key"}
    states = [body["state"] for body in recorder.of(topics.availability)]
    assert states[0] == "online" and states[-1] == "offline"
    # Retained flags as documented: availability and status are retained, live events are not.
    with recorder.lock:
        retained = {t for t, _, r in recorder.messages if r}
    assert topics.events not in retained


# ---- topics, AsyncAPI, HTTP routes, firmware notes --------------------------------------------

def _topic_templates() -> dict[str, str]:
    topics = StationTopics("STATION")
    names = [n for n, v in vars(StationTopics).items() if isinstance(v, property) and n != "base"]
    out = {n: getattr(topics, n).replace("STATION", "{station_id}") for n in names}
    out["config"] = topics.config("KIND").replace("STATION", "{station_id}").replace("KIND", "{kind}")
    return out


def test_every_topic_is_in_the_contract_and_the_asyncapi_document() -> None:
    templates = _topic_templates()
    assert len(templates) >= 9
    text = HEAD_OFFICE.read_text(encoding="utf-8")
    api = yaml.safe_load((DOCS / "asyncapi.yaml").read_text(encoding="utf-8"))
    addresses = {ch["address"] for ch in api["channels"].values()}
    for name, topic in templates.items():
        assert f"`{topic}`" in text, f"docs/head-office.md does not show the {name} topic {topic}"
        assert topic in addresses, f"docs/asyncapi.yaml has no channel for {topic}"


def test_asyncapi_document_is_consistent() -> None:
    api = yaml.safe_load((DOCS / "asyncapi.yaml").read_text(encoding="utf-8"))
    assert api["asyncapi"].startswith("3.")
    files = _schema_files()
    referenced = set()
    for name, message in api["components"]["messages"].items():
        ref = message["payload"]["schema"]["$ref"]
        assert ref.startswith("./schemas/") and ref.removeprefix("./schemas/") in files, (name, ref)
        referenced.add(ref.removeprefix("./schemas/"))
    # Every top-level message schema is used (customer and per-type payloads are referenced by the batch).
    # Event payload schemas (event-<type>.json and their shared event-common.json) are referenced
    # by the batch schema, not by a message of their own.
    assert {f for f in set(files) - referenced if not f.startswith("event-")} <= {"customer.json"}
    for op_name, op in api["operations"].items():
        channel = op["channel"]["$ref"].split("/")[-1]
        assert channel in api["channels"], op_name
        assert op["action"] in ("send", "receive")
        for msg in op["messages"]:
            assert msg["$ref"].split("/")[-1] in api["channels"][channel]["messages"], op_name
    for channel in api["channels"].values():
        for param in re.findall(r"\{(\w+)\}", channel["address"]):
            assert param in channel["parameters"]


def test_api_guide_mentions_every_route(services: Station) -> None:
    from agent.api.app import create_app

    paths = create_app(services.settings, services).openapi()["paths"]
    text = (DOCS / "api.md").read_text(encoding="utf-8")
    missing = [f"{method.upper()} {path}" for path, ops in paths.items() for method in ops
               if f"`{method.upper()} {path}" not in text]
    assert len(paths) >= 20
    assert not missing, f"routes missing from docs/api.md: {missing}"


def test_firmware_notes_index_links_every_page() -> None:
    folder = ROOT / "firmware-notes"
    index = (folder / "README.md").read_text(encoding="utf-8")
    pages = [p.name for p in folder.glob("*.md") if p.name != "README.md"]
    assert pages
    for page in pages:
        assert f"]({page})" in index, f"firmware-notes/README.md does not link {page}"


def test_documented_broker_acl_confines_each_station_to_its_own_topics(tmp_path: Path) -> None:
    """The ACL block of head-office.md, used verbatim by a real Mosquitto.

    The certificate part is left out here (the user name stands in for the certificate CN
    that ``use_identity_as_username`` would supply); the ACL rules are exactly the documented ones.
    """
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from tests.fakes.mosquitto import Mosquitto, mosquitto_binary

    if mosquitto_binary() is None:
        pytest.skip("mosquitto is not installed")
    text = HEAD_OFFICE.read_text(encoding="utf-8")
    acl = re.search(r"```\n(# stations:.*?)```", text, re.DOTALL)
    assert acl, "docs/head-office.md lost its ACL example"
    (tmp_path / "acl").write_text(acl.group(1), encoding="utf-8")
    broker = Mosquitto(tmp_path / "broker", extra_config=f"acl_file {tmp_path / 'acl'}").start()
    received: list[tuple[str, str]] = []

    def connect(user: str, client_id: str) -> mqtt.Client:
        connected = threading.Event()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        client.username_pw_set(user)
        client.on_connect = lambda *args: connected.set()
        client.on_message = lambda c, u, m: received.append((user, m.topic))
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        assert connected.wait(5)
        return client

    def publish_as(user: str, topic: str) -> None:
        # A fresh connection each time: paho drops the connection after a PUBACK that says
        # "not authorized", so one client cannot go on after the first refusal.
        client = connect(user, f"pub-{user}")
        acked = threading.Event()
        client.on_publish = lambda *args: acked.set()
        client.publish(topic, b"{}", qos=1)
        acked.wait(5)
        client.disconnect()  # before loop_stop, which otherwise waits out its 1 s select
        client.loop_stop()

    ho, st_a = connect("ho-consumer", "acl-ho"), connect("st-a", "acl-st-a")
    try:
        ho.subscribe("loyalty/v1/stations/+/#", qos=1)
        st_a.subscribe("loyalty/v1/stations/st-a/acks", qos=1)
        st_a.subscribe("loyalty/v1/stations/st-b/acks", qos=1)  # not its own: nothing may arrive there
        time.sleep(0.3)
        for topic in ("loyalty/v1/stations/st-a/events", "loyalty/v1/stations/st-b/events",
                      "loyalty/v1/stations/st-a/acks", "loyalty/v1/stations/st-a/config/pin_bundle"):
            publish_as("st-a", topic)
        publish_as("ho-consumer", "loyalty/v1/stations/st-a/acks")
        publish_as("ho-consumer", "loyalty/v1/stations/st-b/acks")
        assert _wait(lambda: ("st-a", "loyalty/v1/stations/st-a/acks") in received, 5)
        time.sleep(0.3)
    finally:
        for client in (ho, st_a):
            client.disconnect()
            client.loop_stop()
        broker.kill()
    by_ho = {t for who, t in received if who == "ho-consumer"}
    by_station = {t for who, t in received if who == "st-a"}
    assert "loyalty/v1/stations/st-a/events" in by_ho  # its own uplink passes
    assert "loyalty/v1/stations/st-b/events" not in by_ho  # another station's uplink is dropped
    assert "loyalty/v1/stations/st-a/config/pin_bundle" not in by_ho  # cannot forge its own config
    assert by_station == {"loyalty/v1/stations/st-a/acks"}  # never another station's downlink
    # The station's own fake ack was dropped too: the only ack it received is head office's.
    assert sum(1 for who, t in received if who == "st-a") == 1
