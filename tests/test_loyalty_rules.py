"""Earning rules engine: behaviour, time zone, precedence, properties."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from agent.loyalty.models import EarnRule, FirstUseBonusRule, PromotionRule, RuleProgram, SaleLine
from agent.loyalty.reversal import points_to_reverse
from agent.loyalty.rules import CompiledRules, EarningContext

SCL = ZoneInfo("America/Santiago")


def program(**kw) -> RuleProgram:
    rules = [
        EarnRule(rule_id="fuel-l", article_group="FUEL", basis="per_unit", points=Decimal(1)),
        EarnRule(rule_id="shop-100", article_group="SHOP", basis="per_amount", points=Decimal(1), per=Decimal(100),
                 min_amount=Decimal(500)),
        EarnRule(rule_id="premium-l", sku="PREMIUM95", basis="per_unit", points=Decimal("1.5")),
        PromotionRule(rule_id="premium-x2", sku="PREMIUM95", factor=Decimal(2),
                      valid_from=date(2026, 3, 1), valid_to=date(2026, 3, 31)),
        FirstUseBonusRule(rule_id="welcome-x3", factor=Decimal(3), within_days=30),
    ]
    return RuleProgram(version="v1", rules=rules, **kw)


def line(sku="DIESEL", group="FUEL", qty="10", amount="10000") -> SaleLine:
    return SaleLine(sku=sku, article_group=group, quantity=Decimal(qty), amount=Decimal(amount))


def ctx(at=datetime(2026, 2, 10, 12, tzinfo=SCL), **kw) -> EarningContext:
    kw.setdefault("card_first_used_at", at - timedelta(days=100))
    return EarningContext(at=at, **kw)


def test_sku_rule_beats_group_rule_and_unknown_sku_earns_by_group():
    rules = CompiledRules(program())
    ev = rules.evaluate([line("PREMIUM95", qty="10"), line("NEWFUEL", qty="10")], ctx())
    assert [lp.points for lp in ev.lines] == [15, 10]
    assert ev.lines[0].applied[0].rule_id == "premium-l"
    assert ev.lines[1].applied[0].rule_id == "fuel-l"


def test_unknown_sku_and_group_earns_nothing_and_says_so():
    ev = CompiledRules(program()).evaluate([line("X1", group="TOBACCO")], ctx())
    assert ev.total_points == 0
    assert ev.lines[0].applied[0].kind == "no_rule"
    assert "X1" in ev.lines[0].applied[0].note_es


def test_per_amount_rounds_down_per_line_and_respects_min_amount():
    rules = CompiledRules(program())
    ev = rules.evaluate([line("COKE", "SHOP", "1", "1999"), line("GUM", "SHOP", "1", "499")], ctx())
    assert [lp.points for lp in ev.lines] == [19, 0]
    assert ev.lines[0].raw_points == Decimal("19.99")
    assert ev.lines[1].applied[0].kind == "below_min_amount"


def test_promotion_window_is_in_local_dates_across_dst():
    rules = CompiledRules(program())
    # Chile leaves DST on the first Sunday of April 2026 (5 April). 31 March 23:30 local is 1 April UTC.
    inside = datetime(2026, 3, 31, 23, 30, tzinfo=SCL)
    assert inside.astimezone(timezone.utc).date() == date(2026, 4, 1)
    assert rules.evaluate([line("PREMIUM95", qty="10")], ctx(inside)).total_points == 30
    # First minutes of the window, local time.
    start = datetime(2026, 3, 1, 0, 30, tzinfo=SCL)
    assert rules.evaluate([line("PREMIUM95", qty="10")], ctx(start)).total_points == 30
    # An instant given in UTC on 1 April 02:00 is 31 March local: the promotion still applies.
    utc_instant = datetime(2026, 4, 1, 2, 0, tzinfo=timezone.utc)
    assert rules.evaluate([line("PREMIUM95", qty="10")], ctx(utc_instant)).total_points == 30
    after = datetime(2026, 4, 1, 0, 30, tzinfo=SCL)
    assert rules.evaluate([line("PREMIUM95", qty="10")], ctx(after)).total_points == 15


def test_first_use_bonus_within_30_local_days_only_on_first_use():
    rules = CompiledRules(program())
    issued = datetime(2026, 2, 1, 10, tzinfo=SCL)
    first = EarningContext(at=issued + timedelta(days=30), card_issued_at=issued)
    ev = rules.evaluate([line(qty="10")], first)
    assert ev.total_points == 30 and ev.lines[0].applied[-1].kind == "first_use_bonus"
    late = EarningContext(at=issued + timedelta(days=31), card_issued_at=issued)
    assert rules.evaluate([line(qty="10")], late).total_points == 10
    second = EarningContext(at=issued + timedelta(days=2), card_issued_at=issued, card_first_used_at=issued)
    assert rules.evaluate([line(qty="10")], second).total_points == 10


def test_promotions_do_not_stack_largest_wins_then_tier_multiplies():
    rules = CompiledRules(program())
    issued = datetime(2026, 3, 2, 10, tzinfo=SCL)
    c = EarningContext(at=issued + timedelta(hours=1), card_issued_at=issued, tier="Gold",
                       tier_multiplier=Decimal("1.5"))
    ev = rules.evaluate([line("PREMIUM95", qty="10")], c)
    # 10 l x 1.5 pts = 15; promo x2 and first use x3 -> x3 wins = 45; Gold x1.5 = 67.5 -> 67.
    assert ev.total_points == 67
    assert [a.kind for a in ev.lines[0].applied] == ["earn", "first_use_bonus", "tier"]


def test_min_sale_amount_zeroes_every_line_with_explanation():
    rules = CompiledRules(program(min_sale_amount=Decimal(5000)))
    ev = rules.evaluate([line(qty="3", amount="3000")], ctx())
    assert ev.total_points == 0 and ev.lines[0].applied[0].kind == "below_min_sale"


@pytest.mark.parametrize(
    "bad",
    [
        {"sku": "A", "quantity": "-1", "amount": "10"},
        {"sku": "A", "quantity": "0", "amount": "10"},
        {"sku": "A", "quantity": "1000000", "amount": "10"},
        {"sku": "A", "quantity": "1", "amount": "-5"},
        {"sku": "A", "quantity": "1", "amount": "1e12"},
        {"sku": "", "quantity": "1", "amount": "1"},
        {"sku": "A", "quantity": "1", "amount": "1", "price": "2"},
    ],
)
def test_bad_lines_are_rejected(bad):
    with pytest.raises(ValidationError):
        SaleLine.model_validate(bad)


def test_rule_program_rejects_bad_rules():
    with pytest.raises(ValidationError):
        RuleProgram(version="v", timezone="Mars/Olympus")
    with pytest.raises(ValidationError):
        RuleProgram.model_validate({"version": "v", "rules": [
            {"kind": "earn", "rule_id": "a", "sku": "X", "article_group": "G", "basis": "per_unit", "points": 1}]})
    with pytest.raises(ValidationError):
        RuleProgram.model_validate({"version": "v", "rules": [
            {"kind": "earn", "rule_id": "a", "sku": "X", "basis": "per_unit", "points": 1},
            {"kind": "earn", "rule_id": "a", "sku": "Y", "basis": "per_unit", "points": 1}]})


def test_naive_datetime_is_refused():
    with pytest.raises(ValueError):
        EarningContext(at=datetime(2026, 1, 1))


# --- properties -------------------------------------------------------------------------

amounts = st.decimals(min_value=0, max_value=10**8, places=2, allow_nan=False, allow_infinity=False)
quantities = st.decimals(min_value=Decimal("0.001"), max_value=10**4, places=3, allow_nan=False,
                         allow_infinity=False)
skus = st.sampled_from(["PREMIUM95", "DIESEL", "COKE", "X1"])
groups = st.sampled_from(["FUEL", "SHOP", "TOBACCO", None])
instants = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31),
                        timezones=st.just(timezone.utc))
RULES = CompiledRules(program(min_sale_amount=Decimal(1000)))


@settings(max_examples=150, deadline=None)
@given(skus, groups, quantities, amounts, amounts, instants, st.booleans())
def test_points_never_negative_and_monotonic_in_amount(sku, group, qty, a1, a2, at, first):
    low, high = sorted((a1, a2))
    c = EarningContext(at=at, card_issued_at=at - timedelta(days=3), card_first_used_at=None if first else at,
                       tier="Gold", tier_multiplier=Decimal("1.25"))
    p_low = RULES.evaluate([SaleLine(sku=sku, article_group=group, quantity=qty, amount=low)], c).total_points
    p_high = RULES.evaluate([SaleLine(sku=sku, article_group=group, quantity=qty, amount=high)], c).total_points
    assert 0 <= p_low <= p_high


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=0, max_value=10**7),
       st.decimals(min_value=Decimal("0.01"), max_value=10**8, places=2),
       st.lists(st.integers(min_value=1, max_value=100), min_size=1, max_size=6))
def test_partial_returns_sum_to_exact_negation_and_never_exceed(points, amount, weights):
    total_w = sum(weights)
    parts = [(amount * w / total_w).quantize(Decimal("0.01")) for w in weights]
    parts[-1] = amount - sum(parts[:-1])  # the last part completes the return exactly
    if parts[-1] < 0:
        return
    returned, reversed_ = Decimal(0), 0
    for part in parts:
        step = points_to_reverse(points, amount, returned, reversed_, part)
        assert step >= 0
        returned += part
        reversed_ += step
        assert reversed_ <= points
    assert reversed_ == points
