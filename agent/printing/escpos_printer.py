"""Print a ``PrintDocument`` on the station's ESC/POS receipt printer (python-escpos over USB,
serial or a device file).

The printer is opened for each document and closed after it: a receipt printer is switched off,
runs out of paper or is unplugged far more often than the agent restarts, and a fresh open is
what notices. Any failure to reach it is ``printer_offline`` (503): the caller's operation (a
sale, a redemption) was already booked and is never undone because the paper did not come out.
"""
from __future__ import annotations

import logging
import threading
from typing import Any

from agent.errors import AgentError
from agent.lifecycle import Part

from .config import PrinterSettings
from .documents import PrintDocument

log = logging.getLogger(__name__)


class PrinterOffline(AgentError):
    def __init__(self) -> None:
        super().__init__("printer_offline",
                         "La impresora de la estación no responde (apagada, sin papel o desconectada); "
                         "la operación quedó registrada: imprima de nuevo cuando esté lista.",
                         "The station printer does not answer (off, out of paper or unplugged); the operation "
                         "was recorded: print again when it is ready.", status=503)


class ReceiptPrinter(Part):
    def __init__(self, settings: PrinterSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()  # one document at a time: two would interleave on the paper
        self.last_error: str | None = None

    def _open(self) -> Any:
        # python-escpos (and Pillow under it) is imported only when something is printed.
        from escpos import printer as escpos

        s = self.settings
        if s.kind == "usb":
            return escpos.Usb(s.usb_vendor_id, s.usb_product_id)
        if s.kind == "serial":
            return escpos.Serial(devfile=s.serial_port, baudrate=s.serial_baudrate, timeout=2)
        return escpos.File(devfile=str(s.file))

    def print(self, document: PrintDocument) -> None:
        with self._lock:
            try:
                device = self._open()
                try:
                    render(device, document, self.settings.width)
                finally:
                    device.close()
            except Exception as exc:  # noqa: BLE001 - USB, serial and OS errors come in many types
                self.last_error = type(exc).__name__
                log.warning("impresora %s no disponible: %s [printer_offline]", self.settings.kind, type(exc).__name__)
                raise PrinterOffline() from None
            self.last_error = None
        log.info("impreso %s (%d líneas) [printed]", document.kind, len(document.lines))

    def health(self) -> dict[str, Any]:
        return {"state": "ok" if self.last_error is None else "degraded", "kind": self.settings.kind,
                "last_error": self.last_error}


def render(device: Any, document: PrintDocument, width: int) -> None:
    """ESC/POS: initialize, each line in its style, feed and cut."""
    device.hw("INIT")
    for line in document.lines:
        if line.style == "title":
            device.set(align="center", bold=True, double_height=True)
            device.text(line.text + "\n")
        elif line.style == "rule":
            device.set(align="left", bold=False, normal_textsize=True)
            device.text("-" * width + "\n")
        else:
            device.set(align="left", bold=line.style == "bold", normal_textsize=True)
            device.text(line.text + "\n")
    device.cut()
