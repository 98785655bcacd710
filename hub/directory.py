"""Directory downlink: deltas of accounts (with chain-wide balance snapshots) and cards, per
station, on ``loyalty/v1/stations/{station}/config/directory`` (retained, QoS 1).

Who gets what: an account or card that was created or changed state is *broadcast* (any
station may see the card next); an account whose only change is its balance goes to the
stations that hold movements of it and the station that opened it, except a station whose own
movements were the only change (it counts those itself); the others learn the new balance with
the account's next broadcast. Deltas carry full rows, so the changes of one
interval are coalesced into one delta; its ``seq`` comes from one chain-wide counter (gaps are
fine for the station). A station seen for the first time gets one complete delta, because a
retained topic keeps only the last message.

The snapshot's ``station_seq`` maps each station to the highest ledger seq of that station
counted in ``balance``: the ingest applies each station's events in order, so every movement of
that station up to that number is counted, and the station adds only its later ones.
"""
from __future__ import annotations

import logging
import math
import zlib
from collections import defaultdict
from datetime import datetime, timezone, tzinfo
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.queue.signed_config import sign_config
from hub.central.close import expiring_at_next_close
from hub.central.signed_publish import catalog_rows
from hub.mqtt import topic

log = logging.getLogger(__name__)


def iso_ms(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def reserve_seq(conn: psycopg.Connection) -> int:
    # Committed before publishing: a crash after the publish never reuses this number.
    with conn.transaction():
        row = conn.execute("UPDATE directory_state SET delta_seq = delta_seq + 1 RETURNING delta_seq").fetchone()
    assert row is not None
    return int(row[0])


def account_rows(conn: psycopg.Connection, account_ids: list[str], max_movements: int, as_of: str,
                 expiry_months: int = 24, zone: tzinfo = timezone.utc) -> dict[str, dict[str, Any]]:
    # Points the next monthly close will expire (hub.central.close): the station shows them.
    next_close, expiring = expiring_at_next_close(conn, account_ids, expiry_months=expiry_months,
                                                  today=datetime.now(zone).date(), zone=zone)
    rows = conn.execute(
        "SELECT account_id, tier_id, is_fleet, partner_member_id, balance FROM accounts WHERE account_id = ANY(%s)",
        (account_ids,)).fetchall()
    seqs: dict[str, dict[str, int]] = defaultdict(dict)
    for account_id, station, ledger_seq in conn.execute(
            "SELECT account_id, station_id, ledger_seq FROM account_station_seq WHERE account_id = ANY(%s)",
            (account_ids,)):
        seqs[account_id][station] = int(ledger_seq)
    movements: dict[str, list[dict[str, Any]]] = defaultdict(list)
    if max_movements:
        # Per account, the last few by the (account_id, occurred_at DESC) index: ranking every
        # movement of every changed account read all of them, once a second (the leader's
        # largest statement during a burst: 200 accounts of hundreds of movements each).
        for account_id, movement_id, kind, points, station, occurred_at in conn.execute(
                "SELECT a.id, m.movement_id, m.kind, m.points, m.station_id, m.occurred_at"
                " FROM unnest(%s::text[]) AS a(id) CROSS JOIN LATERAL (SELECT * FROM point_movements p"
                "  WHERE p.account_id = a.id ORDER BY p.occurred_at DESC, p.movement_id DESC LIMIT %s) m"
                " ORDER BY a.id, m.occurred_at DESC, m.movement_id DESC",
                (account_ids, max_movements)):
            movements[account_id].append({"movement_id": movement_id, "kind": kind, "points": int(points),
                                          "station": station, "occurred_at": occurred_at})
    out = {}
    for account_id, tier_id, is_fleet, partner, balance in rows:
        out[account_id] = {
            "account_id": account_id, "tier_id": tier_id, "is_fleet": is_fleet, "partner_member_id": partner,
            "snapshot": {"balance": int(balance), "expiring_next_close": expiring.get(account_id, 0),
                         "next_close": next_close.isoformat(), "as_of": as_of,
                         "station_seq": seqs.get(account_id, {})},
            "movements": movements.get(account_id, []),
        }
    return out


def card_rows(conn: psycopg.Connection, account_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    cards: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for number, account_id, role, state, issued_at, first_used_at, replaced_by in conn.execute(
            "SELECT card_number, account_id, role, state, issued_at, first_used_at, replaced_by FROM cards"
            " WHERE account_id = ANY(%s) ORDER BY card_number", (account_ids,)):
        cards[account_id].append({"card_number": number, "account_id": account_id, "role": role, "state": state,
                                  "issued_at": issued_at, "first_used_at": first_used_at, "replaced_by": replaced_by})
    return cards


def delta_body(seq: int, as_of: str, accounts: list[dict[str, Any]], cards: list[dict[str, Any]],
           catalog: dict[str, list[Any]]) -> dict[str, Any]:
    # The current catalog (tiers, messages, rewards) rides along: a retained topic keeps only the
    # last delta, and a station that connects later must still get it.
    return {"seq": seq, "as_of": as_of, "tiers": catalog["tiers"], "accounts": accounts, "cards": cards,
            "messages": catalog["messages"], "removed_messages": [], "rewards": catalog["rewards"]}


def publish_signed(client: mqtt.Client, key: Ed25519PrivateKey, deliveries: list[tuple[str, dict[str, Any]]]) -> None:
    signed: dict[int, bytes] = {}  # one signature per distinct delta, not per station
    for _, delta in deliveries:
        if id(delta) not in signed:
            signed[id(delta)] = sign_config(key, "directory", delta)
    infos = [client.publish(topic(station, "config/directory"), signed[id(delta)], qos=1, retain=True)
             for station, delta in deliveries]
    for info in infos:
        info.wait_for_publish(30)


def publish_changes(conn: psycopg.Connection, client: mqtt.Client, key: Ed25519PrivateKey, max_movements: int,
                    deferred: dict[str, set[str]], expiry_months: int = 24, zone: tzinfo = timezone.utc) -> int:
    """Publish what changed since the last delta; return how many station messages were sent.

    Balance changes a station alone caused are added to ``deferred`` (station -> accounts)
    instead: ``publish_deferred`` confirms them to that station at a slower cadence."""
    top = conn.execute("SELECT max(change_id) FROM directory_changes").fetchone()[0]
    if top is None:
        return 0
    changed: dict[str, bool] = {}
    sources: dict[str, set[str]] = defaultdict(set)
    for account_id, broadcast, station in conn.execute(
            "SELECT account_id, bool_or(broadcast), station_id FROM directory_changes WHERE change_id <= %s"
            " GROUP BY account_id, station_id", (top,)):
        changed[account_id] = changed.get(account_id, False) or broadcast
        sources[account_id].add(station)
    seq = reserve_seq(conn)
    as_of = iso_ms(datetime.now(timezone.utc))
    ids = sorted(changed)
    accounts = account_rows(conn, ids, max_movements, as_of, expiry_months, zone)
    cards = card_rows(conn, ids)
    catalog = catalog_rows(conn)
    stations = [r[0] for r in conn.execute("SELECT station_id FROM stations ORDER BY station_id")]
    broadcast = [a for a in ids if changed[a] and a in accounts]
    targeted: dict[str, list[str]] = defaultdict(list)
    for account_id, station in conn.execute(
            "SELECT account_id, station_id FROM account_station_seq WHERE account_id = ANY(%s)"
            " UNION SELECT account_id, station_id FROM accounts WHERE account_id = ANY(%s) AND station_id IS NOT NULL",
            ([a for a in ids if not changed[a]],) * 2):
        # A station that alone moved the balance already counts its own movements: nothing new for it
        # now; it learns that head office counted them (its pending_local_points) a little later.
        if account_id not in accounts:
            continue
        if sources[account_id] == {station}:
            deferred.setdefault(station, set()).add(account_id)
        else:
            targeted[station].append(account_id)
    common = delta_body(seq, as_of, [accounts[a] for a in broadcast], [c for a in broadcast for c in cards[a]], catalog) \
        if broadcast else None
    deliveries = []
    for station in stations:
        mine = sorted(set(broadcast) | set(targeted.get(station, [])))
        if station not in targeted:
            if common is not None:
                deliveries.append((station, common))
            continue
        deliveries.append((station, delta_body(seq, as_of, [accounts[a] for a in mine], [c for a in mine for c in cards[a]],
                                           catalog)))
    publish_signed(client, key, deliveries)
    with conn.transaction():
        conn.execute("DELETE FROM directory_changes WHERE change_id <= %s", (top,))
    log.debug("directory delta %d: %d accounts to %d stations", seq, len(ids), len(deliveries))
    return len(deliveries)


def confirmation_turns(deferred: dict[str, set[str]], since: float, now: float,
                       interval_s: float) -> dict[str, set[str]]:
    """Take out of ``deferred`` the stations whose turn came in (``since``, ``now``] (monotonic
    seconds). Each station's turn comes once per ``interval_s``, at an offset of its own within
    it (crc32 of its id: stable, no per-process salt), so that a fleet's confirmations spread
    over the interval instead of 1,000 signed deltas leaving in one second, every interval, on
    top of whatever the workers are ingesting then. A leader that fell behind by a whole
    interval confirms everyone."""
    due: dict[str, set[str]] = {}
    for station in list(deferred):
        offset = zlib.crc32(station.encode()) / 2**32 * interval_s
        if math.floor((now - offset) / interval_s) > math.floor((since - offset) / interval_s):
            due[station] = deferred.pop(station)
    return due


def publish_deferred(conn: psycopg.Connection, client: mqtt.Client, key: Ed25519PrivateKey, max_movements: int,
                     deferred: dict[str, set[str]], expiry_months: int = 24, zone: tzinfo = timezone.utc) -> int:
    """Confirm to each station the balances of the accounts it alone moved (one delta each)."""
    if not deferred:
        return 0
    seq = reserve_seq(conn)
    as_of = iso_ms(datetime.now(timezone.utc))
    ids = sorted({a for accounts in deferred.values() for a in accounts})
    accounts = account_rows(conn, ids, max_movements, as_of, expiry_months, zone)
    cards = card_rows(conn, ids)
    catalog = catalog_rows(conn)
    deliveries = [(station, delta_body(seq, as_of, [accounts[a] for a in sorted(mine) if a in accounts],
                                   [c for a in sorted(mine) for c in cards[a]], catalog))
                  for station, mine in deferred.items()]
    publish_signed(client, key, deliveries)
    deferred.clear()
    return len(deliveries)


# A station refuses a configuration document over 16 MiB (docs/head-office.md): a complete delta
# for a new station is sent in pages, each a valid delta of its own (accounts with their cards:
# rows are upserts and gaps in seq are fine), published in seq order on the station's topic.
MAX_PAGE_BYTES = 8 * 1024 * 1024
PAGE_ACCOUNTS = 5000


def publish_full_to_new_stations(conn: psycopg.Connection, client: mqtt.Client, key: Ed25519PrivateKey,
                                 max_movements: int, expiry_months: int = 24, zone: tzinfo = timezone.utc,
                                 max_page_bytes: int = MAX_PAGE_BYTES) -> int:
    new = [r[0] for r in conn.execute("SELECT station_id FROM stations WHERE NOT directory_full_sent")]
    if not new:
        return 0
    ids = [r[0] for r in conn.execute("SELECT account_id FROM accounts ORDER BY account_id")]
    catalog = catalog_rows(conn)
    if ids or any(catalog.values()):
        pending = [ids[i:i + PAGE_ACCOUNTS] for i in range(0, len(ids), PAGE_ACCOUNTS)] or [[]]
        while pending:
            page = pending.pop(0)
            signed = _signed_page(conn, key, page, catalog, max_movements, expiry_months, zone)
            if len(signed) > max_page_bytes and len(page) > 1:  # too big: two halves (its seq stays unused)
                pending[:0] = [page[:len(page) // 2], page[len(page) // 2:]]
                continue
            infos = [client.publish(topic(station, "config/directory"), signed, qos=1, retain=True) for station in new]
            for info in infos:
                info.wait_for_publish(30)
    with conn.transaction():
        conn.execute("UPDATE stations SET directory_full_sent = true WHERE station_id = ANY(%s)", (new,))
    return len(new)


def _signed_page(conn: psycopg.Connection, key: Ed25519PrivateKey, ids: list[str], catalog: dict[str, list[Any]],
                 max_movements: int, expiry_months: int, zone: tzinfo = timezone.utc) -> bytes:
    seq = reserve_seq(conn)
    as_of = iso_ms(datetime.now(timezone.utc))
    accounts = account_rows(conn, ids, max_movements, as_of, expiry_months, zone)
    cards = card_rows(conn, ids)
    return sign_config(key, "directory", delta_body(seq, as_of, [accounts[a] for a in ids],
                                                    [c for a in ids for c in cards[a]], catalog))
