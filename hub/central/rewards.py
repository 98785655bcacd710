"""Rewards logistics (seed 002): the weekly consolidated order, pending requests, slips for the
warehouse, consignment stock per station with replenishment and shipments, statistics and the
immobilized-stock audit list.

- Scheduled rewards reach the hub as ``reward.requested`` events (``reward_requests``). Every
  week on ``central.order_weekday`` (Monday) the requests up to the end of the previous day go
  into one order per cutoff date; making it again for the same cutoff changes nothing.
- Replenishment proposes, per station and reward, what the station granted in the week (so its
  consignment stock returns to where it was); a shipment's id is the document the station types
  when it receives it (``reward.stock_movement`` kind ``receipt``), which marks it received.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import Any

import psycopg

from hub.central import audit
from hub.central.close import bound
from hub.central.errors import CentralError


def last_cutoff(today: date, weekday: int) -> date:
    """The day before the most recent order day (today included)."""
    days_since = (today.weekday() - weekday) % 7
    return today - timedelta(days=days_since + 1)


def pending(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
    """Requests not yet in an order, oldest first: visible at any time."""
    return conn.execute(
        "SELECT r.redemption_id, r.occurred_at, r.station_id, r.reward_id, r.quantity, r.account_id"
        " FROM reward_requests r LEFT JOIN reward_order_requests o USING (redemption_id)"
        " WHERE o.redemption_id IS NULL ORDER BY r.occurred_at, r.redemption_id").fetchall()


def make_order(conn: psycopg.Connection, actor: str, *, weekday: int, today: date | None = None) -> tuple[str, bool]:
    """(order id, created now). Idempotent per cutoff."""
    cutoff = last_cutoff(today or datetime.now(timezone.utc).date(), weekday)
    order_id = f"OC-{cutoff:%Y-%m-%d}"
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('reward_order'))")
        created = conn.execute("INSERT INTO reward_orders(order_id, cutoff, created_by) VALUES (%s, %s, %s)"
                               " ON CONFLICT DO NOTHING RETURNING 1", (order_id, cutoff, actor)).fetchone() is not None
        if created:
            conn.execute(
                "INSERT INTO reward_order_requests(redemption_id, order_id) SELECT r.redemption_id, %s"
                " FROM reward_requests r LEFT JOIN reward_order_requests o USING (redemption_id)"
                " WHERE o.redemption_id IS NULL AND r.occurred_at < %s", (order_id, (cutoff + timedelta(days=1)).isoformat()))
            conn.execute("UPDATE reward_requests SET status = 'ordered' WHERE redemption_id IN"
                         " (SELECT redemption_id FROM reward_order_requests WHERE order_id = %s)", (order_id,))
            audit.record(conn, actor, "reward_order.created", {"order": order_id})
    return order_id, created


def order_lines(conn: psycopg.Connection, order_id: str) -> list[tuple[str, int]]:
    return [(r, int(q)) for r, q in conn.execute(
        "SELECT r.reward_id, sum(r.quantity) FROM reward_order_requests o JOIN reward_requests r USING (redemption_id)"
        " WHERE o.order_id = %s GROUP BY 1 ORDER BY 1", (order_id,))]


def slips(conn: psycopg.Connection, order_id: str) -> list[dict[str, Any]]:
    """One slip per scheduled request, with the customer's data the warehouse needs to deliver."""
    rows = conn.execute(
        "SELECT r.redemption_id, r.station_id, r.reward_id, r.quantity, r.occurred_at, c.data"
        " FROM reward_order_requests o JOIN reward_requests r USING (redemption_id)"
        " LEFT JOIN accounts a ON a.account_id = r.account_id LEFT JOIN customers c ON c.customer_id = a.customer_id"
        " WHERE o.order_id = %s ORDER BY r.station_id, r.redemption_id", (order_id,)).fetchall()
    out = []
    for redemption, station, reward, quantity, at, data in rows:
        data = data or {}
        phones = data.get("phones") or []
        out.append({"redemption_id": redemption, "station": station, "reward_id": reward, "quantity": quantity,
                    "requested_at": at, "name": " ".join(p for p in (data.get("first_name"), data.get("first_surname"),
                                                                      data.get("business_name")) if p),
                    "document": (data.get("document") or {}).get("display", ""),
                    "phone": phones[0]["number"] if phones else ""})
    return out


def replenishment(conn: psycopg.Connection, week_start: date) -> list[tuple[str, str, int]]:
    """(station, reward, quantity granted in the week starting ``week_start``)."""
    end = week_start + timedelta(days=7)
    return [(s, r, int(q)) for s, r, q in conn.execute(
        "SELECT station_id, reward_id, -sum(quantity) FROM stock_movements WHERE kind = 'grant'"
        " AND at >= %s AND at < %s GROUP BY 1, 2 HAVING sum(quantity) < 0 ORDER BY 1, 2",
        (week_start.isoformat(), end.isoformat()))]


def ship(conn: psycopg.Connection, actor: str, shipment_id: str, station_id: str, reward_id: str, quantity: int,
         reason: str = "replenishment") -> None:
    if quantity <= 0:
        raise CentralError("bad_quantity", "la cantidad debe ser mayor que cero", "the quantity must be above zero")
    with conn.transaction():
        row = conn.execute("INSERT INTO reward_shipments(shipment_id, station_id, reward_id, quantity, reason, created_by)"
                           " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING 1",
                           (shipment_id, station_id, reward_id, quantity, reason, actor)).fetchone()
        if row is None:
            raise CentralError("shipment_exists", f"el envío {shipment_id} ya existe", f"shipment {shipment_id} exists")
        audit.record(conn, actor, "reward_shipment.created", {"shipment": shipment_id, "station": station_id,
                                                              "reward": reward_id, "quantity": quantity})


def shipments(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
    """Every shipment with its receipt at the station (the receipt event's time), if any."""
    return conn.execute(
        "SELECT s.shipment_id, s.station_id, s.reward_id, s.quantity, s.created_at, min(m.at)"
        " FROM reward_shipments s LEFT JOIN stock_movements m ON m.kind = 'receipt' AND m.document = s.shipment_id"
        " AND m.station_id = s.station_id AND m.reward_id = s.reward_id"
        " GROUP BY 1, 2, 3, 4, 5 ORDER BY s.created_at, s.shipment_id").fetchall()


def immobilized(conn: psycopg.Connection, days: int, now: datetime | None = None) -> list[tuple[str, str, int, str | None]]:
    """Stock at a station with no grant for ``days`` (or never): (station, reward, stock, last grant)."""
    since = ((now or datetime.now(timezone.utc)) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S")
    return conn.execute(
        "SELECT s.station_id, s.reward_id, s.stock, max(m.at) FROM station_stock s"
        " LEFT JOIN stock_movements m ON m.station_id = s.station_id AND m.reward_id = s.reward_id AND m.kind = 'grant'"
        " WHERE s.stock > 0 GROUP BY 1, 2, 3 HAVING max(m.at) IS NULL OR max(m.at) < %s ORDER BY 1, 2",
        (since,)).fetchall()


def statistics(conn: psycopg.Connection, month_start: date, zone: tzinfo = timezone.utc
               ) -> list[tuple[str, int, int, int]]:
    """Per reward, for the month (the chain's, ``zone``): units granted at stations, units
    requested (scheduled), points."""
    end = date(month_start.year + month_start.month // 12, month_start.month % 12 + 1, 1)
    return [(r, int(g), int(q), int(p)) for r, g, q, p in conn.execute(
        "SELECT reward_id, sum(granted), sum(requested), sum(points) FROM ("
        " SELECT reward_id, -quantity AS granted, 0 AS requested, 0 AS points FROM stock_movements"
        "  WHERE kind = 'grant' AND at >= %(s)s AND at < %(e)s"
        " UNION ALL SELECT reward_id, 0, quantity, -points FROM reward_requests WHERE occurred_at >= %(s)s"
        "  AND occurred_at < %(e)s) t GROUP BY 1 ORDER BY 1", {"s": bound(month_start, zone), "e": bound(end, zone)})]
