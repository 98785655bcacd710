"""The bytes on the wire: the broker URL, event batches out, acks and replay requests in.

Pure functions (no broker, no database); docs/head-office.md and docs/schemas/ are the contract.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlparse

MAX_EVENT_ID_LENGTH = 64


def parse_url(url: str) -> tuple[str, int, bool]:
    """``mqtt://host:1883`` or ``mqtts://host:8883`` -> (host, port, tls).

    >>> parse_url("mqtts://ho.example.com")
    ('ho.example.com', 8883, True)
    """
    parsed = urlparse(url)
    if parsed.scheme not in ("mqtt", "mqtts") or not parsed.hostname:
        raise ValueError(f"MQTT URL must be mqtt://host:port or mqtts://host:port, not {url!r}")
    tls = parsed.scheme == "mqtts"
    return parsed.hostname, parsed.port or (8883 if tls else 1883), tls


def encode_batch(station_id: str, rows: Sequence[Mapping[str, Any]]) -> bytes:
    """One ``events`` message. Payloads are stored as JSON text: spliced in rather than parsed
    and re-serialized (the drain of a large backlog is dominated by this).

    >>> encode_batch("st-1", [{"id": "e1", "seq": 1, "type": "t", "schema_version": 1,
    ...     "created_at": "2026-01-01T00:00:00.000Z", "clock_synced": 1, "payload": '{"a":1}'}])
    b'{"station_id":"st-1","events":[{"id":"e1","seq":1,"type":"t","schema_version":1,"created_at":"2026-01-01T00:00:00.000Z","clock_synced":true,"payload":{"a":1}}]}'
    """
    parts = [
        '{"id":"%s","seq":%d,"type":%s,"schema_version":%d,"created_at":"%s","clock_synced":%s,"payload":%s}'
        % (r["id"], r["seq"], json.dumps(r["type"]), r["schema_version"], r["created_at"],
           "true" if r["clock_synced"] else "false", r["payload"])
        for r in rows
    ]
    return ('{"station_id":%s,"events":[%s]}' % (json.dumps(station_id), ",".join(parts))).encode()


def parse_ack(payload: bytes) -> list[str]:
    """``{"event_ids": [...]}`` -> the ids; ValueError for anything else.

    >>> parse_ack(b'{"event_ids": ["a", "b"]}')
    ['a', 'b']
    """
    try:
        ids = json.loads(payload)["event_ids"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"not an ack: {exc}") from None
    if not isinstance(ids, list) or not all(isinstance(i, str) and len(i) <= MAX_EVENT_ID_LENGTH for i in ids):
        raise ValueError("event_ids must be a list of ids")
    return ids


def parse_replay(payload: bytes) -> tuple[int, int, Any]:
    """``{"from_seq", "to_seq", "request_id"}`` -> (first, last, request_id). A ValueError
    carries the request id (when there is one) as its second argument, for the rejection.

    >>> parse_replay(b'{"from_seq": 3, "to_seq": 9, "request_id": "r-1"}')
    (3, 9, 'r-1')
    """
    body: Any = None
    try:
        body = json.loads(payload)
        first, last = int(body["from_seq"]), int(body["to_seq"])
        if first < 1 or last < first:
            raise ValueError("need 1 <= from_seq <= to_seq")
    except (ValueError, KeyError, TypeError) as exc:
        request_id = body.get("request_id") if isinstance(body, dict) else None
        raise ValueError(str(exc), request_id) from None
    return first, last, body.get("request_id")


_ENVELOPE = len(encode_batch("", []))


def event_size(row: Mapping[str, Any]) -> int:
    """Bytes one event adds to a batch: its JSON and the comma before the next one."""
    return len(encode_batch("", [row])) - _ENVELOPE + 1


def batch_room(max_packet: int, topic: str, station_id: str) -> int:
    """Bytes of events a PUBLISH of at most ``max_packet`` can carry: minus the packet's own header
    (fixed header, topic, packet id, properties: 16 is generous) and the batch's JSON envelope."""
    return max_packet - (len(topic.encode()) + 16) - len(encode_batch(station_id, []))


def too_large_alert(station_id: str, row: Mapping[str, Any], max_packet: int | None) -> dict[str, Any]:
    return {"event_id": row["id"], "seq": row["seq"], "event_type": row["type"],
            "bytes": len(encode_batch(station_id, [row])), "max_packet_bytes": max_packet}
