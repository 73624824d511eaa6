"""Carnet: a self-hostable personal health record platform."""

__version__ = "0.1.0"
