"""ID-card capture: barcode/MRZ parsers, the camera-frame decode pipeline and the capture service."""
