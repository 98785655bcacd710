"""R30x fingerprint sensors (R305/R307/R503/ZFM-20/AS608) over UART.

``protocol`` (pure framing), ``commands`` (codes and parsers), ``link`` (serial transport),
``client`` (one method per instruction).
"""
