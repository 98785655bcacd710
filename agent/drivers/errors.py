"""The base of every error a device driver raises.

Drivers know nothing of HTTP or of the agent: an error says what failed, with a stable
snake_case ``code`` and a Spanish and an English text for whoever shows it. The feature using
the device decides what it means for a request (agent/biometric/errors.py maps the sensor's
to a 503, for instance), as Home Assistant integrations map their device libraries' errors.
"""
from __future__ import annotations


class DeviceError(Exception):
    def __init__(self, code: str, es: str, en: str) -> None:
        super().__init__(en)
        self.code = code
        self.es = es
        self.en = en

    def message(self, lang: str = "es") -> str:
        return self.en if lang == "en" else self.es
