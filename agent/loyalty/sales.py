"""Booking sales and their reversals (returns, voids) in the ledger, with their events.

Every function runs inside the caller's write transaction: the sale, its lines, the ledger
movement and the outbox events commit together or not at all.
"""
from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from datetime import datetime
from decimal import ROUND_DOWN, Decimal

from agent.clock import iso
from agent.ids import new_id
from agent.store.outbox import append_event

from .accounts import mask_card
from .config import PartnerSettings
from .errors import LoyaltyError, conflict, not_found
from .holders import Earner, require_sale_customer
from .ledger import record_movement
from .models import Receipt, SaleEvaluation
from .requests import ReturnRequest, SaleRequest, VoidRequest
from .reversal import points_to_reverse

_AMOUNT_PLACES = Decimal("0.0001")


def _by_group(lines: list[tuple[str | None, int]]) -> dict[str, int]:
    """Points per article group: what head office settles with the station."""
    totals: dict[str, int] = defaultdict(int)
    for group, points in lines:
        totals[group or "_none"] += points
    return dict(totals)


def _receipt(r: Receipt | sqlite3.Row) -> dict[str, str]:
    return {"station": r["station"], "pos": r["pos"], "number": r["number"]} if isinstance(r, sqlite3.Row) else r.model_dump()


def receipt_taken(conn: sqlite3.Connection, receipt: Receipt) -> bool:
    key = (receipt.station, receipt.pos, receipt.number)
    return bool(
        conn.execute("SELECT 1 FROM loyalty_sales WHERE station = ? AND pos = ? AND number = ?", key).fetchone()
        or conn.execute("SELECT 1 FROM loyalty_reversals WHERE station = ? AND pos = ? AND number = ?", key).fetchone()
    )


def _refuse_replayed_receipt(conn: sqlite3.Connection, receipt: Receipt, field: str) -> None:
    if receipt_taken(conn, receipt):
        raise conflict(
            "receipt_already_booked",
            f"El comprobante {receipt.station}/{receipt.pos}/{receipt.number} ya fue registrado.",
            f"Receipt {receipt.station}/{receipt.pos}/{receipt.number} was already booked.",
            field=field,
        )


def book_sale(
    conn: sqlite3.Connection,
    *,
    request: SaleRequest,
    earner: Earner,
    evaluation: SaleEvaluation,
    attendant_id: str,
    station: str,
    at: datetime,
    fingerprint: str,
    partner: PartnerSettings,
) -> dict:
    """Book the sale for ``earner`` (its account must exist: see ``holders.open_customer_account``)."""
    # Long on purpose: a booking's writes in one transaction (ledger, card, events, sale row,
    # lines), most of it the event payloads spelled out field by field for head office.
    assert earner.account_id is not None
    _refuse_replayed_receipt(conn, request.receipt, "receipt")
    sale_id = new_id()
    total_amount = sum((line.amount for line in request.lines), Decimal(0))
    movement = record_movement(
        conn, account_id=earner.account_id, card_number=earner.card_number, kind="earn",
        points=evaluation.total_points, station=station, at=at, reference_id=sale_id,
    )
    if earner.card_number is not None and earner.card_first_used_at is None:
        conn.execute("UPDATE loyalty_cards SET first_used_at = ? WHERE card_number = ?", (iso(at), earner.card_number))
    receipt = request.receipt.model_dump()
    by_group = _by_group([(lp.article_group, lp.points) for lp in evaluation.lines])
    append_event(conn, "points.earned", {
        "movement_id": movement.movement_id, "ledger_seq": movement.seq, "sale_id": sale_id,
        "station": station, "receipt": receipt, "account_id": earner.account_id, "card_number": earner.card_number,
        "customer_id": earner.customer_id, "identified_by": earner.identified_by,
        "attendant_id": attendant_id, "session_id": request.session_id, "occurred_at": iso(at),
        "points": evaluation.total_points, "by_article_group": by_group, "program_version": evaluation.program_version,
        "lines": [
            {"line_no": lp.line_no, "sku": lp.sku, "article_group": lp.article_group, "quantity": str(line.quantity),
             "amount": str(line.amount), "points": lp.points,
             "rules": [a.rule_id for a in lp.applied if a.rule_id]}
            for lp, line in zip(evaluation.lines, request.lines)
        ],
    })
    partner_miles = None
    if partner.enabled and earner.partner_member_id and evaluation.total_points > 0:
        partner_miles = int((evaluation.total_points * partner.miles_per_point).to_integral_value(rounding=ROUND_DOWN))
        append_event(conn, "partner.accrual", {
            "program": partner.program, "member_id": earner.partner_member_id, "miles": partner_miles,
            "points": evaluation.total_points, "sale_id": sale_id, "movement_id": movement.movement_id,
            "station": station, "receipt": receipt, "account_id": earner.account_id, "occurred_at": iso(at),
        })
    response = {
        "sale_id": sale_id,
        "movement_id": movement.movement_id,
        "receipt": receipt,
        "account_id": earner.account_id,
        "customer_id": earner.customer_id,
        "identified_by": earner.identified_by,
        "card": mask_card(earner.card_number) if earner.card_number else None,
        "points": evaluation.total_points,
        "provisional": True,  # head office confirms; until then the points count locally
        "partner_miles": partner_miles,
        "evaluation": json.loads(evaluation.model_dump_json()),
    }
    conn.execute(
        "INSERT INTO loyalty_sales(sale_id, station, pos, number, idempotency_key, fingerprint, account_id,"
        " card_number, session_id, occurred_at, total_amount, points, response, customer_id, identified_by)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (sale_id, receipt["station"], receipt["pos"], receipt["number"], None, fingerprint,
         earner.account_id, earner.card_number or "", request.session_id or "", iso(at), str(total_amount),
         evaluation.total_points, json.dumps(response), earner.customer_id, earner.identified_by),
    )
    conn.executemany(
        "INSERT INTO loyalty_sale_lines(sale_id, line_no, sku, article_group, quantity, amount, points)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (sale_id, lp.line_no, lp.sku, lp.article_group, str(line.quantity), str(line.amount), lp.points)
            for lp, line in zip(evaluation.lines, request.lines)
        ],
    )
    return response


def _find_sale(conn: sqlite3.Connection, original: Receipt) -> sqlite3.Row:
    sale = conn.execute(
        "SELECT * FROM loyalty_sales WHERE station = ? AND pos = ? AND number = ?",
        (original.station, original.pos, original.number),
    ).fetchone()
    if sale is None:
        raise not_found("sale_unknown", "No existe la venta original en esta estación.",
                        "The original sale does not exist at this station.", field="original")
    if sale["voided"]:
        raise conflict("sale_already_reversed", "La venta ya fue anulada.", "The sale was already voided.",
                       field="original")
    return sale


def _exceeds(line_no: int) -> LoyaltyError:
    return LoyaltyError(
        "reversal_exceeds_sale",
        f"La devolución de la línea {line_no} supera lo vendido (o lo que queda por devolver).",
        f"The return of line {line_no} exceeds what was sold (or what is left to return).",
        field="lines",
    )


def _plan_lines(lines: list[sqlite3.Row], request: ReturnRequest) -> dict[int, tuple[Decimal, Decimal, bool]]:
    """Per line: (amount returned now, quantity returned now, line now complete)."""
    plan: dict[int, tuple[Decimal, Decimal, bool]] = {}
    by_no = {row["line_no"]: row for row in lines}
    if request.lines is not None:
        for item in request.lines:
            row = by_no.get(item.line_no)
            if row is None:
                raise LoyaltyError("line_unknown", f"La venta no tiene línea {item.line_no}.",
                                   f"The sale has no line {item.line_no}.", field="lines")
            amount, qty = Decimal(row["amount"]), Decimal(row["quantity"])
            done_amount, done_qty = Decimal(row["returned_amount"]), Decimal(row["returned_quantity"])
            if item.quantity is not None:
                if done_qty + item.quantity > qty:
                    raise _exceeds(item.line_no)
                complete = done_qty + item.quantity == qty
                returning = amount - done_amount if complete else (amount * item.quantity / qty).quantize(
                    _AMOUNT_PLACES, rounding=ROUND_DOWN)
                if done_amount + returning > amount:
                    raise _exceeds(item.line_no)
                plan[item.line_no] = (returning, item.quantity, complete)
            else:
                assert item.amount is not None
                if done_amount + item.amount > amount:
                    raise _exceeds(item.line_no)
                plan[item.line_no] = (item.amount, Decimal(0), done_amount + item.amount == amount)
        return plan
    assert request.amount is not None
    remaining = {no: Decimal(r["amount"]) - Decimal(r["returned_amount"]) for no, r in by_no.items()}
    total_remaining = sum(remaining.values(), Decimal(0))
    if request.amount > total_remaining:
        raise LoyaltyError("reversal_exceeds_sale",
                           "El monto devuelto supera lo que queda por devolver de la venta.",
                           "The returned amount exceeds what is left to return of the sale.", field="amount")
    if request.amount == total_remaining:
        return {no: (rem, Decimal(0), True) for no, rem in remaining.items()}
    # Spread in proportion to what is left on each line; the largest line absorbs the rounding.
    largest = max(remaining, key=lambda no: (remaining[no], -no))
    shares = {
        no: (request.amount * rem / total_remaining).quantize(_AMOUNT_PLACES, rounding=ROUND_DOWN)
        for no, rem in remaining.items() if no != largest
    }
    shares[largest] = request.amount - sum(shares.values(), Decimal(0))
    return {no: (share, Decimal(0), False) for no, share in shares.items() if share > 0}


def _reverse(
    conn: sqlite3.Connection,
    *,
    sale: sqlite3.Row,
    kind: str,
    plan: dict[int, tuple[Decimal, Decimal, bool]],
    document: Receipt,
    reason: str,
    station: str,
    at: datetime,
    fingerprint: str,
) -> dict:
    # Long on purpose: like book_sale, a reversal's writes in one transaction, read top down.
    _refuse_replayed_receipt(conn, document, "document")
    lines = {r["line_no"]: r for r in conn.execute(
        "SELECT * FROM loyalty_sale_lines WHERE sale_id = ? ORDER BY line_no", (sale["sale_id"],))}
    reversal_id = new_id()
    detail = []
    total = 0
    for line_no, (returning, qty, complete) in sorted(plan.items()):
        row = lines[line_no]
        amount, done_amount = Decimal(row["amount"]), Decimal(row["returned_amount"])
        if complete:
            points = row["points"] - row["reversed_points"]
        elif amount == 0:
            points = 0  # a free line's points go back only when the line is returned whole
        else:
            points = points_to_reverse(row["points"], amount, done_amount, row["reversed_points"], returning)
        conn.execute(
            "UPDATE loyalty_sale_lines SET returned_amount = ?, returned_quantity = ?, reversed_points = ?"
            " WHERE sale_id = ? AND line_no = ?",
            (str(done_amount + returning), str(Decimal(row["returned_quantity"]) + qty),
             row["reversed_points"] + points, sale["sale_id"], line_no),
        )
        total += points
        detail.append({"line_no": line_no, "sku": row["sku"], "article_group": row["article_group"],
                       "amount": str(returning), "points": -points})
    conn.execute(
        "UPDATE loyalty_sales SET reversed_points = reversed_points + ?, voided = ? WHERE sale_id = ?",
        (total, int(kind == "void"), sale["sale_id"]),
    )
    movement = record_movement(
        conn, account_id=sale["account_id"], card_number=sale["card_number"] or None, kind="reversal",
        points=-total, station=station, at=at, reference_id=reversal_id,
    )
    original = _receipt(sale)
    append_event(conn, "points.reversed", {
        "movement_id": movement.movement_id, "ledger_seq": movement.seq, "reversal_id": reversal_id,
        "kind": kind, "sale_id": sale["sale_id"], "original_receipt": original, "receipt": document.model_dump(),
        "station": station, "account_id": sale["account_id"], "customer_id": sale["customer_id"], "reason": reason,
        "occurred_at": iso(at), "points": -total, "by_article_group": _by_group([(d["article_group"], d["points"]) for d in detail]),
        "lines": detail,
    })
    response = {
        "reversal_id": reversal_id, "kind": kind, "sale_id": sale["sale_id"], "movement_id": movement.movement_id,
        "original_receipt": original, "receipt": document.model_dump(), "customer_id": sale["customer_id"],
        "points": -total, "lines": detail, "sale_points": sale["points"], "sale_reversed_points": sale["reversed_points"] + total,
    }
    conn.execute(
        "INSERT INTO loyalty_reversals(reversal_id, sale_id, kind, station, pos, number, idempotency_key,"
        " fingerprint, reason, points, occurred_at, response) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (reversal_id, sale["sale_id"], kind, document.station, document.pos, document.number, None,
         fingerprint, reason, total, iso(at), json.dumps(response)),
    )
    return response


def return_sale(conn: sqlite3.Connection, *, request: ReturnRequest, station: str, at: datetime,
                fingerprint: str, customer_id: str | None = None) -> dict:
    sale = _find_sale(conn, request.original)
    if customer_id is not None:
        require_sale_customer(sale["customer_id"], customer_id)
    lines = conn.execute("SELECT * FROM loyalty_sale_lines WHERE sale_id = ?", (sale["sale_id"],)).fetchall()
    plan = _plan_lines(lines, request)
    return _reverse(conn, sale=sale, kind="return", plan=plan, document=request.document, reason=request.reason,
                    station=station, at=at, fingerprint=fingerprint)


def void_sale(conn: sqlite3.Connection, *, request: VoidRequest, station: str, at: datetime,
              fingerprint: str, customer_id: str | None = None) -> dict:
    """Cancel the whole sale: reverse whatever earlier returns left; refused if nothing is left."""
    sale = _find_sale(conn, request.original)
    if customer_id is not None:
        require_sale_customer(sale["customer_id"], customer_id)
    lines = conn.execute("SELECT * FROM loyalty_sale_lines WHERE sale_id = ?", (sale["sale_id"],)).fetchall()
    open_lines = [r for r in lines if Decimal(r["returned_amount"]) < Decimal(r["amount"])
                  or r["reversed_points"] < r["points"]
                  or (Decimal(r["amount"]) == 0 and Decimal(r["returned_quantity"]) < Decimal(r["quantity"]))]
    if not open_lines:
        raise conflict("sale_already_reversed", "La venta ya fue devuelta por completo.",
                       "The sale was already fully returned.", field="original")
    plan = {r["line_no"]: (Decimal(r["amount"]) - Decimal(r["returned_amount"]),
                           Decimal(r["quantity"]) - Decimal(r["returned_quantity"]), True) for r in open_lines}
    return _reverse(conn, sale=sale, kind="void", plan=plan, document=request.document, reason=request.reason,
                    station=station, at=at, fingerprint=fingerprint)
