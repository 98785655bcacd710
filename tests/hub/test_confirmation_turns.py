"""The leader's deferred balance confirmations (hub.directory.confirmation_turns): each station
once per interval, spread over it, nobody forgotten. Pure function: no broker or database."""
from __future__ import annotations

from hub.directory import confirmation_turns

INTERVAL = 30.0


def _fleet(n: int) -> dict[str, set[str]]:
    return {f"EST-{i:04d}": {f"LA-{i:04d}"} for i in range(n)}


def test_a_fleet_is_confirmed_once_per_interval_spread_over_it() -> None:
    deferred = _fleet(1000)
    seen: dict[str, int] = {}
    per_tick = []
    since = 1000.0
    for tick in range(1, 31):  # the leader's 1 s loop, over one interval
        now = 1000.0 + tick
        due = confirmation_turns(deferred, since, now, INTERVAL)
        per_tick.append(len(due))
        for station, accounts in due.items():
            seen[station] = seen.get(station, 0) + 1
            assert accounts == {"LA-" + station.removeprefix("EST-")}
        since = now
    assert deferred == {}
    assert set(seen.values()) == {1} and len(seen) == 1000
    # 1,000 / 30 = 33 a second on average; the old rule sent all 1,000 in one tick.
    assert max(per_tick) < 80, per_tick


def test_a_station_deferred_after_its_turn_waits_for_the_next_one_and_no_longer() -> None:
    deferred = _fleet(1)
    station = next(iter(deferred))
    turns = []
    since = 0.0
    for tick in range(1, 91):
        now = float(tick)
        if confirmation_turns(deferred, since, now, INTERVAL):
            turns.append(now)
            deferred[station] = {"LA-again"}  # changed again right after its confirmation
        since = now
    assert len(turns) == 3 and turns[1] - turns[0] == INTERVAL and turns[2] - turns[1] == INTERVAL


def test_a_leader_that_fell_a_whole_interval_behind_confirms_everyone() -> None:
    deferred = _fleet(200)
    due = confirmation_turns(deferred, 10.0, 10.0 + INTERVAL, INTERVAL)
    assert len(due) == 200 and deferred == {}


def test_nothing_is_due_in_an_empty_step() -> None:
    deferred = _fleet(50)
    assert confirmation_turns(deferred, 5.0, 5.0, INTERVAL) == {} and len(deferred) == 50
