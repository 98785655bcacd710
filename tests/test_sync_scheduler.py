"""The publisher's scheduling rules without a broker or a database (tests/sync needs Mosquitto; this does
not): what goes out next, when an unconfirmed event goes out again, how many fit in one message."""
from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from agent.queue.scheduler import (
    BATCH_OVERHEAD_BYTES,
    CONSUMERS_SETTLE_S,
    EVENT_OVERHEAD_BYTES,
    MAX_RESEND_BACKOFF_S,
    ResendScheduler,
)


def rows(*seqs: int, size: int = 100) -> list[dict[str, Any]]:
    return [{"seq": s, "id": f"e{s}", "size": size} for s in seqs]


def scheduler(**overrides: Any) -> ResendScheduler:
    values: dict[str, Any] = {"ack_timeout_s": 60.0, "batch_max_events": 3, "batch_max_bytes": 10_000}
    values.update(overrides)
    return ResendScheduler(**values)


def test_nothing_is_due_before_the_ack_timeout_then_the_oldest_first() -> None:
    s = scheduler()
    s.published(1, rows(5, 6), now=100.0)
    s.published(2, rows(7), now=110.0)
    s.puback(1), s.puback(2)
    assert s.cursor == 7
    assert s.due(now=159.9) == []
    assert s.due(now=160.0) == [5, 6]
    assert s.due(now=170.0) == [5, 6, 7]


def test_the_due_scan_is_skipped_until_something_can_be_due() -> None:
    s = scheduler()
    s.published(1, rows(1), now=0.0)
    s.puback(1)
    assert s.due(now=10.0) == [] and s.next_due_scan == 60.0
    s.sent[1].at = -1000.0  # would be due, but the scan is not run before next_due_scan
    assert s.due(now=59.0) == []
    assert s.due(now=60.0) == [1]


def test_each_resend_doubles_the_wait_up_to_an_hour() -> None:
    s = scheduler(ack_timeout_s=60.0)
    now = 0.0
    waits = []
    for attempt in range(1, 10):
        s.published(attempt, rows(1), now=now)
        s.puback(attempt)
        due_at = s.due_at(s.sent[1])
        waits.append(due_at - now)
        now = due_at
        assert s.due(now=now) == [1]
    assert waits[:4] == [60.0, 120.0, 240.0, 480.0]
    assert max(waits) == MAX_RESEND_BACKOFF_S and s.sent[1].attempts == 9


def test_a_row_in_flight_is_not_sent_again_while_it_awaits_its_puback() -> None:
    s = scheduler()
    s.published(1, rows(1), now=0.0)  # no PUBACK yet
    assert s.due(now=100.0) == []
    assert s.next_due_scan == 100.05  # looked at again shortly
    assert s.puback(1) == [1]
    assert s.due(now=100.05) == [1]
    assert s.puback(1) is None  # a message we no longer track (or never did)


def test_at_most_one_batch_of_due_rows() -> None:
    s = scheduler(batch_max_events=2)
    s.published(1, rows(3, 1, 2), now=0.0)
    s.puback(1)
    assert s.due(now=60.0) == [1, 2]


def test_acks_confirm_rows_of_this_run_by_seq_and_others_by_id() -> None:
    s = scheduler()
    s.published(1, rows(1, 2), now=0.0)
    seqs, earlier = s.acked(["e2", "from-last-run"])
    assert seqs == [2] and earlier == ["from-last-run"]
    assert set(s.sent) == {1} and "e2" not in s.by_id
    s.puback(1)
    assert s.due(now=60.0) == [1]  # the confirmed row is never sent again


def test_a_dropped_connection_makes_everything_in_flight_due_now() -> None:
    s = scheduler()
    s.published(1, rows(1), now=0.0)
    s.published(2, rows(2), now=0.0)
    s.puback(1)
    s.requeue_inflight()
    assert s.inflight == {}
    assert s.due(now=1.0) == [2]  # 1 was PUBACKed: it waits for its ack timeout


def test_sync_now_makes_every_unconfirmed_row_due() -> None:
    s = scheduler()
    s.published(1, rows(1, 2), now=0.0)
    s.puback(1)
    s.resend_all_now()
    assert s.due(now=1.0) == [1, 2]


def test_a_change_of_head_office_consumers_makes_rows_sent_before_it_due_once_it_settles() -> None:
    s = scheduler(batch_max_events=10)
    s.published(1, rows(1, 2), now=100.0)
    s.puback(1)
    s.consumers_changed(now=101.0)  # a worker lost: rows 1-2 may have gone to it
    s.consumers_changed(now=101.1)  # and another joined a moment later: one resend covers both
    s.published(2, rows(3), now=101.15)  # sent after the changes: its own ack timeout applies
    s.puback(2)
    assert s.due(now=101.1 + CONSUMERS_SETTLE_S - 0.01) == []
    assert s.due(now=101.1 + CONSUMERS_SETTLE_S + 0.05) == [1, 2]  # scans are 50 ms apart at most
    s.published(3, rows(1, 2), now=101.4)
    s.puback(3)
    assert s.due(now=102.0) == []  # resent after the change: not again until their own timer
    assert s.due(now=161.15) == [3]


def test_a_lone_workers_offline_then_online_each_bring_the_rows_again() -> None:
    # The only worker dies: its Last Will's copies go to nobody (no worker subscribed); its
    # "online" a moment later must bring them again, not leave them to the doubled timer.
    s = scheduler(batch_max_events=10)
    s.published(1, rows(1), now=100.0)
    s.puback(1)
    s.consumers_changed(now=101.0)  # "offline"
    assert s.due(now=101.3) == [1]
    s.published(2, rows(1), now=101.3)
    s.puback(2)
    s.consumers_changed(now=101.8)  # "online"
    assert s.due(now=102.25) == []  # HASTEN_MIN_GAP_S after the last such copy ...
    assert s.due(now=102.35) == [1]  # ... and then it goes


def test_a_crash_looping_hub_gets_few_copies_of_each_row() -> None:
    # offline/online every 0.5 s for 10 s while nothing is acked: copies 1, 2, 4 s apart, not 20.
    s = scheduler(batch_max_events=10, ack_timeout_s=3600.0)
    s.published(1, rows(1), now=100.0)
    s.puback(1)
    copies, mid, t = 0, 2, 100.0
    while t < 110.0:
        t = round(t + 0.05, 2)
        if abs(t * 2 - round(t * 2)) < 1e-9:
            s.consumers_changed(now=t)
        if s.due(now=t):
            s.published(mid, rows(1), now=t)
            s.puback(mid)
            copies, mid = copies + 1, mid + 1
    assert copies == 4, copies  # about 1, 2 and 4 s apart


def test_a_resend_a_reconnect_made_due_does_not_use_up_the_consumer_change() -> None:
    s = scheduler(batch_max_events=10)
    s.connected(session_present=True, max_packet=None)
    s.published(1, rows(1), now=100.0)
    s.puback(1)
    s.consumers_changed(now=100.5)  # the Last Wills of a stopping broker
    s.disconnected()
    s.connected(session_present=False, max_packet=None)  # restarted without our session
    assert s.due(now=102.0) == [1]
    s.published(2, rows(1), now=102.0)  # to a broker no consumer has subscribed to yet
    s.puback(2)
    s.consumers_changed(now=102.5)  # a consumer subscribed: "online"
    assert s.due(now=102.8) == [1]


def test_a_consumer_change_waits_for_the_puback_of_a_row_still_in_flight() -> None:
    s = scheduler()
    s.published(1, rows(4), now=100.0)
    s.consumers_changed(now=100.5)
    assert s.due(now=101.0) == []  # in flight: its PUBACK (or the dropped link) decides first
    s.puback(1)
    assert s.due(now=101.1) == [4]


def test_a_replay_reopens_the_range_and_rewinds_the_forward_pass() -> None:
    s = scheduler(batch_max_events=10)
    s.published(1, rows(1, 2, 3, 4, 5), now=0.0)
    s.puback(1)
    s.acked(["e1", "e2"])
    s.replay(2, 4)
    assert s.cursor == 1
    assert s.due(now=1.0) == [3, 4]  # still unconfirmed: again now; 2 comes back through the forward pass
    assert s.fresh(rows(2, 3, 4)) == rows(2)


def test_a_replay_tries_an_event_set_aside_as_too_large_again() -> None:
    s = scheduler(batch_max_events=10)
    s.quarantined.update({3, 9})  # set aside (this run or, loaded from the outbox, an earlier one)
    assert s.fresh(rows(2, 3, 4)) == rows(2, 4)
    s.replay(3, 5)  # head office raised the broker's limit and asks for seq 3 again
    assert s.quarantined == {9}
    assert s.fresh(rows(3)) == rows(3)


def test_forget_drops_a_row_confirmed_meanwhile() -> None:
    s = scheduler()
    s.published(1, rows(1), now=0.0)
    s.forget(1)
    s.forget(1)  # twice is harmless
    assert s.sent == {} and s.by_id == {}


def test_a_batch_holds_what_fits_and_always_at_least_one_event() -> None:
    per_event = 100 + EVENT_OVERHEAD_BYTES
    s = scheduler(batch_max_bytes=BATCH_OVERHEAD_BYTES + 2 * per_event)
    assert s.fit(rows(1, 2, 3)) == rows(1, 2)
    assert s.fit(rows(1, size=50_000)) == rows(1, size=50_000)  # too big alone: sent alone, never stuck
    assert s.fit([]) == []


@given(sizes=st.lists(st.integers(min_value=0, max_value=5000), min_size=1, max_size=50),
       budget=st.integers(min_value=1024, max_value=20_000))
def test_fit_is_the_longest_prefix_within_the_budget(sizes: list[int], budget: int) -> None:
    s = scheduler(batch_max_bytes=budget)
    batch = [{"seq": i, "id": f"e{i}", "size": size} for i, size in enumerate(sizes)]
    fitted = s.fit(batch)
    cost = sum(r["size"] + EVENT_OVERHEAD_BYTES for r in fitted)
    assert fitted == batch[: len(fitted)] and fitted
    assert len(fitted) == 1 or cost <= budget - BATCH_OVERHEAD_BYTES
    if len(fitted) < len(batch):
        assert cost + batch[len(fitted)]["size"] + EVENT_OVERHEAD_BYTES > budget - BATCH_OVERHEAD_BYTES


# ---- issue 12: the broker's packet limit, sessions, held resends, restarts -----------------

def _size(row: dict[str, Any]) -> int:
    return row["size"]


def test_a_batch_fits_the_broker_packet_limit_and_a_larger_event_is_set_aside() -> None:
    s = scheduler(batch_max_events=10, batch_max_bytes=100_000)
    s.connected(session_present=True, max_packet=1_000 + BATCH_OVERHEAD_BYTES)
    batch = rows(1, size=400) + rows(2, size=5_000) + rows(3, 4, 5, size=400)
    fitted, too_large = s.fit_packet(batch, _size)
    assert [r["seq"] for r in fitted] == [1, 3] and [r["seq"] for r in too_large] == [2]
    assert s.fresh(rows(2, 6)) == rows(6)  # set aside: never offered again in this run
    # Without a broker limit, a single event over our own batch size still goes alone.
    plain = scheduler(batch_max_bytes=1_000)
    assert plain.fit_packet(rows(1, size=5_000), _size) == (rows(1, size=5_000), [])


def test_no_session_at_the_broker_makes_everything_unconfirmed_due_now() -> None:
    s = scheduler()
    s.connected(session_present=True, max_packet=None)
    s.published(1, rows(1, 2), now=100.0)
    s.puback(1)
    assert s.due(now=101.0) == []
    s.disconnected()
    s.connected(session_present=False, max_packet=None)
    assert s.due(now=101.0) == [1, 2]


def test_while_head_office_acks_nothing_a_row_the_broker_holds_backs_off_to_the_long_interval() -> None:
    s = scheduler(ack_timeout_s=60.0, resend_interval_s=6 * 3600.0)
    s.connected(session_present=True, max_packet=None)
    sent_at = 100.0
    for attempt in range(12):
        s.published(attempt + 1, rows(1), now=sent_at)
        s.puback(attempt + 1)
        due = s.due_at(s.sent[1])
        sent_at = due
    # Twelve resends reach the 6 h cap (not the 1 h one): ~20 copies over a weekend, not ~60.
    assert due - s.sent[1].at == 6 * 3600.0
    # Once head office acks anything sent later, an unacked row is lost, not held: 1 h cap again.
    s.acked(["e999"], now=s.sent[1].at + 1)
    assert s.due_at(s.sent[1]) - s.sent[1].at == MAX_RESEND_BACKOFF_S


def test_after_a_restart_rows_delivered_before_wait_an_ack_timeout_unless_the_session_is_gone() -> None:
    delivered = [{"seq": 1, "id": "e1", "size": 10, "state": "delivered"},
                 {"seq": 2, "id": "e2", "size": 10, "state": "pending"}]
    s = scheduler()
    s.connected(session_present=True, max_packet=None)
    assert s.fresh(delivered, now=100.0) == delivered[1:]  # only the one never PUBACKed goes now
    assert s.due(now=159.0) == [] and s.due(now=161.0) == [1]
    assert s.acked(["e1"], now=120.0) == ([1], [])
    lost = scheduler()
    lost.connected(session_present=False, max_packet=None)
    assert lost.fresh(delivered, now=100.0) == delivered
