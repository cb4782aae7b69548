"""argparse flags built from the one option table (``options.OPTIONS``), and read back into keyword values."""

from __future__ import annotations

import argparse
import re
from typing import Any

from ..options import ALIASES, OPTIONS, canonical_keys

#: Each option's Deforum spellings as extra flags (--angle for --rotate).
_ALIAS_DEST = "deforum_"  # an alias flag's own argparse dest: deforum_angle
_ALIAS_FLAGS = {key: ["--" + alias.replace("_", "-") for alias, k in ALIASES.items() if k == key] for key in ALIASES.values()}

GROUP_TITLES = {"dream": "dream options", "zoom": "zoom", "video": "video", "output": "output",
                "recording": "recording", "batch": "batch",
                "frames": "in-betweens, draft",
                "segments": "segments (one long clip, in parallel)"}


def _default_text(o) -> str:
    d = o.default
    if isinstance(d, list):
        return ",".join(":".join(f"{v:g}" for v in x) if isinstance(x, tuple) else str(x) for x in d)
    if isinstance(d, tuple):
        return ",".join(f"{v:g}" for v in d)
    return f"{d:g}" if isinstance(d, float) else str(d)


def add_options(parser: argparse.ArgumentParser, groups: dict[str, tuple[str, ...] | None], *,
                defaults: dict[str, Any] | None = None, titles: dict[str, str] | None = None) -> None:
    """Flags for the table's options in ``groups`` (group -> keys, None = all of it); ``defaults`` are the
    command's own (shown in the help)."""
    defaults = defaults or {}
    for group, keys in groups.items():
        g = parser.add_argument_group((titles or {}).get(group, GROUP_TITLES[group]))
        for o in OPTIONS:
            if o.group != group or (keys is not None and o.key not in keys):
                continue
            shown = defaults.get(o.key, o.default)
            tmp = type(o)(o.key, o.parse, shown, o.help)
            help_text = o.help + (f" [default: {_default_text(tmp)}]" if shown not in (None, [], False) else "")
            if o.switch:
                g.add_argument(o.flag, dest=o.key, action="store_const", const=True, default=None, help=help_text)
            elif o.repeat:
                g.add_argument(o.flag, dest=o.key, action="append", default=None, metavar=o.metavar, help=help_text)
            else:
                g.add_argument(o.flag, dest=o.key, default=None, metavar=o.metavar, help=help_text)
                for alias in _ALIAS_FLAGS.get(o.key, ()):  # its own dest: both given is refused in given()
                    g.add_argument(alias, dest=_ALIAS_DEST + alias[2:].replace("-", "_"), default=None,
                                   metavar=o.metavar, help=argparse.SUPPRESS)
        if group == "dream":
            g.add_argument("--preset", default=None, metavar="NAME|FILE", help="fill defaults from a preset (see: dreamreel presets); explicit flags win")
            g.add_argument("--dry-run", action="store_true", help="resolve and validate everything, print the plan, compute nothing")


def given(args: argparse.Namespace) -> dict[str, Any]:
    """The table options given on the command line (raw strings; absent ones left out); a Deforum spelling
    (--angle) counts as its option (--rotate), and both given is refused by ``options.canonical_keys``."""
    out = {o.key: getattr(args, o.key) for o in OPTIONS if getattr(args, o.key, None) is not None}
    out.update({a: v for a in ALIASES if (v := getattr(args, _ALIAS_DEST + a, None)) is not None})
    return canonical_keys(out, lambda k: "--" + k.replace("_", "-"))


_NEGATIVE = re.compile(r"^-(\d|\.\d|inf|nan)", re.IGNORECASE)


def with_negative_values(argv: list[str]) -> list[str]:
    """``--shift -4,2`` and ``--rotate -inf`` as ``--shift=-4,2``: argparse takes a value that starts with "-"
    and is not a plain negative number for an option, so a negative list or a non-finite number would be
    refused with "expected one argument" (and -inf never reach the range check that names it)."""
    valued = {o.flag for o in OPTIONS if not o.switch} | {f for flags in _ALIAS_FLAGS.values() for f in flags}
    out, i = [], 0
    while i < len(argv):
        arg = argv[i]
        if arg in valued and i + 1 < len(argv) and _NEGATIVE.match(argv[i + 1]):
            out.append(f"{arg}={argv[i + 1]}")
            i += 2
            continue
        out.append(arg)
        i += 1
    return out
