"""Operating a station: health with reasons, metrics, logs' state changes, the technician console
and the diagnostic commands (status, devices, doctor)."""
