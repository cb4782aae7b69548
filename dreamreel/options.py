"""Dream options: one table that feeds the CLI flags, the presets and the resolved plan.

A value comes from an explicit flag, else the preset, else the built-in default. Flags and
preset values go through the same parsers, so a preset is exactly a file of flags.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .engine import DreamSettings, Octave, Size, octave_sizes
from .errors import DreamError
from .models import check_weights_arg, describe_weights, get_spec
from .objectives import Objective, build_objective

MAX_SIDE = 8192


def parse_size(text: str) -> int | Size:
    """``N`` (the output's longer side) or ``WxH`` (exact)."""
    t = str(text).strip().lower()
    if m := re.fullmatch(r"(\d+)\s*[x×]\s*(\d+)", t):
        w, h = int(m.group(1)), int(m.group(2))
        if w < 1 or h < 1:
            raise ValueError("width and height must be positive")
        return (w, h)
    if re.fullmatch(r"\d+", t):
        return int(t)
    raise ValueError("write N (longer side) or WxH, e.g. 512 or 640x360")


def parse_octaves(text: str) -> int | list[int]:
    """``N`` geometric octaves, or explicit longer-side sizes ``S1,S2,...``."""
    t = str(text).strip()
    if re.fullmatch(r"\d+", t):
        n = int(t)
        if not 1 <= n <= 12:
            raise ValueError("the number of octaves must be 1-12")
        return n
    parts = [p.strip() for p in t.strip("[]").split(",") if p.strip()]
    if not parts or not all(re.fullmatch(r"\d+", p) for p in parts):
        raise ValueError("write N or sizes S1,S2,..., e.g. 3 or 299,380,460")
    return [int(p) for p in parts]


def parse_int_list(text: str) -> list[int]:
    parts = [p.strip() for p in str(text).strip("[]").split(",") if p.strip()]
    if not parts or not all(re.fullmatch(r"\d+", p) for p in parts):
        raise ValueError("write N or N1,N2,... (one per octave)")
    return [int(p) for p in parts]


def parse_schedule(text: str) -> list[tuple[float, float]]:
    """``A`` (constant), ``A:B`` (start to end), or one of those per octave: ``0.5:0.4,0.4:0.3``."""
    out = []
    for part in str(text).strip("[]").split(","):
        part = part.strip().strip("'\"")
        if not part:
            continue
        a, _, b = part.partition(":")
        try:
            start = float(a)
            end = float(b) if b else start
        except ValueError:
            raise ValueError("write A or A:B, or one per octave: A:B,C:D") from None
        if start < 0 or end < 0:
            raise ValueError("values must be >= 0")
        out.append((start, end))
    if not out:
        raise ValueError("write A or A:B")
    return out


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in choices:
            raise ValueError(f"choose one of {', '.join(choices)}")
        return text

    return parse


def _positive_int(text: str) -> int:
    v = int(text)
    if v < 1:
        raise ValueError("must be >= 1")
    return v


def _nonneg_int(text: str) -> int:
    v = int(text)
    if v < 0:
        raise ValueError("must be >= 0")
    return v


def _nonneg_float(text: str) -> float:
    v = float(text)
    if not v >= 0:
        raise ValueError("must be >= 0")
    return v


def _positive_float(text: str) -> float:
    v = float(text)
    if v <= 0:
        raise ValueError("must be > 0")
    return v


@dataclass(frozen=True)
class Option:
    key: str
    parse: Callable[[str], Any]
    default: Any
    help: str
    metavar: str | None = None
    repeat: bool = False  # --layer A --layer B; a list in a preset


OPTIONS: list[Option] = [
    Option("model", str, "efficientnet_lite0", "model (see: dreamreel models)", "M"),
    Option("weights", str, "default", "default (torchvision download / embedded), random (untrained), or a state-dict PATH", "W"),
    Option("layer", str, [], "layer to dream: NAME, NAME:3,7 or NAME:0-7 (features), NAME@WEIGHT; repeat for several", "SPEC", True),
    Option("target", str, [], "class target: name or index, CLASS@WEIGHT; with --layer a directed dream", "CLASS[@W]", True),
    Option("size", parse_size, None, "output size: N (longer side, aspect kept) or WxH; default: the input's size", "N|WxH"),
    Option("octaves", parse_octaves, 4, "N octaves ending at the output size, or sizes S1,S2,...", "N|S1,S2,..."),
    Option("octave_scale", _positive_float, 1.4, "size ratio between octaves when --octaves is a count", "F"),
    Option("steps", parse_int_list, [10], "steps per octave (or one per octave: N1,N2,...)", "N"),
    Option("lr", parse_schedule, [(0.015, 0.008)], "learning rate start[:end] per octave (or one per octave, comma-separated)", "A[:B]"),
    Option("sigma", parse_schedule, [(0.5, 0.25)], "Gaussian blur sigma start[:end] in pixels; 0 = no smoothing", "A[:B]"),
    Option("smooth_every", _positive_int, 1, "blur every K steps (1: every step; 5-10: the article's directed dream)", "K"),
    Option("jitter", _nonneg_int, 16, "random shift of up to PX pixels per step (0: none, as in the article)", "PX"),
    Option("normalize", _choice("mean-abs", "none"), "mean-abs", "gradient normalisation: mean-abs, or none (the article's raw step)", "{mean-abs,none}"),
    Option("octave_carry", _choice("detail", "image"), "detail", "between octaves: add the dreamt detail to the resized source (detail) or resize the dream itself, as the article does (image)", "{detail,image}"),
    Option("seed", int, 0, "random seed (noise, jitter)", "N"),
    Option("device", str, "auto", "auto (cuda, then mps, then cpu), cpu, cuda, cuda:1, mps", "D"),
    # --- art features (issue 14): tiles.py, guide.py, masks.py
    Option("tile", _nonneg_int, 0, "compute the gradient in tiles of PX pixels (memory bounded by the tile, for huge images); 0: whole image", "PX"),
    Option("tile_overlap", _nonneg_int, None, "overlap of neighbouring tiles in pixels [default: tile/8]", "PX"),
    Option("guide", str, [], "guided dream: match the layer's features to IMAGE's (per position the best-matching one), @W weights it; repeat for several", "IMAGE[@W]", True),
    Option("guide_layer", str, None, "layer the guide is matched at [default: the first --layer's, else the model's default]", "NAME"),
    Option("mask", str, None, "dream only where MASK is white (grey: partly; black: the input exactly); a still or a video of masks", "MASK"),
    Option("mask_feather", _nonneg_float, 0.0, "soften the mask's edges over PX pixels, inside the white region", "PX"),
]
OPTION_KEYS = {o.key: o for o in OPTIONS}


def add_dream_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("dream options")
    for o in OPTIONS:
        flag = "--" + o.key.replace("_", "-")
        default_text = o.default if not isinstance(o.default, list) or not o.default else ",".join(
            ":".join(f"{v:g}" for v in x) if isinstance(x, tuple) else str(x) for x in o.default
        )
        help_text = o.help + (f" [default: {default_text}]" if o.default not in (None, []) else "")
        if o.repeat:
            group.add_argument(flag, dest=o.key, action="append", default=None, metavar=o.metavar, help=help_text)
        else:
            group.add_argument(flag, dest=o.key, default=None, metavar=o.metavar, help=help_text)
    group.add_argument("--preset", default=None, metavar="NAME|FILE", help="fill defaults from a preset (see: dreamreel presets); explicit flags win")
    group.add_argument("--dry-run", action="store_true", help="resolve and validate everything, print the plan, compute nothing")


def add_frame_overlay_arguments(parser: argparse.ArgumentParser) -> None:
    """--overlay for zoom and video: one heatmap frame per output frame."""
    g = parser.add_argument_group("overlay")
    g.add_argument("--overlay", metavar="FILE", help="heatmap of the dreamt layer over each output frame (.mp4, .gif or folder/)")
    g.add_argument("--overlay-feature", type=int, default=None, metavar="F", help="overlay one feature instead of the mean over features")


def parse_value(key: str, value: Any, where: str) -> Any:
    """Parse one option value from a flag string or a preset value; errors name ``where``."""
    o = OPTION_KEYS[key]
    if o.repeat:
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(v, (str, int)) for v in items):
            raise DreamError(f"{where}: {key} must be a string or a list of strings")
        return [str(v) for v in items]
    if isinstance(value, list):
        value = ",".join(str(v) for v in value)
    if isinstance(value, bool):
        raise DreamError(f"{where}: bad value {value!r} for {key}")
    try:
        return o.parse(str(value))
    except ValueError as exc:
        raise DreamError(f"{where}: bad value {str(value)!r} for {key}", str(exc) or None) from None


def merge_values(args: argparse.Namespace, preset: dict[str, Any] | None,
                 defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    """Explicit flags, else preset values, else the command's defaults, else the built-in ones (all parsed)."""
    values = {}
    preset = preset or {}
    defaults = defaults or {}
    for o in OPTIONS:
        raw = getattr(args, o.key, None)
        flag = "--" + o.key.replace("_", "-")
        if raw is not None:
            values[o.key] = parse_value(o.key, raw, flag)
        elif o.key in preset:
            values[o.key] = preset[o.key]
        elif o.key in defaults:
            values[o.key] = defaults[o.key]
        else:
            values[o.key] = o.default
    return values


def _per_octave(name: str, items: Sequence, n: int) -> list:
    if len(items) == 1:
        return list(items) * n
    if len(items) != n:
        raise DreamError(f"--{name} gives {len(items)} values for {n} octaves", f"give one value, or exactly {n}")
    return list(items)


@dataclass
class DreamPlan:
    """Everything a dream needs, resolved and validated, before any weights are loaded."""

    model: str
    weights: str
    layer: list[str]
    target: list[str]
    size: int | Size | None
    octaves: int | list[int]
    octave_scale: float
    steps: list[int]
    lr: list[tuple[float, float]]
    sigma: list[tuple[float, float]]
    smooth_every: int
    jitter: int
    normalize: str
    octave_carry: str
    seed: int
    device: str
    preset: str | None = None
    # --- art features (issue 14)
    tile: int = 0
    tile_overlap: int | None = None
    guide: list[str] = field(default_factory=list)
    guide_layer: str | None = None
    mask: str | None = None
    mask_feather: float = 0.0

    @property
    def spec(self):
        return get_spec(self.model)

    def objective(self) -> Objective:
        if self.guide:  # art (issue 14): guide terms join the layer/target terms (alone: the guide only)
            from .guide import build_guided_objective

            return build_guided_objective(self.layer, self.target, self.guide, self.guide_layer, self.spec.default_layer).bind(self.spec)
        return build_objective(self.layer, self.target, self.spec.default_layer).bind(self.spec)

    def mask_source(self, output_size: Size | None = None):
        """The --mask file (checked against ``output_size``), or None."""
        if not self.mask:
            return None
        from .masks import open_mask

        source = open_mask(self.mask, self.mask_feather)
        if output_size is not None:
            source.check(output_size)
        return source

    def output_size(self, input_size: Size | None) -> Size:
        """The output's (w, h) for an input of ``input_size`` (None: noise)."""
        if isinstance(self.size, tuple):
            out = self.size
        else:
            w, h = input_size or (512, 512)
            long = self.size if isinstance(self.size, int) else None
            if long is None and isinstance(self.octaves, list):
                long = self.octaves[-1]
            if long is None:
                out = (w, h)
            else:
                f = long / max(w, h)
                out = (max(1, round(w * f)), max(1, round(h * f)))
        if isinstance(self.octaves, list) and max(out) != self.octaves[-1]:
            f = self.octaves[-1] / max(out)
            out = (max(1, round(out[0] * f)), max(1, round(out[1] * f)))
        return out

    def settings(self, output_size: Size, octaves: int | list[int] | None = None, steps: list[int] | None = None) -> DreamSettings:
        """The engine settings for ``output_size``; ``octaves``/``steps`` override the plan's (zoom frames use 1 octave)."""
        octs = self.octaves if octaves is None else octaves
        sizes = octave_sizes(output_size, octs, self.octave_scale)
        n = len(sizes)
        steps_l = _per_octave("steps", self.steps if steps is None else steps, n)
        lr_l = _per_octave("lr", self.lr, n) if len(self.lr) in (1, n) else _per_octave("lr", self.lr[-n:], n)
        sigma_l = _per_octave("sigma", self.sigma, n) if len(self.sigma) in (1, n) else _per_octave("sigma", self.sigma[-n:], n)
        min_side = self.spec.min_size
        for w, h in sizes:
            if min(w, h) < min_side:
                raise DreamError(
                    f"octave size {w}x{h} is too small for {self.model} (needs at least {min_side} px a side)",
                    "use a larger --size, fewer --octaves or a smaller --octave-scale",
                )
            if max(w, h) > MAX_SIDE:
                raise DreamError(f"size {w}x{h} is too large (at most {MAX_SIDE} px a side)")
        masks = self.mask_source(output_size)
        return DreamSettings(
            octaves=tuple(Octave(s, n_, lr, sg) for s, n_, lr, sg in zip(sizes, steps_l, lr_l, sigma_l)),
            smooth_every=self.smooth_every,
            jitter=self.jitter,
            normalize=self.normalize,
            carry=self.octave_carry,
            tile=self.tile,
            tile_overlap=self.tile // 8 if self.tile_overlap is None else self.tile_overlap,
            mask=masks.frame(0) if masks is not None else None,
        )

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["weights"] = describe_weights(self.weights)
        d["weights_source"] = self.spec.weights_source if self.weights == "default" else d["weights"]
        return d


def resolve_plan(values: dict[str, Any], preset_name: str | None = None) -> DreamPlan:
    """Validate merged option values into a plan (model, weights, layers, classes, features)."""
    spec = get_spec(values["model"])
    check_weights_arg(values["weights"])
    plan = DreamPlan(**{o.key: values[o.key] for o in OPTIONS}, preset=preset_name)
    plan.model = spec.name
    plan.objective()  # validates layers, features and classes now
    if plan.tile:  # art (issue 14)
        from .tiles import check_tile

        check_tile(plan.tile, plan.tile // 8 if plan.tile_overlap is None else plan.tile_overlap, spec)
    if plan.mask:
        plan.mask_source()  # readable now
    if isinstance(plan.octaves, list):
        if plan.octaves != sorted(plan.octaves):
            raise DreamError(f"octave sizes {plan.octaves} must grow", "e.g. --octaves 299,380,460")
    return plan


def plan_lines(plan: DreamPlan, settings: DreamSettings, objective: Objective) -> list[str]:
    """A human-readable plan for --dry-run."""
    lines = [
        f"model      {plan.model}  weights: {plan.to_json()['weights_source']}",
        f"objective  {objective!r}",
        f"update     normalize={plan.normalize}  smooth every {plan.smooth_every}  jitter {plan.jitter}px  carry={plan.octave_carry}  seed {plan.seed}",
    ]
    for i, o in enumerate(settings.octaves):
        lines.append(
            f"octave {i + 1}   {o.size[0]}x{o.size[1]}  {o.steps} steps  lr {o.lr[0]:g}->{o.lr[1]:g}  sigma {o.sigma[0]:g}->{o.sigma[1]:g}"
        )
    return lines
