"""What the publisher sends next, and when an unconfirmed event is sent again.

Pure bookkeeping: no broker, no database, no clock (the caller passes ``now``, a monotonic
time in seconds), so every rule here is unit-tested directly (tests/sync/test_scheduler.py).
The publisher (agent/queue/publisher.py) reads rows from the outbox and asks this object which
seqs are due, which rows are new, and how many fit in one MQTT message.

Rows are whatever the outbox returns: mappings with at least ``seq``, ``id`` and ``size``.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
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
# After head office's consumers change, rows sent before the change go again this long after the
# last change: the workers of one restart, or of one broker outage, announce themselves within a
# moment of each other, and one resend covers them all.
CONSUMERS_SETTLE_S = 0.2
# A row sent again for consumer changes goes again for a later one no sooner than this, doubling
# per such copy (never later than its own timer): a hub crash-looping (offline, online, ...)
# while it acks nothing gets a few copies of each backlog, not one per restart; a lone worker's
# "offline" (whose copies went to nobody) and its "online" a second later both count.
HASTEN_MIN_GAP_S = 1.0


def hastened_due_at(changed_at: float, copies: int, last_copy_at: float) -> float:
    """When a consumer change at ``changed_at`` makes a row sent before it go again, given the
    ``copies`` already sent for earlier changes (the last at ``last_copy_at``): once the changes of
    that moment settle, and no sooner than HASTEN_MIN_GAP_S after the last such copy, doubling
    per copy. The caller keeps the earlier of this and the row's own timer."""
    gap = HASTEN_MIN_GAP_S * 2 ** (copies - 1) if copies else 0.0
    return max(changed_at + CONSUMERS_SETTLE_S, last_copy_at + gap)


@dataclass
class Sent:
    event_id: str
    at: float
    attempts: int = 1
    epoch: int = 0  # the connection it went out on
    delivered: bool = False  # PUBACKed on that connection
    hastened: int = 0  # copies sent because head office's consumers changed
    hastened_at: float = float("-inf")  # when the last of them went


@dataclass
class Progress:
    """What the broker and head office said since the last flush, to be made durable together."""

    delivered: list[int] = field(default_factory=list)  # seqs PUBACKed
    confirmed: list[int] = field(default_factory=list)  # seqs acked by head office (sent in this run)
    confirmed_ids: list[str] = field(default_factory=list)  # acked ids we did not send in this run


class ResendScheduler:
    """Resend rules (issue 12): a row the broker took (PUBACK) on the connection still up is held
    by its persistent session; while head office acks nothing, its resends back off up to
    ``resend_interval_s`` (see ``due_at``), so copies do not pile up at the broker while head
    office's consumer is away. A broker that kept
    no session (``session_present = 0``) gets everything unconfirmed at once. After a restart,
    rows a previous run got PUBACKed wait one ack timeout for their ack instead of going out at
    once: only what was in flight is sent again. Batches fit the broker's Maximum Packet Size; a
    single event larger than it is set aside (``fit_packet``) and never blocks the queue."""

    def __init__(self, *, ack_timeout_s: float, batch_max_events: int, batch_max_bytes: int,
                 resend_interval_s: float = 6 * 3600.0) -> None:
        self.ack_timeout_s = ack_timeout_s
        self.batch_max_events = batch_max_events
        self.batch_max_bytes = batch_max_bytes
        self.resend_interval_s = resend_interval_s
        self.link_epoch = 0
        self.link_up = False
        self.kept_session = False
        self.last_ack_at = float("-inf")
        self.max_packet: int | None = None  # the broker's CONNACK Maximum Packet Size
        self.quarantined: set[int] = set()
        self.cursor = 0  # highest seq handed to the broker since start (the forward pass)
        self.sent: dict[int, Sent] = {}  # unconfirmed rows sent since start
        self.by_id: dict[str, int] = {}
        self.inflight: dict[int, list[int]] = {}  # MQTT message id -> seqs awaiting PUBACK
        self.next_due_scan = float("inf")
        self.consumers_changed_at = float("-inf")

    # ---- what to send ----------------------------------------------------------------------

    def due_at(self, sent: Sent) -> float:
        """When an unconfirmed row is sent again: the ack timeout, doubling per attempt, capped at
        an hour; while the broker holds it (PUBACK on the link still up) and head office has acked
        nothing since, capped at ``resend_interval_s`` instead: a consumer away for a weekend gets
        about 20 copies of each event at the broker, not one an hour. (Not "never": a broker that
        lost head office's subscription, e.g. restarted without persistence, PUBACKs and drops.)"""
        due_at = self._timer_due_at(sent)
        if sent.at < self.consumers_changed_at:
            return min(due_at, hastened_due_at(self.consumers_changed_at, sent.hastened, sent.hastened_at))
        return due_at

    def _timer_due_at(self, sent: Sent) -> float:
        cap = MAX_RESEND_BACKOFF_S
        if sent.delivered and self.link_up and sent.epoch == self.link_epoch and self.last_ack_at <= sent.at:
            cap = max(cap, self.resend_interval_s)
        return sent.at + min(cap, self.ack_timeout_s * 2 ** (sent.attempts - 1))

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
        # Rows held for head office's consumer become due when acks flow again: look again
        # within an ack timeout, not only at the long resend interval.
        self.next_due_scan = now if due else min(soonest, now + self.ack_timeout_s)
        return sorted(due)[: self.batch_max_events]

    def fresh(self, rows: Iterable[Row], now: float | None = None) -> list[Row]:
        """The rows never sent in this run (a window may hold rows in flight, e.g. after a replay).

        With ``now``, rows a previous run got PUBACKed (``state`` delivered) are not returned but
        held one ack timeout for their ack, when the broker kept our session."""
        out: list[Row] = []
        for row in rows:
            seq = row["seq"]
            if seq in self.sent or seq in self.quarantined:
                continue
            if now is not None and self.kept_session and _state(row) == "delivered":
                self.sent[seq] = Sent(row["id"], now, epoch=-1)
                self.by_id[row["id"]] = seq
                self.next_due_scan = min(self.next_due_scan, now + self.ack_timeout_s)
                self.cursor = max(self.cursor, seq)
                continue
            out.append(row)
        return out

    def fit_packet(self, rows: Sequence[Row], size_of: Callable[[Row], int]) -> tuple[list[Row], list[Row]]:
        """(rows for one message, rows too large for any message). ``size_of`` is a row's exact
        encoded size with its separator. The broker's Maximum Packet Size is a hard limit
        (``topic_overhead`` included by the caller in ``max_packet``); our batch size a soft one
        (a single larger event still goes alone)."""
        hard = self.max_packet - BATCH_OVERHEAD_BYTES if self.max_packet else None
        budget = min(self.batch_max_bytes, self.max_packet or self.batch_max_bytes) - BATCH_OVERHEAD_BYTES
        out: list[Row] = []
        too_large: list[Row] = []
        for row in rows:
            cost = size_of(row)
            if hard is not None and cost > hard:
                too_large.append(row)
                self.quarantined.add(row["seq"])
                self.cursor = max(self.cursor, row["seq"])
                continue
            if out and budget - cost < 0:
                break
            budget -= cost
            out.append(row)
        return out, too_large

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
                sent = self.sent[seq] = Sent(row["id"], now, epoch=self.link_epoch)
                self.by_id[row["id"]] = seq
            else:
                # The copy a consumer change asked for (not one its timer, a reconnect or a replay
                # made due anyway): see consumers_changed.
                if sent.at < self.consumers_changed_at and self._timer_due_at(sent) > now:
                    sent.hastened, sent.hastened_at = sent.hastened + 1, now
                sent.at, sent.attempts = now, sent.attempts + 1
                sent.epoch, sent.delivered = self.link_epoch, False
            self.next_due_scan = min(self.next_due_scan, self.due_at(sent))
            self.cursor = max(self.cursor, seq)
        self.inflight[mid] = seqs

    def puback(self, mid: int) -> list[int] | None:
        """The seqs of message ``mid`` (None for a message we did not track, e.g. a status)."""
        seqs = self.inflight.pop(mid, None)
        for seq in seqs or ():
            sent = self.sent.get(seq)
            if sent is not None:
                sent.delivered = True
        return seqs

    def connected(self, *, session_present: bool, max_packet: int | None) -> None:
        """A new connection: a new link epoch; if the broker kept nothing of ours, all is due now."""
        self.link_epoch += 1
        self.link_up = True
        self.kept_session = session_present
        self.max_packet = max_packet
        if not session_present:
            self.resend_all_now()

    def disconnected(self) -> None:
        self.link_up = False
        self.requeue_inflight()

    def acked(self, event_ids: Iterable[str], now: float | None = None) -> tuple[list[int], list[str]]:
        """Head office confirmed ``event_ids``: (seqs sent in this run, ids sent by an earlier run)."""
        if now is not None:
            if self.last_ack_at < now - 1.0:
                self.next_due_scan = min(self.next_due_scan, now + 1.0)  # held rows may be due now
            self.last_ack_at = now
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

    def consumers_changed(self, now: float) -> None:
        """Head office said one of its consumers joined or was lost (``HUB_CONSUMERS``). Every
        row sent before ``now`` and still unconfirmed goes again shortly, not after the ack
        timeout: the broker drops what it had routed to a consumer that died (Mosquitto does not
        hand it to another member) and what arrived while no consumer was subscribed (after a
        broker restart the stations often reconnect first). Head office dedupes by id.

        Rows sent again for earlier changes wait ``HASTEN_MIN_GAP_S``, doubling per such copy,
        after the last of them (their own timer still applies): a hub crash-looping (offline,
        online, offline...) while it acks nothing must not turn every station's whole backlog
        into a copy every few seconds. Copies its timer, a reconnect or a replay made due do not
        count."""
        self.consumers_changed_at = now
        self.next_due_scan = min(self.next_due_scan, now + CONSUMERS_SETTLE_S)

    def replay(self, first_seq: int, last_seq: int) -> None:
        """Head office asked for ``first_seq..last_seq`` again (the outbox reopened them): rows
        still unconfirmed are due now and the forward pass restarts at the range. Events set aside
        as too large are tried again too (head office raised the broker's limit, then asked)."""
        self.quarantined -= {seq for seq in self.quarantined if first_seq <= seq <= last_seq}
        for seq in range(first_seq, min(last_seq, self.cursor) + 1):
            sent = self.sent.get(seq)
            if sent is not None:
                sent.at = DUE_NOW
                self.next_due_scan = 0.0
        self.cursor = min(self.cursor, first_seq - 1)


def _state(row: Mapping[str, Any]) -> str | None:
    try:
        return row["state"]
    except (KeyError, IndexError):  # a mapping or an sqlite3.Row without the column
        return None
