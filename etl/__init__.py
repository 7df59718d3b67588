"""Access Atlas ETL: raw inputs → geocode → network → access → region bundle."""

from __future__ import annotations

__version__ = "0.1.0"
