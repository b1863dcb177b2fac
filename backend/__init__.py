"""fairtix: a fair ticket sale and resale backend."""

__version__ = "0.1.0"
