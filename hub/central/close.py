"""The monthly close (seed 002): point expiry, fleet aggregation and the station settlement.

- **Refused** for a month that is not over. Months are the chain's (``chain.timezone``): a month
  runs from midnight of its 1st to midnight of the next 1st *in that zone*, compared with the
  UTC times the hub stores (a sale at 21:00 of the 30th in Bogotá, 02:00Z of the 1st, belongs to
  the month that is ending).
- **Idempotent:** the first run expires points and moves fleet points, once (they change
  balances); every run, first or later, recomputes the settlement, so a re-run after late data
  completes it and a re-print gives the same figures. Who closed and who re-ran are recorded.
- **Expiry, FIFO by earn date:** debits (redemptions, returns, voids, fleet transfers out and
  earlier expiries) consume the oldest points first, so what expires at this close is what was
  earned before the cutoff (``central.expiry_months`` before the month's end) minus every debit
  up to the month's end, when positive. Balances drop and the accounts are queued for the
  directory, so stations learn the new balance.
- **Fleet:** the month's net points of a fleet account move to its owner's account
  (``fleet_owners``); fleet accounts without an owner are listed, not guessed.
- **Settlement:** points by station and article group of the month x that station's point value.
  A station that has not synced past the month's end is listed as incomplete, with the reason.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from typing import Any

import psycopg

from hub.central import audit
from hub.central.errors import CentralError

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_CLOSE_LOCK = 0x636C6F7365  # "close"
# directory_changes.station_id of changes made by head office itself: no station id looks like
# this, so every station holding the account gets the new balance.
HUB_SOURCE = "(hub)"


def parse_month(text: str) -> date:
    match = _MONTH.match(text.strip())
    if not match:
        raise CentralError("bad_month", f"mes inválido {text!r}: use AAAA-MM (p. ej. 2026-11)",
                           f"invalid month {text!r}: use YYYY-MM (e.g. 2026-11)")
    return date(int(match.group(1)), int(match.group(2)), 1)


def add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def starts_at(day: date, zone: tzinfo) -> datetime:
    """Midnight at the start of ``day`` in the chain's zone, as an aware UTC datetime."""
    return datetime.combine(day, time(0), zone).astimezone(timezone.utc)


def bound(day: date, zone: tzinfo) -> str:
    """That moment in the form of the stored ``occurred_at`` texts (UTC, ms, Z), which compare
    in time order as text."""
    return starts_at(day, zone).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass
class CloseResult:
    month: date
    first_run: bool
    closed_by: str
    closed_at: datetime
    runs: int
    expired_accounts: int = 0
    expired_points: int = 0
    fleet_transfers: int = 0
    fleet_without_owner: list[str] = field(default_factory=list)
    settlement_points: int = 0
    incomplete: list[tuple[str, str]] = field(default_factory=list)


def close_month(conn: psycopg.Connection, actor: str, month_text: str, *, expiry_months: int,
                now: datetime | None = None, zone: tzinfo = timezone.utc) -> CloseResult:
    month = parse_month(month_text)
    end = add_months(month, 1)
    now = now or datetime.now(timezone.utc)
    if starts_at(end, zone) > now:
        raise CentralError("month_not_over", f"el mes {month:%Y-%m} no terminó: se puede cerrar desde el {end:%Y-%m-%d}",
                           f"month {month:%Y-%m} is not over: it can be closed from {end:%Y-%m-%d}")
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_CLOSE_LOCK,))
        row = conn.execute("UPDATE monthly_closes SET runs = runs + 1, last_run_at = now(), last_run_by = %s"
                           " WHERE month = %s RETURNING first_closed_by, first_closed_at, runs", (actor, month)).fetchone()
        first = row is None
        if first:
            cutoff = add_months(end, -expiry_months)
            row = conn.execute("INSERT INTO monthly_closes(month, first_closed_by, last_run_by, expiry_cutoff)"
                               " VALUES (%s, %s, %s, %s) RETURNING first_closed_by, first_closed_at, runs",
                               (month, actor, actor, cutoff)).fetchone()
        result = CloseResult(month, first, row[0], row[1], row[2])
        if first:
            _fleet(conn, month, end, result, zone)
            _expire(conn, month, end, add_months(end, -expiry_months), result, zone)
        _settle(conn, month, end, result, zone)
        summary = {"expired_accounts": result.expired_accounts, "expired_points": result.expired_points,
                   "fleet_transfers": result.fleet_transfers, "fleet_without_owner": result.fleet_without_owner,
                   "settlement_points": result.settlement_points,
                   "incomplete": [s for s, _ in result.incomplete]}
        if first:
            conn.execute("UPDATE monthly_closes SET summary = %s WHERE month = %s", (json.dumps(summary), month))
        audit.record(conn, actor, "month.closed" if first else "month.close_rerun", {"month": f"{month:%Y-%m}", **summary})
    return result


def _fleet(conn: psycopg.Connection, month: date, end: date, result: CloseResult, zone: tzinfo) -> None:
    month_rows = {"month": month, "start": bound(month, zone), "end": bound(end, zone)}
    result.fleet_without_owner = [r[0] for r in conn.execute(
        "SELECT DISTINCT m.account_id FROM point_movements m JOIN accounts a USING (account_id)"
        " LEFT JOIN fleet_owners o USING (account_id) WHERE a.is_fleet AND o.account_id IS NULL"
        " AND m.occurred_at >= %(start)s AND m.occurred_at < %(end)s ORDER BY 1", month_rows)]
    conn.execute(
        "INSERT INTO fleet_transfers(month, account_id, owner_account_id, points)"
        " SELECT %(month)s, m.account_id, o.owner_account_id, sum(m.points) FROM point_movements m"
        " JOIN accounts a USING (account_id) JOIN fleet_owners o USING (account_id)"
        " WHERE a.is_fleet AND m.occurred_at >= %(start)s AND m.occurred_at < %(end)s"
        " GROUP BY m.account_id, o.owner_account_id HAVING sum(m.points) > 0", month_rows)
    conn.execute(
        "UPDATE accounts a SET balance = a.balance + t.delta, updated_at = now() FROM ("
        " SELECT account_id, sum(delta) AS delta FROM ("
        "  SELECT account_id, -points AS delta FROM fleet_transfers WHERE month = %(month)s"
        "  UNION ALL SELECT owner_account_id, points FROM fleet_transfers WHERE month = %(month)s) d GROUP BY 1) t"
        " WHERE t.account_id = a.account_id", month_rows)
    conn.execute(
        "INSERT INTO directory_changes(account_id, broadcast, station_id) SELECT account_id, false, %(hub)s"
        " FROM fleet_transfers WHERE month = %(month)s"
        " UNION SELECT owner_account_id, false, %(hub)s FROM fleet_transfers WHERE month = %(month)s",
        {**month_rows, "hub": HUB_SOURCE})
    result.fleet_transfers = int(conn.execute("SELECT count(*) FROM fleet_transfers WHERE month = %s",
                                              (month,)).fetchone()[0])


# Every debit and credit of an account up to the month's end, as (account, points, when): the
# ledger plus fleet transfers (out at the month's end for the fleet account, in for its owner).
_LEDGER = """
    SELECT account_id, points, occurred_at FROM point_movements WHERE occurred_at < %(end)s
    UNION ALL SELECT account_id, -points, %(end)s FROM fleet_transfers WHERE month < %(end_date)s
    UNION ALL SELECT owner_account_id, points, to_char((month + interval '1 month')::timestamp AT TIME ZONE %(zone)s
                                                       AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
                FROM fleet_transfers WHERE month < %(end_date)s
"""


def _zone_name(zone: tzinfo) -> str:
    return getattr(zone, "key", None) or "UTC"


def _expire(conn: psycopg.Connection, month: date, end: date, cutoff: date, result: CloseResult, zone: tzinfo) -> None:
    params = {"end": bound(end, zone), "end_date": end, "cutoff": bound(cutoff, zone), "month": month,
              "zone": _zone_name(zone)}
    conn.execute(
        "INSERT INTO point_expiries(month, account_id, points)"
        " SELECT %(month)s, net.account_id, net.points - coalesce(prev.points, 0) FROM ("
        "  SELECT account_id, coalesce(sum(points) FILTER (WHERE points > 0 AND occurred_at < %(cutoff)s), 0)"
        "   + coalesce(sum(points) FILTER (WHERE points < 0), 0) AS points"
        f"  FROM ({_LEDGER}) l GROUP BY account_id) net"
        " LEFT JOIN (SELECT account_id, sum(points) AS points FROM point_expiries GROUP BY 1) prev USING (account_id)"
        " WHERE net.points - coalesce(prev.points, 0) > 0", params)
    conn.execute("UPDATE accounts a SET balance = a.balance - x.points, updated_at = now() FROM point_expiries x"
                 " WHERE x.month = %s AND x.account_id = a.account_id", (month,))
    conn.execute("INSERT INTO directory_changes(account_id, broadcast, station_id) SELECT account_id, false, %s"
                 " FROM point_expiries WHERE month = %s", (HUB_SOURCE, month))
    count, total = conn.execute("SELECT count(*), coalesce(sum(points), 0) FROM point_expiries WHERE month = %s",
                                (month,)).fetchone()
    result.expired_accounts, result.expired_points = int(count), int(total)


def _settle(conn: psycopg.Connection, month: date, end: date, result: CloseResult, zone: tzinfo) -> None:
    conn.execute("DELETE FROM settlement_lines WHERE month = %s", (month,))
    conn.execute("DELETE FROM settlement_incomplete WHERE month = %s", (month,))
    conn.execute(
        "INSERT INTO settlement_lines(month, station_id, article_group, points, point_value, amount)"
        " SELECT %s, g.station_id, g.article_group, g.points, s.point_value, g.points * s.point_value FROM ("
        "  SELECT station_id, coalesce(article_group, '-') AS article_group, sum(points) AS points FROM sale_lines"
        "  WHERE occurred_at >= %s AND occurred_at < %s GROUP BY 1, 2) g"
        " LEFT JOIN central_stations s USING (station_id)",
        (month, bound(month, zone), bound(end, zone)))
    for station_id, reason in _incomplete(conn, month, end, zone):
        conn.execute("INSERT INTO settlement_incomplete(month, station_id, reason) VALUES (%s, %s, %s)",
                     (month, station_id, reason))
        result.incomplete.append((station_id, reason))
    result.settlement_points = int(conn.execute(
        "SELECT coalesce(sum(points), 0) FROM settlement_lines WHERE month = %s", (month,)).fetchone()[0])


def _incomplete(conn: psycopg.Connection, month: date, end: date, zone: tzinfo) -> list[tuple[str, str]]:
    """A station is complete when an event it created after the month's end has been applied in
    order (so everything before it is in), or when its last status after the month's end said it
    had nothing left to send and no gap is open."""
    rows = conn.execute(
        "SELECT s.station_id, cs.station_id IS NULL, st.contiguous_seq, st.max_seq_seen,"
        "       (SELECT e.created_at FROM events e WHERE e.station_id = st.station_id AND e.epoch = st.epoch"
        "          AND e.seq = st.contiguous_seq), st.status_at, st.pending, st.unconfirmed"
        " FROM (SELECT station_id FROM central_stations UNION SELECT DISTINCT station_id FROM settlement_lines"
        "       WHERE month = %s) s"
        " LEFT JOIN central_stations cs USING (station_id) LEFT JOIN stations st USING (station_id) ORDER BY 1",
        (month,)).fetchall()
    end_ts, end_text = starts_at(end, zone), bound(end, zone)
    out = []
    for station_id, unregistered, contiguous, max_seen, last_created, status_at, pending, unconfirmed in rows:
        if unregistered:
            out.append((station_id, "sin valor de punto: estación no registrada (loyalty-hub station add)"))
        elif contiguous is None:
            out.append((station_id, "nunca sincronizó"))
        elif last_created is not None and last_created >= end_text:
            continue
        elif (status_at is not None and status_at >= end_ts and pending == 0 and unconfirmed == 0
              and contiguous == max_seen):
            continue
        else:
            out.append((station_id, f"sin datos posteriores al {end:%Y-%m-%d} (último evento aplicado: "
                                    f"{(last_created or 'ninguno')[:19]})"))
    return out


def report_rows(conn: psycopg.Connection, month: date) -> dict[str, Any]:
    """Everything a printout needs, read back from the stored close (re-printable as is)."""
    head = conn.execute("SELECT first_closed_by, first_closed_at, last_run_by, last_run_at, runs, expiry_cutoff"
                        " FROM monthly_closes WHERE month = %s", (month,)).fetchone()
    if head is None:
        raise CentralError("month_not_closed", f"el mes {month:%Y-%m} no está cerrado",
                           f"month {month:%Y-%m} is not closed")
    lines = conn.execute("SELECT l.station_id, coalesce(s.name, ''), l.article_group, l.points, l.point_value, l.amount"
                         " FROM settlement_lines l LEFT JOIN central_stations s USING (station_id)"
                         " WHERE month = %s ORDER BY 1, 3", (month,)).fetchall()
    incomplete = conn.execute("SELECT station_id, reason FROM settlement_incomplete WHERE month = %s ORDER BY 1",
                              (month,)).fetchall()
    expiries = conn.execute("SELECT account_id, points FROM point_expiries WHERE month = %s ORDER BY 1",
                            (month,)).fetchall()
    return {"month": month, "head": head, "lines": lines, "incomplete": incomplete, "expiries": expiries}


def expiring_at_next_close(conn: psycopg.Connection, account_ids: list[str], *, expiry_months: int,
                           today: date, zone: tzinfo = timezone.utc) -> tuple[date, dict[str, int]]:
    """What the close of the current month (``today`` in the chain's zone) will expire per
    account (the same FIFO rule, with the debits known today), and that close's date: announced
    to stations in the directory."""
    month = today.replace(day=1)
    end = add_months(month, 1)
    cutoff = add_months(end, -expiry_months)
    params = {"end": bound(end, zone), "end_date": end, "cutoff": bound(cutoff, zone), "ids": account_ids,
              "zone": _zone_name(zone)}
    # Only an account credited before the cutoff (a movement, or a fleet transfer to its owner)
    # can lose points: its debits alone leave the net at or below zero. Found through the
    # (account_id, occurred_at) and owner indexes, so the leader, which asks this for every
    # account it publishes, no longer sums every movement of every changed account each second.
    params["ids"] = [r[0] for r in conn.execute(
        "SELECT a.id FROM unnest(%(ids)s::text[]) AS a(id)"
        " WHERE EXISTS (SELECT 1 FROM point_movements m WHERE m.account_id = a.id AND m.occurred_at < %(cutoff)s"
        "  AND m.points > 0) OR EXISTS (SELECT 1 FROM fleet_transfers f WHERE f.owner_account_id = a.id)", params)]
    if not params["ids"]:
        return end - timedelta(days=1), {}
    rows = conn.execute(
        "SELECT net.account_id, net.points - coalesce(prev.points, 0) FROM ("
        "  SELECT account_id, coalesce(sum(points) FILTER (WHERE points > 0 AND occurred_at < %(cutoff)s), 0)"
        "   + coalesce(sum(points) FILTER (WHERE points < 0), 0) AS points"
        f"  FROM ({_LEDGER}) l WHERE account_id = ANY(%(ids)s) GROUP BY account_id) net"
        " LEFT JOIN (SELECT account_id, sum(points) AS points FROM point_expiries WHERE account_id = ANY(%(ids)s)"
        "  GROUP BY 1) prev USING (account_id) WHERE net.points - coalesce(prev.points, 0) > 0", params).fetchall()
    return end - timedelta(days=1), {account: int(points) for account, points in rows}
