"""Functions that build Dash components (no I/O at import time)."""
