"""Presets: TOML files of options (the top-level ``presets/`` folder, installed as ``dreamreel.preset_files``).

A preset is a file of flags: the keys are the long option names with ``_`` for ``-``
(``smooth_every = 5``) -- any dream, zoom, video or output option -- plus ``description``. Every
value is checked when the preset is loaded. Explicit flags and keywords override it.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import DreamError, did_you_mean
from .options import ALIASES, PRESET_KEYS, parse_value

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# Keys a preset may hold beyond the options.
EXTRA_KEYS = {"description"}


@dataclass
class Preset:
    name: str
    path: Path
    description: str
    values: dict[str, Any]  # parsed options (dream, zoom, video, output)
    extra: dict[str, Any]  # the description


def preset_dir() -> Path:
    """The checkout's ``presets/`` when run from source (a worktree on PYTHONPATH sees its own), else the installed ones."""
    local = Path(__file__).resolve().parents[1] / "presets"
    if (local / "__init__.py").is_file() and (local / "classic.toml").is_file():
        return local
    try:
        return Path(str(resources.files("dreamreel.preset_files")))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[1] / "presets"


def available() -> dict[str, Path]:
    return {p.stem: p for p in sorted(preset_dir().glob("*.toml"))}


def _line_of(text: str, key: str) -> int | None:
    for number, line in enumerate(text.splitlines(), 1):
        if re.match(rf"\s*{re.escape(key)}\s*=", line):
            return number
    return None


def read_toml(path: Path, what: str) -> tuple[str, dict]:
    """A TOML file's text and table; unreadable, non-UTF-8 or invalid TOML is a one-line DreamError naming ``what``."""
    try:
        text = path.read_text(encoding="utf-8")
        return text, tomllib.loads(text)
    except UnicodeDecodeError as exc:
        raise DreamError(f"{what} {str(path)!r} is not UTF-8 text (byte {exc.start})", "save it as UTF-8 TOML") from None
    except OSError as exc:
        raise DreamError(f"cannot read {what} {str(path)!r}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise DreamError(f"{path}: {exc}") from None


def load_preset(name_or_path: str) -> Preset:
    """A preset by name (see ``dreamreel presets``) or by path; a broken file is reported with file, line and key."""
    known = available()
    path = Path(name_or_path)
    if name_or_path in known:
        path = known[name_or_path]
    elif not (path.suffix == ".toml" and path.is_file()):
        hint = did_you_mean(name_or_path, known) or "see: dreamreel presets"
        raise DreamError(f"unknown preset {name_or_path!r}", hint)
    text, data = read_toml(path, "preset")
    values, extra = {}, {}
    for key, value in data.items():
        where = f"{path}:{_line_of(text, key) or 1}"
        if key in ALIASES:  # Deforum's names (angle = ...)
            if ALIASES[key] in data:
                raise DreamError(f"{where}: {key!r} and {ALIASES[key]!r} are the same option", "keep one of them")
            key = ALIASES[key]
        if key in PRESET_KEYS:
            values[key] = parse_value(key, value, f"{where}: key {key!r}")
        elif key in EXTRA_KEYS:
            extra[key] = value
        else:
            hint = did_you_mean(key, list(PRESET_KEYS) + sorted(EXTRA_KEYS))
            raise DreamError(f"{where}: unknown key {key!r}", hint)
    description = str(extra.get("description", ""))
    return Preset(path.stem, path, description, values, extra)
