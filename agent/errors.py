"""The agent's one error type: a stable code plus a Spanish and an English message.

Every layer raises ``AgentError`` (or a subclass); the HTTP layer renders it as RFC 9457
problem+json, the CLI prints the message in the operator's language. Keeping both texts on
the exception means no layer needs a message catalogue to explain itself.
"""
from __future__ import annotations

from dataclasses import dataclass, field as dc_field
from typing import Any


@dataclass(frozen=True)
class FieldError:
    """One problem with one input field, e.g. ``document.number`` has a wrong check digit."""

    field: str
    code: str
    es: str
    en: str

    def render(self, lang: str) -> dict[str, str]:
        return {"field": self.field, "code": self.code, "message": self.en if lang == "en" else self.es}


class AgentError(Exception):
    """A failure the caller can understand and act on.

    ``status`` is the HTTP status the API answers with; ``code`` is stable and documented
    (POS vendors switch on it); ``field`` names the offending input when there is one.
    """

    def __init__(
        self,
        code: str,
        es: str,
        en: str,
        *,
        status: int = 422,
        field: str | None = None,
        errors: list[FieldError] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(en)
        self.code = code
        self.es = es
        self.en = en
        self.status = status
        self.errors: list[FieldError] = list(errors or [])
        if field is not None and not self.errors:
            self.errors.append(FieldError(field, code, es, en))
        self.extra: dict[str, Any] = dict(extra or {})

    def message(self, lang: str = "es") -> str:
        return self.en if lang == "en" else self.es


@dataclass
class ValidationProblems:
    """Collects field errors so a request reports all of them at once, not one per retry."""

    errors: list[FieldError] = dc_field(default_factory=list)

    def add(self, field: str, code: str, es: str, en: str) -> None:
        self.errors.append(FieldError(field, code, es, en))

    def raise_if_any(self) -> None:
        if self.errors:
            raise AgentError(
                "validation_failed",
                "Los datos enviados no son válidos.",
                "The submitted data is not valid.",
                status=422,
                errors=self.errors,
            )


def prefers_english(accept_language: str) -> bool:
    """True when an ``Accept-Language`` header ranks English above Spanish (RFC 9110 q-values).

    Spanish is the default: no header, ``*``, other languages or a tie keep Spanish.

    >>> prefers_english("en"), prefers_english("en-US,en;q=0.9"), prefers_english("")
    (True, True, False)
    >>> prefers_english("en;q=0.1, es;q=0.9"), prefers_english("es-CL, en;q=0.5"), prefers_english("fr, en;q=0.8")
    (False, False, True)
    """
    best = {"en": 0.0, "es": 0.0}
    for part in accept_language.split(",")[:20]:
        tag, _, params = part.strip().partition(";")
        language = tag.strip().lower().split("-")[0]
        if language not in best:
            continue
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        best[language] = max(best[language], q if 0.0 <= q <= 1.0 else 0.0)
    return best["en"] > best["es"]
