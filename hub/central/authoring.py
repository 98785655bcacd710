"""Authored configuration: the earning program (with promotions over product lists), tiers,
messages to card holders and the reward catalog.

Everything is validated with the station's own models (``agent.loyalty``), so a document the
hub accepts is one the station accepts. A promotion over a list of products becomes one
promotion rule per product (the station's rules target exactly one SKU or article group).
"""
from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

import psycopg
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from agent.loyalty.directory import MessageIn, RewardIn, TierIn
from agent.loyalty.models import Code, EarnRule, FirstUseBonusRule, RuleProgram
from hub.central import audit
from hub.central.errors import CentralError

KINDS = ("program", "tiers", "messages", "rewards")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Promotion(_Strict):
    """A date-window multiplier over a list of products (SKUs and/or article groups)."""

    promotion_id: Code
    factor: Decimal = Field(gt=0, le=100)
    valid_from: date
    valid_to: date
    skus: list[Code] = Field(default_factory=list, max_length=500)
    article_groups: list[Code] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _products_and_window(self) -> "Promotion":
        if not self.skus and not self.article_groups:
            raise ValueError("a promotion needs at least one sku or article group")
        if self.valid_to < self.valid_from:
            raise ValueError("valid_to is before valid_from")
        return self


class AuthoredProgram(_Strict):
    label: Code | None = None  # what sales report as program_version; default "v<version>"
    timezone: str = "America/Santiago"
    min_sale_amount: Decimal = Field(default=Decimal(0), ge=0)
    earn: list[EarnRule] = Field(default_factory=list, max_length=10_000)
    promotions: list[Promotion] = Field(default_factory=list, max_length=1_000)
    first_use_bonus: FirstUseBonusRule | None = None

    def compile(self, version: int) -> RuleProgram:
        rules: list[dict[str, Any]] = [r.model_dump(mode="json") for r in self.earn]
        for promo in self.promotions:
            targets = [("sku", s) for s in promo.skus] + [("article_group", g) for g in promo.article_groups]
            for field, value in targets:
                rules.append({"kind": "promotion", "rule_id": f"{promo.promotion_id}.{value}"[:64], field: value,
                              "factor": str(promo.factor), "valid_from": promo.valid_from.isoformat(),
                              "valid_to": promo.valid_to.isoformat()})
        if self.first_use_bonus is not None:
            rules.append(self.first_use_bonus.model_dump(mode="json"))
        return RuleProgram.model_validate({"version": self.label or f"v{version}", "timezone": self.timezone,
                                           "min_sale_amount": str(self.min_sale_amount), "rules": rules})


_LISTS: dict[str, tuple[TypeAdapter[Any], str]] = {
    "tiers": (TypeAdapter(list[TierIn]), "tier_id"),
    "messages": (TypeAdapter(list[MessageIn]), "message_id"),
    "rewards": (TypeAdapter(list[RewardIn]), "reward_id"),
}


def _describe(exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in first["loc"]) or "(documento)"
    return f"{exc.error_count()} error(es); el primero en {where}: {first['msg'].removeprefix('Value error, ')}"


def validate(kind: str, document: Any) -> Any:
    """The validated document as JSON-ready data; ``CentralError`` naming the first bad field."""
    if kind not in KINDS:
        raise CentralError("unknown_kind", f"tipo desconocido {kind!r}: use {', '.join(KINDS)}",
                           f"unknown kind {kind!r}: use {', '.join(KINDS)}")
    try:
        if kind == "program":
            program = AuthoredProgram.model_validate(document)
            program.compile(1)  # the compiled program must be valid too (unique rule ids, ...)
            return program.model_dump(mode="json", exclude_none=True)
        adapter, id_field = _LISTS[kind]
        items = adapter.validate_python(document)
    except ValidationError as exc:
        raise CentralError("invalid_config", f"{kind} inválido: {_describe(exc)}", f"invalid {kind}: {exc.errors()[0]}")
    ids = [getattr(item, id_field) for item in items]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise CentralError("duplicate_id", f"{kind}: código repetido {duplicates[0]}", f"{kind}: duplicate id {duplicates[0]}")
    return adapter.dump_python(items, mode="json")


def store(conn: psycopg.Connection, actor: str, kind: str, document: Any) -> Any:
    data = validate(kind, document)
    with conn.transaction():
        conn.execute("INSERT INTO config_authored(kind, body, updated_by) VALUES (%s, %s, %s) ON CONFLICT (kind)"
                     " DO UPDATE SET body = excluded.body, updated_at = now(), updated_by = excluded.updated_by",
                     (kind, json.dumps(data, ensure_ascii=False), actor))
        audit.record(conn, actor, f"config.{kind}.saved", {"items": len(data) if isinstance(data, list) else None})
    return data


def load(conn: psycopg.Connection, kind: str) -> Any:
    row = conn.execute("SELECT body FROM config_authored WHERE kind = %s", (kind,)).fetchone()
    return row[0] if row else None
