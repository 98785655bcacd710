"""The hub's MQTT 5 client: clean sessions, manual PUBACK, a small receive window.

Why clean sessions: a persistent session of a shared-subscription member that dies keeps the
messages the broker routed to it until the session expires (measured in issue 15: 76 parked
messages, stations unconfirmed until their resend timer). With ``clean_start`` and a session
expiry of 0, the broker forgets a dead worker at once and routes new messages to the live ones.
Why manual PUBACK: the broker may drop a message only after its events are committed, and
``receive_maximum`` bounds what one worker can hold un-PUBACKed (what a SIGKILL can leave to
the stations' resend or the replay check).
"""
from __future__ import annotations

import json
import ssl
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent.queue.topics import HUB_CONSUMERS
from hub.config import MqttSettings

ROOT = "loyalty/v1/stations"
EVENTS = f"{ROOT}/+/events"
# Where a worker says it joined (its shared subscription granted) or was lost (its Last Will):
# stations resend what they sent before, instead of waiting their ack timeout for events the
# broker routed to a dead worker or had nobody to route to (docs/head-office.md).
CONSUMERS = HUB_CONSUMERS
# Low-volume station topics; availability is retained, and retained messages are never sent on
# a shared subscription (MQTT 5, 4.8.2), so every worker subscribes to it directly.
SHARED_META = (f"{ROOT}/+/status", f"{ROOT}/+/alerts", f"{ROOT}/+/replay/result", f"{ROOT}/+/config/errors")
DIRECT_META = (f"{ROOT}/+/availability",)


def topic(station_id: str, leaf: str) -> str:
    return f"{ROOT}/{station_id}/{leaf}"


def make_client(settings: MqttSettings, client_id: str, *, manual_ack: bool) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5,
                         manual_ack=manual_ack)
    if settings.username:
        client.username_pw_set(settings.username, settings.password)
    if settings.url and urlparse(settings.url).scheme == "mqtts":
        client.tls_set(ca_certs=str(settings.ca_file) if settings.ca_file else None,
                       certfile=str(settings.cert_file) if settings.cert_file else None,
                       keyfile=str(settings.key_file) if settings.key_file else None,
                       cert_reqs=ssl.CERT_REQUIRED)
    # A few workers per chain: they can afford to retry quickly, and every second they are away
    # after a broker restart is a second of events dropped for want of a subscriber.
    client.reconnect_delay_set(min_delay=0.25, max_delay=4)
    client.max_queued_messages_set(0)
    return client


def presence(client_id: str, state: str) -> str:
    return json.dumps({"consumer": client_id, "state": state})


def connect_properties(settings: MqttSettings) -> Properties:
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 0
    props.ReceiveMaximum = settings.receive_maximum
    return props


def broker_address(url: str) -> tuple[str, int]:
    parsed = urlparse(url)
    return parsed.hostname or "127.0.0.1", parsed.port or (8883 if parsed.scheme == "mqtts" else 1883)
