"""Log masking, control-character escaping and journald priorities, fuzzed with hypothesis."""
from __future__ import annotations

import io
import logging
import re
import sys
import unicodedata
from datetime import datetime

from hypothesis import assume, given
from hypothesis import strategies as st

from agent.logmask import _ANNOUNCES_PERSONAL, _KEEP_AFTER, _KEEP_BEFORE, escape_controls, mask_personal
from agent.logsetup import JournalFormatter, MaskingFilter, MaskingFormatter, RecentAlerts, clean


def _render(formatter: logging.Formatter, exc: Exception) -> str:
    logger = logging.getLogger("test.masking")
    try:
        raise exc
    except ValueError:
        record = logger.makeRecord("test.masking", logging.ERROR, __file__, 1, "lookup of %s failed",
                                   ("12.345.678-5",), exc_info=sys.exc_info())
    MaskingFilter().filter(record)
    return formatter.format(record)


def test_messages_and_tracebacks_are_masked() -> None:
    for formatter in (MaskingFormatter("%(message)s"), JournalFormatter("%(message)s")):
        text = _render(formatter, ValueError("bad document 12345678-5 phone +56987654321"))
        assert "***785" in text and "Traceback" in text
        for secret in ("12.345.678-5", "12345678-5", "56987654321"):
            assert secret not in text


def _journal_lines(*args: object, exc: BaseException | None = None) -> list[str]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JournalFormatter("%(message)s"))
    handler.addFilter(MaskingFilter())
    logger = logging.getLogger("test.journal")
    logger.handlers[:] = [handler]
    logger.propagate = False
    try:
        if exc is None:
            logger.warning(*args)  # type: ignore[arg-type]
        else:
            try:
                raise exc
            except type(exc):
                logger.exception(*args)  # type: ignore[arg-type]
    finally:
        logger.handlers.clear()
    return stream.getvalue().splitlines()


def test_a_newline_in_a_value_cannot_forge_a_journal_line() -> None:
    lines = _journal_lines("PIN refused for attendant %s", "P-01\n<0>kernel: disk on fire\r\x1b[2J")
    assert len(lines) == 1 and lines[0].startswith("<4>test.journal: ")
    assert "\\n<0>kernel" in lines[0] and "\\x1b[2J" in lines[0]


def test_every_traceback_line_carries_the_records_priority() -> None:
    lines = _journal_lines("sync step failed", exc=ValueError("bad\n<0>forged line"))
    assert len(lines) > 3 and all(line.startswith("<3>") for line in lines)


def test_ips_ports_sequences_and_sizes_are_kept() -> None:
    text = ("connected to 127.100.100.100:8883; head office asked for a replay of seq 10000-10060: "
            "61 reopened; batch of 1048576 bytes in 350 ms at 2026-03-14T12:30:05.123Z, pending_bytes=12345678")
    assert mask_personal(text) == text


def test_recent_alerts_keeps_masked_warnings_newest_first() -> None:
    alerts = RecentAlerts(capacity=2)
    logger = logging.getLogger("test.alerts")
    logger.addHandler(alerts)
    try:
        logger.warning("first %s", "12.345.678-K")
        logger.info("not an alert")
        logger.warning("second")
        logger.error("third\nline")
    finally:
        logger.removeHandler(alerts)
    assert [a["message"] for a in alerts.items()] == ["third\\nline", "second"]
    logger.addHandler(alerts)
    try:
        logger.warning("first %s", "12.345.678-K")
    finally:
        logger.removeHandler(alerts)
    assert alerts.items()[0]["message"] == "first ***78K"


# ---- fuzzing -------------------------------------------------------------------------------

def _dotted(digits: str) -> str:
    groups = []
    while digits:
        groups.insert(0, digits[-3:])
        digits = digits[:-3]
    return ".".join(groups)


@st.composite
def rut(draw: st.DrawFn) -> tuple[str, str]:
    body = str(draw(st.integers(1_000_000, 99_999_999)))
    check = draw(st.sampled_from("0123456789Kk"))
    spelling = draw(st.sampled_from(["{d}-{c}", "{dot}-{c}", "{d}{c}", "{dot}{c}", "0{d}-{c}"]))
    return spelling.format(d=body, dot=_dotted(body), c=check), body


@st.composite
def cuit(draw: st.DrawFn) -> tuple[str, str]:
    prefix = draw(st.sampled_from(["20", "23", "24", "27", "30", "33"]))
    dni = f"{draw(st.integers(0, 99_999_999)):08d}"
    check = str(draw(st.integers(0, 9)))
    sep = draw(st.sampled_from(["-", "", " ", "."]))
    return f"{prefix}{sep}{dni}{sep}{check}", prefix + dni + check


@st.composite
def cedula(draw: st.DrawFn) -> tuple[str, str]:
    number = str(draw(st.integers(1_000_000, 9_999_999_999)))
    return draw(st.sampled_from([number, _dotted(number)])), number


@st.composite
def phone(draw: st.DrawFn) -> tuple[str, str]:
    country = draw(st.sampled_from(["+56", "+57", "+54", "+593", "+51", ""]))
    groups = draw(st.lists(st.integers(10, 9999), min_size=2, max_size=4))
    national = "".join(str(g) for g in groups)
    assume(len(national) >= 7)
    sep = draw(st.sampled_from([" ", "-", ""]))
    lead = draw(st.sampled_from(["", "(0)", " "]))
    text = f"{country}{lead}{sep.join(str(g) for g in groups)}".strip()
    assume(not DATE.fullmatch(text))  # 2001-12-25 is a date, whatever a generator meant by it
    return text, national


DATE = re.compile(r"(?:19|20)\d\d-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])")


@st.composite
def card(draw: st.DrawFn) -> tuple[str, str]:
    digits = "".join(str(draw(st.integers(0, 9))) for _ in range(draw(st.sampled_from([16, 19]))))
    sep = draw(st.sampled_from(["", " ", "-"]))
    return sep.join(digits[i:i + 4] for i in range(0, len(digits), 4)), digits


SENSITIVE = st.one_of(rut(), cuit(), cedula(), phone(), card())
# Surrounding text without digits (so the check below is exact) and without words that change
# the rules on purpose (a "seq" before a number keeps it: tested separately).
FILLER = st.text(alphabet=st.characters(blacklist_categories=("Nd", "Cs"), blacklist_characters="@"), max_size=20)
SEPARATORS = st.sampled_from([" ", ": ", "=", " (", ", ", "\t", "\n", " documento ", " RUT ", " tel. "])


def _plain(text: str) -> str:
    """The digits of each number-like run, joined by "|": a secret must not be inside any run."""
    return "|".join(re.sub(r"\D", "", run) for run in re.findall(r"[\d .\-()/+]+", text))


@given(st.lists(st.tuples(FILLER, SEPARATORS, SENSITIVE, SEPARATORS), min_size=1, max_size=4), FILLER)
def test_document_phone_and_card_numbers_never_survive(parts: list[tuple[str, str, tuple[str, str], str]],
                                                       tail: str) -> None:
    text = "".join(f"{filler}{sep}{value}{after}" for filler, sep, (value, _), after in parts) + tail
    for i, (filler, sep, _, after) in enumerate(parts):
        assume(not _KEEP_BEFORE.search(filler + sep))
        following = after + (parts[i + 1][0] if i + 1 < len(parts) else tail)
        assume(not _KEEP_AFTER.match(following))  # "1234567 s" is a duration on purpose
    out = clean(text)
    digits_out = _plain(out)
    for _, _, (value, core), _ in parts:
        assert core not in digits_out, (text, out)
        assert value not in out
    assert "\n" not in out


@given(st.emails())
def test_emails_never_survive(email: str) -> None:
    out = clean(f"contacto {email} registrado")
    assert email not in out and "***@***" in out


@st.composite
def kept(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["ip", "ip_port", "seq", "range", "bytes", "ms", "ts"]))
    if kind in ("ip", "ip_port"):
        octets = [draw(st.integers(10, 255)), *(draw(st.integers(0, 255)) for _ in range(3))]
        ip = ".".join(str(o) for o in octets)
        return ip + (f":{draw(st.integers(1, 65535))}" if kind == "ip_port" else "")
    if kind == "seq":
        return f"seq {draw(st.integers(0, 10**12))}"
    if kind == "range":
        first = draw(st.integers(0, 10**10))
        return f"seq {first}-{first + draw(st.integers(0, 10**6))}"
    if kind == "bytes":
        return f"{draw(st.integers(0, 10**12))} bytes"
    if kind == "ms":
        return f"{draw(st.integers(0, 10**9))} ms"
    return draw(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31))).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@given(kept(), SENSITIVE, kept())
def test_addresses_sequences_and_sizes_survive_beside_masked_numbers(a: str, secret: tuple[str, str], b: str) -> None:
    text = f"host {a} / doc {secret[0]} / {b}"
    out = clean(text)
    assert out.startswith(f"host {a} / doc ") and out.endswith(f" / {b}"), (text, out)
    assert secret[1] not in _plain(out[len(f"host {a} / doc "):-len(f" / {b}")])


@given(st.text())
def test_any_text_comes_out_on_one_line_without_control_characters(text: str) -> None:
    out = clean(text)
    assert not any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in out)
    assert clean(out) == out  # masking and escaping are stable: a cleaned line is left alone


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",))))
def test_escaping_loses_nothing_but_control_characters(text: str) -> None:
    escaped = iter(escape_controls(text))
    visible = [ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp")]
    assert all(ch in escaped for ch in visible)  # every visible character, in order


# Letters that cannot be part of a hex id (a card number glued to "abcd" is indistinguishable from one).
@given(SENSITIVE, st.text(alphabet="GHIJKLMNOPQRSTUVWXYZghxyz_", min_size=1, max_size=8), st.booleans())
def test_numbers_glued_to_letters_are_masked(secret: tuple[str, str], letters: str, before: bool) -> None:
    value = secret[0].replace(" ", "").replace("+", "")
    text = f"x {letters}{value} y" if before else f"x {value}{letters} y"
    assert secret[1] not in _plain(clean(text)), (text, clean(text))


def test_identifiers_are_not_numbers() -> None:
    for ident in ("018f3a2e-1234-7abc-9def-0123456789ab", "a1b2c3d4e5f60718293a4b5c", "f00d1234567890beef",
                  "sha256:0123456789abcdef0123456789abcdef"):
        assert mask_personal(f"event {ident} sent") == f"event {ident} sent"


def test_words_that_announce_personal_data_lower_the_bar() -> None:
    assert _ANNOUNCES_PERSONAL.search("RUT ") and mask_personal("RUT 1-9") == "RUT ***19"
    assert mask_personal("retry 3 of 5") == "retry 3 of 5"
