"""``dreamreel reproduce``: the flags of ``reproduce.reproduce``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def cmd_reproduce(args) -> int:
    t0 = time.perf_counter()
    from ..reproduce import reproduce

    claims = reproduce(args.out, args.model, photo=args.photo, scale=args.scale, steps=args.steps, device=args.device,
                       seed=args.seed, weights=args.weights, show_progress=not args.quiet)
    agree = sum(c.agrees == "yes" for c in claims)
    measured = sum(c.agrees != "skipped" for c in claims)
    print(f"wrote {Path(args.out) / 'claims.md'}, claims.csv and contact_sheet.png ({time.perf_counter() - t0:.0f} s); "
          f"{agree} of {measured} measured claims agree with the article", file=sys.stderr)
    return 0


def _scale(text: str) -> float:
    v = float(text)
    if not 0 < v <= 4:
        raise argparse.ArgumentTypeError("use a factor in (0, 4]")
    return v


def _checked(key: str):
    """An argparse type from the option table's checker (options.parse_value): --seed and --steps stay in range."""
    def parse(text: str):
        from ..errors import DreamError
        from ..options import parse_value

        try:
            v = parse_value(key, text, "--" + key)
        except DreamError as exc:
            raise argparse.ArgumentTypeError(f"bad value {text!r}" + (f" ({exc.hint})" if exc.hint else "")) from None
        if isinstance(v, list) and len(v) != 1:
            raise argparse.ArgumentTypeError(f"bad value {text!r} (one whole number)")
        return v[0] if isinstance(v, list) else v

    return parse


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Registers ``dreamreel reproduce`` on the CLI's subparsers."""
    p = subparsers.add_parser(
        "reproduce", help="measure the article's claims (claims.md, claims.csv, contact sheet)",
        description="Run the article's presets (on efficientnet_lite0: their lite0-* twins) at modest sizes and "
                    "measure each of the article's claims; writes DIR/claims.md, DIR/claims.csv, DIR/contact_sheet.png.",
    )
    p.add_argument("--out", default="repro", metavar="DIR", help="output folder [default: repro]")
    p.add_argument("--model", default="efficientnet_lite0", metavar="M",
                   help="efficientnet_lite0 (the twins), inception_v3 or googlenet (the article's presets; need their weights)")
    p.add_argument("--weights", default="default", metavar="W",
                   help="default (torch hub cache / embedded), random, or a state-dict PATH for --model")
    p.add_argument("--photo", default=None, metavar="IMAGE", help="start photo (its centre square) [default: the bundled demo photo]")
    p.add_argument("--scale", type=_scale, default=0.5, metavar="F", help="factor on the presets' octave sizes [default: 0.5]")
    p.add_argument("--steps", type=_checked("steps"), default=None, metavar="N", help="steps per octave [default: the presets' 100]")
    p.add_argument("--device", default="auto", metavar="D", help="auto, cpu, cuda, mps [default: auto]")
    p.add_argument("--seed", type=_checked("seed"), default=0, metavar="N", help="random seed (noise, jitter) [default: 0]")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_reproduce)
    return p
