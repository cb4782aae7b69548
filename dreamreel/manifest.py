"""``DIR/manifest.json``: every batch item with its status, output and seconds, rewritten atomically after each."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import DreamError, short_path

MANIFEST = "manifest.json"


@dataclass
class Item:
    input: str  # as found (a path string)
    kind: str | None  # "image" | "video" | None (could not be used: see reason)
    output: str | None = None
    status: str = "pending"  # pending | done | failed
    reason: str | None = None
    seconds: float | None = None
    node: str | None = None  # --ray: the node that dreamt it (left out of the manifest without Ray)

    def to_json(self) -> dict:
        data = dataclasses.asdict(self)
        if data["node"] is None:
            data.pop("node")
        return data


def input_key(path: str) -> str:
    return os.path.realpath(path)


def _manifest_problem(data) -> str | None:
    """Why ``data`` is not a manifest this module wrote, or None."""
    if not isinstance(data, dict) or data.get("command") != "batch" or not isinstance(data.get("items"), list):
        return "no 'command': 'batch' and 'items' list"
    for n, it in enumerate(data["items"], 1):
        if not isinstance(it, dict):
            return f"item {n} is not an object"
        if not isinstance(it.get("input"), str) or not it["input"]:
            return f"item {n} has no input path"
        if it.get("kind") not in ("image", "video", None):
            return f"item {n} has an unknown kind"
        if it.get("status") not in ("pending", "done", "failed"):
            return f"item {n} has an unknown status"
        if it.get("output") is not None and not isinstance(it["output"], str):
            return f"item {n} has a bad output"
        if it.get("seconds") is not None and (not isinstance(it["seconds"], (int, float)) or isinstance(it["seconds"], bool)):
            return f"item {n} has bad seconds"
        if any(ord(c) < 32 for c in it["input"] + (it.get("output") or "")):
            return f"item {n} has a control character in a path"
    return None


class Manifest:
    def __init__(self, out_dir: Path, items: list[Item], options: dict, notes: list[str]):
        self.path = out_dir / MANIFEST
        self.items = items
        self.options = options
        self.notes = notes
        self.t0 = time.perf_counter()

    @staticmethod
    def read(out_dir: Path) -> dict[str, dict]:
        """The previous manifest's items by input (empty when there is none); one that is not a batch manifest
        (garbage, the wrong shape, control characters in its paths) is a one-line DreamError."""
        path = out_dir / MANIFEST
        if not path.exists():
            return {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DreamError(f"cannot --resume: {short_path(path)} is not a readable batch manifest ({type(exc).__name__})",
                             "remove it to start the batch over") from None
        problem = _manifest_problem(data)
        if problem:
            raise DreamError(f"cannot --resume: {short_path(path)} is not a batch manifest ({problem})",
                             "remove it to start the batch over")
        return {input_key(i["input"]): i for i in data["items"]}

    def counts(self) -> dict[str, int]:
        out = {"done": 0, "failed": 0, "pending": 0}
        for it in self.items:
            out[it.status] = out.get(it.status, 0) + 1
        return out

    def write(self) -> None:
        """Rewrite the manifest atomically; one that already says the same (a --resume with nothing left to do)
        is left alone, so such a run touches no file at all."""
        from .io.images import atomic_path

        data = {"command": "batch", "updated": time.strftime("%Y-%m-%dT%H:%M:%S"), **self.counts(),
                "seconds": round(time.perf_counter() - self.t0, 3), "options": self.options, "notes": self.notes,
                "items": [it.to_json() for it in self.items]}
        try:
            old = json.loads(self.path.read_text())
            volatile = ("updated", "seconds")
            if {k: v for k, v in old.items() if k not in volatile} == \
                    json.loads(json.dumps({k: v for k, v in data.items() if k not in volatile}, default=str)):
                return
        except (OSError, ValueError, AttributeError):
            pass
        with atomic_path(self.path) as tmp:
            tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
