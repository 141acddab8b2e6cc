"""The ``dicomrender`` command line (``python -m dicomrender.cli`` runs it too)."""

from .command import main

__all__ = ["main"]
