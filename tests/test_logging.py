import logging

from agent.logsetup import JournalFormatter, MaskingFilter, MaskingFormatter


def _render(formatter: logging.Formatter, exc: Exception) -> str:
    logger = logging.getLogger("test.masking")
    try:
        raise exc
    except ValueError:
        record = logger.makeRecord("test.masking", logging.ERROR, __file__, 1, "lookup of %s failed",
                                   ("12.345.678-5",), exc_info=__import__("sys").exc_info())
    MaskingFilter().filter(record)
    return formatter.format(record)


def test_messages_and_tracebacks_are_masked() -> None:
    for formatter in (MaskingFormatter("%(message)s"), JournalFormatter("%(message)s")):
        text = _render(formatter, ValueError("bad document 12345678-5 phone +56987654321"))
        assert "12****785" in text and "Traceback" in text
        for secret in ("12.345.678-5", "12345678-5", "56987654321"):
            assert secret not in text
