#!/usr/bin/env bash
# Download, on a machine that reaches PyPI, the wheels the GPU device machine lacks (benchmarks/gpu/wheels.txt)
# for ITS Python (CPython 3.12, manylinux x86_64) into the git-ignored folder .whl/, then check that each is
# there exactly once and that all of them stay under the size a device call may carry.
#
#   benchmarks/gpu/prepare.sh            # -> .whl/ in the repository root
#   benchmarks/gpu/prepare.sh DEST       # -> another folder
#
# Env: PYTHON (the interpreter whose pip downloads; default .venv/bin/python, else python3),
#      WHEEL_LIMIT_MIB (default 48: the device call carries 64 MiB with the working tree).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
dest=${1:-$root/.whl}
limit_mib=${WHEEL_LIMIT_MIB:-48}
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "$root/.venv/bin/python" ]]; then PYTHON=$root/.venv/bin/python; else PYTHON=python3; fi
fi

mapfile -t specs < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$here/wheels.txt" | grep -v '^$')
mkdir -p "$dest"

# Pins in requirements.txt win: say so if wheels.txt drifted from them; drop other versions of these
# packages from DEST (two versions of one package stop the whole install on the device).
"$PYTHON" - "$root/requirements.txt" "$dest" "${specs[@]}" <<'EOF'
import re, sys
from pathlib import Path

def norm(name):
    return re.sub(r"[-_.]+", "_", name).lower()

req, dest, specs = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
pins = {}
for line in req.read_text().splitlines():
    m = re.match(r"^\s*([A-Za-z0-9_.-]+)\s*==\s*([^\s#;]+)", line)
    if m:
        pins[norm(m.group(1))] = m.group(2)
bad = 0
for spec in specs:
    name, version = spec.split("==")
    if norm(name) in pins and pins[norm(name)] != version:
        print(f"prepare.sh: wheels.txt has {spec} but requirements.txt pins {pins[norm(name)]}", file=sys.stderr)
        bad = 1
    for whl in dest.glob("*.whl"):
        dist, ver = whl.name.split("-")[:2]
        if norm(dist) == norm(name) and ver != version:
            print(f"prepare.sh: removing stale {whl.name}")
            whl.unlink()
sys.exit(bad)
EOF

platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64 \
         manylinux2014_x86_64 manylinux1_x86_64; do
    platforms+=(--platform "$p")
done
echo "downloading ${#specs[@]} wheels for CPython 3.12 / manylinux x86_64 into $dest"
"$PYTHON" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version 3.12 --implementation cp "${platforms[@]}" -d "$dest" "${specs[@]}" \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)

# Exactly one wheel per spec, nothing twice; print sizes and the total.
"$PYTHON" - "$dest" "$limit_mib" "${specs[@]}" <<'EOF'
import re, sys
from collections import Counter
from pathlib import Path

def norm(name):
    return re.sub(r"[-_.]+", "_", name).lower()

dest, limit, specs = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3:]
wheels = sorted(dest.glob("*.whl"))
names = Counter(norm(w.name.split("-")[0]) for w in wheels)
errors = [f"two versions of {n} in {dest}" for n, c in names.items() if c > 1]
wanted = {norm(s.split("==")[0]): s.split("==")[1] for s in specs}
found = {norm(w.name.split("-")[0]): w for w in wheels}
errors += [f"missing wheel for {n}=={v}" for n, v in wanted.items() if n not in found]
total = 0
for w in wheels:
    size = w.stat().st_size
    total += size
    extra = "" if norm(w.name.split("-")[0]) in wanted else "   (not in wheels.txt: installed too)"
    print(f"  {size / 2**20:7.2f} MiB  {w.name}{extra}")
print(f"total: {total / 2**20:.2f} MiB in {len(wheels)} wheels (limit {limit:g} MiB; a device call carries 64 MiB "
      "with the working tree)")
if total > limit * 2**20:
    errors.append(f"wheels take {total / 2**20:.1f} MiB, over {limit:g} MiB")
for e in errors:
    print("prepare.sh: " + e, file=sys.stderr)
sys.exit(1 if errors else 0)
EOF
