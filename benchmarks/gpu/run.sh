#!/usr/bin/env bash
# The one-command GPU check: install the carried wheels, print the card and versions, run the CUDA tests,
# then the GPU benchmarks; writes OUTDIR/gpu_summary.json and OUTDIR/gpu_summary.md (+ logs).
#
#   benchmarks/gpu/prepare.sh                       # first, on a machine that reaches PyPI: wheels -> .whl/
#   benchmarks/gpu/run.sh OUTDIR                    # on the GPU machine (<= 7 minutes on an H100)
#   benchmarks/gpu/run.sh OUTDIR --dry-run          # CPU, tiny models, one step each (about a minute)
#
# Env: PYTHON (default: .venv/bin/python if present, else python3), GPU_SITE (where the wheels are installed,
#      default /tmp/genemi-gpu-site), GPU_CHECK_BUDGET_S (seconds for all benchmarks, default 240).
# Exit status: 0 when the tests and every benchmark ran without error, else 1 (the summaries are written anyway).
set -uo pipefail

usage() { echo "usage: $0 OUTDIR [--dry-run]" >&2; exit 2; }
[[ $# -ge 1 && $# -le 2 ]] || usage
out=$1
dry=0
if [[ $# -eq 2 ]]; then [[ $2 == --dry-run ]] || usage; dry=1; fi
[[ $out != -* ]] || usage

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "$root/.venv/bin/python" ]]; then PYTHON=$root/.venv/bin/python; else PYTHON=python3; fi
fi
site=${GPU_SITE:-/tmp/genemi-gpu-site}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 PYTHONUNBUFFERED=1
export TOKENIZERS_PARALLELISM=false
start=$SECONDS
status=0
step() { echo; echo "=== [$((SECONDS - start)) s] $*"; }

cd "$root" || exit 1

# 1. wheels the machine lacks (prepare.sh put them in .whl/), then genemi itself, both without dependencies
shopt -s nullglob
wheels=("$root"/.whl/*.whl)
pyver=$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
if (( ${#wheels[@]} )) && [[ $pyver != 3.12 ]]; then
    step "not installing the ${#wheels[@]} wheels in .whl: they are for CPython 3.12, this is $pyver"
elif (( ${#wheels[@]} )); then
    step "installing ${#wheels[@]} carried wheels into $site"
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --disable-pip-version-check --target "$site" "${wheels[@]}" || { echo "wheel install failed" >&2; status=1; }
    export PYTHONPATH=$site${PYTHONPATH:+:$PYTHONPATH}
else
    step "no wheels in $root/.whl: using the packages installed here"
fi
if (( ! dry )); then
    # a check that the package installs; the tests and benchmarks import the checkout itself (PYTHONPATH below)
    step "installing genemi --no-deps into $site-genemi"
    "$PYTHON" -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --no-cache-dir \
        --disable-pip-version-check --upgrade --target "$site-genemi" "$root" \
        || echo "genemi install failed: using the repository on PYTHONPATH" >&2
fi
# the checkout first (tests and benchmarks run this tree), then the carried wheels; benchmarks/gpu for the plugin
export PYTHONPATH=$root:$here${PYTHONPATH:+:$PYTHONPATH}

# 2. the card and the versions
if (( ! dry )) && command -v nvidia-smi >/dev/null; then
    step "nvidia-smi"
    nvidia-smi 2>&1 | tee "$out/nvidia-smi.txt"
elif (( ! dry )); then
    echo "nvidia-smi not found" >&2
fi
step "versions"
"$PYTHON" - <<'EOF' 2>&1
import importlib.metadata as md, platform, sys
import torch
print("python", platform.python_version(), sys.executable)
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available(),
      torch.cuda.get_device_name() if torch.cuda.is_available() else "")
for d in ("torchvision", "transformers", "diffusers", "open_clip_torch", "segment-anything", "accelerate",
          "pydantic", "pydantic-core", "huggingface-hub", "tokenizers", "numpy", "pillow", "timm", "spacy"):
    try:
        print(d, md.version(d))
    except md.PackageNotFoundError:
        print(d, "missing")
import genemi
print("genemi", genemi.__version__, genemi.__file__)
EOF

# 3. the CUDA tests: those that skip without CUDA (cuda_select.py), spaCy-dependent ones left out without spaCy
mapfile -t test_files < <(grep -rlE "cuda\.is_available|mark\.(cuda|gpu)" "$root/tests" --include='test_*.py' | sort)
step "CUDA tests in ${#test_files[@]} files"
if (( ${#test_files[@]} )); then
    timeout 150 "$PYTHON" -m pytest -p cuda_select -p no:cacheprovider -q -rA --junitxml="$out/cuda_tests.xml" \
        "${test_files[@]}" 2>&1 | tee "$out/cuda_tests.log"
    tests_rc=${PIPESTATUS[0]}
else
    echo "no test file mentions CUDA" | tee "$out/cuda_tests.log"
    tests_rc=5
fi
# 0 = passed, 5 = nothing collected (only in a tree without CUDA tests)
if [[ $tests_rc -ne 0 && $tests_rc -ne 5 ]]; then status=1; fi

# 4. the GPU benchmarks (each under its own budget; a hard cap over all of them)
step "GPU benchmarks"
bench=("$PYTHON" "$here/gpu_benchmarks.py" --out "$out" --tests-junit "$out/cuda_tests.xml"
       --tests-log "$out/cuda_tests.log" --tests-rc "$tests_rc")
(( dry )) && bench+=(--dry-run)
timeout 420 "${bench[@]}" 2>&1 | tee "$out/gpu_benchmarks.log"
bench_rc=${PIPESTATUS[0]}
[[ $bench_rc -eq 0 ]] || status=1

# 5. the tiny-model inpainting section of benchmarks/pipeline_stages.py, where that script has one
ps_help=$( (( dry )) || "$PYTHON" "$root/benchmarks/pipeline_stages.py" --help 2>/dev/null)
if (( ! dry )) && [[ $ps_help == *"inpaint"* ]]; then
    step "benchmarks/pipeline_stages.py --only inpaint --device cuda"
    timeout 45 "$PYTHON" "$root/benchmarks/pipeline_stages.py" --only inpaint --device cuda 2>&1 \
        | tee "$out/pipeline_stages_inpaint.log"
    ps_rc=${PIPESTATUS[0]}
    "$PYTHON" "$here/gpu_benchmarks.py" --out "$out" \
        --attach "pipeline_stages.py --only inpaint --device cuda" "$out/pipeline_stages_inpaint.log" "$ps_rc"
fi

step "done in $((SECONDS - start)) s: $out/gpu_summary.md, $out/gpu_summary.json (exit $status)"
[[ -f "$out/gpu_summary.md" ]] && tail -n 60 "$out/gpu_summary.md"
exit $status
