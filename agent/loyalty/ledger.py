"""Points ledger: signed movements per account, balance and the last movements.

Balance = head office's last snapshot + this station's movements after the snapshot's seq
(head office tells us, per station, up to which of our movements it has counted). Points
expiring at the next monthly close come only from the snapshot: expiry is head office's job.
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

from agent.clock import iso
from agent.ids import new_id

MOVEMENTS_SHOWN = 30


@dataclass(frozen=True)
class Movement:
    seq: int
    movement_id: str


def record_movement(
    conn: sqlite3.Connection,
    *,
    account_id: str,
    card_number: str | None,
    kind: str,
    points: int,
    station: str,
    at: datetime,
    reference_id: str,
) -> Movement:
    movement_id = new_id()
    cur = conn.execute(
        "INSERT INTO loyalty_ledger(movement_id, account_id, card_number, kind, points, station, occurred_at,"
        " reference_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (movement_id, account_id, card_number, kind, points, station, iso(at), reference_id),
    )
    return Movement(seq=int(cur.lastrowid), movement_id=movement_id)


@dataclass(frozen=True)
class Balance:
    account_id: str
    points: int
    pending_local_points: int
    snapshot_points: int
    snapshot_as_of: str | None
    expiring_next_close: int
    next_close: str | None

    def as_dict(self) -> dict[str, object]:
        return {
            "account_id": self.account_id,
            "points": self.points,
            "snapshot_points": self.snapshot_points,
            "pending_local_points": self.pending_local_points,
            "snapshot_as_of": self.snapshot_as_of,
            "expiring_next_close": self.expiring_next_close,
            "next_close": self.next_close,
        }


def balance(conn: sqlite3.Connection, account_id: str) -> Balance | None:
    row = conn.execute(
        "SELECT a.snapshot_balance, a.snapshot_expiring, a.snapshot_next_close, a.snapshot_as_of,"
        " (SELECT COALESCE(SUM(l.points), 0) FROM loyalty_ledger l"
        "   WHERE l.account_id = a.account_id AND l.seq > a.snapshot_seq) AS pending"
        " FROM loyalty_accounts a WHERE a.account_id = ?",
        (account_id,),
    ).fetchone()
    if row is None:
        return None
    return Balance(
        account_id=account_id,
        points=row["snapshot_balance"] + row["pending"],
        pending_local_points=row["pending"],
        snapshot_points=row["snapshot_balance"],
        snapshot_as_of=row["snapshot_as_of"],
        expiring_next_close=row["snapshot_expiring"],
        next_close=row["snapshot_next_close"],
    )


def last_movements(conn: sqlite3.Connection, account_id: str, zone, limit: int = MOVEMENTS_SHOWN) -> list[dict]:
    """Local and head-office movements merged, newest first, with local date and time.

    Head office echoes our own movements back with the same id: those are shown once.
    """
    rows = conn.execute(
        "SELECT movement_id, kind, points, station, occurred_at FROM ("
        "  SELECT movement_id, kind, points, station, occurred_at FROM"
        "   (SELECT * FROM loyalty_ledger WHERE account_id = ? ORDER BY seq DESC LIMIT ?)"
        "  UNION"
        "  SELECT movement_id, kind, points, station, occurred_at FROM"
        "   (SELECT * FROM loyalty_remote_movements WHERE account_id = ? ORDER BY occurred_at DESC LIMIT ?)"
        ") ORDER BY occurred_at DESC, movement_id DESC",
        (account_id, limit, account_id, limit),
    ).fetchall()
    seen: set[str] = set()
    out: list[dict] = []
    for r in rows:
        if r["movement_id"] in seen:
            continue
        seen.add(r["movement_id"])
        local = datetime.fromisoformat(r["occurred_at"].replace("Z", "+00:00")).astimezone(zone)
        out.append(
            {
                "movement_id": r["movement_id"],
                "kind": r["kind"],
                "date": local.date().isoformat(),
                "time": local.strftime("%H:%M:%S"),
                "station": r["station"],
                "points": r["points"],
            }
        )
        if len(out) == limit:
            break
    return out
