"""ISO/IEC 7813 magnetic stripe tracks 1 and 2 (pure).

Track 1 (alphanumeric): ``%B<PAN up to 19>^<NAME 2-26>^<YYMM><service code 3><discretionary>?``
Track 2 (numeric):      ``;<PAN up to 19>=<YYMM><service code 3><discretionary>?``
A keyboard-wedge reader that fails to decode a track sends ``%E?`` or ``;E?`` instead. Loyalty
cards often carry only a card number in track 2, so expiry and service code are optional when the
field after the separator is empty or too short (``;6012345678=?``).

The card holder name is parsed because it is on the stripe, but callers must not log or store
it (personal data); ``TrackData.__repr__`` hides it.

>>> parse_track(";6012345678901234=2512101?").pan
'6012345678901234'
>>> t = parse_track("%B6012345678901234^PEREZ/JUAN^2512101000?")
>>> (t.track, t.pan, t.expiry, t.service_code)
(1, '6012345678901234', '2512', '101')
>>> parse_track(";E?")
Traceback (most recent call last):
...
agent.cards.track.TrackError: track_bad_read: the reader could not decode the stripe
>>> parse_track("hello")
Traceback (most recent call last):
...
agent.cards.track.TrackError: track_malformed: not an ISO 7813 track 1 or track 2 record
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from agent.errors import AgentError

_TRACK1 = re.compile(r"%B(?P<pan>\d{1,19})\^(?P<name>[^\^?%;]{0,26})\^(?P<rest>[^?%;]*)\?")
_TRACK2 = re.compile(r";(?P<pan>\d{1,19})=(?P<rest>\d*)\?")
_BAD_READ = re.compile(r"^[%;]E\?$")


class TrackError(AgentError):
    def __init__(self, code: str, es: str, en: str) -> None:
        super().__init__(code, es, en, status=422)

    def __str__(self) -> str:
        return f"{self.code}: {self.en}"


@dataclass(frozen=True)
class TrackData:
    track: int
    pan: str
    expiry: str | None = None  # YYMM as on the card
    service_code: str | None = None
    discretionary: str = ""
    name: str | None = field(default=None, repr=False)

    @property
    def masked_pan(self) -> str:
        """For logs: first 2 and last 3 digits.

        >>> TrackData(2, "6012345678901234").masked_pan
        '60****234'
        """
        return f"{self.pan[:2]}****{self.pan[-3:]}" if len(self.pan) > 5 else "****"


def _split_rest(rest: str) -> tuple[str | None, str | None, str]:
    if len(rest) >= 7 and rest[:7].isdigit():
        return rest[:4], rest[4:7], rest[7:]
    return None, None, rest


def parse_track(raw: str) -> TrackData:
    """Parse one track record (start sentinel to end sentinel; surrounding whitespace ignored)."""
    text = raw.strip()
    if _BAD_READ.match(text):
        raise TrackError("track_bad_read",
                         "El lector no pudo leer la banda. Deslice la tarjeta de nuevo.",
                         "the reader could not decode the stripe")
    m = _TRACK1.fullmatch(text)
    if m:
        expiry, service, disc = _split_rest(m["rest"])
        name = m["name"].strip() or None
        return TrackData(1, m["pan"], expiry, service, disc, name)
    m = _TRACK2.fullmatch(text)
    if m:
        expiry, service, disc = _split_rest(m["rest"])
        return TrackData(2, m["pan"], expiry, service, disc)
    raise TrackError("track_malformed",
                     "La lectura de la banda no es válida. Deslice la tarjeta de nuevo.",
                     "not an ISO 7813 track 1 or track 2 record")


def parse_swipe(record: str) -> TrackData:
    """A wedge reader sends track 1 then track 2 on one line (either may be missing or bad).

    Returns the first good track, preferring track 2 (numeric, fewer read errors).

    >>> parse_swipe("%B6012345678901234^PEREZ/JUAN^2512101?;6012345678901234=2512101?").track
    2
    >>> parse_swipe("%E?;6012345678901234=2512?").pan
    '6012345678901234'
    """
    parts = re.findall(r"[%;][^%;]*", record.strip())
    if not parts:
        raise TrackError("track_malformed",
                         "La lectura de la banda no es válida. Deslice la tarjeta de nuevo.",
                         "not an ISO 7813 track 1 or track 2 record")
    errors: list[TrackError] = []
    parsed: list[TrackData] = []
    for part in parts:
        try:
            parsed.append(parse_track(part))
        except TrackError as exc:
            errors.append(exc)
    if not parsed:
        raise errors[0]
    by_track = {t.track: t for t in parsed}
    return by_track.get(2) or by_track[1]
