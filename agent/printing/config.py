"""``[printer]``: the station's ESC/POS receipt printer (off unless configured)."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agent.settings_loader import bilingual


class PrinterSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["none", "usb", "serial", "file"] = Field(
        "none", description="How the printer is connected; `file` writes the ESC/POS bytes to a file or device node.")
    usb_vendor_id: int | None = Field(None, ge=0, le=0xFFFF, description="USB vendor id (lsusb), e.g. 0x04b8 (Epson).")
    usb_product_id: int | None = Field(None, ge=0, le=0xFFFF, description="USB product id (lsusb).")
    serial_port: str | None = Field(None, description="Serial port of a serial printer (/dev/serial/by-id/...).")
    serial_baudrate: int = Field(9600, ge=1200, le=921600)
    file: Path | None = Field(None, description="File or device node the `file` kind writes to (e.g. /dev/usb/lp0).")
    width: int = Field(42, ge=24, le=64, description="Characters per line (42 on 80 mm paper, 32 on 58 mm).")

    @model_validator(mode="after")
    def _connection_given(self) -> "PrinterSettings":
        needed = {"usb": ("usb_vendor_id", "usb_product_id"), "serial": ("serial_port",), "file": ("file",)}
        missing = [name for name in needed.get(self.kind, ()) if getattr(self, name) is None]
        if missing:
            raise bilingual(f"la impresora de tipo {self.kind!r} necesita {', '.join(missing)}",
                            f"printer kind {self.kind!r} needs {', '.join(missing)}")
        return self
