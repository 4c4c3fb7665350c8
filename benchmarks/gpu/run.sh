#!/usr/bin/env bash
# The one-command GPU check: install the carried wheels, print the card and versions, run the CUDA tests,
# then the GPU benchmarks; writes OUTDIR/gpu_summary.json and OUTDIR/gpu_summary.md (+ logs), whatever fails.
#
#   benchmarks/gpu/prepare.sh                       # first, on a machine that reaches PyPI: wheels -> .whl/
#   benchmarks/gpu/run.sh OUTDIR                    # on the GPU machine: every step under a timeout, <= 450 s
#   benchmarks/gpu/run.sh OUTDIR --dry-run          # CPU, tiny models, one step each (about a minute)
#
# Device call (docs/performance.md): command "bash benchmarks/gpu/run.sh $OUT", carry [".whl"], timeout_s 480.
#
# Env: PYTHON (default: .venv/bin/python if present, else python3), GPU_WHEELS (default: .whl in the checkout),
#      GPU_SITE (where the wheels are installed, default /tmp/genemi-gpu-site), GPU_CHECK_BUDGET_S (seconds
#      for the benchmark process, default 200; its timeout is that + 25).
# Exit status: 0 when the tests and every benchmark ran without error, else 1; the summaries are written anyway
# (gpu_summary.py finish completes them after the benchmark process, whatever became of it; if even that fails,
# a last-resort gpu_summary.md/json written here names the failure).
set -uo pipefail

usage() { echo "usage: $0 OUTDIR [--dry-run]" >&2; exit 2; }
[[ $# -ge 1 && $# -le 2 ]] || usage
out=$1
dry=0
if [[ $# -eq 2 ]]; then [[ $2 == --dry-run ]] || usage; dry=1; fi
[[ $out != -* ]] || usage

# Time plan: every step that can hang runs under `timeout`; these add up to <= 450 s, inside the 480 s
# timeout_s of the device call (600 s is the most a device command may run). tests/test_gpu_check.py checks it.
budget=${GPU_CHECK_BUDGET_S:-200}   # the benchmark process's own total budget (gpu_benchmarks.py)
t_wheels=40     # pip install of the carried wheels (14 wheels, 24.6 MiB)
t_genemi=15     # pip install of genemi --no-deps (a check that it installs)
t_smi=10        # nvidia-smi
t_shm=5         # df -h /dev/shm
t_versions=25   # python: torch, CUDA, card memory, driver, package versions
t_tests=80      # the CUDA tests
t_bench=$((budget + 25))  # the benchmarks: budget + one section's overrun grace (10 s) + exit
t_inpaint=35    # benchmarks/pipeline_stages.py --only inpaint --device cuda
t_finish=15     # gpu_summary.py finish
t_sum=$((t_wheels + t_genemi + t_smi + t_shm + t_versions + t_tests + t_bench + t_inpaint + t_finish))
kill_after=5    # `timeout -k`: SIGKILL this long after SIGTERM (counted in the device command's margin)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
mkdir -p "$out" || exit 1
out=$(cd "$out" && pwd)
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "$root/.venv/bin/python" ]]; then PYTHON=$root/.venv/bin/python; else PYTHON=python3; fi
fi
wheel_dir=${GPU_WHEELS:-$root/.whl}
site=${GPU_SITE:-/tmp/genemi-gpu-site}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 PYTHONUNBUFFERED=1
export TOKENIZERS_PARALLELISM=false
start=$SECONDS
status=0
step() { echo; echo "=== [$((SECONDS - start)) s] $*"; }
# the versions step's output goes into the summary, not into OUTDIR (a device call brings back 8 files at most)
scratch=$(mktemp -d "${TMPDIR:-/tmp}/genemi-gpucheck-run.XXXXXX") || exit 1
trap 'rm -rf "$scratch"' EXIT

cd "$root" || exit 1
echo "time plan: wheels $t_wheels + genemi $t_genemi + nvidia-smi $t_smi + df $t_shm + versions $t_versions" \
     "+ tests $t_tests + benchmarks $t_bench + inpainting log $t_inpaint + summary $t_finish = $t_sum s"
(( t_sum <= 450 )) || echo "warning: the timeouts add up to $t_sum s, over 450 s (GPU_CHECK_BUDGET_S=$budget)" >&2

# 1. wheels the machine lacks (prepare.sh put them in .whl/), then genemi itself, both without dependencies
shopt -s nullglob
wheels=("$wheel_dir"/*.whl)
pyver=$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")' 2>/dev/null)
if (( ${#wheels[@]} )) && [[ $pyver != 3.12 ]]; then
    step "not installing the ${#wheels[@]} wheels in $wheel_dir: they are for CPython 3.12, this is ${pyver:-unknown}"
elif (( ${#wheels[@]} )); then
    step "installing ${#wheels[@]} carried wheels into $site"
    timeout -k $kill_after $t_wheels "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --upgrade --disable-pip-version-check --target "$site" "${wheels[@]}" \
        || { echo "wheel install failed (exit $?)" >&2; status=1; }
    export PYTHONPATH=$site${PYTHONPATH:+:$PYTHONPATH}
else
    step "no wheels in $wheel_dir: using the packages installed here"
fi
if (( ! dry )); then
    # a check that the package installs; the tests and benchmarks import the checkout itself (PYTHONPATH below)
    step "installing genemi --no-deps into $site-genemi"
    timeout -k $kill_after $t_genemi "$PYTHON" -m pip install -q --no-index --no-deps --no-build-isolation \
        --no-compile --no-cache-dir --disable-pip-version-check --upgrade --target "$site-genemi" "$root" \
        || echo "genemi install failed (exit $?): using the repository on PYTHONPATH" >&2
fi
# the checkout first (tests and benchmarks run this tree), then the carried wheels; benchmarks/gpu for the plugin
export PYTHONPATH=$root:$here${PYTHONPATH:+:$PYTHONPATH}

# 2. the card, shared memory and the versions
if (( ! dry )) && command -v nvidia-smi >/dev/null; then
    step "nvidia-smi"
    timeout -k $kill_after $t_smi nvidia-smi 2>&1 | tee "$out/nvidia-smi.txt"
elif (( ! dry )); then
    echo "nvidia-smi not found" | tee "$out/nvidia-smi.txt" >&2
fi
step "versions"
{
    echo "\$ df -h /dev/shm"
    timeout -k $kill_after $t_shm df -h /dev/shm 2>&1 || echo "df -h /dev/shm failed"
    timeout -k $kill_after $t_versions "$PYTHON" - <<'EOF' 2>&1
import importlib.metadata as md, platform, subprocess, sys
print("python", platform.python_version(), sys.executable)
try:
    out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,memory.used",
                          "--format=csv,noheader"], capture_output=True, text=True, timeout=10)
    print("card, driver, memory total, memory used (nvidia-smi):", out.stdout.strip() or out.stderr.strip())
except (OSError, subprocess.SubprocessError) as exc:
    print("nvidia-smi:", exc)
import torch
cuda = torch.cuda.is_available()
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", cuda)
print("cuda_available=" + str(cuda), flush=True)  # run.sh reads this line
if cuda:
    free, total = torch.cuda.mem_get_info()
    print(f"card {torch.cuda.get_device_name()}: {total / 2**30:.1f} GiB, {free / 2**30:.1f} GiB free, capability "
          f"{'.'.join(map(str, torch.cuda.get_device_capability()))}")
for d in ("torchvision", "transformers", "diffusers", "open_clip_torch", "segment-anything", "accelerate",
          "pydantic", "pydantic-core", "huggingface-hub", "tokenizers", "numpy", "pillow", "timm", "spacy"):
    try:
        print(d, md.version(d))
    except md.PackageNotFoundError:
        print(d, "missing")
import genemi
print("genemi", genemi.__version__, genemi.__file__)
EOF
    echo "(exit $?)"
} 2>&1 | tee "$scratch/versions.txt"
has_cuda=0
grep -q '^cuda_available=True' "$scratch/versions.txt" && has_cuda=1

# 3. the CUDA tests: those that skip without CUDA (cuda_select.py), spaCy-dependent ones left out without spaCy
mapfile -t test_files < <(grep -rlE "cuda\.is_available|mark\.(cuda|gpu)" "$root/tests" --include='test_*.py' | sort)
step "CUDA tests in ${#test_files[@]} files"
rm -f "$out/cuda_tests.xml"
if (( ${#test_files[@]} )); then
    timeout -k $kill_after $t_tests "$PYTHON" -m pytest -p cuda_select -p no:cacheprovider -q -rA \
        --junitxml="$out/cuda_tests.xml" "${test_files[@]}" 2>&1 | tee "$out/cuda_tests.log"
    tests_rc=${PIPESTATUS[0]}
else
    echo "no test file mentions CUDA" | tee "$out/cuda_tests.log"
    tests_rc=5
fi
# 0 = passed, 5 = nothing collected (only in a tree without CUDA tests)
if [[ $tests_rc -ne 0 && $tests_rc -ne 5 ]]; then status=1; fi

# 4. the GPU benchmarks (each section under its own budget, the process under its total budget and a timeout)
step "GPU benchmarks (limit $t_bench s)"
bench=("$PYTHON" "$here/gpu_benchmarks.py" --out "$out" --total-budget "$budget" --tests-junit "$out/cuda_tests.xml"
       --tests-log "$out/cuda_tests.log" --tests-rc "$tests_rc")
(( dry )) && bench+=(--dry-run)
timeout -k $kill_after $t_bench "${bench[@]}" 2>&1 | tee "$out/gpu_benchmarks.log"
bench_rc=${PIPESTATUS[0]}
[[ $bench_rc -eq 0 ]] || status=1

# 5. the tiny-model inpainting section of benchmarks/pipeline_stages.py, on the GPU (not in a dry run)
attach=(--attach "versions step" "$scratch/versions.txt" -)
if (( ! dry )) && (( has_cuda )); then
    step "benchmarks/pipeline_stages.py --only inpaint --device cuda"
    timeout -k $kill_after $t_inpaint "$PYTHON" "$root/benchmarks/pipeline_stages.py" --only inpaint --device cuda \
        2>&1 | tee "$out/pipeline_stages_inpaint.log"
    attach+=(--attach "pipeline_stages.py --only inpaint --device cuda" "$out/pipeline_stages_inpaint.log"
             "${PIPESTATUS[0]}")
elif (( ! dry )); then
    echo "not run: no CUDA device" >"$scratch/inpaint.txt"
    attach+=(--attach "pipeline_stages.py --only inpaint --device cuda" "$scratch/inpaint.txt" -)
fi

# 6. complete the summaries, whatever became of the benchmark process
step "summary"
finish=("$PYTHON" "$here/gpu_summary.py" finish --out "$out" --bench-rc "$bench_rc"
        --bench-log "$out/gpu_benchmarks.log" --tests-junit "$out/cuda_tests.xml" --tests-log "$out/cuda_tests.log"
        --tests-rc "$tests_rc" "${attach[@]}")
(( dry )) && finish+=(--dry-run)
timeout -k $kill_after $t_finish "${finish[@]}"
finish_rc=$?
if [[ $finish_rc -ne 0 || ! -s "$out/gpu_summary.md" || ! -s "$out/gpu_summary.json" ]]; then
    status=1
    echo "gpu_summary.py finish failed (exit $finish_rc): writing a last-resort summary" >&2
    {
        echo "# genemi GPU check: incomplete"
        echo
        echo "gpu_summary.py finish failed (exit $finish_rc); CUDA tests exit $tests_rc, benchmarks exit $bench_rc."
        for f in "$scratch/versions.txt" "$out/cuda_tests.log" "$out/gpu_benchmarks.log"; do
            echo; echo "## $(basename "$f")"; echo; echo '```'; tail -n 30 "$f" 2>/dev/null; echo '```'
        done
    } >"$out/gpu_summary.md"
    printf '{"meta": {"card": "unknown", "incomplete": "gpu_summary.py finish failed (exit %d)"},\n' "$finish_rc" \
        >"$out/gpu_summary.json"
    printf ' "cuda_tests": {"exit_code": %d}, "benchmark_process": {"exit_code": %d}, "benchmarks": {}}\n' \
        "$tests_rc" "$bench_rc" >>"$out/gpu_summary.json"
fi

step "done in $((SECONDS - start)) s: $out/gpu_summary.md, $out/gpu_summary.json (exit $status)"
tail -n 60 "$out/gpu_summary.md"
exit $status
