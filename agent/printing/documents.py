"""The documents the station prints, built once and rendered either as plain text (for POS that
print themselves) or as ESC/POS (the station's printer). Pure: no I/O.

Seed 002: "visualizar e imprimir" the last 30 movements; a voucher for a reward handed out; for
a scheduled reward, a slip "con los datos del cliente" for the warehouse.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Style = Literal["title", "bold", "normal", "rule"]


@dataclass(frozen=True)
class Line:
    text: str = ""
    style: Style = "normal"


@dataclass(frozen=True)
class PrintDocument:
    kind: str
    lines: tuple[Line, ...]

    def as_text(self, width: int = 42) -> str:
        """Plain text, ``width`` columns (long values wrap), titles centred.

        >>> print(PrintDocument("x", (Line("Hola", "title"), Line(style="rule"), Line("a: 1"))).as_text(10))
           Hola
        ----------
        a: 1
        <BLANKLINE>
        """
        out: list[str] = []
        for line in self.lines:
            if line.style == "rule":
                out.append("-" * width)
            elif line.style == "title":
                out.extend(chunk.center(width).rstrip() for chunk in _wrap(line.text, width))
            else:
                out.extend(_wrap(line.text, width))
        return "\n".join(out) + "\n"


def _wrap(text: str, width: int) -> list[str]:
    return [text[i:i + width] for i in range(0, len(text), width)] or [""]


def _pair(label: str, value: object, width: int = 42) -> Line:
    """``label ........ value`` on one line when it fits."""
    text, right = f"{label} ", f" {value}"
    return Line(text + "." * max(1, width - len(text) - len(right)) + right)


_KINDS = {"earn": "compra", "redeem": "canje", "reversal": "devolución"}


def movements_document(*, station: str, account_id: str, balance: Any, movements: list[dict[str, Any]],
                       printed_at: str, width: int = 42) -> PrintDocument:
    lines = [Line("Últimos movimientos", "title"), Line(f"Estación {station}"), Line(f"Cuenta {account_id}"),
             Line(f"Impreso {printed_at}"), Line(style="rule")]
    for m in movements:
        label = f"{m['date']} {m['time'][:5]} {_KINDS.get(m['kind'], m['kind'])}"
        lines.append(_pair(label, f"{int(m['points']):+d}", width))
    if not movements:
        lines.append(Line("Sin movimientos."))
    lines.append(Line(style="rule"))
    points = balance.get("points") if isinstance(balance, dict) else balance
    lines.append(Line(f"Saldo: {points} puntos", "bold"))
    return PrintDocument("movements", tuple(lines))


def voucher_document(*, station: str, redemption: dict[str, Any], reward_name: str, printed_at: str,
                     width: int = 42) -> PrintDocument:
    lines = [Line("Comprobante de canje", "title"), Line(f"Estación {station}"), Line(f"Impreso {printed_at}"),
             Line(style="rule"), Line(reward_name, "bold"),
             _pair("Cantidad", redemption["quantity"], width), _pair("Puntos", redemption["points"], width),
             _pair("Tarjeta", redemption.get("card") or "-", width),
             _pair("Entrega", "inmediata" if redemption.get("status") == "delivered" else "programada", width),
             Line(f"Canje {redemption['redemption_id']}"), Line(style="rule"),
             Line("Conserve este comprobante.")]
    return PrintDocument("voucher", tuple(lines))


def slip_document(*, slip: dict[str, Any], printed_at: str, width: int = 42) -> PrintDocument:
    """The warehouse slip of a scheduled reward: the reward and who gets it."""
    customer = slip.get("customer") or {}
    lines = [Line("Solicitud de premio", "title"), Line("Entrega programada", "title"),
             Line(f"Estación {slip['station']}"), Line(f"Solicitado {slip['requested_at'][:16].replace('T', ' ')}"),
             Line(f"Impreso {printed_at}"), Line(style="rule"), Line(slip["reward_name"], "bold"),
             _pair("Cantidad", slip["quantity"], width), _pair("Tarjeta", slip.get("card") or "-", width),
             Line(f"Solicitud {slip['redemption_id']}"), Line(style="rule"), Line("Cliente", "bold")]
    if customer:
        lines += [Line(customer["name"]), Line(customer["document"])]
        lines += [Line(f"Tel. {phone}") for phone in customer.get("phones") or []]
        if customer.get("email"):
            lines.append(Line(customer["email"]))
        if customer.get("address"):
            lines.append(Line(f"Dirección: {customer['address']}"))
    else:
        lines.append(Line(f"Cuenta {slip['account_id']} (sin cliente inscrito en esta estación)"))
    return PrintDocument("slip", tuple(lines))
