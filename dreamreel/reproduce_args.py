"""``dreamreel reproduce``'s flags, apart from the module that runs it, so building the CLI imports no torch."""

from __future__ import annotations

import argparse


def cmd_reproduce(args) -> int:
    """Runs the command: the heavy module (torch, the models) loads only now."""
    from . import reproduce

    return reproduce.cmd_reproduce(args)


def _scale(text: str) -> float:
    v = float(text)
    if not 0 < v <= 4:
        raise argparse.ArgumentTypeError("use a factor in (0, 4]")
    return v


def _steps(text: str) -> int:
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError("use at least 1")
    return v


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
    p.add_argument("--steps", type=_steps, default=None, metavar="N", help="steps per octave [default: the presets' 100]")
    p.add_argument("--device", default="auto", metavar="D", help="auto, cpu, cuda, mps [default: auto]")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="random seed (noise, jitter) [default: 0]")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_reproduce)
    return p
