"""The ``dreamreel`` command: flags parsed into the objects the Python API takes (the only argparse user)."""

from .commands import build_parser, main

__all__ = ["build_parser", "main"]
