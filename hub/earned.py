"""A run of ``points.earned`` (the fleet's bulk) projected set-based: same effects as
``hub.projections._points_earned`` once per event, in a handful of statements.

Fast path: the rows of ``point_movements`` (an earn movement carries its sale's header:
``sales`` is a view of them, hub.db.schema_010) and ``sale_lines`` are built from the
payloads already parsed in Python and COPYed straight into their tables, inside a savepoint;
balances, ``account_station_seq`` and first card uses follow from small per-account aggregates.
Profiled (``python -m bench hub_ingest``, 2,500-event groups): reading the fields back out of
the stored JSON (``payload->>``, joined to ``events`` by id) cost about as much as writing the
rows, once per projection table.

A COPY cannot skip rows that exist already. They only do when an event is applied a second
time (a reinstalled station's new epoch replaying old movements, an operator's re-application):
then the savepoint is rolled back and the run goes the slow way, ``INSERT ... SELECT ... ON
CONFLICT DO NOTHING`` from the stored payloads, where only the movements inserted now count.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import psycopg

from hub import earned_text, staging


class _Applied(Protocol):
    def account_changed(self, account_id: str, broadcast: bool, station_id: str) -> None: ...


class _Event(Protocol):
    event_id: str
    station_id: str
    payload: dict[str, Any]


def earned_run(cur: psycopg.Cursor, lo: int, events: Sequence[_Event], applied: _Applied) -> None:
    """Apply ``events`` (all ``points.earned``, each station's in seq order); ``lo`` is the
    first one's place in the group's apply order (the ``ord`` of the slow path's staging)."""
    _ensure_accounts(cur, events)
    try:
        with cur.connection.transaction():  # a savepoint: a conflict undoes only this attempt
            _copy_rows(cur, events)
            with cur.connection.pipeline():  # two statements, one round trip
                _account_totals(cur, events)
    except psycopg.errors.UniqueViolation:
        _sql_run(cur, lo, events)
    _first_uses(cur, events)
    for event in events:
        applied.account_changed(event.payload["account_id"], False, event.station_id)


def _ensure_accounts(cur: psycopg.Cursor, events: Sequence[_Event]) -> None:
    # Only a station that skipped account.created (an older agent, a quarantined event) adds any.
    first: dict[str, str] = {}
    for event in events:
        first.setdefault(event.payload["account_id"], event.station_id)
    cur.execute("INSERT INTO accounts(account_id, station_id) SELECT * FROM unnest(%b::text[], %b::text[])"
                " ON CONFLICT DO NOTHING", (list(first), list(first.values())))


_MOVEMENTS = ("COPY point_movements (movement_id, account_id, station_id, ledger_seq, kind, points, card_number,"
              " reference_id, occurred_at, event_id, pos, receipt_number, attendant_id, program_version, customer_id,"
              " identified_by) FROM STDIN")
_LINES = ("COPY sale_lines (movement_id, line_no, sale_id, station_id, kind, sku, article_group, quantity,"
          " amount, points, occurred_at) FROM STDIN")


def _copy_rows(cur: psycopg.Cursor, events: Sequence[_Event]) -> None:
    """Each table's rows as one checked text (hub.earned_text); a table whose text fails the
    check goes row by row through ``write_row``, which escapes."""
    for statement, columns, text_of, rows_of in ((_MOVEMENTS, 16, earned_text.movements, _movement_rows),
                                                 (_LINES, 11, earned_text.sale_lines, _line_rows)):
        text, rows, nulls = text_of(events)
        with cur.copy(statement) as copy:
            if earned_text.checked(text, rows, columns, nulls):
                copy.write(text)
            else:
                for row in rows_of(events):
                    copy.write_row(row)


def _movement_rows(events: Sequence[_Event]) -> Iterator[tuple[Any, ...]]:
    for ev in events:
        p = ev.payload
        yield (p["movement_id"], p["account_id"], ev.station_id, p["ledger_seq"], "earn", p["points"],
               p.get("card_number"), p["sale_id"], p["occurred_at"], ev.event_id, p["receipt"]["pos"],
               p["receipt"]["number"], p["attendant_id"] or None, p["program_version"], p.get("customer_id"),
               p.get("identified_by"))


def _line_rows(events: Sequence[_Event]) -> Iterator[tuple[Any, ...]]:
    for ev in events:
        p = ev.payload
        for line in p["lines"]:
            # Decimals travel as the station wrote them (strings): PostgreSQL parses the numeric.
            quantity = line.get("quantity")
            yield (p["movement_id"], line["line_no"], p["sale_id"], ev.station_id, "earn", line["sku"],
                   line["article_group"], None if quantity is None else str(quantity), str(line["amount"]),
                   line["points"], p["occurred_at"])


def _account_totals(cur: psycopg.Cursor, events: Sequence[_Event]) -> None:
    """Every movement of the run was inserted now (the COPY did not fail): sum them per account."""
    totals: dict[str, int] = {}
    seqs: dict[tuple[str, str], int] = {}
    for ev in events:
        p = ev.payload
        totals[p["account_id"]] = totals.get(p["account_id"], 0) + p["points"]
        key = (p["account_id"], ev.station_id)
        seqs[key] = max(seqs.get(key, p["ledger_seq"]), p["ledger_seq"])
    cur.execute("UPDATE accounts SET balance = balance + t.total, updated_at = now()"
                " FROM unnest(%b::text[], %b::bigint[]) AS t(account_id, total) WHERE accounts.account_id = t.account_id",
                (list(totals), list(totals.values())))
    cur.execute("INSERT INTO account_station_seq(account_id, station_id, ledger_seq)"
                " SELECT * FROM unnest(%b::text[], %b::text[], %b::bigint[])"
                " ON CONFLICT (account_id, station_id) DO UPDATE SET"
                " ledger_seq = GREATEST(account_station_seq.ledger_seq, excluded.ledger_seq)",
                ([a for a, _ in seqs], [s for _, s in seqs], list(seqs.values())))


def _first_uses(cur: psycopg.Cursor, events: Sequence[_Event]) -> None:
    # The first-use bonus is once per card chain-wide: other stations learn the first use.
    first: dict[str, str] = {}
    for ev in events:
        card, at = ev.payload.get("card_number"), ev.payload["occurred_at"]
        if card is not None and (card not in first or at < first[card]):
            first[card] = at
    if first:
        cur.execute("UPDATE cards SET first_used_at = t.at FROM unnest(%b::text[], %b::text[]) AS t(card, at)"
                    " WHERE cards.card_number = t.card AND cards.first_used_at IS NULL", (list(first), list(first.values())))


# The slow path: the run's rows of the staging table, joined to their stored events.
_RUN = ("SELECT r.station_id AS st, e.event_id AS eid, e.payload AS p FROM stage_ready r"
        " JOIN events e ON e.event_id = r.event_id WHERE r.ord >= %(lo)s AND r.ord < %(hi)s")


def _sql_run(cur: psycopg.Cursor, lo: int, events: Sequence[_Event]) -> None:
    """Insert-if-absent from the stored payloads; balances move by the movements inserted now."""
    hi = lo + len(events)
    staging.stage_ready(cur, ((i, ev.event_id, ev.station_id) for i, ev in enumerate(events, lo)))
    run = {"lo": lo, "hi": hi}
    cur.execute(
        f"WITH src AS ({_RUN}),"
        " m AS (INSERT INTO point_movements(movement_id, account_id, station_id, ledger_seq, kind, points,"
        "  card_number, reference_id, occurred_at, event_id, pos, receipt_number, attendant_id, program_version,"
        "  customer_id, identified_by)"
        "  SELECT p->>'movement_id', p->>'account_id', st, (p->>'ledger_seq')::bigint, 'earn', (p->>'points')::bigint,"
        "  p->>'card_number', p->>'sale_id', p->>'occurred_at', eid, p->'receipt'->>'pos', p->'receipt'->>'number',"
        "  NULLIF(p->>'attendant_id', ''), p->>'program_version', p->>'customer_id', p->>'identified_by'"
        "  FROM src ON CONFLICT DO NOTHING"
        "  RETURNING account_id, station_id, ledger_seq, points),"
        # Several movements of one account: sum them first (an UPDATE ... FROM applies one match per row).
        " b AS (UPDATE accounts SET balance = balance + t.total, updated_at = now()"
        "  FROM (SELECT account_id, sum(points) AS total FROM m GROUP BY account_id) t"
        "  WHERE accounts.account_id = t.account_id)"
        " INSERT INTO account_station_seq(account_id, station_id, ledger_seq)"
        " SELECT account_id, station_id, max(ledger_seq) FROM m GROUP BY account_id, station_id"
        " ON CONFLICT (account_id, station_id) DO UPDATE SET"
        " ledger_seq = GREATEST(account_station_seq.ledger_seq, excluded.ledger_seq)", run)
    cur.execute(
        "INSERT INTO sale_lines(movement_id, line_no, sale_id, station_id, kind, sku, article_group, quantity, amount,"
        " points, occurred_at) SELECT p->>'movement_id', (l->>'line_no')::int, p->>'sale_id', st, 'earn', l->>'sku',"
        " l->>'article_group', (l->>'quantity')::numeric, (l->>'amount')::numeric, (l->>'points')::bigint,"
        f" p->>'occurred_at' FROM ({_RUN}) src, jsonb_array_elements(p->'lines') AS l ON CONFLICT DO NOTHING", run)
