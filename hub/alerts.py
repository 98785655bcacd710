"""Alerts: a row in ``alerts`` (what a dashboard lists) and a log line without personal data."""
from __future__ import annotations

import json
import logging
from typing import Any

import psycopg

log = logging.getLogger("hub.alerts")


def raise_alert(cur: psycopg.Cursor, station_id: str | None, source: str, type: str, detail: dict[str, Any]) -> None:
    """``detail`` holds ids, codes and counts only (it is logged)."""
    cur.execute("INSERT INTO alerts(station_id, source, type, detail) VALUES (%s, %s, %s, %s)",
                (station_id, source, type, json.dumps(detail, ensure_ascii=False, default=str)))
    log.warning("alerta %s estación=%s %s [alert]", type, station_id, json.dumps(detail, default=str)[:300])
