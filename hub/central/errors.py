"""One error type for the central administration: a stable code and a message in both languages."""
from __future__ import annotations


class CentralError(Exception):
    def __init__(self, code: str, es: str, en: str) -> None:
        super().__init__(es)
        self.code, self.es, self.en = code, es, en

    def message(self, lang: str = "es") -> str:
        return self.en if lang == "en" else self.es
