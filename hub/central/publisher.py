"""Publish signed configuration to the stations' retained ``config/{kind}`` topics (QoS 1).

One short-lived MQTT connection per call (the CLI and the web app are not long-running MQTT
clients); every message must reach the broker (PUBACK) or the call fails, so the caller never
records as published something the broker did not take.
"""
from __future__ import annotations

import os
import time

import psycopg

from hub.config import MqttSettings
from hub.central.errors import CentralError
from hub.mqtt import broker_address, connect_properties, make_client, topic


def known_stations(conn: psycopg.Connection) -> list[str]:
    """Registered stations and any station the ingest has heard from."""
    return [r[0] for r in conn.execute(
        "SELECT station_id FROM central_stations UNION SELECT station_id FROM stations ORDER BY 1")]


def publish_retained(settings: MqttSettings, messages: list[tuple[str, str, bytes]], timeout_s: float = 30) -> None:
    """``messages``: (station id, kind, body)."""
    if not settings.url:
        raise CentralError("no_broker", "falta mqtt.url para publicar la configuración",
                           "mqtt.url is needed to publish configuration")
    client = make_client(settings, f"{settings.client_id_prefix}-central-{os.getpid()}-{time.monotonic_ns() % 10**9}",
                         manual_ack=False)
    host, port = broker_address(settings.url)
    try:
        client.connect(host, port, keepalive=settings.keepalive_s, clean_start=True,
                       properties=connect_properties(settings))
    except OSError as exc:
        raise CentralError("broker_unreachable", f"no se pudo conectar al broker: {exc}",
                           f"could not connect to the broker: {exc}") from None
    client.loop_start()
    try:
        infos = [client.publish(topic(station, f"config/{kind}"), body, qos=1, retain=True)
                 for station, kind, body in messages]
        deadline = time.monotonic() + timeout_s
        for info in infos:
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
            if not info.is_published():
                raise CentralError("publish_failed", "el broker no confirmó la publicación",
                                   "the broker did not confirm the publication")
    finally:
        client.disconnect()
        client.loop_stop()
