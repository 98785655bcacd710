"""Migration 002: how far behind the hub is on each station's messages.

``behind_until``: the hub received an event of this station that the station had created L
seconds earlier, so it may still be working through up to L seconds of that station's queued
messages (in this worker's inbox, another worker's, or the broker's) until ``received + L``.
No replay is requested, and no replay is declared unsatisfied, before then: a hole the hub has
not yet read is not a lost event.
"""
SQL = r"""
ALTER TABLE stations ADD COLUMN behind_until timestamptz;
"""
