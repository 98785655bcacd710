"""What the publisher sends next, and when an unconfirmed event is sent again.

Pure bookkeeping: no broker, no database, no clock (the caller passes ``now``, a monotonic
time in seconds), so every rule here is unit-tested directly (tests/sync/test_scheduler.py).
The publisher (agent/queue/publisher.py) reads rows from the outbox and asks this object which
seqs are due, which rows are new, and how many fit in one MQTT message.

Rows are whatever the outbox returns: mappings with at least ``seq``, ``id`` and ``size``.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

Row = TypeVar("Row", bound=Mapping[str, Any])

MAX_RESEND_BACKOFF_S = 3600.0
DUE_NOW = float("-inf")  # a "sent at" that makes a row due for sending whatever the timeout
# JSON around each event and around the batch (ids, keys, separators) on top of the payload size.
EVENT_OVERHEAD_BYTES = 200
BATCH_OVERHEAD_BYTES = 64
# An overdue row still in flight is looked at again this soon (its PUBACK is normally imminent).
_RECHECK_INFLIGHT_S = 0.05


@dataclass
class Sent:
    event_id: str
    at: float
    attempts: int = 1


@dataclass
class Progress:
    """What the broker and head office said since the last flush, to be made durable together."""

    delivered: list[int] = field(default_factory=list)  # seqs PUBACKed
    confirmed: list[int] = field(default_factory=list)  # seqs acked by head office (sent in this run)
    confirmed_ids: list[str] = field(default_factory=list)  # acked ids we did not send in this run


class ResendScheduler:
    def __init__(self, *, ack_timeout_s: float, batch_max_events: int, batch_max_bytes: int) -> None:
        self.ack_timeout_s = ack_timeout_s
        self.batch_max_events = batch_max_events
        self.batch_max_bytes = batch_max_bytes
        self.cursor = 0  # highest seq handed to the broker since start (the forward pass)
        self.sent: dict[int, Sent] = {}  # unconfirmed rows sent since start
        self.by_id: dict[str, int] = {}
        self.inflight: dict[int, list[int]] = {}  # MQTT message id -> seqs awaiting PUBACK
        self.next_due_scan = float("inf")

    # ---- what to send ----------------------------------------------------------------------

    def due_at(self, sent: Sent) -> float:
        """When an unconfirmed row is sent again: the ack timeout, doubling per attempt (capped)."""
        return sent.at + min(MAX_RESEND_BACKOFF_S, self.ack_timeout_s * 2 ** (sent.attempts - 1))

    def due(self, now: float) -> list[int]:
        """Seqs to send again now, oldest first, at most one batch's worth.

        Scanning every sent-but-unconfirmed row is O(backlog): it happens only when something
        can be due, and the scan remembers when the next one will be."""
        if now < self.next_due_scan:
            return []
        inflight = {seq for seqs in self.inflight.values() for seq in seqs}
        due: list[int] = []
        soonest = float("inf")
        for seq, sent in self.sent.items():
            due_at = self.due_at(sent)
            if due_at <= now and seq not in inflight:
                due.append(seq)
            elif due_at < soonest:
                soonest = max(due_at, now + _RECHECK_INFLIGHT_S)
        self.next_due_scan = now if due else soonest
        return sorted(due)[: self.batch_max_events]

    def fresh(self, rows: Iterable[Row]) -> list[Row]:
        """The rows never sent in this run (a window may hold rows in flight, e.g. after a replay)."""
        return [row for row in rows if row["seq"] not in self.sent]

    def fit(self, rows: Sequence[Row]) -> list[Row]:
        """The longest prefix of ``rows`` that fits in one message (always at least one row)."""
        budget = self.batch_max_bytes - BATCH_OVERHEAD_BYTES
        out: list[Row] = []
        for row in rows:
            cost = row["size"] + EVENT_OVERHEAD_BYTES
            if out and budget - cost < 0:
                break
            budget -= cost
            out.append(row)
        return out

    # ---- what happened ---------------------------------------------------------------------

    def published(self, mid: int, rows: Sequence[Mapping[str, Any]], now: float) -> None:
        """``rows`` went out as MQTT message ``mid``."""
        seqs = []
        for row in rows:
            seq = row["seq"]
            seqs.append(seq)
            sent = self.sent.get(seq)
            if sent is None:
                sent = self.sent[seq] = Sent(row["id"], now)
                self.by_id[row["id"]] = seq
            else:
                sent.at, sent.attempts = now, sent.attempts + 1
            self.next_due_scan = min(self.next_due_scan, self.due_at(sent))
            self.cursor = max(self.cursor, seq)
        self.inflight[mid] = seqs

    def puback(self, mid: int) -> list[int] | None:
        """The seqs of message ``mid`` (None for a message we did not track, e.g. a status)."""
        return self.inflight.pop(mid, None)

    def acked(self, event_ids: Iterable[str]) -> tuple[list[int], list[str]]:
        """Head office confirmed ``event_ids``: (seqs sent in this run, ids sent by an earlier run)."""
        seqs: list[int] = []
        unknown: list[str] = []
        for event_id in event_ids:
            seq = self.by_id.pop(event_id, None)
            if seq is None:
                unknown.append(event_id)  # its ack waited at the broker across a restart
            else:
                self.sent.pop(seq, None)
                seqs.append(seq)
        return seqs, unknown

    def forget(self, seq: int) -> None:
        """The row is no longer unconfirmed in the outbox (confirmed meanwhile)."""
        sent = self.sent.pop(seq, None)
        if sent is not None:
            self.by_id.pop(sent.event_id, None)

    def requeue_inflight(self) -> None:
        """The connection dropped: messages without PUBACK may or may not have arrived, so send
        them again now (head office dedupes by id)."""
        for seqs in self.inflight.values():
            for seq in seqs:
                sent = self.sent.get(seq)
                if sent is not None:
                    sent.at = DUE_NOW
        self.inflight.clear()
        self.next_due_scan = 0.0

    def resend_all_now(self) -> None:
        """"Sync now": every unconfirmed row sent in this run is due at once."""
        for sent in self.sent.values():
            sent.at = DUE_NOW
        self.next_due_scan = 0.0

    def replay(self, first_seq: int, last_seq: int) -> None:
        """Head office asked for ``first_seq..last_seq`` again (the outbox reopened them): rows
        still unconfirmed are due now and the forward pass restarts at the range."""
        for seq in range(first_seq, min(last_seq, self.cursor) + 1):
            sent = self.sent.get(seq)
            if sent is not None:
                sent.at = DUE_NOW
                self.next_due_scan = 0.0
        self.cursor = min(self.cursor, first_seq - 1)
