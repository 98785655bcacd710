"""MRZ reading from camera frames: locate the band, level it, classify OCR-B glyphs, correct with
the ICAO check digits. See :mod:`agent.idcard.mrz.reader` for the entry point."""
