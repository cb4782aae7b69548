"""How a command that did not finish ended, as a value: what it kept on disk and what its recordings kept.

A render that stops (Ctrl-C, SIGTERM, bad input found late, a full disk) raises an :class:`Unfinished`
holding one :class:`Outcome`. ``Unfinished`` is a family of one exception type per cause, each also an
instance of that cause (an interrupted render is a ``KeyboardInterrupt``, a failed one a ``DreamError`` or an
``OSError``), so every ``except KeyboardInterrupt`` that keeps finished work still sees it; the CLI turns the
outcome into its lines and exit code. Nothing is attached to an exception on its way up.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NoReturn

from .errors import DreamError
from .interrupts import Terminated, terminated

__all__ = ["Partial", "Outcome", "Unfinished", "unfinished", "reraise", "outcome_of"]


@dataclass(frozen=True)
class Partial:
    """What an interrupted or failed frame render kept on disk."""

    output: Path
    frames: int  # frames kept, in ``location``
    total: int
    new: int  # frames this run added
    note: str | None = None  # why the finished frames could not be kept
    location: Path | None = None  # where they are: ``output``, or the checkpoint's partial beside a finished output

    def kept_line(self) -> str:
        """"OUT holds N of T frames", or where the frames are when a finished OUT was left as it was."""
        if self.location is None or self.location == self.output:
            return f"{self.output} holds {self.frames} of {self.total} frames"
        where = self.location.relative_to(self.output.parent) if self.location.is_relative_to(self.output.parent) \
            else self.location
        return f"{self.output} is unchanged; the new render's {self.frames} of {self.total} frames are in {where}"


@dataclass(frozen=True)
class Outcome:
    """An unfinished command's result: the frames kept, each recording's note, a many-item command's summary."""

    partial: Partial | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)  # what each recording (progress, activations) kept
    summary: str | None = None  # the one line that says what a many-item command (batch) did before it stopped


class Unfinished(BaseException):
    """The one carrier of an :class:`Outcome`; concrete classes also derive from the cause's type."""

    outcome: Outcome


class InterruptedRender(Unfinished, KeyboardInterrupt):
    def __init__(self, outcome: Outcome):
        super().__init__()
        self.outcome = outcome


class TerminatedRender(Unfinished, Terminated):
    def __init__(self, outcome: Outcome):
        super().__init__()
        self.outcome = outcome


class FailedRender(Unfinished, DreamError):
    def __init__(self, outcome: Outcome, message: str, hint: str | None, exit_code: int):
        DreamError.__init__(self, message, hint)
        self.outcome, self.exit_code = outcome, exit_code


class FailedWrite(Unfinished, OSError):
    def __init__(self, outcome: Outcome, cause: OSError):
        if cause.filename is not None or cause.filename2 is not None:  # errno, strerror and the file names
            OSError.__init__(self, cause.errno, cause.strerror, cause.filename, None, cause.filename2)
        else:
            OSError.__init__(self, *cause.args)
        self.outcome = outcome


def outcome_of(exc: BaseException) -> Outcome | None:
    return exc.outcome if isinstance(exc, Unfinished) else None


def unfinished(exc: BaseException, *, partial: Partial | None = None, notes=(), summary: str | None = None
               ) -> BaseException:
    """``exc`` as an :class:`Unfinished` of its own kind, its outcome extended by ``partial``/``notes``/``summary``
    (raise it ``from exc``). A cause the CLI reports by type alone (another exception) comes back as it is."""
    old = outcome_of(exc) or Outcome()
    outcome = replace(old, partial=partial if partial is not None else old.partial, notes=old.notes + tuple(notes),
                      summary=old.summary if summary is None else summary)
    if terminated(exc):
        return TerminatedRender(outcome)
    if isinstance(exc, KeyboardInterrupt):
        return InterruptedRender(outcome)
    if isinstance(exc, DreamError):
        return FailedRender(outcome, exc.message, exc.hint, exc.exit_code)
    if isinstance(exc, OSError):
        return FailedWrite(outcome, exc)
    return exc


def reraise(exc: BaseException, **outcome) -> NoReturn:
    """Raise ``unfinished(exc, **outcome)`` from ``exc`` (``exc`` itself where it carries no outcome)."""
    carrier = unfinished(exc, **outcome)
    if carrier is exc:
        raise exc
    raise carrier from exc
