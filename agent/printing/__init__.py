"""The station's receipt printer (ESC/POS) and the documents it prints (seed 002)."""
