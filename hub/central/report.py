"""Printouts of a monthly close, read back from what the close stored (so a re-print is the
same document): the settlement as CSV and PDF, and the per-account expiry report as CSV."""
from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path
from typing import Any

from fpdf import FPDF


def _money(value: Decimal | None) -> str:
    return "" if value is None else f"{value:,.2f}".replace(",", "_").replace(".", ",").replace("_", ".")


def write_csv(report: dict[str, Any], out_dir: Path) -> list[Path]:
    month = f"{report['month']:%Y-%m}"
    out_dir.mkdir(parents=True, exist_ok=True)
    settlement = out_dir / f"liquidacion-{month}.csv"
    with settlement.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["mes", "estacion", "nombre", "grupo_articulo", "puntos", "valor_punto", "importe"])
        for station, name, group, points, value, amount in report["lines"]:
            writer.writerow([month, station, name, group, points, "" if value is None else value,
                             "" if amount is None else amount])
        for station, reason in report["incomplete"]:
            writer.writerow([month, station, "", "INCOMPLETA", "", "", reason])
    expiries = out_dir / f"vencimientos-{month}.csv"
    with expiries.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["mes", "cuenta", "puntos_vencidos"])
        writer.writerows([month, account, points] for account, points in report["expiries"])
    return [settlement, expiries]


def _latin(text: Any) -> str:
    # The PDF core fonts are Latin-1 (enough for Spanish); anything else prints as '?'.
    return str(text).encode("latin-1", "replace").decode("latin-1")


def write_pdf(report: dict[str, Any], out_dir: Path) -> Path:
    month = f"{report['month']:%Y-%m}"
    first_by, first_at, last_by, last_at, runs, cutoff = report["head"]
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_title(f"Liquidación {month}")
    pdf.set_creation_date(last_at)  # the same close prints the same document
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 14)
    pdf.cell(0, 8, _latin(f"Liquidación de estaciones - {month}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    pdf.cell(0, 5, _latin(f"Cerrado por {first_by} el {first_at:%Y-%m-%d %H:%M} UTC; última ejecución {last_by} "
                          f"el {last_at:%Y-%m-%d %H:%M} UTC ({runs} ejecuciones). Vencen puntos anteriores al {cutoff}."),
             new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    widths = (35, 45, 30, 25, 22, 33)
    pdf.set_font("Helvetica", "B", 9)
    for width, title in zip(widths, ("Estación", "Nombre", "Grupo", "Puntos", "Valor", "Importe")):
        pdf.cell(width, 6, _latin(title), border=1)
    pdf.ln()
    pdf.set_font("Helvetica", "", 9)
    total = Decimal(0)
    for station, name, group, points, value, amount in report["lines"]:
        cells = (station, name[:28], group, f"{points:,}".replace(",", "."), "" if value is None else f"{value:g}",
                 _money(amount))
        for width, text in zip(widths, cells):
            pdf.cell(width, 5, _latin(text), border=1)
        pdf.ln()
        total += amount or 0
    pdf.set_font("Helvetica", "B", 9)
    pdf.cell(sum(widths[:-1]), 6, "Total", border=1)
    pdf.cell(widths[-1], 6, _money(total), border=1, new_x="LMARGIN", new_y="NEXT")
    if report["incomplete"]:
        pdf.ln(4)
        pdf.cell(0, 6, _latin("Estaciones incompletas (no sincronizaron el mes; la liquidación no es definitiva):"),
                 new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 9)
        for station, reason in report["incomplete"]:
            pdf.multi_cell(0, 5, _latin(f"{station}: {reason}"), new_x="LMARGIN", new_y="NEXT")
    path = out_dir / f"liquidacion-{month}.pdf"
    out_dir.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))
    return path
