"""Schedule strings: per-frame values written as Deforum writes them, ``0:(1.0), 60:(1.04+0.02*sin(t/8))``.

A schedule is ``FRAME:(EXPRESSION)`` pairs, separated by commas. FRAME is a whole frame number. EXPRESSION may
use ``t`` (the frame), ``max_f`` (the render's frame count), ``fps`` and ``s`` (seconds, ``t / fps``), numbers,
``+ - * / ** %``, unary minus, parentheses, and exactly the functions sin, cos, tan, abs, min, max, floor, ceil,
sqrt, exp, log and the constants pi and e. As in Deforum, a key whose value is a plain number is a point that
the frames between keys interpolate linearly to and from; a key with any other expression is evaluated at every
frame from its key up to the next key. Before the first key the first value holds, after the last the last; a
key after the render's last frame still anchors the frames before it (Deforum drops it).

Strings are parsed here by a small tokenizer and a recursive-descent parser into closures; nothing is handed
to Python's ``eval``. Every intermediate result must stay within +-1e6 and finite (``9**9**9`` is refused
before it is computed), and :meth:`Schedule.series` evaluates every frame of a render up front, so a bad value
is refused with its frame before any work. Errors are ``ScheduleError`` with the 1-based column they point at.
No torch here: the option table parses with this.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Schedule", "ScheduleError", "parse_schedule_string", "looks_like_schedule", "FrameTable"]

MAX_MAGNITUDE = 1e6
VARIABLES = ("t", "max_f", "fps", "s")
CONSTANTS = {"pi": math.pi, "e": math.e}
#: name -> (fewest arguments, most arguments or None, function)
FUNCTIONS: dict[str, tuple[int, int | None, Callable[..., float]]] = {
    "sin": (1, 1, math.sin), "cos": (1, 1, math.cos), "tan": (1, 1, math.tan), "abs": (1, 1, abs),
    "floor": (1, 1, math.floor), "ceil": (1, 1, math.ceil), "sqrt": (1, 1, math.sqrt), "exp": (1, 1, math.exp),
    "log": (1, 1, math.log), "min": (1, None, min), "max": (1, None, max),
}
_TOKEN = re.compile(r"\s*(?:(\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)|([A-Za-z_][A-Za-z_0-9]*)|(\*\*|[-+*/%(),:]))")


class ScheduleError(ValueError):
    """A schedule that cannot be parsed or evaluated; ``column`` is 1-based (0: no column)."""

    def __init__(self, message: str, column: int = 0, hint: str | None = None):
        super().__init__(message)
        self.message, self.column, self.hint = message, column, hint

    def __str__(self) -> str:
        return f"bad schedule at column {self.column}: {self.message}" if self.column else self.message


@dataclass(frozen=True)
class _Token:
    kind: str  # "num", "name", "op", "end"
    text: str
    column: int


def _tokenize(text: str) -> list[_Token]:
    """Tokens up to the first character no token starts with, which becomes a "bad" token (the parser refuses it
    when it reaches it, so ``__import__("os")`` is refused for its name, the first thing wrong)."""
    out, i = [], 0
    while text[i:].strip():
        m = _TOKEN.match(text, i)
        glued = m and m.group(3) is None and m.end() < len(text) and (text[m.end()] in "._" or text[m.end()].isalnum())
        if not m or glued:
            j = m.end() if glued else i + len(text[i:]) - len(text[i:].lstrip())
            if glued:
                out.append(_Token("num" if m.group(1) else "name", m.group(m.lastindex), m.start(m.lastindex) + 1))
            c = text[j]
            hint = " (no attribute access)" if c == "." else " (write ** for a power)" if c == "^" else ""
            out.append(_Token("bad", f"unexpected character {c!r}{hint}", j + 1))
            break
        kind = "num" if m.group(1) else "name" if m.group(2) else "op"
        out.append(_Token(kind, m.group(m.lastindex), m.start(m.lastindex) + 1))
        i = m.end()
    out.append(_Token("end", "", len(text) + 1))
    return out


Env = dict  # t, max_f, fps, s
Node = Callable[[Env], float]


def _checked(value: float, column: int, what: str) -> float:
    if isinstance(value, complex) or not math.isfinite(value):
        raise ScheduleError(f"{what} is not a finite real number", column)
    if abs(value) > MAX_MAGNITUDE:
        raise ScheduleError(f"{what} is {value:.3g}, beyond +-1e6", column)
    return float(value)


def _power(a: float, b: float, column: int) -> float:
    """``a ** b`` refused before computing when its size would pass 1e6 (or it is not a real number)."""
    if a == 0 and b < 0:
        raise ScheduleError("0 to a negative power", column)
    if a < 0 and b != int(b):
        raise ScheduleError("a negative number to a fractional power", column)
    if a != 0 and b * math.log10(abs(a)) > 6:
        raise ScheduleError(f"{a:g} ** {b:g} is beyond +-1e6", column)
    return _checked(a ** b, column, "the power")


def _binary(op: str, left: Node, right: Node, column: int) -> Node:
    def div(a, b):
        if b == 0:
            raise ScheduleError("division by zero", column)
        return a / b if op == "/" else a % b

    ops = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, "/": div, "%": div,
           "**": lambda a, b: _power(a, b, column)}
    f = ops[op]
    return lambda env: _checked(f(left(env), right(env)), column, f"the result of {op!r}")


def _call(name: str, args: list[Node], column: int) -> Node:
    lo, hi, f = FUNCTIONS[name]
    if len(args) < lo or (hi is not None and len(args) > hi):
        want = f"{lo}" if lo == hi else f"at least {lo}"
        raise ScheduleError(f"{name}() takes {want} argument{'s' if want != '1' else ''}, not {len(args)}", column)

    def run(env):
        values = [a(env) for a in args]
        if name == "exp" and values[0] > math.log(MAX_MAGNITUDE):
            raise ScheduleError(f"exp({values[0]:g}) is beyond +-1e6", column)
        try:
            return _checked(f(*values), column, f"{name}()")
        except ValueError as exc:
            if isinstance(exc, ScheduleError):
                raise
            raise ScheduleError(f"{name}({', '.join(f'{v:g}' for v in values)}) is not defined", column) from None

    return run


class _Parser:
    """expr := term (('+'|'-') term)*; term := unary (('*'|'/'|'%') unary)*; unary := ('-'|'+') unary | power;
    power := atom ('**' unary)?; atom := number | constant | variable | function '(' expr, ... ')' | '(' expr ')'."""

    MAX_DEPTH = 50  # nested parentheses, calls and unary signs (the parser recurses on each)
    MAX_OPERATIONS = 300  # per key's expression: evaluating a chain of them recurses as deep

    def __init__(self, tokens: list[_Token]):
        self.tokens, self.i, self.depth, self.operations = tokens, 0, 0, 0

    def count(self, column: int) -> None:
        self.operations += 1
        if self.operations > self.MAX_OPERATIONS:
            raise ScheduleError(f"an expression of more than {self.MAX_OPERATIONS} operations", column)

    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def take(self, text: str | None = None) -> _Token:
        t = self.tok
        if t.kind == "bad":
            raise ScheduleError(t.text, t.column)
        if text is not None and t.text != text:
            raise ScheduleError(f"expected {text!r}, found {t.text or 'the end'}", t.column)
        self.i += 1
        return t

    def expr(self) -> Node:
        node = self.term()
        while self.tok.text in ("+", "-"):
            op = self.take()
            self.count(op.column)
            node = _binary(op.text, node, self.term(), op.column)
        return node

    def term(self) -> Node:
        node = self.unary()
        while self.tok.text in ("*", "/", "%"):
            op = self.take()
            self.count(op.column)
            node = _binary(op.text, node, self.unary(), op.column)
        return node

    def unary(self) -> Node:
        self.depth += 1
        try:
            if self.depth > self.MAX_DEPTH:
                raise ScheduleError(f"nested more than {self.MAX_DEPTH} deep", self.tok.column)
            return self._unary()
        finally:
            self.depth -= 1

    def _unary(self) -> Node:
        if self.tok.text in ("-", "+"):
            op = self.take()
            inner = self.unary()
            return (lambda env: -inner(env)) if op.text == "-" else inner
        return self.power()

    def power(self) -> Node:
        base = self.atom()
        if self.tok.text == "**":
            op = self.take()
            self.count(op.column)
            return _binary("**", base, self.unary(), op.column)
        return base

    def atom(self) -> Node:
        t = self.take()
        if t.kind == "num":
            v = _checked(float(t.text), t.column, f"the number {t.text}")
            return lambda env: v
        if t.kind == "name":
            if t.text in FUNCTIONS:
                self.take("(")
                args = [self.expr()]
                while self.tok.text == ",":
                    self.take()
                    args.append(self.expr())
                self.take(")")
                return _call(t.text, args, t.column)
            if t.text in CONSTANTS:
                v = CONSTANTS[t.text]
                return lambda env: v
            if t.text in VARIABLES:
                name = t.text
                return lambda env: env[name]
            raise ScheduleError(f"unknown name {t.text!r}", t.column,
                                f"use {', '.join((*VARIABLES, *CONSTANTS, *FUNCTIONS))}")
        if t.text == "(":
            node = self.expr()
            self.take(")")
            return node
        raise ScheduleError(f"expected a number, a name or '(', found {t.text or 'the end'}", t.column)


@dataclass(frozen=True)
class _Key:
    frame: int
    node: Node
    point: bool  # a plain number: interpolated to and from; else evaluated at every frame up to the next key


@dataclass(frozen=True, eq=False)
class Schedule:
    """A parsed schedule string; ``series(frames, fps)`` gives its value at every frame."""

    text: str
    keys: tuple[_Key, ...]
    origin: str = ""  # where it was written (a timeline file's key), for messages; "" for a flag or keyword

    def series(self, frames: int, fps: float) -> list[float]:
        """The value at frames 0..frames-1 (Deforum's rule, see the module); a ScheduleError names the frame. The
        first key after the last frame still anchors the frames before it (``0:(1), 48:(2)`` over 48 frames
        reaches 1.98)."""
        known: dict[int, float] = {}
        keys = sorted(self.keys, key=lambda k: k.frame)
        for n, key in enumerate(keys):
            until = keys[n + 1].frame if n + 1 < len(keys) else frames
            beyond = key.frame >= frames
            for f in ([key.frame] if key.point or beyond else range(key.frame, min(until, frames))):
                try:
                    known[f] = key.node({"t": float(f), "max_f": float(frames), "fps": float(fps), "s": f / fps})
                except ScheduleError as exc:
                    raise ScheduleError(f"at frame {f}: {exc.message}", exc.column, exc.hint) from None
            if beyond:
                break
        return _fill_linear(known, frames)

    def __repr__(self) -> str:  # stable: fingerprints and sidecars hold the text
        return self.text

    def __eq__(self, other) -> bool:
        return isinstance(other, Schedule) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


def _fill_linear(known: dict[int, float], frames: int) -> list[float]:
    """Frames 0..frames-1 linear between the known values (one may lie after the last frame), the first before
    them and the last after them."""
    at = sorted(known)
    out = [known[at[0]]] * min(frames, at[0] + 1)
    for a, b in zip(at, at[1:]):
        out += [known[a] + (known[b] - known[a]) * (i - a) / (b - a) for i in range(a + 1, min(b, frames))]
        if b < frames:
            out.append(known[b])
    return out + [known[at[-1]]] * (frames - len(out))


@dataclass(frozen=True, eq=False)
class FrameTable:
    """Per-frame values read from a file (a Parseq render): linear between its frames, held before and after."""

    label: str
    values: tuple[tuple[int, float], ...]  # (frame, value), sorted
    origin: str = ""

    def series(self, frames: int, fps: float) -> list[float]:
        inside = [(f, v) for f, v in self.values if f < frames]
        after = [(f, v) for f, v in self.values if f >= frames][:1]  # anchors the frames before it
        return _fill_linear(dict(inside + after), frames)

    @property
    def text(self) -> str:
        return self.label

    def __repr__(self) -> str:
        return self.label


def looks_like_schedule(text: str) -> bool:
    """A value is a schedule string when it holds a parenthesis (Deforum always writes ``KEY:(VALUE)``)."""
    return "(" in text or ")" in text


def parse_schedule_string(text: str) -> Schedule:
    """``FRAME:(EXPRESSION), ...`` into a Schedule, or a ScheduleError pointing at the column."""
    text = str(text)
    if len(text) > 10_000:
        raise ScheduleError("a schedule of more than 10000 characters")
    tokens = _tokenize(text)
    p = _Parser(tokens)
    keys: list[_Key] = []
    frames: set[int] = set()
    while True:
        t = p.take()
        if t.kind != "num" or not re.fullmatch(r"\d+", t.text):
            shown = t.text + (p.tok.text if t.text in "-+" and p.tok.kind == "num" else "")
            raise ScheduleError(f"a key must be a whole frame number, not {shown or 'nothing'!r}", t.column)
        frame = int(t.text)
        if frame > 1_000_000:
            raise ScheduleError(f"frame {frame} is beyond 1000000", t.column)
        if frame in frames:
            raise ScheduleError(f"a second key for frame {frame}", t.column)
        frames.add(frame)
        p.take(":")
        p.take("(")
        start, p.operations = p.i, 0
        node = p.expr()
        body = tokens[start:p.i]
        p.take(")")
        point = len(body) == 1 and body[0].kind == "num" or (len(body) == 2 and body[0].text in "-+" and body[1].kind == "num")
        keys.append(_Key(frame, node, point))
        if p.tok.kind == "end":
            break
        p.take(",")
        if p.tok.kind == "end":  # a trailing comma
            break
    return Schedule(text, tuple(keys))
