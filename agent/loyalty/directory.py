"""Chain-wide directory from head office: tiers, accounts (+ balance snapshots), cards,
customer messages, the rewards catalog and the website's enrollment requests
(``enrollment_requests``), applied from downlink delta updates.

Deltas are numbered; one already applied (``seq`` <= last applied) is ignored, so the
downlink may redeliver freely. Gaps are accepted: head office may coalesce deltas, and each
delta carries full rows, not differences. Head office is authoritative, except that a card
changed locally *after* the delta was produced (``as_of``) keeps its local state until head
office has seen our event (otherwise a stale delta would un-block a lost card).
"""
from __future__ import annotations

import sqlite3
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from agent.clock import iso

from . import enrollment_requests
from .enrollment_requests import EnrollmentRequestIn
from .models import Code



class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TierIn(_Strict):
    tier_id: Code
    name: str = Field(min_length=1, max_length=64)
    multiplier: Decimal = Field(gt=0, le=100)


class SnapshotIn(_Strict):
    balance: int
    expiring_next_close: int = Field(ge=0)
    next_close: date | None = None
    as_of: AwareDatetime
    # Per station: the highest ledger seq of that station already counted in ``balance``.
    station_seq: dict[str, int] = Field(default_factory=dict)


class RemoteMovementIn(_Strict):
    movement_id: Code
    kind: Code
    points: int
    station: Code
    occurred_at: AwareDatetime


class AccountIn(_Strict):
    account_id: Code
    tier_id: Code | None = None
    is_fleet: bool = False
    partner_member_id: str | None = Field(default=None, min_length=1, max_length=32, pattern=r"^[A-Za-z0-9-]+$")
    snapshot: SnapshotIn | None = None
    movements: list[RemoteMovementIn] = Field(default_factory=list, max_length=30)


class CardIn(_Strict):
    card_number: Code
    account_id: Code | None = None
    role: Literal["primary", "additional", "vehicle"] | None = None
    state: Literal["unassigned", "issued", "blocked", "replaced"]
    issued_at: AwareDatetime | None = None
    first_used_at: AwareDatetime | None = None
    replaced_by: Code | None = None


class MessageIn(_Strict):
    message_id: Code
    target_type: Literal["card", "account", "tier", "all"]
    target_value: str = Field(default="", max_length=64)
    text_es: str = Field(min_length=1, max_length=500)
    text_en: str | None = Field(default=None, max_length=500)
    valid_from: AwareDatetime
    valid_to: AwareDatetime


class RewardIn(_Strict):
    reward_id: Code
    name: str = Field(min_length=1, max_length=120)
    points_cost: int = Field(gt=0, le=10_000_000)
    delivery: Literal["immediate", "scheduled"]
    active: bool = True
    low_threshold: int = Field(default=0, ge=0)


class DirectoryDelta(_Strict):
    seq: int = Field(gt=0)
    as_of: AwareDatetime
    tiers: list[TierIn] = Field(default_factory=list)
    accounts: list[AccountIn] = Field(default_factory=list)
    cards: list[CardIn] = Field(default_factory=list)
    messages: list[MessageIn] = Field(default_factory=list)
    removed_messages: list[Code] = Field(default_factory=list)
    rewards: list[RewardIn] = Field(default_factory=list)
    # Since issue 16: sent only to stations that announce ``enrollment_requests`` in their
    # availability message (older agents refuse a field they do not know).
    enrollment_requests: list[EnrollmentRequestIn] = Field(default_factory=list, max_length=10_000)
    removed_enrollment_requests: list[Code] = Field(default_factory=list)


def _iso(value: datetime | None) -> str | None:
    return iso(value) if value is not None else None


def apply_delta(conn: sqlite3.Connection, delta: DirectoryDelta, station_id: str) -> bool:
    """Apply one delta inside the caller's write transaction; False if it was already applied."""
    # Long on purpose: one upsert per kind of row, in the order foreign keys need (tiers,
    # accounts, cards, snapshots, messages, rewards); each is a single statement, read top down.
    last = conn.execute("SELECT last_seq FROM loyalty_directory_state WHERE one = 1").fetchone()[0]
    if delta.seq <= last:
        return False
    as_of = iso(delta.as_of)
    conn.executemany(
        "INSERT INTO loyalty_tiers(tier_id, name, multiplier, updated_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT(tier_id) DO UPDATE SET name = excluded.name, multiplier = excluded.multiplier,"
        " updated_at = excluded.updated_at",
        [(t.tier_id, t.name, str(t.multiplier), as_of) for t in delta.tiers],
    )
    conn.executemany(
        "INSERT INTO loyalty_accounts(account_id, tier_id, is_fleet, partner_member_id, origin,"
        " created_at, updated_at) VALUES (?, ?, ?, ?, 'directory', ?, ?)"
        " ON CONFLICT(account_id) DO UPDATE SET tier_id = excluded.tier_id, is_fleet = excluded.is_fleet,"
        " partner_member_id = excluded.partner_member_id, updated_at = excluded.updated_at",
        [(a.account_id, a.tier_id, int(a.is_fleet), a.partner_member_id, as_of, as_of) for a in delta.accounts],
    )
    snapshots = [
        (
            a.snapshot.balance,
            a.snapshot.expiring_next_close,
            a.snapshot.next_close.isoformat() if a.snapshot.next_close else None,
            iso(a.snapshot.as_of),
            a.snapshot.station_seq.get(station_id, 0),
            a.account_id,
            iso(a.snapshot.as_of),
        )
        for a in delta.accounts
        if a.snapshot is not None
    ]
    # A snapshot older than the one we hold is ignored (deltas can be coalesced out of order).
    conn.executemany(
        "UPDATE loyalty_accounts SET snapshot_balance = ?, snapshot_expiring = ?, snapshot_next_close = ?,"
        " snapshot_as_of = ?, snapshot_seq = ? WHERE account_id = ?"
        " AND (snapshot_as_of IS NULL OR snapshot_as_of <= ?)",
        snapshots,
    )
    conn.executemany(
        "INSERT OR REPLACE INTO loyalty_remote_movements(movement_id, account_id, kind, points, station,"
        " occurred_at) VALUES (?, ?, ?, ?, ?, ?)",
        [
            (m.movement_id, a.account_id, m.kind, m.points, m.station, iso(m.occurred_at))
            for a in delta.accounts
            for m in a.movements
        ],
    )
    conn.executemany(
        "INSERT INTO loyalty_cards(card_number, account_id, role, state, issued_at, first_used_at,"
        " replaced_by, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT(card_number) DO UPDATE SET account_id = excluded.account_id, role = excluded.role,"
        " state = excluded.state, issued_at = excluded.issued_at,"
        " first_used_at = COALESCE(loyalty_cards.first_used_at, excluded.first_used_at),"
        " replaced_by = excluded.replaced_by, updated_at = excluded.updated_at"
        " WHERE loyalty_cards.updated_at <= excluded.updated_at",
        [
            (c.card_number, c.account_id, c.role, c.state, _iso(c.issued_at), _iso(c.first_used_at),
             c.replaced_by, as_of)
            for c in delta.cards
        ],
    )
    conn.executemany(
        "INSERT OR REPLACE INTO loyalty_messages(message_id, target_type, target_value, text_es, text_en,"
        " valid_from, valid_to) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (m.message_id, m.target_type, m.target_value if m.target_type != "all" else "", m.text_es,
             m.text_en, iso(m.valid_from), iso(m.valid_to))
            for m in delta.messages
        ],
    )
    conn.executemany("DELETE FROM loyalty_messages WHERE message_id = ?", [(m,) for m in delta.removed_messages])
    conn.executemany(
        "INSERT INTO loyalty_rewards(reward_id, name, points_cost, delivery, active, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(reward_id) DO UPDATE SET name = excluded.name,"
        " points_cost = excluded.points_cost, delivery = excluded.delivery, active = excluded.active,"
        " updated_at = excluded.updated_at",
        [(r.reward_id, r.name, r.points_cost, r.delivery, int(r.active), as_of) for r in delta.rewards],
    )
    conn.executemany(
        "INSERT INTO loyalty_reward_stock(reward_id, quantity, low_threshold) VALUES (?, 0, ?)"
        " ON CONFLICT(reward_id) DO UPDATE SET low_threshold = excluded.low_threshold",
        [(r.reward_id, r.low_threshold) for r in delta.rewards],
    )
    # Expiry is measured against head office's clock (as_of): the station's may be off.
    enrollment_requests.apply(conn, delta.enrollment_requests, delta.removed_enrollment_requests, as_of)
    conn.execute("UPDATE loyalty_directory_state SET last_seq = ? WHERE one = 1", (delta.seq,))
    return True


def messages_for(
    conn: sqlite3.Connection, card_number: str, account_id: str | None, tier_id: str | None, now: datetime
) -> list[dict[str, str | None]]:
    """Messages valid now for this card, its account, its tier, or everyone."""
    at = iso(now)
    rows = conn.execute(
        "SELECT message_id, text_es, text_en, valid_to FROM loyalty_messages"
        " WHERE valid_from <= ? AND ? <= valid_to AND ("
        "  (target_type = 'card' AND target_value = ?) OR (target_type = 'account' AND target_value = ?)"
        "  OR (target_type = 'tier' AND target_value = ?) OR target_type = 'all')"
        " ORDER BY valid_from, message_id",
        (at, at, card_number, account_id or "", tier_id or ""),
    ).fetchall()
    return [dict(r) for r in rows]
