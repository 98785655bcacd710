"""Projections: what each event type changes, applied in the ingest transaction.

Called only for a station's next event in ``seq`` order (the ingest advances the watermark), so
balances and customer versions see each station's events in the order they happened. Every
statement is idempotent on its own key as well: a reinstalled station's epoch or an operator's
re-application never counts a movement twice.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

import psycopg

from hub.alerts import raise_alert
from hub.earned import earned_run


@dataclass
class Applied:
    """What the transaction must also publish or record once it commits."""

    # (account id, station whose event changed it) -> broadcast to every station
    directory: dict[tuple[str, str], bool] = field(default_factory=dict)

    def account_changed(self, account_id: str, broadcast: bool, station_id: str) -> None:
        key = (account_id, station_id)
        self.directory[key] = self.directory.get(key, False) or broadcast


class Event(NamedTuple):
    """One event to apply. A named tuple: built once per applied event (50,000 for a burst), and
    cheaper to build than a frozen dataclass, whose ``__init__`` calls ``object.__setattr__``
    per field."""

    event_id: str
    station_id: str
    seq: int
    type: str
    created_at: str
    payload: dict[str, Any]


Projection = Callable[[psycopg.Cursor, Event, Applied], None]


def _customer(cur: psycopg.Cursor, ev: Event, applied: Applied) -> None:
    customer = ev.payload["customer"]
    doc = customer["document"]
    data = json.dumps(customer, ensure_ascii=False)
    # Only a newer version replaces the current one: two stations may edit one customer, and a
    # late resend must not roll it back (the contract's customer.version).
    cur.execute(
        "INSERT INTO customers(customer_id, version, document_country, document_type, document_number, data,"
        " station_id) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (customer_id) DO UPDATE SET"
        " version = excluded.version, document_country = excluded.document_country,"
        " document_type = excluded.document_type, document_number = excluded.document_number,"
        " data = excluded.data, station_id = excluded.station_id, updated_at = now()"
        " WHERE customers.version < excluded.version",
        (customer["id"], customer["version"], doc["country"], doc["type"], doc["number"], data, ev.station_id))
    cur.execute(
        "INSERT INTO customer_history(customer_id, version, event_id, station_id, changes, actor, data, at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (customer["id"], customer["version"], ev.event_id, ev.station_id,
         json.dumps(ev.payload["changes"], ensure_ascii=False) if "changes" in ev.payload else None,
         ev.payload.get("actor"), data, ev.created_at))


def _biometric(cur: psycopg.Cursor, ev: Event, applied: Applied) -> None:
    enrolled = ev.type == "biometric.enrolled"
    finger = ev.payload["finger"]
    if finger is None:  # deleted: every finger of this customer at this station
        cur.execute("UPDATE biometric_enrollments SET enrolled = false, event_id = %s"
                    " WHERE customer_id = %s AND station_id = %s",
                    (ev.event_id, ev.payload["customer_id"], ev.station_id))
        return
    cur.execute(
        "INSERT INTO biometric_enrollments(customer_id, finger, station_id, enrolled, event_id)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (customer_id, finger, station_id)"
        " DO UPDATE SET enrolled = excluded.enrolled, event_id = excluded.event_id",
        (ev.payload["customer_id"], finger, ev.station_id, enrolled, ev.event_id))


def _ensure_account(cur: psycopg.Cursor, account_id: str, station_id: str) -> None:
    # Only a station that skipped account.created (an older agent, a quarantined event) gets here.
    cur.execute("INSERT INTO accounts(account_id, station_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (account_id, station_id))


def _account_created(cur: psycopg.Cursor, ev: Event, applied: Applied) -> None:
    p = ev.payload
    cur.execute(
        "INSERT INTO accounts(account_id, customer_id, tier_id, is_fleet, partner_member_id, station_id, created_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (account_id) DO UPDATE SET"
        " customer_id = excluded.customer_id, tier_id = excluded.tier_id, is_fleet = excluded.is_fleet,"
        " partner_member_id = excluded.partner_member_id, station_id = excluded.station_id,"
        " created_at = excluded.created_at, updated_at = now()",
        (p["account_id"], p["customer_id"], p["tier_id"], p["is_fleet"], p["partner_member_id"], ev.station_id, p["at"]))
    applied.account_changed(p["account_id"], True, ev.station_id)


def _card_issued(cur: psycopg.Cursor, ev: Event, applied: Applied) -> None:
    p = ev.payload
    _ensure_account(cur, p["account_id"], ev.station_id)
    cur.execute(
        "INSERT INTO cards(card_number, account_id, role, state, issued_at, station_id)"
        " VALUES (%s, %s, %s, 'issued', %s, %s) ON CONFLICT (card_number) DO UPDATE SET"
        " account_id = excluded.account_id, role = excluded.role, state = 'issued', issued_at = excluded.issued_at,"
        " station_id = excluded.station_id, replaced_by = NULL, block_reason = NULL, updated_at = now()",
        (p["card_number"], p["account_id"], p["role"], p["at"], ev.station_id))
    applied.account_changed(p["account_id"], True, ev.station_id)


def _card_blocked(cur: psycopg.Cursor, ev: Event, applied: Applied) -> None:
    p = ev.payload
    _ensure_account(cur, p["account_id"], ev.station_id)
    cur.execute(
        "INSERT INTO cards(card_number, account_id, state, station_id, block_reason) VALUES (%s, %s, 'blocked', %s, %s)"
        " ON CONFLICT (card_number) DO UPDATE SET state = 'blocked', block_reason = excluded.block_reason,"
        " updated_at = now()",
        (p["card_number"], p["account_id"], ev.station_id, p["reason"]))
    applied.account_changed(p["account_id"], True, ev.station_id)


def _card_replaced(cur: psycopg.Cursor, ev: Event, applied: Applied) -> None:
    p = ev.payload
    _ensure_account(cur, p["account_id"], ev.station_id)
    cur.execute(
        "INSERT INTO cards(card_number, account_id, role, state, replaced_by, station_id) VALUES"
        " (%s, %s, %s, 'replaced', %s, %s) ON CONFLICT (card_number) DO UPDATE SET state = 'replaced',"
        " replaced_by = excluded.replaced_by, updated_at = now()",
        (p["old_card"], p["account_id"], p["role"], p["new_card"], ev.station_id))
    cur.execute(
        "INSERT INTO cards(card_number, account_id, role, state, issued_at, first_used_at, station_id)"
        " SELECT %s, %s, %s, 'issued', old.issued_at, old.first_used_at, %s FROM cards old WHERE old.card_number = %s"
        " ON CONFLICT (card_number) DO UPDATE SET account_id = excluded.account_id, role = excluded.role,"
        " state = 'issued', issued_at = excluded.issued_at, first_used_at = excluded.first_used_at, updated_at = now()",
        (p["new_card"], p["account_id"], p["role"], ev.station_id, p["old_card"]))
    applied.account_changed(p["account_id"], True, ev.station_id)


def _movement(cur: psycopg.Cursor, ev: Event, applied: Applied, kind: str, reference: str,
              sale: tuple[Any, ...] = (None,) * 6) -> None:
    """Book a ledger movement once; the chain-wide balance and the station's seq move with it.
    ``sale``: an earn movement's sale header (pos, receipt number, attendant, program version,
    customer, identified by; ``sales`` is a view of earn movements, hub.db.schema_010).

    One statement and no result read, so the ingest's pipeline never waits for it."""
    p = ev.payload
    _ensure_account(cur, p["account_id"], ev.station_id)
    cur.execute(
        "WITH m AS (INSERT INTO point_movements(movement_id, account_id, station_id, ledger_seq, kind, points,"
        "  card_number, reference_id, occurred_at, event_id, pos, receipt_number, attendant_id, program_version,"
        "  customer_id, identified_by) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        "  ON CONFLICT DO NOTHING RETURNING account_id, station_id, ledger_seq, points),"
        " b AS (UPDATE accounts SET balance = balance + m.points, updated_at = now() FROM m"
        "  WHERE accounts.account_id = m.account_id)"
        " INSERT INTO account_station_seq(account_id, station_id, ledger_seq)"
        " SELECT account_id, station_id, ledger_seq FROM m ON CONFLICT (account_id, station_id) DO UPDATE SET"
        " ledger_seq = GREATEST(account_station_seq.ledger_seq, excluded.ledger_seq)",
        (p["movement_id"], p["account_id"], ev.station_id, p["ledger_seq"], kind, p["points"], p.get("card_number"),
         reference, p["occurred_at"], ev.event_id, *sale))
    applied.account_changed(p["account_id"], False, ev.station_id)


def _lines(cur: psycopg.Cursor, ev: Event, kind: str, sale_id: str) -> None:
    p = ev.payload
    cur.executemany(
        "INSERT INTO sale_lines(movement_id, line_no, sale_id, station_id, kind, sku, article_group, quantity, amount,"
        " points, occurred_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        [(p["movement_id"], line["line_no"], sale_id, ev.station_id, kind, line["sku"], line["article_group"],
          Decimal(line["quantity"]) if "quantity" in line else None, Decimal(line["amount"]), line["points"],
          p["occurred_at"]) for line in p["lines"]])


def _points_earned(cur: psycopg.Cursor, ev: Event, applied: Applied) -> None:
    p = ev.payload
    _movement(cur, ev, applied, "earn", p["sale_id"],
              (p["receipt"]["pos"], p["receipt"]["number"], p["attendant_id"] or None, p["program_version"],
               p.get("customer_id"), p.get("identified_by")))  # the last two: absent from older agents' sales
    _lines(cur, ev, "earn", p["sale_id"])
    # The first-use bonus is once per card chain-wide: other stations learn the first use.
    cur.execute("UPDATE cards SET first_used_at = %s WHERE card_number = %s AND first_used_at IS NULL",
                (p["occurred_at"], p["card_number"]))


def _points_reversed(cur: psycopg.Cursor, ev: Event, applied: Applied) -> None:
    p = ev.payload
    _movement(cur, ev, applied, p["kind"], p["reversal_id"])
    _lines(cur, ev, p["kind"], p["sale_id"])


def _points_redeemed(cur: psycopg.Cursor, ev: Event, applied: Applied) -> None:
    _movement(cur, ev, applied, "redeem", ev.payload["redemption_id"])


def _reward_requested(cur: psycopg.Cursor, ev: Event, applied: Applied) -> None:
    p = ev.payload
    cur.execute(
        "INSERT INTO reward_requests(redemption_id, station_id, account_id, card_number, reward_id, quantity, points,"
        " occurred_at, event_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (p["redemption_id"], ev.station_id, p["account_id"], p["card_number"], p["reward_id"], p["quantity"],
         p["points"], p["occurred_at"], ev.event_id))


def _stock_counted(cur: psycopg.Cursor, ev: Event, applied: Applied) -> None:
    """A physical count is a stock movement of kind ``count``: the difference, and the counted stock."""
    p = ev.payload
    _stock_movement(cur, Event(ev.event_id, ev.station_id, ev.seq, ev.type, ev.created_at, {
        "movement_id": p["movement_id"], "reward_id": p["reward_id"], "kind": "count", "quantity": p["difference"],
        "stock_after": p["counted"], "document": p["document"], "at": p["at"]}), applied)


def _replenishment_requested(cur: psycopg.Cursor, ev: Event, applied: Applied) -> None:
    p = ev.payload
    cur.execute("INSERT INTO station_replenishments(replenishment_id, station_id, lines, at, event_id)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (p["replenishment_id"], ev.station_id, json.dumps(p["lines"]), p["at"], ev.event_id))


def _stock_movement(cur: psycopg.Cursor, ev: Event, applied: Applied) -> None:
    p = ev.payload
    cur.execute(
        "INSERT INTO stock_movements(movement_id, station_id, reward_id, kind, quantity, stock_after, redemption_id,"
        " document, at, event_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (p["movement_id"], ev.station_id, p["reward_id"], p["kind"], p["quantity"], p["stock_after"],
         p.get("redemption_id"), p.get("document"), p["at"], ev.event_id))
    cur.execute(
        "INSERT INTO station_stock(station_id, reward_id, stock) VALUES (%s, %s, %s) ON CONFLICT (station_id, reward_id)"
        " DO UPDATE SET stock = excluded.stock, low = station_stock.low AND excluded.stock <= station_stock.stock,"
        " updated_at = now()",
        (ev.station_id, p["reward_id"], p["stock_after"]))


def _stock_low(cur: psycopg.Cursor, ev: Event, applied: Applied) -> None:
    p = ev.payload
    cur.execute("UPDATE station_stock SET low = true WHERE station_id = %s AND reward_id = %s",
                (ev.station_id, p["reward_id"]))
    raise_alert(cur, ev.station_id, "station", "reward_stock_low",
                {"reward_id": p["reward_id"], "stock": p["stock"], "threshold": p["threshold"]})


def _partner_accrual(cur: psycopg.Cursor, ev: Event, applied: Applied) -> None:
    p = ev.payload
    cur.execute(
        "INSERT INTO partner_accruals(movement_id, program, member_id, miles, points, sale_id, station_id, account_id,"
        " occurred_at, event_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (p["movement_id"], p["program"], p["member_id"], p["miles"], p["points"], p["sale_id"], ev.station_id,
         p["account_id"], p["occurred_at"], ev.event_id))


def _pins_imported(cur: psycopg.Cursor, ev: Event, applied: Applied) -> None:
    cur.execute("INSERT INTO pin_bundle_imports(event_id, station_id, version, attendants) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT DO NOTHING", (ev.event_id, ev.station_id, ev.payload["version"], ev.payload["attendants"]))


def _pin_key_changed(cur: psycopg.Cursor, ev: Event, applied: Applied) -> None:
    # Security: head office's bundle key was replaced at the station by a local command.
    raise_alert(cur, ev.station_id, "station", "pin_key_changed", {"set_at": ev.payload["set_at"]})


def _pin_paused(cur: psycopg.Cursor, ev: Event, applied: Applied) -> None:
    p = ev.payload
    raise_alert(cur, ev.station_id, "station", "station_pin_paused",
                {"failed_attempts": p["failed_attempts"], "paused_until": p["paused_until"]})


def _locked_out(cur: psycopg.Cursor, ev: Event, applied: Applied) -> None:
    p = ev.payload
    cur.execute(
        "INSERT INTO attendant_lockouts(event_id, station_id, attendant_id, lockout_number, locked_until,"
        " failed_attempts) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (ev.event_id, ev.station_id, p["attendant_id"], p["lockout_number"], p["locked_until"], p["failed_attempts"]))
    raise_alert(cur, ev.station_id, "station", "attendant_locked_out",
                {"attendant_id": p["attendant_id"], "lockout_number": p["lockout_number"]})


PROJECTIONS: dict[str, Projection] = {
    "customer.created": _customer,
    "customer.updated": _customer,
    "biometric.enrolled": _biometric,
    "biometric.deleted": _biometric,
    "account.created": _account_created,
    "card.issued": _card_issued,
    "card.blocked": _card_blocked,
    "card.replaced": _card_replaced,
    "points.earned": _points_earned,
    "points.reversed": _points_reversed,
    "points.redeemed": _points_redeemed,
    "reward.requested": _reward_requested,
    "reward.stock_movement": _stock_movement,
    "reward.stock_low": _stock_low,
    "partner.accrual": _partner_accrual,
    "pins.bundle_imported": _pins_imported,
    "attendant.locked_out": _locked_out,
    "reward.stock_counted": _stock_counted,
    "reward.replenishment_requested": _replenishment_requested,
    "pins.key_changed": _pin_key_changed,
    "station.pin_paused": _pin_paused,
}


def apply(cur: psycopg.Cursor, event: Event, applied: Applied) -> None:
    PROJECTIONS[event.type](cur, event, applied)


def apply_in_order(cur: psycopg.Cursor, events: list[Event], applied: Applied) -> None:
    """Apply the group's events in order (each station's in seq order): a run of consecutive
    ``points.earned`` (the fleet's bulk, and commutative: sums, maxima, set-once) by a few
    statements (hub.earned); the other types one by one, pipelined."""
    start = 0
    while start < len(events):
        end = start
        earned = events[start].type == "points.earned"
        while end < len(events) and (events[end].type == "points.earned") == earned:
            end += 1
        if earned:
            earned_run(cur, start, events[start:end], applied)
        else:
            with cur.connection.pipeline():
                for event in events[start:end]:
                    apply(cur, event, applied)
        start = end
