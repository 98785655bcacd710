"""Settings that are secrets (passwords, key material) and the masked view of the settings.

A secret is declared where the setting is, with ``secret_field(...)``: the field is marked
``writeOnly`` in its JSON Schema (the standard word for "accepted, never shown back") and left
out of ``repr``. Code that needs the value reads it as usual; only ``masked_dump`` (what
``loyalty-agent check-config`` prints, and technicians paste into tickets) hides it. A new
secret setting is therefore masked by declaring it, with no list to keep in step in the CLI.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

MASK = "********"


def secret_field(default: Any = PydanticUndefined, **kwargs: Any) -> Any:
    """``Field(...)`` for a secret setting; same arguments."""
    return Field(default, repr=False, json_schema_extra={"writeOnly": True}, **kwargs)


def is_secret(field: FieldInfo) -> bool:
    extra = field.json_schema_extra
    return isinstance(extra, dict) and extra.get("writeOnly") is True


def _mask(value: Any, default: Any) -> Any:
    # The embedded default (no password, the sensor's factory 0, the MIFARE transport key) is
    # published in docs/configuration.md: showing it tells the technician nothing was set.
    if value is None or value == default:
        return value
    if isinstance(value, (list, tuple)):
        return [MASK for _ in value]  # keep the count: "two keys configured" helps a diagnosis
    return MASK


def masked_dump(model: BaseModel) -> dict[str, Any]:
    """``model.model_dump(mode="json")`` with every secret field replaced by ``MASK``."""
    out = model.model_dump(mode="json")
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        key = field.serialization_alias or name
        if is_secret(field):
            out[key] = _mask(out[key], _dump_default(field))
        elif isinstance(value, BaseModel):
            out[key] = masked_dump(value)
    return out


def _dump_default(field: FieldInfo) -> Any:
    """The default in the JSON form of the dumped value (a tuple dumps as a list), to compare."""
    default = field.default_factory() if field.default_factory is not None else field.default  # type: ignore[call-arg]
    return list(default) if isinstance(default, tuple) else default
