"""``dreamreel reproduce``: the article's claims, measured on its presets, with a contact sheet.

Each claim of "Feature Visualization II: Deep Dream" becomes one row of ``claims.csv`` and
``claims.md``: the numbers measured, the criterion they are read against (fixed here, before any
run), and whether they agree. By default the embedded EfficientNet-Lite0 runs the ``lite0-*``
twins of the article's presets; ``--model inception_v3`` or ``googlenet`` runs the ``article-*``
presets themselves where their weights are present. Sizes and steps scale down with ``scale`` and
``steps`` (tests use tiny ones); learning rates and blur stay the presets'.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .engine import Dreamer, DreamResult, noise_image, resize
from .errors import DreamError
from .io.images import load_image, save_image
from .measures import cosine_distance, gradient_additivity, high_frequency_share, layer_profile, pixel_distance
from .models import create_model, get_spec
from .engine.objectives import parse_layer_spec
from .options import OPTIONS
from .plan import DreamPlan, resolve_plan
from .presets import available, load_preset
from .render.activations import ActivationRecorder
from .render.runtime import Engine, open_device
from .reproduce_report import contact_sheet, write_csv, write_markdown

FAMILIES = {"efficientnet_lite0": "lite0-", "inception_v3": "article-", "googlenet": "article-"}
MOTION_KEYS = {"frames", "zoom", "rotate", "shift", "first_octaves"}  # zoom presets: not stills
NOISE_FEATURES = 3  # claim 4 compares this many features of the feature preset's layer
ADDITIVITY_SIZE = 256  # px at scale 1, square: the gradient check needs no octaves
FINAL_OVER_NATIVE = 460 / 299  # the article's last octave over InceptionV3's native size; art presets end there too

# The article's claims. ``roles`` name preset suffixes (after the family prefix); the first whose
# preset exists for the chosen model is used, and a claim with a missing role is skipped.
ROLES = {
    "additivity": ("mixed6c-all", "googlenet-4c"),
    "layer": ("mixed6b-layer", "googlenet-4c"),
    "target": ("junco-target",),
    "feature": ("mixed6e-feature",),
    "feature_noise": ("mixed6e-feature-noise",),
    "directed": ("directed-bubble",),
    "transfig": ("transfig-bubble",),
}


@dataclass
class Claim:
    id: int
    claim: str  # the article's claim, in its words
    criterion: str  # how the numbers are read, fixed before running
    needs: tuple[str, ...]  # roles
    numbers: dict[str, float] = field(default_factory=dict)
    agrees: str = "skipped"  # yes, no, skipped
    note: str = ""
    presets: list[str] = field(default_factory=list)


def article_claims() -> list[Claim]:
    return [
        Claim(1, "a layer's gradient equals the sum of its features' gradients (the gradient is additive)",
              "max |F*grad(layer/F) - sum_f grad(feature f)| / max|grad| < 1e-4", ("additivity",)),
        Claim(2, "a whole-layer objective rises smoothly over steps; a class target without smoothing rises in jumps",
              "largest single-step change / range: layer objective <= 0.10 and target probability >= 0.25",
              ("layer", "target")),
        Claim(3, "after a three-octave layer dream, the mean activation of many features has not changed",
              "share of the layer's features whose mean activation rose by more than 10% is <= 0.80", ("layer",)),
        Claim(4, "starting from noise instead of a photo changes the result for the same features",
              "photo-vs-noise distance of the rest of the layer's profile >= 2x the noise-seed-vs-noise-seed distance",
              ("feature", "feature_noise")),
        Claim(5, "a class target without smoothing reaches high probability by adding only noise",
              "p(target) >= 0.9, mean |pixel change| <= 10/255, high-frequency share of the change >= 0.5",
              ("target",)),
        Claim(6, "a directed dream shows the target and keeps finer detail than transfiguration",
              "directed p(target) rises to >= 0.5, and its high-frequency share exceeds transfiguration's",
              ("directed", "transfig")),
    ]


# ---------------------------------------------------------------- running presets


@dataclass
class Run:
    preset: str
    image: torch.Tensor  # (1,3,H,W) in [0,1], on the CPU
    start: torch.Tensor  # the start image at the output size
    result: DreamResult
    summary: dict  # activations.summarize
    layer: str | None
    seconds: float


def demo_photo() -> Path:
    return Path(str(resources.files("dreamreel.assets") / "demo.png"))


def square_crop(image: torch.Tensor) -> torch.Tensor:
    """The centre square: the article's inputs are square, and square outputs compare pixel for pixel."""
    h, w = image.shape[-2:]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return image[..., top:top + s, left:left + s]


class Runner:
    """Runs presets at reduced sizes on one model, loading it once and keeping each run's outputs."""

    def __init__(self, model: str, photo: torch.Tensor, *, scale: float, steps: int | None, device: str, seed: int,
                 weights: str = "default"):
        self.spec = get_spec(model)
        self.device = open_device(device)
        self.device_name = device
        _, self.model = create_model(model, weights, self.device)  # missing weights are one DreamError line
        self.photo = square_crop(photo)
        self.scale, self.steps, self.seed = scale, steps, seed
        self.runs: dict[tuple, Run] = {}

    def plan(self, name: str, layer: list[str] | None = None) -> DreamPlan:
        preset = load_preset(name)
        values = {o.key: preset.values.get(o.key, o.default) for o in OPTIONS}
        values["device"] = self.device_name
        if layer is not None:
            values["layer"] = layer
        min_side = self.spec.min_size
        if isinstance(values["octaves"], list):
            values["octaves"] = sorted(max(min_side, round(s * self.scale)) for s in values["octaves"])
        else:  # art presets: a count of octaves ending at the twins' final size, the first still large enough
            smallest = math.ceil(min_side * values["octave_scale"] ** (values["octaves"] - 1))
            values["size"] = max(smallest, round(self.spec.native_size * FINAL_OVER_NATIVE * self.scale))
        if self.steps is not None:
            values["steps"] = [self.steps]
        plan = resolve_plan(values, name)
        if plan.spec.name != self.spec.name:
            raise DreamError(f"preset {name!r} is for {plan.spec.name}, not {self.spec.name}")
        return plan

    def run(self, name: str, *, noise: bool = False, seed_offset: int = 0, layer: list[str] | None = None) -> Run:
        plan = self.plan(name, layer)
        seed = self.seed + seed_offset
        plan.seed = seed
        fields = {k: v for k, v in plan.to_json().items() if k != "preset"}
        key = (repr(sorted(fields.items())), noise)  # presets that resolve to the same dream share one run
        if key in self.runs:
            return self.runs[key]
        side = self.photo.shape[-1]
        settings = plan.settings(plan.output_size((side, side)))
        if noise:  # the article's noise, made at the first octave's size (a larger one would be smoothed by the resize)
            first = noise_image(settings.octaves[0].size, torch.Generator().manual_seed(seed))
        else:
            first = self.photo
        objective = plan.objective()
        engine = Engine(plan, Dreamer(self.model, objective, self.device), self.device, self.spec, objective)
        recorder = ActivationRecorder()
        recorder.begin(first, settings, engine)
        t0 = time.perf_counter()
        result = engine.dreamer.dream(first, settings, callback=recorder.on_step,
                                      generator=torch.Generator().manual_seed(seed))
        seconds = time.perf_counter() - t0
        summary = recorder.finish(result)["activations"]
        layers = sorted(l for l in engine.objective.layers if l != "logits")
        out = Run(name, result.image.detach().float().cpu(), resize(first, settings.octaves[-1].size).cpu(), result,
                  summary, layers[0] if layers else None, seconds)
        self.runs[key] = out
        return out


# ---------------------------------------------------------------- the claims


def _resolve_roles(model: str) -> dict[str, str]:
    prefix = FAMILIES[model]
    known = available()
    roles = {}
    for role, suffixes in ROLES.items():
        for suffix in suffixes:
            name = prefix + suffix
            if name in known and load_preset(name).values.get("model", OPTIONS[0].default) == model:
                roles[role] = name
                break
    return roles


def _claim_additivity(r: Runner, roles: dict[str, str], c: Claim) -> None:
    name = roles["additivity"]
    plan = r.plan(name)
    layer = sorted(l for l in plan.objective().layers if l != "logits")[0]
    channels = r.spec.layer_channels[layer]
    side = max(round(ADDITIVITY_SIZE * r.scale), 2 * r.spec.min_size)
    image = resize(r.photo, (side, side)).to(r.device)
    diff, scale = gradient_additivity(r.model, layer, channels, image)
    c.numbers = {"features": channels, "max_abs_diff": diff, "max_abs_grad": scale, "relative_diff": diff / scale if scale else 0.0}
    c.agrees = "yes" if scale > 0 and diff / scale < 1e-4 else "no"
    c.note = f"{layer}, {channels} features, {side}x{side} px, float32"
    c.presets = [name]


def _claim_smooth_vs_jumps(r: Runner, roles: dict[str, str], c: Claim) -> None:
    lay, tgt = r.run(roles["layer"]), r.run(roles["target"])
    layer_jump = lay.summary["objective_max_step_jump"] or 0.0
    prob_jump = tgt.summary.get("target_probability_max_step_jump") or 0.0
    logit_jump = tgt.summary["objective_max_step_jump"] or 0.0
    c.numbers = {"layer_objective_jump": layer_jump, "target_probability_jump": prob_jump, "target_logit_jump": logit_jump}
    c.agrees = "yes" if layer_jump <= 0.10 and prob_jump >= 0.25 else "no"
    if c.agrees == "no":
        c.note = "disagrees: " + ("the layer objective jumped" if layer_jump > 0.10 else "the target probability rose without a jump")
    c.presets = [roles["layer"], roles["target"]]


def _claim_features_unchanged(r: Runner, roles: dict[str, str], c: Claim) -> None:
    lay = r.run(roles["layer"])
    stats = lay.summary["layers"][lay.layer]
    share = stats["rose_over_10pct"] / stats["features"]
    c.numbers = {"features": stats["features"], "rose_over_10pct": stats["rose_over_10pct"], "share_rose": share}
    c.agrees = "yes" if share <= 0.80 else "no"
    c.note = f"{lay.layer}: {stats['did_not']} of {stats['features']} features did not rise by >10%"
    if c.agrees == "no":
        c.note = f"disagrees: {share:.0%} of the features rose; " + c.note
    c.presets = [roles["layer"]]


def _claim_noise_vs_photo(r: Runner, roles: dict[str, str], c: Claim) -> None:
    spec_text = load_preset(roles["feature"]).values["layer"][0]
    obj = parse_layer_spec(spec_text)
    layer = next(iter(obj.layers))
    first = getattr(next(t for _, t in obj.terms()), "indices", (0,))[0]
    channels = r.spec.layer_channels[layer]
    features = [(first + i) % channels for i in range(NOISE_FEATURES)]
    pix_pn, pix_nn, prof_pn, prof_nn = [], [], [], []
    for f in features:
        spec = [f"{layer}:{f}"]
        photo = r.run(roles["feature"], layer=spec)
        noise_a = r.run(roles["feature_noise"], noise=True, layer=spec)
        noise_b = r.run(roles["feature_noise"], noise=True, seed_offset=1, layer=spec)
        pix_pn.append(pixel_distance(photo.image, noise_a.image))
        pix_nn.append(pixel_distance(noise_a.image, noise_b.image))
        keep = torch.ones(channels, dtype=torch.bool)
        keep[f] = False  # the rest of the layer: the optimised feature is high in every run
        pa, pb, pp = (layer_profile(r.model, x.image, layer)[keep] for x in (noise_a, noise_b, photo))
        prof_pn.append(cosine_distance(pp, pa))
        prof_nn.append(cosine_distance(pa, pb))
    pn, nn_ = float(np.mean(prof_pn)), float(np.mean(prof_nn))
    c.numbers = {"profile_photo_vs_noise": pn, "profile_noise_vs_noise": nn_, "profile_ratio": pn / nn_ if nn_ else math.inf,
                 "pixels_photo_vs_noise": float(np.mean(pix_pn)), "pixels_noise_vs_noise": float(np.mean(pix_nn))}
    c.agrees = "yes" if pn >= 2 * nn_ else "no"
    c.note = (f"{layer} features {features}: profile = 1 - cosine of the other features' mean activations; "
              "pixels = mean |difference| in 0-255")
    if c.agrees == "no":
        c.note = f"disagrees: photo vs noise is only {c.numbers['profile_ratio']:.2g}x two noise seeds apart; " + c.note
    c.presets = [roles["feature"], roles["feature_noise"]]


def _claim_adversarial_noise(r: Runner, roles: dict[str, str], c: Claim) -> None:
    tgt = r.run(roles["target"])
    change = tgt.image - tgt.start
    p_start, p_end = tgt.result.target_probability or (float("nan"), float("nan"))
    numbers = {"p_start": p_start, "p_end": p_end, "mean_pixel_change": float(change.abs().mean() * 255),
               "hf_share_of_change": high_frequency_share(change)}
    if "layer" in roles:  # for scale: the same measures for the layer dream at the same lr
        lay = r.run(roles["layer"])
        numbers["layer_dream_mean_pixel_change"] = float((lay.image - lay.start).abs().mean() * 255)
        numbers["layer_dream_hf_share_of_change"] = high_frequency_share(lay.image - lay.start)
    c.numbers = numbers
    ok = [p_end >= 0.9, numbers["mean_pixel_change"] <= 10, numbers["hf_share_of_change"] >= 0.5]
    c.agrees = "yes" if all(ok) else "no"
    c.note = f"white noise has a high-frequency share of {1 - math.pi / 16:.2f}"
    if not all(ok):
        failed = [w for w, good in zip(("probability", "small change", "noise-like change"), ok) if not good]
        c.note = "disagrees on " + ", ".join(failed) + "; " + c.note
    c.presets = [roles["target"]] + ([roles["layer"]] if "layer" in roles else [])


def _claim_directed(r: Runner, roles: dict[str, str], c: Claim) -> None:
    d, t = r.run(roles["directed"]), r.run(roles["transfig"])
    dp = d.result.target_probability or (float("nan"), float("nan"))
    tp = t.result.target_probability or (float("nan"), float("nan"))
    c.numbers = {"directed_p_start": dp[0], "directed_p_end": dp[1], "transfig_p_end": tp[1],
                 "directed_hf_share": high_frequency_share(d.image), "transfig_hf_share": high_frequency_share(t.image),
                 "photo_hf_share": high_frequency_share(d.start)}
    rises = dp[1] >= 0.5 and dp[1] > dp[0]
    finer = c.numbers["directed_hf_share"] > c.numbers["transfig_hf_share"]
    c.agrees = "yes" if rises and finer else "no"
    if not rises:
        c.note = "disagrees: the directed dream did not raise the target's probability to 0.5"
    elif not finer:
        c.note = "disagrees: the transfiguration kept at least as much high-frequency energy"
    c.presets = [roles["directed"], roles["transfig"]]


MEASURES: dict[int, Callable[[Runner, dict, Claim], None]] = {
    1: _claim_additivity, 2: _claim_smooth_vs_jumps, 3: _claim_features_unchanged,
    4: _claim_noise_vs_photo, 5: _claim_adversarial_noise, 6: _claim_directed,
}


def sheet_presets(model: str) -> list[str]:
    """The still presets that run on ``model``: its article presets or twins, and the art presets."""
    prefix = FAMILIES[model]
    names = []
    for name in available():
        p = load_preset(name)
        if p.values.get("model", OPTIONS[0].default) != model or MOTION_KEYS & set(p.values):
            continue
        if name.startswith(prefix) or not name.startswith(tuple(FAMILIES.values())):
            names.append(name)
    return names


# ---------------------------------------------------------------- entry points


def reproduce(out: str | Path = "repro", model: str = "efficientnet_lite0", *, photo: str | Path | None = None,
              scale: float = 0.5, steps: int | None = None, device: str = "auto", seed: int = 0,
              weights: str = "default", show_progress: bool = True) -> list[Claim]:
    """Measure every claim, write ``out/claims.csv``, ``out/claims.md``, ``out/contact_sheet.png`` and each preset's image."""
    model = get_spec(model).name
    if model not in FAMILIES:
        raise DreamError(f"reproduce runs efficientnet_lite0 (the twins), inception_v3 or googlenet, not {model}")
    if not 0 < scale <= 4:
        raise DreamError(f"bad scale {scale:g}", "use a factor in (0, 4], e.g. 0.5")
    if steps is not None and steps < 1:
        raise DreamError(f"bad steps {steps}", "use at least 1 step per octave")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DreamError(f"--out {str(out)!r} is a file, not a folder")
    t0 = time.perf_counter()
    photo_path = Path(photo) if photo else demo_photo()
    runner = Runner(model, load_image(photo_path), scale=scale, steps=steps, device=device, seed=seed, weights=weights)
    roles = _resolve_roles(model)
    claims = article_claims()
    names = sheet_presets(model)
    with tqdm(total=len(claims) + 1, desc="claims", unit="claim", dynamic_ncols=True, leave=False,
              disable=not show_progress) as bar:
        for c in claims:
            missing = [role for role in c.needs if role not in roles]
            if missing:
                c.note = f"skipped: no {FAMILIES[model]}{ROLES[missing[0]][0]} preset for {model} (the article's claim is on another model)"
            else:
                MEASURES[c.id](runner, roles, c)
            bar.update(1)
        bar.set_description("contact sheet")
        tiles = []
        for name in names:
            run = runner.run(name, noise=name.endswith("-noise"))
            save_image(out / "images" / f"{name}.png", run.image)
            tiles.append((name, run.image))
        save_image(out / "contact_sheet.png", contact_sheet(tiles))
        bar.update(1)
    seconds = time.perf_counter() - t0
    header = {
        "model": f"{model} ({'the lite0-* twins of the article presets' if model == 'efficientnet_lite0' else 'the article presets'})",
        "photo": f"{photo_path.name} (centre square)",
        "sizes": f"preset octave sizes x {scale:g}",
        "steps": f"{steps} per octave" if steps else "the presets' (100 per octave)",
        "device": str(runner.device),
        "seconds": f"{seconds:.0f}",
        "agree": f"{sum(c.agrees == 'yes' for c in claims)} of {sum(c.agrees != 'skipped' for c in claims)} measured claims",
    }
    write_csv(out / "claims.csv", claims)
    write_markdown(out / "claims.md", claims, header)
    return claims
