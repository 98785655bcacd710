"""How many points a return takes back: pure arithmetic on one sale line.

Rule: reversals are *cumulative*. After returns totalling ``R`` of a line's amount ``A``, the
points taken back so far are ``ROUND_DOWN(P x R / A)`` where ``P`` is the points the line earned;
each return reverses the difference from what was already reversed. So a full return always
reverses exactly ``P`` (never more, never less), however it was split, and no sequence of
partial returns can take back more than the sale gave.

>>> points_to_reverse(line_points=81, line_amount=Decimal(52000),
...                   returned_before=Decimal(0), reversed_before=0, returning=Decimal(26000))
40
>>> points_to_reverse(81, Decimal(52000), Decimal(26000), 40, Decimal(26000))
41
>>> points_to_reverse(81, Decimal(52000), Decimal(0), 0, Decimal(60000))
Traceback (most recent call last):
...
ValueError: return larger than the sale line
"""
from __future__ import annotations

from decimal import ROUND_DOWN, Decimal, localcontext


def points_to_reverse(
    line_points: int,
    line_amount: Decimal,
    returned_before: Decimal,
    reversed_before: int,
    returning: Decimal,
) -> int:
    if returning < 0:
        raise ValueError("negative return amount")
    cumulative = returned_before + returning
    if cumulative > line_amount:
        raise ValueError("return larger than the sale line")
    if line_amount == 0 or cumulative == line_amount:
        # A zero-amount line (free item) or the last part of a return: everything left.
        return line_points - reversed_before if cumulative == line_amount else 0
    with localcontext(prec=34):
        target = (Decimal(line_points) * cumulative / line_amount).to_integral_value(rounding=ROUND_DOWN)
    return max(0, int(target) - reversed_before)
