"""COPY text of a ``points.earned`` run's movements and sale lines, formatted directly.

``Copy.write_row`` costs a Python-level call, a tuple and psycopg's per-value dumping for every
row (profiled, ``bench hub_ingest`` burst: a third of the hub process's CPU went to the COPYs'
rows). Here each table's rows of a run become one string, made by one f-string per row,
and go to PostgreSQL in one ``write``.

No value is escaped: the payloads were validated against their schema (ids, codes, decimals,
date-times), so a tab, newline, carriage return or backslash is not expected in them, and the
text is *checked* instead of trusted: it must hold exactly one newline per row, columns - 1
tabs per row, no carriage return and exactly one backslash per NULL written (``\\N``). Any
value holding one of those characters changes a count, and the caller then writes that
table's rows through ``write_row`` (which escapes) instead. Values print as ``write_row``
prints them: ``str`` for strings and integers, ``\\N`` for None.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

NULL = "\\N"


class _Event(Protocol):
    event_id: str
    station_id: str
    payload: dict[str, Any]


def checked(text: str, rows: int, columns: int, nulls: int) -> bool:
    """Whether ``text`` is exactly ``rows`` rows of ``columns`` columns with ``nulls`` NULLs."""
    return (text.count("\n") == rows and text.count("\t") == rows * (columns - 1)
            and text.count("\\") == nulls and "\r" not in text)


def movements(events: Sequence[_Event]) -> tuple[str, int, int]:
    """(text, rows, NULLs) for ``point_movements (movement_id, account_id, station_id, ledger_seq,
    kind, points, card_number, reference_id, occurred_at, event_id, pos, receipt_number,
    attendant_id, program_version, customer_id, identified_by)``: an earn movement carries its
    sale's header (hub.db.schema_010)."""
    out, nulls = [], 0
    for ev in events:
        p = ev.payload
        receipt = p["receipt"]
        card, attendant, version = p.get("card_number"), p["attendant_id"] or None, p["program_version"]
        customer, identified = p.get("customer_id"), p.get("identified_by")
        # Written out rather than looped over: this runs for every event of a burst.
        if card is None:
            card, nulls = NULL, nulls + 1
        if attendant is None:
            attendant, nulls = NULL, nulls + 1
        if version is None:
            version, nulls = NULL, nulls + 1
        if customer is None:
            customer, nulls = NULL, nulls + 1
        if identified is None:
            identified, nulls = NULL, nulls + 1
        out.append(f"{p['movement_id']}\t{p['account_id']}\t{ev.station_id}\t{p['ledger_seq']}\tearn\t{p['points']}"
                   f"\t{card}\t{p['sale_id']}\t{p['occurred_at']}\t{ev.event_id}\t{receipt['pos']}\t{receipt['number']}"
                   f"\t{attendant}\t{version}\t{customer}\t{identified}\n")
    return "".join(out), len(out), nulls


def sale_lines(events: Sequence[_Event]) -> tuple[str, int, int]:
    """(text, rows, NULLs) for ``sale_lines (movement_id, line_no, sale_id, station_id, kind, sku,
    article_group, quantity, amount, points, occurred_at)``."""
    out, nulls = [], 0
    for ev in events:
        p = ev.payload
        head = f"{p['movement_id']}\t"
        tail = f"\t{p['sale_id']}\t{ev.station_id}\tearn\t"
        for line in p["lines"]:
            quantity = line.get("quantity")
            if quantity is None:
                quantity, nulls = NULL, nulls + 1
            out.append(f"{head}{line['line_no']}{tail}{line['sku']}\t{line['article_group']}\t{quantity}"
                       f"\t{line['amount']}\t{line['points']}\t{p['occurred_at']}\n")
    return "".join(out), len(out), nulls
