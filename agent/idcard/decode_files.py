"""``loyalty-agent idcard decode [--json] FILE...``: read ID barcodes and MRZs from image files.

With ``--json`` prints one object per line: ``{"file", "ok", "format", "document", "warnings",
"ms"}``; a file with no ID code gives ``"ok": false`` and no document. Exit status 0 when every
file was read, 1 otherwise. A card whose MRZ is in view but could not be validated gives the
warning ``mrz_unreadable``. Without ``--json`` a human line per file, number masked.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, TextIO

import cv2
import numpy as np

from agent.idcard.frame_reader import FrameReader
from agent.idcard.pipeline import DecodePipeline, PipelineSettings
from agent.idcard.schema import IdDocument


def decode_file(path: Path, reader: FrameReader) -> dict[str, Any]:
    start = time.perf_counter()
    record: dict[str, Any] = {"file": str(path), "ok": False, "format": None, "warnings": []}
    try:
        raw = path.read_bytes()
    except OSError:
        raw = b""
        record["warnings"].append("file_unreadable")
    image = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_GRAYSCALE) if raw else None
    if image is None:
        if not record["warnings"]:
            record["warnings"].append("image_unreadable")
    else:
        result = reader.read(image)
        if result.document is not None:
            record.update(ok=True, format=result.source, document=result.document.to_dict())
            record["warnings"] = list(result.document.warnings)
        elif result.mrz_seen:
            record["warnings"].append("mrz_unreadable")
        else:
            record["warnings"].append(result.rejected[0].code if result.rejected else "no_barcode_found")
    record["ms"] = round((time.perf_counter() - start) * 1000, 1)
    return record


def run_decode(files: list[str], as_json: bool, budget_ms: float, out: TextIO) -> int:
    reader = FrameReader(DecodePipeline(PipelineSettings(budget_ms=budget_ms)))
    status = 0
    for name in files:
        record = decode_file(Path(name), reader)
        if not record["ok"]:
            status = 1
        if as_json:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        elif record["ok"]:
            doc = record["document"]
            masked = IdDocument(**{**doc, "warnings": tuple(doc["warnings"])}).masked_number()
            out.write(f"{name}: {record['format']} {doc['country']} {doc['document_type']} {masked} "
                      f"({record['ms']} ms) {' '.join(record['warnings'])}\n")
        else:
            out.write(f"{name}: no ID code ({' '.join(record['warnings'])}, {record['ms']} ms)\n")
    out.flush()
    return status
