"""Counters and timings the features report, read by ``/metrics`` (``agent.ops.metrics``).

Features call ``TELEMETRY.count("pin_failures")`` or ``TELEMETRY.observe("idcard_read_seconds",
1.2)`` without knowing about Prometheus: this module is plain Python, cheap (a lock and a dict
update), and process-wide like ``agent.clock.CLOCK`` because the code that counts (a PIN check
deep in the cards feature) has no handle on the web app that exports. Counts start at zero with
each process, as Prometheus counters do; persistent counts (507 refusals) come from the database.
"""
from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field

Labels = tuple[tuple[str, str], ...]

# Upper bounds (seconds) of the timing buckets: from a fast barcode to a slow ID-card read.
BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)


@dataclass
class Timing:
    buckets: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    count: int = 0
    total: float = 0.0


class Telemetry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, dict[Labels, float]] = defaultdict(lambda: defaultdict(float))
        self._timings: dict[str, dict[Labels, Timing]] = defaultdict(dict)

    def count(self, name: str, amount: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            self._counts[name][key] += amount

    def observe(self, name: str, seconds: float, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            timing = self._timings[name].get(key)
            if timing is None:
                timing = self._timings[name][key] = Timing()
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    timing.buckets[i] += 1
            timing.count += 1
            timing.total += seconds

    def counts(self, name: str) -> dict[Labels, float]:
        with self._lock:
            return dict(self._counts.get(name, {}))

    def timings(self, name: str) -> dict[Labels, Timing]:
        with self._lock:
            return {k: Timing(list(t.buckets), t.count, t.total) for k, t in self._timings.get(name, {}).items()}


TELEMETRY = Telemetry()
