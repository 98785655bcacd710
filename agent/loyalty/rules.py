"""Earning rules engine: pure, Decimal, indexed, explained.

Rounding rule (stated once, applied everywhere):
    For each sale line the raw points are computed in ``Decimal`` (28+ significant digits, no
    rounding in between): base points x the single largest promotional factor (date-window
    promotion or first-use bonus; promotions do NOT stack) x the tier multiplier. The result
    is then rounded DOWN (ROUND_DOWN, towards zero) to whole points **per sale line**; the sale
    total is the sum of the rounded lines. Nothing ever earns a negative amount.

Time: windows are inclusive *local dates* in the program's time zone (``zoneinfo``, so DST in
America/Santiago is handled), never UTC dates: a promotion ending "31 March" ends at local
midnight, as the customer reads it.

Precedence: an SKU earn rule beats an article-group earn rule; among several active earn rules
for the same key, a date-limited one beats an open-ended one, then the smallest ``rule_id``.
A line whose SKU is unknown earns by its article group, or nothing (explained as ``no_rule``).

>>> from datetime import datetime, timezone
>>> program = RuleProgram(version="v1", rules=[
...     EarnRule(rule_id="fuel", article_group="FUEL", basis="per_unit", points=Decimal(1)),
...     PromotionRule(rule_id="premium-x2", sku="PREMIUM95", factor=Decimal(2),
...                   valid_from=date(2026, 3, 1), valid_to=date(2026, 3, 31)),
... ])
>>> rules = CompiledRules(program)
>>> at = datetime(2026, 3, 31, 23, 30, tzinfo=ZoneInfo("America/Santiago"))
>>> ev = rules.evaluate([SaleLine(sku="PREMIUM95", article_group="FUEL",
...                              quantity=Decimal("40.5"), amount=Decimal(52000))],
...                    EarningContext(at=at))
>>> ev.total_points, [a.kind for a in ev.lines[0].applied]
(81, ['earn', 'promotion'])
>>> # 23:30 local on 31 March is already 1 April in UTC; the promotion still applies.
>>> at.astimezone(timezone.utc).date()
datetime.date(2026, 4, 1)
"""
from __future__ import annotations

import decimal
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_DOWN, Decimal
from typing import Iterable, Sequence
from zoneinfo import ZoneInfo

from .models import (
    AppliedRule,
    EarnRule,
    FirstUseBonusRule,
    LinePoints,
    PromotionRule,
    RuleProgram,
    SaleEvaluation,
    SaleLine,
)

ROUNDING_RULE = (
    "per line: base x max(promotion, first-use) x tier in Decimal, then ROUND_DOWN to whole points"
)
_ONE = Decimal(1)
# A private context so a caller's global decimal settings cannot change the points.
_CTX = decimal.Context(prec=34, rounding=decimal.ROUND_HALF_EVEN, traps=[decimal.InvalidOperation])


@dataclass(frozen=True)
class EarningContext:
    """What the engine needs to know about the moment and the card, beyond the lines."""

    at: datetime  # timezone-aware instant of the sale
    tier: str | None = None
    tier_multiplier: Decimal = _ONE
    card_issued_at: datetime | None = None
    card_first_used_at: datetime | None = None  # None = this sale is the card's first use

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError("EarningContext.at must be timezone-aware")
        if not (Decimal(0) < self.tier_multiplier <= Decimal(100)):
            raise ValueError("tier multiplier out of range")


def _fmt(value: Decimal) -> str:
    """Compact decimal text for explanations: ``2``, ``1.5``, ``12.25``.

    >>> _fmt(Decimal("2.000")), _fmt(Decimal("1.50")), _fmt(Decimal("1E+1"))
    ('2', '1.5', '10')
    """
    text = format(value.normalize(), "f")
    return text


def _sort_key(rule: EarnRule | PromotionRule) -> tuple[int, str]:
    has_window = rule.valid_from is not None or rule.valid_to is not None
    return (0 if has_window else 1, rule.rule_id)


class CompiledRules:
    """A rule program indexed by SKU and article group: per-line work is O(rules for that key)."""

    def __init__(self, program: RuleProgram) -> None:
        self.program = program
        self.zone = ZoneInfo(program.timezone)
        earn_sku: dict[str, list[EarnRule]] = defaultdict(list)
        earn_group: dict[str, list[EarnRule]] = defaultdict(list)
        promo_sku: dict[str, list[PromotionRule]] = defaultdict(list)
        promo_group: dict[str, list[PromotionRule]] = defaultdict(list)
        first_use: list[FirstUseBonusRule] = []
        for rule in program.rules:
            if isinstance(rule, FirstUseBonusRule):
                first_use.append(rule)
            elif isinstance(rule, EarnRule):
                (earn_sku[rule.sku] if rule.sku else earn_group[rule.article_group]).append(rule)  # type: ignore[index]
            else:
                (promo_sku[rule.sku] if rule.sku else promo_group[rule.article_group]).append(rule)  # type: ignore[index]
        for index in (earn_sku, earn_group, promo_sku, promo_group):
            for rules in index.values():
                rules.sort(key=_sort_key)
        # Plain dicts: a lookup of an unknown key must not grow the index.
        self._earn_sku = dict(earn_sku)
        self._earn_group = dict(earn_group)
        self._promo_sku = dict(promo_sku)
        self._promo_group = dict(promo_group)
        self._first_use = sorted(first_use, key=lambda r: r.rule_id)

    @property
    def version(self) -> str:
        return self.program.version

    def local_date(self, at: datetime) -> date:
        return at.astimezone(self.zone).date()

    def evaluate(self, lines: Sequence[SaleLine], context: EarningContext) -> SaleEvaluation:
        """Points for a sale, per line, with the explanation of every rule that applied."""
        with decimal.localcontext(_CTX):
            return self._evaluate(lines, context)

    def _evaluate(self, lines: Sequence[SaleLine], context: EarningContext) -> SaleEvaluation:
        day = self.local_date(context.at)
        total_amount = sum((line.amount for line in lines), Decimal(0))
        below_min_sale = total_amount < self.program.min_sale_amount
        first_use = self._first_use_bonus(day, context)
        results: list[LinePoints] = []
        for number, line in enumerate(lines, start=1):
            if below_min_sale:
                applied = [
                    AppliedRule(
                        rule_id=None,
                        kind="below_min_sale",
                        effect="0",
                        note_es=f"Venta bajo el monto mínimo de {_fmt(self.program.min_sale_amount)}",
                        note_en=f"Sale below the minimum amount of {_fmt(self.program.min_sale_amount)}",
                    )
                ]
                results.append(self._line(number, line, Decimal(0), applied))
                continue
            results.append(self._evaluate_line(number, line, day, context, first_use))
        return SaleEvaluation(
            program_version=self.program.version,
            timezone=self.program.timezone,
            local_date=day,
            rounding=ROUNDING_RULE,
            lines=results,
            total_points=sum(r.points for r in results),
        )

    def _first_use_bonus(self, day: date, context: EarningContext) -> FirstUseBonusRule | None:
        if context.card_first_used_at is not None or context.card_issued_at is None:
            return None
        age_days = (day - self.local_date(context.card_issued_at)).days
        best: FirstUseBonusRule | None = None
        for rule in self._first_use:
            if rule.active_on(day) and 0 <= age_days <= rule.within_days:
                if best is None or rule.factor > best.factor:
                    best = rule
        return best

    def _earn_rule(self, line: SaleLine, day: date) -> EarnRule | None:
        for rule in self._earn_sku.get(line.sku, ()):
            if rule.active_on(day):
                return rule
        if line.article_group is not None:
            for rule in self._earn_group.get(line.article_group, ()):
                if rule.active_on(day):
                    return rule
        return None

    def _promotions(self, line: SaleLine, day: date) -> Iterable[PromotionRule]:
        yield from (r for r in self._promo_sku.get(line.sku, ()) if r.active_on(day))
        if line.article_group is not None:
            yield from (r for r in self._promo_group.get(line.article_group, ()) if r.active_on(day))

    def _evaluate_line(
        self,
        number: int,
        line: SaleLine,
        day: date,
        context: EarningContext,
        first_use: FirstUseBonusRule | None,
    ) -> LinePoints:
        # Long on purpose: each rule step appends its own explanation (Spanish and English) next
        # to its arithmetic, so the explanation a cashier reads cannot drift from what was computed.
        rule = self._earn_rule(line, day)
        if rule is None:
            target = f"grupo {line.article_group}" if line.article_group else "sin grupo"
            target_en = f"group {line.article_group}" if line.article_group else "no group"
            applied = [
                AppliedRule(
                    rule_id=None,
                    kind="no_rule",
                    effect="0",
                    note_es=f"Sin regla para el SKU {line.sku} ni para su {target}: no suma puntos",
                    note_en=f"No rule for SKU {line.sku} nor its {target_en}: earns no points",
                )
            ]
            return self._line(number, line, Decimal(0), applied)
        if line.amount < rule.min_amount:
            applied = [
                AppliedRule(
                    rule_id=rule.rule_id,
                    kind="below_min_amount",
                    effect="0",
                    note_es=f"Monto de la línea bajo el mínimo de {_fmt(rule.min_amount)}",
                    note_en=f"Line amount below the minimum of {_fmt(rule.min_amount)}",
                )
            ]
            return self._line(number, line, Decimal(0), applied)
        measure = line.quantity if rule.basis == "per_unit" else line.amount
        base = measure / rule.per * rule.points
        by = "SKU" if rule.sku else "grupo"
        unit_es = "unidades" if rule.basis == "per_unit" else "$"
        unit_en = "units" if rule.basis == "per_unit" else "currency"
        applied = [
            AppliedRule(
                rule_id=rule.rule_id,
                kind="earn",
                effect=f"+{_fmt(base)}",
                note_es=f"{_fmt(rule.points)} pts cada {_fmt(rule.per)} {unit_es} (por {by})",
                note_en=f"{_fmt(rule.points)} pts per {_fmt(rule.per)} {unit_en} (by {'SKU' if rule.sku else 'group'})",
            )
        ]
        # Promotions do not stack: the single largest factor wins (first-use bonus included).
        best_factor = _ONE
        best: AppliedRule | None = None
        for promo in self._promotions(line, day):
            if promo.factor > best_factor:
                best_factor = promo.factor
                best = AppliedRule(
                    rule_id=promo.rule_id,
                    kind="promotion",
                    effect=f"x{_fmt(promo.factor)}",
                    note_es=f"Promoción x{_fmt(promo.factor)} del {promo.valid_from} al {promo.valid_to}",
                    note_en=f"Promotion x{_fmt(promo.factor)} from {promo.valid_from} to {promo.valid_to}",
                )
        if first_use is not None and first_use.factor > best_factor:
            best_factor = first_use.factor
            best = AppliedRule(
                rule_id=first_use.rule_id,
                kind="first_use_bonus",
                effect=f"x{_fmt(first_use.factor)}",
                note_es=f"Primer uso dentro de {first_use.within_days} días del alta: x{_fmt(first_use.factor)}",
                note_en=f"First use within {first_use.within_days} days of issue: x{_fmt(first_use.factor)}",
            )
        if best is not None:
            applied.append(best)
        raw = base * best_factor
        if context.tier_multiplier != _ONE:
            raw = raw * context.tier_multiplier
            applied.append(
                AppliedRule(
                    rule_id=None,
                    kind="tier",
                    effect=f"x{_fmt(context.tier_multiplier)}",
                    note_es=f"Categoría {context.tier}: x{_fmt(context.tier_multiplier)}",
                    note_en=f"Tier {context.tier}: x{_fmt(context.tier_multiplier)}",
                )
            )
        return self._line(number, line, raw, applied)

    @staticmethod
    def _line(number: int, line: SaleLine, raw: Decimal, applied: list[AppliedRule]) -> LinePoints:
        points = int(raw.to_integral_value(rounding=ROUND_DOWN)) if raw > 0 else 0
        return LinePoints(
            line_no=number,
            sku=line.sku,
            article_group=line.article_group,
            amount=line.amount,
            raw_points=raw,
            points=points,
            applied=applied,
        )
