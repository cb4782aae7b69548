"""The ``dreamreel`` command: flags parsed into the objects the Python API takes (the only argparse user)."""

from . import commands
from .commands import build_parser


def main(argv: list[str] | None = None) -> int:
    """The console script (and ``python -m dreamreel``): ``commands.main`` in a process that exits after it."""
    return commands.main(argv, exiting=True)


__all__ = ["build_parser", "main"]
