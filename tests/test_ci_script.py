""".ci/run cannot lose the browser tests: a machine where chromium cannot be installed fails the run."""

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _fake_path(tmp_path: Path, apt_installs: bool) -> Path:
    """A PATH with only what .ci/run needs before its tests: dirname, an apt-get that fails or 'installs' a
    chromium, and a make that records it was reached (no install or test run happens)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "dirname").symlink_to(shutil.which("dirname"))
    install = f'[[ $1 == install ]] || exit 0\nprintf "#!/bin/sh\\n" > {bin_dir}/chromium && chmod +x {bin_dir}/chromium\n'
    (bin_dir / "apt-get").write_text("#!/bin/bash\n" + (install if apt_installs else "exit 100\n"))
    (bin_dir / "make").write_text(f"#!/bin/bash\necho make $@ >> {tmp_path}/reached\nexit 1\n")
    for name in ("apt-get", "make"):
        (bin_dir / name).chmod(0o755)
    return bin_dir


def _run(bin_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run([shutil.which("bash"), str(ROOT / ".ci" / "run")], capture_output=True, text=True,
                          env={"PATH": str(bin_dir)}, timeout=60)


def test_ci_fails_when_chromium_cannot_be_installed(tmp_path):
    result = _run(_fake_path(tmp_path, apt_installs=False))
    assert result.returncode == 1
    assert "chromium could not be installed; the gallery's browser tests need it" in result.stderr
    assert not (tmp_path / "reached").exists()  # stopped before installing or testing anything


def test_ci_goes_on_to_the_tests_once_chromium_is_installed(tmp_path):
    result = _run(_fake_path(tmp_path, apt_installs=True))
    assert (tmp_path / "reached").read_text() == "make install\n"  # the fake make stops the run there
    assert "chromium could not be installed" not in result.stderr
