"""The resolved dream plan: options validated against the model (layers, classes, sizes) before weights load."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from .engine import DreamSettings, Octave, Size, octave_sizes
from .engine.objectives import Objective, build_objective
from .errors import DreamError
from .models import check_weights_arg, describe_weights, get_spec
from .options import DREAM_KEYS, MAX_SIDE


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
    layer_objective: str
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
    view_scale: float
    view_rotate: float
    lapnorm: int
    color: str
    seed: int
    device: str
    tile: int  # effects: engine/tiles.py, engine/guide.py, engine/masks.py
    tile_overlap: int | None
    guide: list[str]
    guide_layer: str | None
    mask: str | None
    mask_feather: float
    preset: str | None = None

    @property
    def spec(self):
        return get_spec(self.model)

    def objective(self) -> Objective:
        if self.guide:  # guide terms join the layer/target terms (alone: the guide only)
            from .engine.guide import build_guided_objective

            return build_guided_objective(self.layer, self.target, self.guide, self.guide_layer,
                                          self.spec.default_layer, self.layer_objective).bind(self.spec)
        return build_objective(self.layer, self.target, self.spec.default_layers, self.layer_objective).bind(self.spec)

    @property
    def overlap(self) -> int:
        """The tiles' overlap in pixels (default: an eighth of the tile)."""
        return self.tile // 8 if self.tile_overlap is None else self.tile_overlap

    def mask_source(self, output_size: Size | None = None):
        """The --mask file (checked against ``output_size``), or None."""
        if not self.mask:
            return None
        from .engine.masks import open_mask

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
        if max(out) > MAX_SIDE:
            if input_size and tuple(out) == tuple(input_size):
                raise DreamError(f"the input is {out[0]}x{out[1]}, larger than {MAX_SIDE} px a side",
                                 f"scale the output down with --size, e.g. --size {min(2048, MAX_SIDE)}")
            raise DreamError(f"output size {out[0]}x{out[1]} is too large (at most {MAX_SIDE} px a side)",
                             "use a smaller --size")
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
            scale=self.view_scale,
            rotate=self.view_rotate,
            lapnorm=self.lapnorm,
            color=self.color,
            tile=self.tile,
            tile_overlap=self.overlap,
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
    plan = DreamPlan(**{k: _first_value(k, values[k], values.get("fps") or 12.0) for k in DREAM_KEYS},
                     preset=preset_name)
    plan.model = spec.name
    from .engine import device_problem

    if problem := device_problem(plan.device):
        raise DreamError(f"device {plan.device!r} is not usable here ({problem})", "use --device cpu")
    plan.objective()  # validates layers, features and classes now (sizes, growth and ranges: options.parse_value)
    if plan.tile:
        from .engine.tiles import check_tile

        check_tile(plan.tile, plan.overlap, spec)
    if plan.mask:
        plan.mask_source()  # readable now
    return plan


def _first_value(key: str, value: Any, fps: float) -> Any:
    """A scheduled option's value at frame 0, in the option's form (the plan's; frames follow the schedule)."""
    from .series import frame_value, specs_at
    from .schedule import Schedule

    if key in ("layer", "target"):
        return specs_at(value, key, 0, 1, fps)
    if not isinstance(value, Schedule):
        return value
    return frame_value(key, value, fps=fps)


def plan_lines(plan: DreamPlan, settings: DreamSettings, objective: Objective) -> list[str]:
    """A human-readable plan for --dry-run."""
    lines = [
        f"model      {plan.model}  weights: {plan.to_json()['weights_source']}",
        f"objective  {objective!r}",
        f"update     normalize={plan.normalize}  smooth every {plan.smooth_every}  jitter {plan.jitter}px  carry={plan.octave_carry}  seed {plan.seed}",
        f"view       scale 1+-{plan.view_scale:g}  rotate +-{plan.view_rotate:g} deg  lapnorm {plan.lapnorm}  colour {plan.color}",
    ]
    for i, o in enumerate(settings.octaves):
        lines.append(
            f"octave {i + 1}   {o.size[0]}x{o.size[1]}  {o.steps} steps  lr {o.lr[0]:g}->{o.lr[1]:g}  sigma {o.sigma[0]:g}->{o.sigma[1]:g}"
        )
    return lines
