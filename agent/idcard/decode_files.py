"""``loyalty-agent idcard decode [--json] FILE...``: read ID barcodes from image files.

With ``--json`` prints one object per line: ``{"file", "ok", "format", "document", "warnings",
"ms"}``; a file with no ID code gives ``"ok": false`` and no document. Exit status 0 when every
file was read, 1 otherwise. Without ``--json`` a human line per file, number masked.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, TextIO

import cv2
import numpy as np

from agent.idcard.errors import IdCardError
from agent.idcard.parsers import parse_any
from agent.idcard.pipeline import DecodePipeline, PipelineSettings
from agent.idcard.schema import IdDocument


def decode_file(path: Path, pipeline: DecodePipeline) -> dict[str, Any]:
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
        parsed: dict[str, IdDocument] = {}
        rejected: list[str] = []

        def accept(data: bytes, symbology: str) -> bool:
            try:
                parsed["doc"] = parse_any(data, symbology)
                return True
            except IdCardError as exc:
                rejected.append(exc.code)
                return False

        symbol = pipeline.decode(image, accept)
        if symbol:
            record.update(ok=True, format=symbol.format, document=parsed["doc"].to_dict())
            record["warnings"] = list(parsed["doc"].warnings)
        else:
            record["warnings"].append(rejected[0] if rejected else "no_barcode_found")
    record["ms"] = round((time.perf_counter() - start) * 1000, 1)
    return record


def run_decode(files: list[str], as_json: bool, budget_ms: float, out: TextIO) -> int:
    pipeline = DecodePipeline(PipelineSettings(budget_ms=budget_ms))
    status = 0
    for name in files:
        record = decode_file(Path(name), pipeline)
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
