"""Event validation against the published JSON Schemas (docs/schemas, draft 2020-12).

The batch envelope is checked message by message; each event's payload against the schema of
its type (``event-<type>.json``). A refusal names the first problems found, so whoever reads
the quarantine knows what to fix without replaying anything.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema_rs

BASE = "https://schemas.loyalty-agent.invalid/v1/"
KNOWN_VERSIONS = {1}


def schema_file_for(event_type: str) -> str:
    """``points.earned`` -> ``event-points-earned.json``.

    >>> schema_file_for("reward.stock_low")
    'event-reward-stock-low.json'
    """
    return "event-" + event_type.replace(".", "-").replace("_", "-") + ".json"


@dataclass(frozen=True)
class Refusal:
    reason: str  # invalid_envelope / unknown_type / unknown_schema_version / invalid_payload
    detail: str


class EventSchemas:
    def __init__(self, folder: Path) -> None:
        files = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(Path(folder).glob("*.json"))}
        if "event-batch.json" not in files:
            raise FileNotFoundError(f"no event-batch.json in {folder}")
        # jsonschema-rs (compiled, Rust): the pure-Python validator cost ~4 ms per event, more
        # than everything else the hub does with it.
        registry = jsonschema_rs.Registry([(BASE + n, s) for n, s in files.items()])
        batch = files["event-batch.json"]
        # The envelope of one event without the per-type payload rules: those are checked per type
        # below, so that one bad event never refuses the whole message.
        envelope = {k: v for k, v in batch["$defs"]["event"].items() if k != "allOf"}
        self._event = jsonschema_rs.Draft202012Validator({**envelope, "$id": BASE + "event-envelope.json"},
                                                        registry=registry)
        self._station_id = jsonschema_rs.Draft202012Validator(batch["properties"]["station_id"])
        self._batch_top = jsonschema_rs.Draft202012Validator(
            {"type": "object", "required": ["station_id", "events"], "additionalProperties": False,
             "properties": {"station_id": batch["properties"]["station_id"],
                            "events": {"type": "array", "minItems": 1}}})
        self._payloads = {name: jsonschema_rs.Draft202012Validator(files[name], registry=registry)
                          for name in files if name.startswith("event-") and name not in (
                              "event-batch.json", "event-common.json", "event-generic.json")}
        self._by_type: dict[str, Any] = {}  # event type -> its payload validator, filled on first sight

    @property
    def types(self) -> list[str]:
        return sorted(n.removeprefix("event-").removesuffix(".json") for n in self._payloads)

    def station_id_ok(self, station_id: str) -> bool:
        """Whether a topic's station id could be a batch's (the envelope's pattern)."""
        return bool(self._station_id.is_valid(station_id))

    def batch_problem(self, batch: Any) -> str | None:
        return _first_errors(self._batch_top, batch)

    def check_event(self, event: Any) -> Refusal | None:
        # The common case in two validator calls and a dict lookup (the ingest's hottest
        # Python line: every event of a burst); any doubt goes the explaining way.
        if self._event.is_valid(event):
            validator = self._by_type.get(event["type"])
            if validator is not None and event["schema_version"] in KNOWN_VERSIONS and validator.is_valid(
                    event["payload"]):
                return None
        return self._refusal(event)

    def _refusal(self, event: Any) -> Refusal | None:
        problem = _first_errors(self._event, event)
        if problem:
            return Refusal("invalid_envelope", problem)
        validator = self._payloads.get(schema_file_for(event["type"]))
        if validator is None:
            return Refusal("unknown_type", f"no schema for event type {event['type']!r}")
        self._by_type[event["type"]] = validator  # only known types: the cache cannot grow past them
        if event["schema_version"] not in KNOWN_VERSIONS:
            return Refusal("unknown_schema_version", f"{event['type']} schema_version {event['schema_version']}")
        problem = _first_errors(validator, event["payload"])
        return Refusal("invalid_payload", problem) if problem else None

    @staticmethod
    def identity(event: Any) -> tuple[str | None, int | None, str | None]:
        """Whatever can be read of an event's id, seq and type, for the quarantine row."""
        if not isinstance(event, dict):
            return None, None, None
        eid, seq, etype = event.get("id"), event.get("seq"), event.get("type")
        return (eid if isinstance(eid, str) and len(eid) <= 64 else None,
                seq if isinstance(seq, int) and not isinstance(seq, bool) and 0 < seq < 2**62 else None,
                etype if isinstance(etype, str) and len(etype) <= 64 else None)


def _first_errors(validator: Any, instance: Any, limit: int = 3) -> str | None:
    if validator.is_valid(instance):
        return None
    errors = []
    for error in validator.iter_errors(instance):
        where = "/".join(str(p) for p in error.instance_path) or "(root)"
        errors.append(f"{where}: {error.message[:200]}")
        if len(errors) == limit:
            break
    return "; ".join(errors) if errors else None

